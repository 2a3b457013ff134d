//! Picking MRZ lines out of OCR text: consecutive lines whose lengths fit one format, the lowest such group on
//! the page winning (the MRZ is the bottom of the document).

use crate::mrz::{check, country, document_kind, to_digit};

/// Widths of the formats: TD1 (3 lines), TD2/MRV-B and TD3/MRV-A (2 lines).
const SHAPES: [(usize, usize); 3] = [(3, 30), (2, 36), (2, 44)];

/// How far a line may be off its width before it is not considered (OCR drops or adds a filler or two).
const SLACK: usize = 3;

/// Fits a line to `width`: fillers dropped or added at the end, where MRZ lines carry them.
fn fit(line: &str, width: usize) -> Option<String> {
    let n = line.len();
    if n + SLACK < width || n > width + SLACK {
        return None;
    }
    if n > width {
        let (head, tail) = line.split_at(width);
        // Only extra fillers may be dropped; extra characters would shift every field.
        return tail.bytes().all(|b| b == b'<').then(|| head.to_owned());
    }
    Some(format!("{line}{}", "<".repeat(width - n)))
}

/// One MRZ line as fitted to its format's width.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fitted {
    /// Characters of the line as read that were dropped before it (see [`fit_first`]).
    pub skip: usize,
    /// The line, `width` characters long.
    pub text: String,
}

/// Whether `line` begins as ICAO 9303 begins every document: a document code it allows (`A`, `C`, `I`, `P`, `V`
/// and a letter or filler), then a known issuing state.
fn starts_document(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 5
        && document_kind(b[0])
        && (b[1].is_ascii_uppercase() || b[1] == b'<')
        && line.get(2..5).is_some_and(country::is_known)
}

/// Fits the first line of a group: as [`fit`], unless the line is longer than its width and begins as a
/// document only once the extra character or two before it are dropped (a mark or the page's edge left of the
/// band, read as `37` or `5U`), its own issuing state being no known code. Measured on a phone capture of a
/// visa: every pass read `37V<ITADUPONT<<…`, the trailing fillers were dropped instead, and the shifted line
/// parsed as a passport with the surname `ITADUPONT`. A line whose issuing state is known keeps its place, so a
/// misread document code (`1<ITA…`) is not trimmed into another line; so does a line of its width, read whole
/// (`W<CARERIKSSON…`, `CAN` misread, would otherwise begin a card of Eritrea at `ARERI…`).
fn fit_first(line: &str, width: usize) -> Option<Fitted> {
    let own = line.get(2..5).is_some_and(country::is_known);
    // Only what the line has beyond its width: a line of the right length was read whole.
    let extra = line.len().saturating_sub(width).min(SLACK);
    let trimmed = (1..=extra).filter(|_| !own).find_map(|skip| {
        let rest = line.get(skip..)?;
        let text = fit(rest, width).filter(|_| starts_document(rest))?;
        Some(Fitted { skip, text })
    });
    trimmed.or_else(|| fit(line, width).map(|text| Fitted { skip: 0, text }))
}

/// Whether a line fitted to its width reads as a format's dates line: a birth date and an expiry date of six digits,
/// each followed by its check digit, both holding (TD1's second line starts with them; the second line of the
/// other formats has them after the number and nationality), a letter read for its digit look-alike (`B` for `8`)
/// counting as that digit. MRZ evidence a line without fillers can give (a TD2's or visa's second line often has
/// none): by chance both hold once in a hundred digit strings, and prose or noise seldom reads as fourteen digits
/// or their look-alikes in those places. Evidence only: what the line says is read and settled later.
fn dates_line(line: &str) -> bool {
    let at = match line.len() {
        30 => [0, 8],
        36 | 44 => [13, 21],
        _ => return false,
    };
    let b: Vec<u8> = line.bytes().map(|c| to_digit(c).unwrap_or(c)).collect();
    at.iter().all(|&i| {
        b.get(i..i + 7)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit) && check::holds(&d[..6], d[6]))
    })
}

