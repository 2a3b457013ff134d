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

/// Against Tesseract's 0, OCR-B's O counts `ROUND_DOUBT_WEIGHT × (1 − Tesseract's confidence)`, between
/// [`UNWEIGHED`] and [`DISAGREEMENT`]: OCR-B tells the two apart by width alone, which a soft capture blurs, while
/// Tesseract sees the shape. Measured on 1,119 generated phone pages, where both read a printed O or 0 as one of
/// the two, Tesseract at 0.99 or more was wrong 3 times in 4,066 (OCR-B disagreed with it 191 times), at
/// 0.95–0.99 in 3.5 %, and weakly below; fitted to those, the weight is about twice Tesseract's doubt (log-loss
/// over 7,076 characters −455 → −158). Tesseract's O is not trusted so: between letters it reads a printed 0 as O
/// at 0.97–0.99 (its language habit), and traced on phone pages every flip that caught a forgery was its 0 and
/// every genuine page the weight held for review was its O; against its O, OCR-B's 0 counts as any disagreement.
const ROUND_DOUBT_WEIGHT: f32 = 2.0;

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

    /// OCR-B's own reading, for what it misread (`mrz::parse_read`'s witnesses; a line it could not measure left
    /// empty). Where Tesseract's sure O or 0 outweighs OCR-B's other round glyph in the combination, OCR-B's O in
    /// a date is still this page's evidence that OCR-B's O means little here, and OCR-B's agreement with a number's
    /// O no confirmation. Tesseract's own misreads are not witnesses: the combination already discounts them, and
    /// measured on 1,000 forged phone pages, its sure B for 8 and 5 for S in fields OCR-B read right held four
    /// forgeries for review.
    pub fn witnesses(&self) -> Vec<Pass> {
        self.ocrb
            .iter()
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| l.clone().unwrap_or_default())
                    .collect()
            })
            .collect()
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
                    Some(o) if o.len() == t.len() => {
                        o.iter().zip(&t).map(|(og, tg)| combine(og, tg)).collect()
                    }
                    _ => t,
                })
                .collect(),
        )
    }
}

/// OCR-B's probabilities at one position, each multiplied by 1 where Tesseract read the same character and by
/// [`DISAGREEMENT`] where it did not (less for an O against Tesseract's 0, see [`ROUND_DOUBT_WEIGHT`]),
/// renormalised.
fn combine(ocrb: &Glyph, tesseract: &Glyph) -> Glyph {
    let read = tesseract.ch;
    let mut votes: Vec<(u8, f32)> = std::iter::once((ocrb.ch, ocrb.conf))
        .chain(ocrb.alternatives.iter().copied())
        .collect();
    if votes.iter().all(|(c, _)| *c != read) {
        votes.push((read, UNWEIGHED));
    }
    // Only Tesseract's 0 is weighed by its confidence (see ROUND_DOUBT_WEIGHT): its O is a habit, not a sighting.
    let round = (read == b'0').then_some(b'O');
    let round_weight = (ROUND_DOUBT_WEIGHT * (1.0 - tesseract.conf)).clamp(UNWEIGHED, DISAGREEMENT);
    for (c, p) in &mut votes {
        if Some(*c) == round {
            *p *= round_weight;
        } else if *c != read {
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
        let agreed = combine(&ocrb, &glyph(b'H', 0.9, vec![]));
        assert_eq!(agreed.ch, b'H');
        assert!(agreed.conf > 0.9, "{agreed:?}");
        // Tesseract's M against OCR-B's unsure H: doubtful, but still H.
        let disputed = combine(&ocrb, &glyph(b'M', 0.9, vec![]));
        assert_eq!(disputed.ch, b'H');
        assert!(disputed.conf < 0.6, "{disputed:?}");
        // Against a sure OCR-B, a character it did not weigh at all changes nothing.
        let sure = combine(&glyph(b'Q', 0.99, vec![]), &glyph(b'G', 0.9, vec![]));
        assert_eq!(sure.ch, b'Q');
        assert!(sure.conf > 0.98, "{sure:?}");
    }

    #[test]
    fn tesseracts_sure_0_outweighs_ocr_bs_width_and_its_unsure_0_or_its_o_does_not() {
        // OCR-B's O by width against Tesseract's 0 at 0.98: the 0 is read, the O kept as a weak alternative.
        let ocrb = glyph(b'O', 0.55, vec![(b'0', 0.45)]);
        let sure = combine(&ocrb, &glyph(b'0', 0.98, vec![(b'O', 0.02)]));
        assert_eq!(sure.ch, b'0', "{sure:?}");
        assert!(sure.conf > 0.9, "{sure:?}");
        // Tesseract unsure of its 0: OCR-B's O still counts as any disagreement does, and the 0 is doubtful.
        let unsure = combine(&ocrb, &glyph(b'0', 0.6, vec![(b'O', 0.4)]));
        assert!(unsure.conf < 0.8, "{unsure:?}");
        // Tesseract's sure O (a 0 between letters, read as a word) is a disagreement like any other: OCR-B's
        // sure 0 stays.
        let letter = combine(
            &glyph(b'0', 0.95, vec![(b'O', 0.05)]),
            &glyph(b'O', 0.98, vec![(b'0', 0.02)]),
        );
        assert_eq!(letter.ch, b'0', "{letter:?}");
        // Only the O against Tesseract's 0 is weighed so: any other disagreement counts as before.
        let other = combine(
            &glyph(b'8', 0.55, vec![(b'B', 0.45)]),
            &glyph(b'B', 0.99, vec![]),
        );
        assert!(other.conf < 0.8, "{other:?}");
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
