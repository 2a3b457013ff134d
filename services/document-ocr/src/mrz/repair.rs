//! Settling what each MRZ character is, by ICAO's own rules, without inventing any.
//!
//! Every position has a character class (digits in dates and check digits, letters in names and codes, either in
//! document numbers). A character is **doubtful** when Tesseract's confidence in it is low, when Tesseract itself
//! weighed another character there, when it is impossible for its class (a letter in a date), or when this page
//! was seen to read it in place of its look-alike (see [`confusions`]). Only a character its field cannot hold
//! ever changes: to its look-alike in the field's class, or to what a check digit confirms in its place. A
//! character the field allows is never exchanged for another it allows, so a forged number or date (one printed
//! character changed, the check digit left) reads as printed and fails, or, where the image leaves it in doubt,
//! is held for review as read; no returned value is one the page does not show.
//!
//! For each field with a check digit, every combination of its doubtful characters' options is tried; the most
//! likely one that satisfies the check digit (and for dates, the calendar) confirms the reading when it carries
//! nearly all the probability of the combinations that hold; otherwise the field stays as read, doubtful.
//! Country codes are confirmed by the list of codes, never changed to fit it. What stays doubtful afterwards is
//! reported, so the verdict can tell "cannot read" from "invalid".

use std::collections::BTreeMap;

use super::{
    Checked, Correction, Glyph, check, country,
    layout::{Layout, MrzFormat, Span},
};

/// How a repair by the field's type is reported (`Correction::confirmed_by`).
pub(super) const BY_FIELD_TYPE: &str = "field type";

/// Below this confidence a character is doubtful.
pub const DOUBTFUL_BELOW: f32 = 0.80;

/// An alternative Tesseract gives at least this confidence makes the character doubtful.
pub const ALTERNATIVE_AT: f32 = 0.10;

/// Alternatives weaker than this are not considered at all.
const ALTERNATIVE_FLOOR: f32 = 0.05;

/// Names have no check digit: their characters are doubtful below this confidence.
pub const NAME_DOUBTFUL_BELOW: f32 = 0.90;

/// An allowed character weighed at least this much is read in place of an impossible one (see
/// `Settler::within_class`).
const WITHIN_CLASS_AT: f32 = 0.15;

/// Below this confidence a character's look-alike in its class is also an option, even if Tesseract did not
/// weigh it.
const LOOK_ALIKE_BELOW: f32 = 0.5;

/// A check-digit field with more doubtful characters than this is not searched (its combinations would make a
/// holding check digit likely by chance): it stays as read, and doubtful. Document numbers and optional data
/// are searched only to confirm the reading, never to change it.
const MAX_DOUBTFUL: usize = 4;

/// The most likely holding combination is taken only when it carries this share of the probability of all the
/// combinations that hold. Between two readings that both hold, the check digit is no evidence: the choice rests
/// on the recogniser alone, so it must meet the standard of a field with no check digit ([`NAME_DOUBTFUL_BELOW`]).
/// Measured on phone captures with a pairwise margin of 4 (a share of 0.8): `P77O392O7` for the printed
/// `P77039207`, two O/0 at weights 7 and 3 read 0.75 and 0.69, passed as a confirmed number.
const CONFIRM_SHARE: f32 = NAME_DOUBTFUL_BELOW;

/// The character drawn as the same round shape: O for 0 and 0 for O (OCR-B tells them apart by width alone).
pub(crate) fn round_partner(c: u8) -> Option<u8> {
    match c {
        b'O' => Some(b'0'),
        b'0' => Some(b'O'),
        _ => None,
    }
}

/// Whether `c` may begin a document code: ICAO 9303 allows only `A`, `C`, `I` (ID cards), `P` (passports) and
/// `V` (visas).
pub(crate) fn document_kind(c: u8) -> bool {
    matches!(c, b'A' | b'C' | b'I' | b'P' | b'V')
}

/// Letters OCR reads in place of digits.
pub(crate) fn to_digit(c: u8) -> Option<u8> {
    Some(match c {
        b'O' | b'Q' | b'D' | b'U' => b'0',
        b'I' | b'L' => b'1',
        b'Z' => b'2',
        b'S' => b'5',
        b'G' => b'6',
        b'T' => b'7',
        b'B' => b'8',
        _ => return None,
    })
}

/// Digits OCR reads in place of letters.
fn to_letter(c: u8) -> Option<u8> {
    Some(match c {
        b'0' => b'O',
        b'1' => b'I',
        b'2' => b'Z',
        b'5' => b'S',
        b'6' => b'G',
        b'8' => b'B',
        _ => return None,
    })
}