/// MRZ-looking: mostly the MRZ alphabet, and any 30+ character line of it counts.
fn clean(line: &str) -> String {
    line.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The MRZ lines in `text`, fitted to their format's width, with the index of their first line.
pub fn mrz_lines(text: &str) -> Option<(usize, Vec<Fitted>)> {
    let lines: Vec<String> = text.lines().map(clean).collect();
    let mut best: Option<(usize, Vec<Fitted>)> = None;
    for (count, width) in SHAPES {
        for start in 0..lines.len().saturating_sub(count - 1) {
            let group: Option<Vec<Fitted>> = lines[start..start + count]
                .iter()
                .enumerate()
                .map(|(i, l)| match i {
                    0 => fit_first(l, width),
                    _ => fit(l, width).map(|text| Fitted { skip: 0, text }),
                })
                .collect();
            let Some(group) = group else { continue };
            // A real MRZ has fillers as read (the padding added by `fit` is no evidence), or a dates line whose
            // check digits hold; prose that happens to fit the widths has neither. Measured on phone captures,
            // visas and TD2 cards whose name line read as garbage had only their second line, without fillers,
            // to show for it: the band was taken for something else and the page answered `mrz_not_found`.
            let fillers = lines[start..start + count].iter().any(|l| l.contains("<<"));
            if !fillers && !group.iter().any(|l| dates_line(&l.text)) {
                continue;
            }
            let lower = best
                .as_ref()
                .is_none_or(|(s, b)| start + count > s + b.len());
            if lower {
                best = Some((start, group));
            }
        }
    }
    best
}

/// Whether any line of `text` is shaped like one MRZ line (about a format's width, with a run of fillers), even
/// if its group does not fit: evidence that the page is the right way up and only the reading is bad.
pub fn has_mrz_like_line(text: &str) -> bool {
    text.lines().map(clean).any(|l| {
        SHAPES.iter().any(|(_, w)| {
            let shaped = l.len() + SLACK >= *w && l.len() <= w + 2 * SLACK;
            shaped && (l.contains("<<") || fit(&l, *w).is_some_and(|f| dates_line(&f)))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_lowest_fitting_group() {
        let text = "PASSPORT\nSurname\nOBRIEN\n\
            P<SWEOBRIEN<<ERIKA<PEDRO<<<<<<<<<<<<<<<<<<<<\n\
            P127744943ESP9608074F3301029Q359XO733<<<<<38\n";
        let (at, lines) = mrz_lines(text).unwrap_or_default();
        assert_eq!(at, 3);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].text.len(), 44);
    }

    #[test]
    fn fits_lines_a_filler_or_two_off() {
        let text = "I<UTOD231458907<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<<<\n";
        let (_, lines) = mrz_lines(text).unwrap_or_default();
        assert_eq!(
            lines.iter().map(|l| l.text.len()).collect::<Vec<_>>(),
            [30, 30, 30]
        );
        assert_eq!(lines[0].text, "I<UTOD231458907<<<<<<<<<<<<<<<");
    }

    #[test]
    fn a_misread_line_still_shows_the_page_is_upright() {
        // A TD1 line with its fillers misread, as Tesseract gave it on a generated card: no group fits.
        let text = "IOITANWU57Z72987588<<<<S9<<<S8<<<<8\n4207140F3307102ITA<<<<<<<<<<<8\nLUCA\n";
        assert!(mrz_lines(text).is_none());
        assert!(has_mrz_like_line(text));
        assert!(!has_mrz_like_line("IDENTITY CARD\nV7U577375\n"));
    }

    #[test]
    fn a_dates_line_is_evidence_without_fillers() {
        // A visa's name line read as garbage (no fillers), its second line whole and without fillers: the
        // dates' check digits hold, so this is an MRZ to read further, not something else.
        let text = "EOEVRORRIENE<NALEDSERRSSSERSS09<S89\nC6H342845OBRA5001046M3607097AK67G88\n";
        let (_, lines) = mrz_lines(text).unwrap_or_default();
        assert_eq!(lines.len(), 2);
        assert!(has_mrz_like_line("C6H342845OBRA5001046M3607097AK67G88\n"));
        assert!(has_mrz_like_line("7408122F1204159UTO<<<<<<<<<<<6\n"));
        // A visa's second line with an 8 read as B in the birth date and the sex read as a filler.
        assert!(has_mrz_like_line("Y926BN790ZCAN050B207<3107195U9BW0502\n"));
        // One date's check digit broken: no evidence.
        assert!(!has_mrz_like_line("C6H342845OBRA5001047M3607097AK67G88\n"));
        assert!(
            mrz_lines("EOEVRORRIENE<NALEDSERRSSSERSS09<S89\nC6H342845OBRA5001047M3607097AK67G88\n")
                .is_none()
        );
    }

    #[test]
    fn a_stray_prefix_before_the_first_line_is_dropped_but_a_misread_code_keeps_its_place() {
        // A visa's first line read with `37` before it, as every pass read a phone capture: the fillers at its
        // end would be dropped instead, shifting every field.
        let visa = "37V<ITADUPONT<<MARIE<<<<<<<<<<<<<<<<<<<<<<<<<<\n\
            L8988901C4XXX4009078F9612109<<<<<<<<<<<<<<<<\n";
        let (_, lines) = mrz_lines(visa).unwrap_or_default();
        assert_eq!(lines[0].skip, 2);
        assert_eq!(
            lines[0].text,
            "V<ITADUPONT<<MARIE<<<<<<<<<<<<<<<<<<<<<<<<<<"
        );
        assert_eq!(lines[1].skip, 0);
        // A document code misread as a digit, its issuing state known: the line stays where it is.
        let card = "1<ITAD231458907<<<<<<<<<<<<<<<<\n7408122F1204159ITA<<<<<<<<<<<6\nROSSI<<LUCA<<<<<<<<<<<<<<<<<<<\n";
        let (_, lines) = mrz_lines(card).unwrap_or_default();
        assert_eq!(lines[0].skip, 0);
        assert_eq!(lines[0].text, "1<ITAD231458907<<<<<<<<<<<<<<<");
        // A line of its width read whole, its issuing state misread (`CAR` for `CAN`): never trimmed, though
        // `ARERI…` would begin as a document of Eritrea.
        let visa = "W<CARERIKSSON<<JEAN<<<<<<<<<<<<<<<<<\nRJ87986RF9CAN7703067<3012280<<<<<<<<\n";
        let (_, lines) = mrz_lines(visa).unwrap_or_default();
        assert_eq!(lines[0].skip, 0);
    }

    #[test]
    fn prose_is_not_an_mrz() {
        assert!(mrz_lines("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG\nAND THEN SOME MORE WORDS TO FILL UP A LINE\n").is_none());
        assert!(mrz_lines("").is_none());
    }
}
