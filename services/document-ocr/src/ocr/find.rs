//! Picking MRZ lines out of OCR text: consecutive lines whose lengths fit one format, the lowest such group on
//! the page winning (the MRZ is the bottom of the document).

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

/// MRZ-looking: mostly the MRZ alphabet, and any 30+ character line of it counts.
fn clean(line: &str) -> String {
    line.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The MRZ lines in `text`, fitted to their format's width, with the index of their first line.
pub fn mrz_lines(text: &str) -> Option<(usize, Vec<String>)> {
    let lines: Vec<String> = text.lines().map(clean).collect();
    let mut best: Option<(usize, Vec<String>)> = None;
    for (count, width) in SHAPES {
        for start in 0..lines.len().saturating_sub(count - 1) {
            let group: Option<Vec<String>> = lines[start..start + count]
                .iter()
                .map(|l| fit(l, width))
                .collect();
            let Some(group) = group else { continue };
            // A real MRZ has fillers as read (the padding added by `fit` is no evidence); prose that happens
            // to fit the widths does not.
            if !lines[start..start + count].iter().any(|l| l.contains("<<")) {
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
        SHAPES
            .iter()
            .any(|(_, w)| l.len() + SLACK >= *w && l.len() <= w + 2 * SLACK)
            && l.contains("<<")
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
        assert_eq!(lines[1].len(), 44);
    }

    #[test]
    fn fits_lines_a_filler_or_two_off() {
        let text = "I<UTOD231458907<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<<<\n";
        let (_, lines) = mrz_lines(text).unwrap_or_default();
        assert_eq!(
            lines.iter().map(String::len).collect::<Vec<_>>(),
            [30, 30, 30]
        );
        assert_eq!(lines[0], "I<UTOD231458907<<<<<<<<<<<<<<<");
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
    fn prose_is_not_an_mrz() {
        assert!(mrz_lines("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG\nAND THEN SOME MORE WORDS TO FILL UP A LINE\n").is_none());
        assert!(mrz_lines("").is_none());
    }
}