/// What a position may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Digits (dates).
    Digits,
    /// A check digit: a digit, or `<` where ICAO allows an empty field's digit to be a filler.
    CheckDigit,
    /// Letters and fillers (names, codes, countries).
    Letters,
    /// Letters, digits and fillers (document numbers, optional data).
    Any,
    /// `M`, `F`, `<` or `X`.
    Sex,
    /// The first character of a document code: ICAO 9303 allows only `A`, `C`, `I` (ID cards), `P`
    /// (passports) and `V` (visas).
    DocumentKind,
}

impl Class {
    fn allows(self, c: u8) -> bool {
        match self {
            Self::Digits => c.is_ascii_digit(),
            Self::CheckDigit => c.is_ascii_digit() || c == b'<',
            Self::Letters => c.is_ascii_uppercase() || c == b'<',
            Self::Any => c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'<',
            Self::Sex => matches!(c, b'M' | b'F' | b'<' | b'X'),
            Self::DocumentKind => document_kind(c),
        }
    }

    fn look_alike(self, c: u8) -> Option<u8> {
        match self {
            Self::Digits | Self::CheckDigit => to_digit(c),
            Self::Letters => to_letter(c),
            _ => None,
        }
    }
}

/// A position: (line, column).
type Pos = (usize, usize);

fn positions(span: Span) -> impl Iterator<Item = Pos> {
    (span.start..span.start + span.len).map(move |c| (span.line, c))
}

/// The MRZ being settled.
pub struct Settler<'a> {
    rows: &'a mut [Vec<u8>],
    /// What the recognisers weighed at each position (read within each field's class as it is settled).
    glyphs: Vec<Vec<Glyph>>,
    /// Positions still doubtful.
    doubt: Vec<Vec<bool>>,
    out: Vec<Correction>,
    unexplained: Vec<Checked>,
    /// Failing checks a misread could explain, each with that misread's share (see [`excuse`]).
    excuses: Vec<(Checked, f32)>,
    /// The options each position was last read with (see [`Settler::options_below`]), for the composite check.
    seen: BTreeMap<Pos, Vec<(u8, f32)>>,
    /// Each field check settled so far: its positions (the check digit last) and whether it is a date.
    checks: Vec<(Vec<Pos>, bool)>,
    /// Look-alikes this page's recognisers confused where the field's class leaves no choice (see
    /// [`confusions`]): (read, printed).
    confused: Vec<(u8, u8)>,
}

/// What settling found.
#[derive(Debug, Default)]
pub struct Settled {
    /// Every character changed.
    pub corrections: Vec<Correction>,
    /// Positions still doubtful afterwards.
    pub doubt: Vec<Vec<bool>>,
    /// Checks of letters and digits that fail although no misread explains them (see [`excuse`]): the
    /// characters are what is printed as far as OCR can tell.
    pub unexplained: Vec<Checked>,
    /// The other failing checks of letters and digits, and the composite, each with the share of the likeliest
    /// misread that would make it hold (see [`excuse`]): how well the image, rather than the document, explains
    /// the failure.
    pub excuses: Vec<(Checked, f32)>,
}

impl<'a> Settler<'a> {
    fn new(rows: &'a mut [Vec<u8>], glyphs: &[Vec<Glyph>], confused: Vec<(u8, u8)>) -> Self {
        let doubt = rows.iter().map(|r| vec![false; r.len()]).collect();
        Self {
            rows,
            glyphs: glyphs.to_vec(),
            doubt,
            out: Vec::new(),
            unexplained: Vec::new(),
            excuses: Vec::new(),
            seen: BTreeMap::new(),
            checks: Vec::new(),
            confused,
        }
    }

    fn glyph(&self, (l, c): Pos) -> Glyph {
        self.glyphs
            .get(l)
            .and_then(|g| g.get(c))
            .cloned()
            .unwrap_or_else(|| Glyph::certain(self.rows[l][c]))
    }

    /// The characters a position may be, with their likelihood; the one read first when its class allows it.
    /// Also marks the position doubtful or not.
    fn options(&mut self, at: Pos, class: Class) -> Vec<(u8, f32)> {
        self.options_below(at, class, DOUBTFUL_BELOW)
    }

