//! Combining readings of one MRZ band: Tesseract's passes averaged glyph by glyph, and OCR-B's reading taken
//! with Tesseract's as evidence.

use crate::mrz::Glyph;

/// One OCR pass's MRZ lines, glyph by glyph, fitted to their format's width.
pub type Pass = Vec<Vec<Glyph>>;

/// Several passes over the same MRZ combined: at each position the confidences each pass gave each character,
/// averaged. Passes whose shape differs from the first's are left out.
fn merge(passes: &[Pass]) -> Option<Pass> {
    let first = passes.first()?;
    let shape = |p: &Pass| p.iter().map(Vec::len).collect::<Vec<_>>();
    let same: Vec<&Pass> = passes.iter().filter(|p| shape(p) == shape(first)).collect();
    let n = same.len() as f32;
    Some(
        first
            .iter()
            .enumerate()
            .map(|(l, line)| {
                (0..line.len())
                    .map(|c| {
                        let mut votes: Vec<(u8, f32)> = Vec::new();
                        for p in &same {
                            let g = &p[l][c];
                            for (ch, conf) in std::iter::once((g.ch, g.conf))
                                .chain(g.alternatives.iter().copied())
                            {
                                let vote = conf / n;
                                match votes.iter_mut().find(|v| v.0 == ch) {
                                    Some(v) => v.1 += vote,
                                    None => votes.push((ch, vote)),
                                }
                            }
                        }
                        votes.sort_by(|a, b| b.1.total_cmp(&a.1));
                        let (ch, conf) = votes[0];
                        Glyph {
                            ch,
                            conf: conf.min(1.0),
                            alternatives: votes[1..].to_vec(),
                        }
                    })
                    .collect()
            })
            .collect(),
    )
}

/// The mean glyph confidence of a reading's weakest line: the name line has no check digit to catch what OCR
/// got wrong in it.
pub fn weakest_line(pass: &Pass) -> f64 {
    pass.iter()
        .map(|l| f64::from(l.iter().map(|g| g.conf).sum::<f32>()) / l.len().max(1) as f64)
        .fold(1.0, f64::min)
}

/// How much a character OCR-B weighed counts when Tesseract read another one there, against one both read
/// (1). Measured on generated phone captures, the two disagree on about 4 % of characters and OCR-B is right in
/// over 95 % of those, while Tesseract gives its errors a confidence over 0.9 as often as its right readings;
/// its agreement is evidence, its disagreement weak evidence, so a character OCR-B is not quite sure of becomes
/// doubtful when Tesseract read it otherwise.
const DISAGREEMENT: f32 = 0.3;

/// The least probability a character Tesseract read counts with where OCR-B did not weigh it at all.
const UNWEIGHED: f32 = 0.005;

/// A band's readings so far: Tesseract's passes and the OCR-B reading (per line: none where its geometry
/// could not be measured).
#[derive(Default)]
pub struct Passes {
    /// Tesseract's passes, in order.
    pub tesseract: Vec<Pass>,
    /// OCR-B's reading, once made.
    pub ocrb: Option<Vec<Option<Vec<Glyph>>>>,
}

impl Passes {
    /// Readings made so far.
    pub fn count(&self) -> usize {
        self.tesseract.len() + usize::from(self.ocrb.is_some())
    }

    /// Every reading combined: Tesseract's passes averaged, then each line OCR-B read taken with Tesseract's
    /// reading as evidence (`combine`).
    pub fn merged(&self) -> Option<Pass> {
        let tesseract = merge(&self.tesseract)?;
        let Some(ocrb) = &self.ocrb else {
            return Some(tesseract);
        };
        Some(
            tesseract
                .into_iter()
                .zip(ocrb)
                .map(|(t, o)| match o {
                    Some(o) if o.len() == t.len() => o
                        .iter()
                        .zip(&t)
                        .map(|(og, tg)| combine(og, tg.ch))
                        .collect(),
                    _ => t,
                })
                .collect(),
        )
    }
}

/// OCR-B's probabilities at one position, each multiplied by 1 where Tesseract read the same character and by
/// [`DISAGREEMENT`] where it did not, renormalised.
fn combine(ocrb: &Glyph, tesseract: u8) -> Glyph {
    let mut votes: Vec<(u8, f32)> = std::iter::once((ocrb.ch, ocrb.conf))
        .chain(ocrb.alternatives.iter().copied())
        .collect();
    if votes.iter().all(|(c, _)| *c != tesseract) {
        votes.push((tesseract, UNWEIGHED));
    }
    for (c, p) in &mut votes {
        if *c != tesseract {
            *p *= DISAGREEMENT;
        }
    }
    let total: f32 = votes.iter().map(|(_, p)| p).sum();
    for (_, p) in &mut votes {
        *p /= total.max(f32::MIN_POSITIVE);
    }
    votes.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (ch, conf) = votes[0];
    Glyph {
        ch,
        conf,
        alternatives: votes[1..].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glyph(ch: u8, conf: f32, alternatives: Vec<(u8, f32)>) -> Glyph {
        Glyph {
            ch,
            conf,
            alternatives,
        }
    }

    #[test]
    fn passes_are_merged_by_averaging_each_characters_confidence() {
        let a = vec![vec![
            glyph(b'O', 0.6, vec![(b'0', 0.4)]),
            glyph(b'A', 0.9, vec![]),
        ]];
        let b = vec![vec![
            glyph(b'0', 0.9, vec![(b'O', 0.1)]),
            glyph(b'A', 0.95, vec![]),
        ]];
        let m = merge(&[a, b]).unwrap_or_default();
        assert_eq!(m[0][0].ch, b'0');
        assert!((m[0][0].conf - 0.65).abs() < 1e-6);
        assert_eq!(m[0][0].alternatives.len(), 1);
        assert_eq!(m[0][0].alternatives[0].0, b'O');
        assert!((m[0][0].alternatives[0].1 - 0.35).abs() < 1e-6);
        assert_eq!(m[0][1].ch, b'A');
    }

    #[test]
    fn tesseracts_agreement_raises_ocr_b_and_its_disagreement_lowers_it() {
        let ocrb = glyph(b'H', 0.8, vec![(b'M', 0.2)]);
        let agreed = combine(&ocrb, b'H');
        assert_eq!(agreed.ch, b'H');
        assert!(agreed.conf > 0.9, "{agreed:?}");
        // Tesseract's M against OCR-B's unsure H: doubtful, but still H.
        let disputed = combine(&ocrb, b'M');
        assert_eq!(disputed.ch, b'H');
        assert!(disputed.conf < 0.6, "{disputed:?}");
        // Against a sure OCR-B, a character it did not weigh at all changes nothing.
        let sure = combine(&glyph(b'Q', 0.99, vec![]), b'G');
        assert_eq!(sure.ch, b'Q');
        assert!(sure.conf > 0.98, "{sure:?}");
    }

    #[test]
    fn a_line_ocr_b_could_not_measure_keeps_tesseracts_reading() {
        let t = vec![
            vec![glyph(b'A', 0.9, vec![])],
            vec![glyph(b'B', 0.9, vec![])],
        ];
        let passes = Passes {
            tesseract: vec![t],
            ocrb: Some(vec![None, Some(vec![glyph(b'8', 0.95, vec![])])]),
        };
        let m = passes.merged().unwrap_or_default();
        assert_eq!((m[0][0].ch, m[1][0].ch), (b'A', b'8'));
    }
}
