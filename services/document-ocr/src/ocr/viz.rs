//! Evidence for the names from the visual inspection zone (VIZ), the printed text above the MRZ.
//!
//! No check digit covers the MRZ's names, so a confidently misread letter (`LINDGVIST` for `LINDQVIST`) would
//! pass unnoticed. The VIZ prints the same names in a larger font: read with Tesseract's general model, each
//! name of the MRZ is looked for among its words, transliterated as ICAO 9303 part 3 allows (`Ü` is `UE` or
//! `U`, `ß` is `SS`, …). A name found as printed confirms the MRZ's reading; a word one or two letters away
//! from it and no exact match means one of the two readings is wrong, so the field is held for review; a name
//! not printed in the VIZ at all (an ID card's back, a visa with a different layout) is no evidence either way.
//! The document number is looked up the same way: two misreads can cancel out in its check digit.

use image::GrayImage;

use super::{
    engine::{OcrEngine, OcrError},
    prepare::straighten,
};

/// What the VIZ says about one name field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Every part of the name is printed as the MRZ has it.
    Confirmed,
    /// A part of the name is printed close to, but not as, the MRZ has it, in a word read confidently.
    Mismatch,

    /// The VIZ does not show the name (or could not be read).
    Silent,
}

/// Width the VIZ is read at: its field values are then about 30 px high, what `eng` reads best.
const VIZ_WIDTH: u32 = 1000;

/// The VIZ of an upright page: from the top to `bottom_percent` % of its height (above the MRZ).
pub fn region(page: &GrayImage, bottom_percent: u32) -> GrayImage {
    let (w, h) = page.dimensions();
    let bottom = (h * bottom_percent.min(100) / 100).max(1);
    let crop = image::imageops::crop_imm(page, 0, 0, w, bottom).to_image();
    straighten(&crop, 0.0, VIZ_WIDTH)
}

/// A VIZ word near an MRZ name counts against it only when Tesseract read the word at least this confidently:
/// a blurred VIZ word one letter off is more often a VIZ misread than an MRZ one.
const SURE_WORD: f32 = 0.85;

/// A word of the VIZ in one transliteration, and whether it was read confidently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Upper-case A–Z.
    pub text: String,
    /// Read at [`SURE_WORD`] or above.
    pub sure: bool,
}

/// The words of the VIZ, upper-cased, in every transliteration ICAO allows, letters only.
pub fn words(engine: &mut OcrEngine, viz: &GrayImage) -> Result<Vec<Word>, OcrError> {
    let mut out = Vec::new();
    for line in engine.read(viz)? {
        out.extend(joined(&line.words));
        for (word, conf) in &line.words {
            let sure = *conf >= SURE_WORD;
            out.extend(
                transliterations(word)
                    .into_iter()
                    .map(|text| Word { text, sure }),
            );
            // Document numbers mix letters and digits: kept as printed too.
            let alnum: String = word
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_uppercase())
                .collect();
            if alnum.bytes().any(|b| b.is_ascii_digit()) {
                out.push(Word { text: alnum, sure });
            }
        }
    }
    Ok(out)
}

/// Two or three neighbouring words of a line written as one: on a soft photo Tesseract splits a monospaced
/// name where its letters stand apart (`KOWAL SKA`). Never "sure": they may only confirm a name spelt exactly
/// so, never count against one.
fn joined(words: &[(String, f32)]) -> Vec<Word> {
    let mut out = Vec::new();
    for start in 0..words.len() {
        for n in 2..=3 {
            let Some(run) = words.get(start..start + n) else {
                break;
            };
            let text: String = run.iter().map(|(w, _)| w.as_str()).collect();
            out.extend(
                transliterations(&text)
                    .into_iter()
                    .map(|text| Word { text, sure: false }),
            );
        }
    }
    out
}

/// `word` upper-cased and stripped to A–Z, with national letters written out (`Ü` → `UE`) and plain (`Ü` →
/// `U`): both are ICAO transliterations.
fn transliterations(word: &str) -> Vec<String> {
    let (mut long, mut short) = (String::new(), String::new());
    for c in word.chars().flat_map(char::to_uppercase) {
        let (l, s) = match c {
            'A'..='Z' => {
                long.push(c);
                short.push(c);
                continue;
            }
            'Ä' | 'Æ' => ("AE", "A"),
            'Ö' | 'Ø' | 'Œ' => ("OE", "O"),
            'Ü' => ("UE", "U"),
            'Å' => ("AA", "A"),
            'ß' => ("SS", "SS"),
            'À' | 'Á' | 'Â' | 'Ã' => ("A", "A"),
            'Ç' => ("C", "C"),
            'È' | 'É' | 'Ê' | 'Ë' => ("E", "E"),
            'Ì' | 'Í' | 'Î' | 'Ï' => ("I", "I"),
            'Ñ' => ("N", "N"),
            'Ò' | 'Ó' | 'Ô' | 'Õ' => ("O", "O"),
            'Ù' | 'Ú' | 'Û' => ("U", "U"),
            'Ý' => ("Y", "Y"),
            _ => continue,
        };
        long.push_str(l);
        short.push_str(s);
    }
    let mut out = vec![long];
    if short != out[0] {
        out.push(short);
    }
    out.retain(|w| w.len() >= 2);
    out
}