    /// Reads a position within its field's class, the class being certain and the recogniser's weights not:
    /// the probability of characters the field cannot hold (a letter in a date, a digit in a name) is shared
    /// among those it can. Where the character read first is impossible there but an allowed one was weighed
    /// at [`WITHIN_CLASS_AT`] or more, the allowed one is what was read; an O or 0 the class does not allow is
    /// its partner, with the weight of both, where the recogniser weighed that partner at all. Not a repair:
    /// nothing the recogniser did not see (OCR-B's O and 0 differ by little more than width, and a name holds no
    /// 0 nor a date an O).
    fn within_class(&mut self, at: Pos, class: Class) {
        let g = self.glyph(at);
        if self.rows[at.0][at.1] != g.ch {
            return;
        }
        let mut allowed: Vec<(u8, f32)> = std::iter::once((g.ch, g.conf))
            .chain(g.alternatives.iter().copied())
            .filter(|(c, _)| class.allows(*c))
            .collect();
        // O and 0 are one shape to OCR-B, which draws them alike but for width and always weighs both: where
        // the class allows only the one weighed less, what was weighed for the shape is weighed for it.
        if !class.allows(g.ch)
            && let Some(partner) = round_partner(g.ch)
            && let Some(slot) = allowed.iter_mut().find(|(c, _)| *c == partner)
        {
            slot.1 += g.conf;
        }
        let total: f32 = allowed.iter().map(|(_, p)| p).sum();
        let Some(&(ch, p)) = allowed.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
            return;
        };
        if total <= 0.0 || (!class.allows(g.ch) && p < WITHIN_CLASS_AT) {
            return;
        }
        let alternatives = allowed
            .iter()
            .filter(|(c, _)| *c != ch)
            .map(|(c, q)| (*c, q / total))
            .collect();
        self.rows[at.0][at.1] = ch;
        if let Some(slot) = self.glyphs.get_mut(at.0).and_then(|l| l.get_mut(at.1)) {
            *slot = Glyph {
                ch,
                conf: p / total,
                alternatives,
            };
        }
    }

    fn options_below(&mut self, at: Pos, class: Class, doubtful_below: f32) -> Vec<(u8, f32)> {
        self.within_class(at, class);
        let g = self.glyph(at);
        let read = self.rows[at.0][at.1];
        let allowed = class.allows(read);
        // Where letters and digits are both allowed, a look-alike this page's recognisers were seen to read in
        // place of its partner says nothing of which of the two is printed.
        let confused_with = (class == Class::Any)
            .then(|| self.confused.iter().find(|(r, _)| *r == read).map(|p| p.1))
            .flatten();
        // Only an alternative the field allows casts doubt: a digit weighed in a name says nothing.
        let doubtful = !allowed
            || confused_with.is_some()
            || g.conf < doubtful_below
            || g.alternatives
                .iter()
                .any(|(c, p)| *p >= ALTERNATIVE_AT && *c != read && class.allows(*c));
        self.doubt[at.0][at.1] = doubtful;
        let mut opts = Vec::new();
        if allowed {
            opts.push((read, g.conf.max(0.01)));
        }
        if let Some(partner) = confused_with {
            let w = g.conf.max(0.01);
            match opts.iter_mut().find(|o| o.0 == partner) {
                Some(o) => o.1 = o.1.max(w),
                None => opts.push((partner, w)),
            }
        }
        if doubtful {
            for (c, p) in &g.alternatives {
                if *p >= ALTERNATIVE_FLOOR && class.allows(*c) && opts.iter().all(|o| o.0 != *c) {
                    opts.push((*c, *p));
                }
            }
            if (!allowed || g.conf < LOOK_ALIKE_BELOW)
                && let Some(c) = class.look_alike(read)
                && opts.iter().all(|o| o.0 != c)
            {
                opts.push((c, ((1.0 - g.conf) * 0.5).max(0.02)));
            }
        }
        if opts.is_empty() {
            opts.push((read, 0.01));
        }
        self.seen.insert(at, opts.clone());
        opts
    }

    fn set(&mut self, at: Pos, to: u8, field: &str, by: &str) {
        let from = self.rows[at.0][at.1];
        if from == to {
            return;
        }
        self.rows[at.0][at.1] = to;
        self.out.push(Correction {
            field: field.to_owned(),
            line: at.0 + 1,
            column: at.1 + 1,
            from: char::from(from),
            to: char::from(to),
            confirmed_by: by.to_owned(),
        });
    }

    /// Records how far a misread excuses a failing check: not at all makes it unexplained.
    fn excused(&mut self, kind: Checked, share: f32) {
        if share > 0.0 {
            self.excuses.push((kind, share));
        } else {
            self.unexplained.push(kind);
        }
    }

    /// Whether each of `at` is still doubtful.
    fn doubtful(&self, at: &[Pos]) -> Vec<bool> {
        at.iter().map(|(l, c)| self.doubt[*l][*c]).collect()
    }

    fn confirm(&mut self, at: &[Pos]) {
        for (l, c) in at {
            self.doubt[*l][*c] = false;
        }
    }

    /// The most likely assignment of `at` (each with its options) that `accept` takes, when it carries
    /// [`CONFIRM_SHARE`] of the probability of all that `accept` takes; `None` when there is none, it does not, or
    /// there are too many doubtful positions.
    fn search(
        &self,
        at: &[Pos],
        options: &[Vec<(u8, f32)>],
        accept: impl Fn(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let open: Vec<usize> = (0..at.len()).filter(|i| options[*i].len() > 1).collect();
        if open.len() > MAX_DOUBTFUL {
            return None;
        }
        let (mut best, mut total): (Option<(f32, Vec<u8>)>, f32) = (None, 0.0);
        each_combination(options, &open, |pick| {
            let chars: Vec<u8> = (0..at.len()).map(|i| options[i][pick[i]].0).collect();
            if accept(&chars) {
                let w: f32 = (0..at.len()).map(|i| options[i][pick[i]].1).product();
                total += w;
                if best.as_ref().is_none_or(|(bw, _)| w > *bw) {
                    best = Some((w, chars));
                }
            }
            false
        });
        let (w, chars) = best?;
        (w >= CONFIRM_SHARE * total).then_some(chars)
    }

    /// A field and its check digit: kept when the reading holds, repaired when one clearly most likely reading
    /// of its doubtful characters holds, left as read (and doubtful where it is) otherwise.
    fn checked(&mut self, data: &[Pos], digit: Pos, class: Class, kind: Checked, date: bool) {
        let field = kind.field().unwrap_or("composite");
        let mut at: Vec<Pos> = data.to_vec();
        at.push(digit);
        self.checks.push((at.clone(), date));
        let n = data.len();
        let class_at = |i: usize| if i == n { Class::CheckDigit } else { class };
        let options: Vec<Vec<(u8, f32)>> = at
            .iter()
            .enumerate()
            .map(|(i, p)| self.options(*p, class_at(i)))
            .collect();
        let holds = |chars: &[u8]| {
            check::holds(&chars[..n], chars[n]) && (!date || valid_date(&chars[..n]))
        };
        let read: Vec<u8> = at.iter().map(|(l, c)| self.rows[*l][*c]).collect();
        let classes: Vec<Class> = (0..at.len()).map(class_at).collect();
        let doubtful = self.doubtful(&at);
        if class == Class::Any && !holds(&read) {
            let share = excuse(&read, &classes, &options, &doubtful, &holds);
            self.excused(kind, share);
        }
        // The check digit confirms a reading only when that reading is clearly the most likely of all the
        // combinations of its doubtful characters that hold: two misreads can cancel out in the weighted sum.
        let Some(chars) = self.search(&at, &options, holds) else {
            return;
        };
        if chars == read {
            self.confirm(&at);
            return;
        }
        // A document number's characters can be letters or digits, so nothing but the check digit tells a
        // misread from a forgery, and two misreads can cancel out: measured on phone captures, such repairs
        // returned numbers the document does not show. The field stays as read, doubtful, and the verdict says so.
        if class == Class::Any {
            return;
        }
        // Nor is a character the field allows changed for another it allows (one digit of a date for another):
        // a forger changes exactly such a character, and measured on phone captures a forged birth date's
        // doubtful 8 "repaired" to the 5 it had replaced returned a date the document does not show. Only
        // characters the field cannot hold (a B in a date) take what the check digit confirms.
        if (0..at.len()).any(|i| chars[i] != read[i] && class_at(i).allows(read[i])) {
            return;
        }
        let by = format!("{field} check digit");
        for (p, c) in at.iter().zip(chars) {
            self.set(*p, c, field, &by);
        }
        self.confirm(&at);
    }

    /// A field without a check digit: an impossible character (a digit in a name) becomes its look-alike in the
    /// field's class (`0` → `O`, `5` → `S`, …). The field's type confirms it only where the shape was read
    /// surely (at the field's confidence bar) and no other character the field allows was weighed there: a
    /// `5` read with doubt is as likely a misread of another letter (or of a filler) as of an `S`. Otherwise
    /// the look-alike stays doubtful, for the visual zone to confirm, and a field still uncertain at the end is
    /// returned as read (`Mrz::keep_unsettled_as_read`). One with no look-alike stays as read, doubtful: what
    /// the recognisers weighed in its place was weighed under 0.15 (see [`Settler::within_class`]), and measured
    /// on phone captures such guesses (`3` → `M`, a document code's `K` → `P`) returned values the page does
    /// not show.
    fn typed(&mut self, span: Span, class: Class, field: &str, doubtful_below: f32) {
        for at in positions(span) {
            let options = self.options_below(at, class, doubtful_below);
            let read = self.rows[at.0][at.1];
            if class.allows(read) {
                continue;
            }
            let Some(alike) = class.look_alike(read) else {
                continue;
            };
            let sure = self.glyph(at).conf >= doubtful_below;
            if sure && options.iter().all(|o| o.0 == alike || !class.allows(o.0)) {
                self.doubt[at.0][at.1] = false;
            }
            self.set(at, alike, field, BY_FIELD_TYPE);
        }
    }

    /// The name field: read by its type (see [`Settler::typed`]) up to its padding, which must be fillers.
    /// ICAO 9303 separates the surname from the given names by `<<` and the names by `<`, and pads the field
    /// with fillers to its end; so after the given names, from the next `<<` on, anything but a filler is a
    /// misread of one (a stain, a page edge) or a line read out of place. Such a character stays as read,
    /// doubtful, and its look-alike is never taken: measured on a visa's name line, the last filler read `5`
    /// at 0.94 became a given name `S`. (Looking for the padding after the given names, not at the first `<<<`,
    /// keeps a separator read with one filler too many from marking the given names.)
    fn names(&mut self, layout: &Layout) {
        let span = layout.names;
        let given = super::text::name_split(layout, self.rows) + 2;
        let rest = span.bytes(self.rows).get(given..).unwrap_or_default();
        // The given names begin at the first letter after the separator, the padding at the next `<<`.
        let first = rest.iter().position(|c| *c != b'<').unwrap_or(rest.len());
        let padding = rest[first..]
            .windows(2)
            .position(|w| w == b"<<")
            .map_or(span.len, |end| given + first + end);
        self.typed(
            Span {
                len: padding,
                ..span
            },
            Class::Letters,
            "names",
            NAME_DOUBTFUL_BELOW,
        );
        for at in positions(span).skip(padding) {
            self.options_below(at, Class::Letters, NAME_DOUBTFUL_BELOW);
            if self.rows[at.0][at.1] != b'<' {
                self.doubt[at.0][at.1] = true;
            }
        }
    }

    /// The composite check over `at` (its digit at `digit`) laid out for a search: each position's options as
    /// its own field left them, and the field checks wholly inside it.
    fn composite_frame(&self, at: &[Pos], digit: Pos, layout: &Layout) -> CompositeFrame {
        let mut all: Vec<Pos> = at.to_vec();
        all.push(digit);
        let index: BTreeMap<Pos, usize> = all.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let read: Vec<u8> = all.iter().map(|(l, c)| self.rows[*l][*c]).collect();
        let options: Vec<Vec<(u8, f32)>> = all
            .iter()
            .zip(&read)
            .map(|(p, r)| self.seen.get(p).cloned().unwrap_or_else(|| vec![(*r, 1.0)]))
            .collect();
        let dates: Vec<Pos> = positions(layout.birth)
            .chain(positions(layout.expiry))
            .collect();
        let digits: Vec<Pos> = self
            .checks
            .iter()
            .filter_map(|(c, _)| c.last().copied())
            .collect();
        let classes: Vec<Class> = all
            .iter()
            .map(|p| {
                if *p == digit || digits.contains(p) {
                    Class::CheckDigit
                } else if dates.contains(p) {
                    Class::Digits
                } else {
                    Class::Any
                }
            })
            .collect();
        let fields: Vec<(Vec<usize>, bool)> = self
            .checks
            .iter()
            .filter_map(|(c, date)| {
                let at: Option<Vec<usize>> = c.iter().map(|p| index.get(p).copied()).collect();
                Some((at?, *date))
            })
            .collect();
        let doubtful = self.doubtful(&all);
        CompositeFrame {
            all,
            read,
            options,
            classes,
            fields,
            doubtful,
        }
    }

    /// How far a misread could be why the composite check over `at` (its digit at `digit`) fails, as
    /// [`excuse`] weighs it for a field (on each position's options and doubt as its own field left them),
    /// except that the reading found must also hold every field check the composite covers: the truth holds them
    /// all. The composite is the only check over TD1's and TD2's optional data, so this is what tells a forgery
    /// there from a misread elsewhere in the line. (It adds nothing on the document number, which it weighs as
    /// the number's own check does.)
    fn composite_excuse(&self, at: &[Pos], digit: Pos, layout: &Layout) -> f32 {
        let f = self.composite_frame(at, digit, layout);
        excuse(
            &f.read,
            &f.classes,
            &f.options,
            &f.doubtful,
            &|c: &[u8]| f.holds(c),
        )
    }

    /// Whether the composite check, holding as read, confirms the reading of its doubtful characters: as a field
    /// check does, only when the reading is clearly the most likely of all that hold it and every field check
    /// inside it (see [`Settler::search`]). A composite that holds is no evidence between readings that all
    /// hold it: it weighs the document number as the number's own check does, so two O/0 in the number swapped
    /// (or a forged character and a misread cancelling out) hold both alike. Measured on a forged ID card's
    /// phone capture: its printed `S0T735010` read `SOT735010`, three O/0 each read at 0.53–0.58, whose own
    /// check left it doubtful, was confirmed by the composite holding and passed.
    fn composite_confirms(&self, at: &[Pos], digit: Pos, layout: &Layout) -> bool {
        let f = self.composite_frame(at, digit, layout);
        // What a field check settled stays settled: only what is still doubtful is searched.
        let options: Vec<Vec<(u8, f32)>> = f
            .options
            .iter()
            .zip(&f.read)
            .zip(&f.doubtful)
            .map(|((o, r), d)| if *d { o.clone() } else { vec![(*r, 1.0)] })
            .collect();
        self.search(&f.all, &options, |c| f.holds(c))
            .is_some_and(|c| c == f.read)
    }

    /// A country code: confirmed when known and no other known code is among its doubtful characters' options.
    /// A character no code can hold (a digit) is read as its letter look-alike by the field's type, as in a name;
    /// nothing else changes. An unknown code stays as read: measured on phone captures, codes the list alone
    /// "repaired" into known ones were often a line read one character out of place (`XXA` read `KXA` became
    /// `KNA`), and returned a code the document does not show.
    fn country(&mut self, span: Span, field: &str) {
        let repaired = self.out.len();
        self.typed(span, Class::Letters, field, DOUBTFUL_BELOW);
        let at: Vec<Pos> = positions(span).collect();
        let options: Vec<Vec<(u8, f32)>> = at
            .iter()
            .map(|p| self.options(*p, Class::Letters))
            .collect();
        let known = |chars: &[u8]| country::is_known(&String::from_utf8_lossy(chars));
        let read: Vec<u8> = at.iter().map(|(l, c)| self.rows[*l][*c]).collect();
        if !known(&read) {
            // A look-alike that makes no known code settles nothing: measured on phone captures, a garbled
            // line's `2OG` (printed `GBR`) came back as `ZOG`. It stays doubtful, and is returned as read.
            for c in &self.out[repaired..] {
                let (l, col) = (c.line.wrapping_sub(1), c.column.wrapping_sub(1));
                if let Some(d) = self.doubt.get_mut(l).and_then(|r| r.get_mut(col)) {
                    *d = true;
                }
            }
            return;
        }
        let alternative_known = (0..at.len()).any(|i| {
            options[i].iter().any(|(c, _)| {
                let mut v = read.clone();
                v[i] = *c;
                *c != read[i] && known(&v)
            })
        });
        if !alternative_known {
            self.confirm(&at);
        }
    }
}

/// The composite check laid out for a search (see [`Settler::composite_frame`]): every position it covers with
/// its digit last, as read, with its options, class and doubt, and the field checks wholly inside it (as indices
/// into its positions, and whether each is a date).
struct CompositeFrame {
    all: Vec<Pos>,
    read: Vec<u8>,
    options: Vec<Vec<(u8, f32)>>,
    classes: Vec<Class>,
    fields: Vec<(Vec<usize>, bool)>,
    doubtful: Vec<bool>,
}

impl CompositeFrame {
    /// Whether `chars` hold the composite and every field check inside it (a date's also as a date): the truth
    /// holds them all.
    fn holds(&self, chars: &[u8]) -> bool {
        let n = self.all.len() - 1;
        check::holds(&chars[..n], chars[n])
            && self.fields.iter().all(|(idx, date)| {
                let v: Vec<u8> = idx.iter().map(|i| chars[*i]).collect();
                v.split_last()
                    .is_some_and(|(k, data)| check::holds(data, *k) && (!date || valid_date(data)))
            })
    }
}

/// How far a misread could be why `read` (a check's characters, the check digit last) fails `holds`: 0 when
/// none could, else the share of the likeliest misread that makes it hold, `w / (w + w_read)`, where `w` weighs
/// that misread's characters and `w_read` the same characters as read (each as the recognisers weighed it). A
/// misread is some combination of the doubtful characters' options, or one doubtful character's look-alike (`O`
/// for `0`, `B` for `8`, …, within its class) where the recogniser did not weigh it, at the weight a look-alike
/// gets as an option (see [`Settler::options_below`]). None: the characters are what is printed as far as OCR
/// can tell, and the failing check speaks of the document, not of the image (a forger changes a character and
/// leaves the check digit). Too many doubtful characters to try count as a misread of share 1.
///
/// A character read without doubt is not presumed misread to excuse a check, as it is never changed to make one
/// hold: each variant tried is one more chance, one in ten, for a forgery to hold by luck. Measured on phone
/// captures, look-alikes swapped where OCR was sure explained forged numbers (`FB9080NW2`, its `0` read at 0.98
/// and swapped to `O`) and no genuine document's failing check.
fn excuse(
    read: &[u8],
    classes: &[Class],
    options: &[Vec<(u8, f32)>],
    doubtful: &[bool],
    holds: &impl Fn(&[u8]) -> bool,
) -> f32 {
    let weight = |i: usize, c: u8| options.get(i)?.iter().find(|o| o.0 == c).map(|o| o.1);
    let as_read = |i: usize| read.get(i).and_then(|c| weight(i, *c)).unwrap_or(0.01);
    let share = |w: f32, w_read: f32| w / (w + w_read).max(f32::MIN_POSITIVE);
    let mut best = 0f32;
    for (i, (c, class)) in read.iter().zip(classes).enumerate() {
        if !doubtful.get(i).copied().unwrap_or(false) {
            continue;
        }
        let alikes = match class {
            Class::Any => [to_digit(*c), to_letter(*c)],
            Class::Digits | Class::CheckDigit => [to_digit(*c), None],
            _ => [None, None],
        };
        for a in alikes.into_iter().flatten() {
            let mut v = read.to_vec();
            v[i] = a;
            if holds(&v) {
                let w_read = as_read(i);
                let w = weight(i, a).unwrap_or(((1.0 - w_read) * 0.5).max(0.02));
                best = best.max(share(w, w_read));
            }
        }
    }
    let open: Vec<usize> = (0..options.len())
        .filter(|i| options[*i].len() > 1)
        .collect();
    if open.len() > MAX_DOUBTFUL {
        return 1.0;
    }
    each_combination(options, &open, |pick| {
        let chars: Vec<u8> = (0..options.len()).map(|i| options[i][pick[i]].0).collect();
        if chars != read && holds(&chars) {
            // Only the characters the misread changes weigh: the rest are the same in both readings.
            let changed = (0..options.len()).filter(|i| read.get(*i) != Some(&chars[*i]));
            let (w, w_read) = changed.fold((1f32, 1f32), |(w, r), i| {
                (w * options[i][pick[i]].1, r * as_read(i))
            });
            best = best.max(share(w, w_read));
        }
        false
    });
    best
}