/// Levenshtein distance, stopping early past `limit`.
fn distance(a: &str, b: &str, limit: usize) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            row[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(row[j] + 1);
        }
        prev = row;
    }
    prev[b.len()]
}

/// What the VIZ words say about one name as the MRZ reads it (parts separated by spaces).
///
/// A name with a part of one character (an initial, or a stray mark read as a letter) is never confirmed: a
/// single letter is too short to look up, and confirming the rest would lift the doubt over it too.
pub fn evidence(name: &str, words: &[Word]) -> Evidence {
    let parts: Vec<&str> = name.split_whitespace().filter(|p| p.len() >= 2).collect();
    let initials = name.split_whitespace().any(|p| p.len() < 2);
    if parts.is_empty() {
        return Evidence::Silent;
    }
    let mut confirmed = 0;
    for part in &parts {
        if words.iter().any(|w| w.text == *part) {
            confirmed += 1;
            continue;
        }
        // Only names long enough that two letters off is still recognisably the same name.
        let limit = if part.len() >= 6 { 2 } else { 1 };
        if part.len() >= 4 {
            let near: Vec<&Word> = words
                .iter()
                .filter(|w| distance(&w.text, part, limit) <= limit)
                .collect();
            // A near word the VIZ itself read with doubt is more often a VIZ misread (measured: half of all
            // near misses on phone captures): no evidence either way.
            if near.iter().any(|w| w.sure) {
                return Evidence::Mismatch;
            }
        }
    }
    if confirmed == parts.len() && !initials {
        Evidence::Confirmed
    } else {
        Evidence::Silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viz(text: &str) -> Vec<Word> {
        text.split_whitespace()
            .flat_map(transliterations)
            .map(|text| Word { text, sure: true })
            .collect()
    }

    #[test]
    fn a_name_printed_as_read_is_confirmed_and_one_letter_off_is_a_mismatch() {
        let words = viz("Surname / Nom LINDQVIST Given names / Prenoms IOANA MARIA");
        assert_eq!(evidence("LINDQVIST", &words), Evidence::Confirmed);
        assert_eq!(evidence("IOANA MARIA", &words), Evidence::Confirmed);
        assert_eq!(evidence("LINDGVIST", &words), Evidence::Mismatch);
        assert_eq!(evidence("IDANA MARIA", &words), Evidence::Mismatch);
        assert_eq!(evidence("OKAFOR", &words), Evidence::Silent);
        assert_eq!(evidence("", &words), Evidence::Silent);
        // A one-letter part is too short to look up: the name is not confirmed, nor its doubt lifted.
        assert_eq!(evidence("IOANA S", &words), Evidence::Silent);
        assert_eq!(evidence("IDANA S", &words), Evidence::Mismatch);
        // A near miss the VIZ itself read with doubt is no evidence.
        let unsure = vec![Word {
            text: "LINDOVIST".into(),
            sure: false,
        }];
        assert_eq!(evidence("LINDQVIST", &unsure), Evidence::Silent);
    }

    #[test]
    fn a_name_split_in_two_by_the_ocr_is_confirmed_but_never_contradicted_by_its_joins() {
        let line = |ws: &[&str]| -> Vec<(String, f32)> {
            ws.iter().map(|w| ((*w).to_owned(), 0.5)).collect()
        };
        let words = joined(&line(&["KOWAL", "SKA", "ANNA"]));
        assert_eq!(evidence("KOWALSKA", &words), Evidence::Confirmed);
        // `SKAANNA` is one letter from `SKANNA`, but a join is no evidence against a name.
        assert_eq!(evidence("SKANNA", &words), Evidence::Silent);
        assert!(joined(&line(&["ANNA"])).is_empty());
    }

    #[test]
    fn national_letters_match_either_icao_transliteration() {
        let words = viz("Müller Ørsted");
        assert_eq!(evidence("MUELLER", &words), Evidence::Confirmed);
        assert_eq!(evidence("MULLER", &words), Evidence::Confirmed);
        assert_eq!(evidence("OERSTED", &words), Evidence::Confirmed);
    }

    #[test]
    fn edit_distance_counts_changes() {
        assert_eq!(distance("LINDQVIST", "LINDGVIST", 2), 1);
        assert_eq!(distance("ANNA", "ANNA", 1), 0);
        assert_eq!(distance("ANNA", "HANNAH", 1), 2);
    }
}