/// Visits every combination of `options` (an index into each position's options), odometer-style over the
/// `open` positions (the others stay at their first option), until `visit` returns true; whether it did.
fn each_combination(
    options: &[Vec<(u8, f32)>],
    open: &[usize],
    mut visit: impl FnMut(&[usize]) -> bool,
) -> bool {
    let mut pick = vec![0usize; options.len()];
    loop {
        if visit(&pick) {
            return true;
        }
        let mut k = 0;
        loop {
            let Some(&i) = open.get(k) else {
                return false;
            };
            pick[i] += 1;
            if pick[i] < options[i].len() {
                break;
            }
            pick[i] = 0;
            k += 1;
        }
    }
}

/// The look-alikes this page's recognisers read in place of their partner where the field's class leaves no
/// choice, as (read, printed): `(O, 0)` when a date's or check digit's 0 was read first as an O, `(0, O)` when a
/// name's O was read first as a 0. The page's own evidence that, on this capture, the recognisers' choice between
/// the two means little: measured on phone captures, a page whose dates' 0s all read as O (0.67–0.85) passed its
/// document number `P77039207` as `P77O392O7`, two O/0 at weights 7 and 3 that the check digit cannot see.
///
/// Looked for in the combined reading and in each recogniser's own (`witnesses`, lines of the same widths): where
/// one recogniser outweighs the other in the combination, what the other misread is still this page's evidence.
/// Measured on phone captures: with Tesseract's sure 0 winning over OCR-B's O in the dates, the combined reading
/// lost the evidence and a genuine number's O, which OCR-B reads as it reads the dates' zeros, condemned it.
fn confusions(
    glyphs: &[Vec<Glyph>],
    witnesses: &[Vec<Vec<Glyph>>],
    layout: &Layout,
) -> Vec<(u8, u8)> {
    let digits = [
        layout.birth,
        layout.birth_check,
        layout.expiry,
        layout.expiry_check,
    ];
    let letters = [layout.names, layout.state, layout.nationality];
    let spans = digits
        .iter()
        .map(|s| (*s, Class::Digits))
        .chain(letters.iter().map(|s| (*s, Class::Letters)));
    let mut out: Vec<(u8, u8)> = Vec::new();
    for (span, class) in spans {
        for (l, c) in positions(span) {
            let width = glyphs.get(l).map(Vec::len);
            let read = std::iter::once(glyphs)
                .chain(witnesses.iter().map(Vec::as_slice))
                .filter_map(|r| r.get(l).filter(|line| Some(line.len()) == width)?.get(c));
            for g in read {
                if let Some(printed) = class.look_alike(g.ch)
                    && !class.allows(g.ch)
                    && !out.contains(&(g.ch, printed))
                {
                    out.push((g.ch, printed));
                }
            }
        }
    }
    out
}

/// Whether six digits are a calendar date (YYMMDD; any century).
fn valid_date(d: &[u8]) -> bool {
    if d.len() != 6 || !d.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = |i: usize| u32::from(d[i] - b'0') * 10 + u32::from(d[i + 1] - b'0');
    // 2000 is a leap year, so 29 February is accepted here; the century is decided later.
    chrono::NaiveDate::from_ymd_opt(2000 + n(0) as i32, n(2), n(4)).is_some()
}

/// Settles `rows` in place (see the module docs), read as `glyphs`, which combine the recognisers' own readings
/// `witnesses`: returns what changed and what stays doubtful.
pub fn settle(
    rows: &mut [Vec<u8>],
    glyphs: &[Vec<Glyph>],
    witnesses: &[Vec<Vec<Glyph>>],
    layout: &Layout,
) -> Settled {
    let mut s = Settler::new(rows, glyphs, confusions(glyphs, witnesses, layout));
    let date = |d: Span, k: Span| (positions(d).collect::<Vec<_>>(), (k.line, k.start));
    let (b, bk) = date(layout.birth, layout.birth_check);
    s.checked(&b, bk, Class::Digits, Checked::BirthDate, true);
    let (e, ek) = date(layout.expiry, layout.expiry_check);
    s.checked(&e, ek, Class::Digits, Checked::ExpiryDate, true);
    let (number, number_check) = layout.document_number(s.rows);
    let mut at: Vec<Pos> = positions(layout.number).collect();
    if number.len() > layout.number.len {
        let extra = number.len() - layout.number.len;
        at.extend(positions(layout.optional[0]).take(extra));
    }
    s.checked(
        &at,
        (number_check.line, number_check.start),
        Class::Any,
        Checked::DocumentNumber,
        false,
    );
    if let Some((data, digit)) = layout.optional_check {
        let at: Vec<Pos> = positions(data).collect();
        s.checked(
            &at,
            (digit.line, digit.start),
            Class::Any,
            Checked::OptionalData,
            false,
        );
    }
    s.country(layout.state, "issuing_state");
    s.country(layout.nationality, "nationality");
    s.names(layout);
    let (kind, rest) = (
        Span {
            len: 1,
            ..layout.code
        },
        Span {
            start: layout.code.start + 1,
            len: layout.code.len - 1,
            ..layout.code
        },
    );
    s.typed(kind, Class::DocumentKind, "document_code", DOUBTFUL_BELOW);
    s.typed(rest, Class::Letters, "document_code", DOUBTFUL_BELOW);
    s.typed(layout.sex, Class::Sex, "sex", DOUBTFUL_BELOW);
    for (i, span) in layout.optional.iter().enumerate() {
        let checked_alone = layout.optional_check.is_some() && i == 0;
        let number_tail =
            layout.format == MrzFormat::Td1 && i == 0 && number.len() > layout.number.len;
        if !checked_alone && !number_tail {
            s.typed(*span, Class::Any, "optional_data", DOUBTFUL_BELOW);
        } else if number_tail {
            // The rest of the first optional field after a long number's check digit.
            let skip = number.len() - layout.number.len + 1;
            let rest = Span {
                line: span.line,
                start: span.start + skip,
                len: span.len.saturating_sub(skip),
            };
            s.typed(rest, Class::Any, "optional_data", DOUBTFUL_BELOW);
        }
    }
    if let Some((parts, digit)) = &layout.composite {
        let at: Vec<Pos> = parts.iter().flat_map(|p| positions(*p)).collect();
        let k = (digit.line, digit.start);
        let options = s.options(k, Class::CheckDigit);
        let data: Vec<u8> = at.iter().map(|(l, c)| s.rows[*l][*c]).collect();
        let read = s.rows[k.0][k.1];
        if check::holds(&data, read) {
            if s.composite_confirms(&at, k, layout) {
                s.confirm(&at);
                s.confirm(&[k]);
            }
        } else if !Class::CheckDigit.allows(read)
            && let Some((c, _)) = options
                .iter()
                .filter(|(c, _)| check::holds(&data, *c))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        {
            // Only a digit read as a letter (Z for 2); one digit is never exchanged for another.
            s.set(k, *c, "composite", "composite check digit");
            if s.composite_confirms(&at, k, layout) {
                s.confirm(&at);
                s.confirm(&[k]);
            }
        } else if Class::CheckDigit.allows(read) {
            let share = s.composite_excuse(&at, k, layout);
            s.excused(Checked::Composite, share);
        }
    }
    Settled {
        corrections: s.out,
        doubt: s.doubt,
        unexplained: s.unexplained,
        excuses: s.excuses,
    }
}
