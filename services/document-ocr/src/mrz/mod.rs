//! Machine-readable zones (ICAO 9303): the five formats, check digits, dates, country codes, and repairs of
//! OCR confusions that the check digits confirm. Pure: text in, fields out; OCR lives elsewhere.

pub mod check;
pub mod country;
mod layout;
mod repair;
mod text;

pub(crate) use repair::{document_kind, round_partner, to_digit};
#[cfg(test)]
mod tests;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

pub use layout::MrzFormat;
use layout::{Layout, Span};

/// Why text is not an MRZ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrzError {
    /// The lines match no format's line count and length.
    #[error(
        "{0} lines of lengths {1:?} match no MRZ format (TD1 3×30, TD2/MRV-B 2×36, TD3/MRV-A 2×44)"
    )]
    Shape(usize, Vec<usize>),
    /// A character outside `A–Z 0–9 <`.
    #[error("line {line}, column {column}: '{found}' is not an MRZ character")]
    Alphabet {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The character.
        found: char,
    },
}

/// Sex as the MRZ states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// `M`.
    Male,
    /// `F`.
    Female,
    /// `<` or `X`.
    Unspecified,
}

/// A check-digit-protected part of the MRZ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Checked {
    /// The document number.
    DocumentNumber,
    /// The birth date.
    BirthDate,
    /// The expiry date.
    ExpiryDate,
    /// The optional data (TD3's personal number).
    OptionalData,
    /// The composite check over the upper fields.
    Composite,
}

impl Checked {
    /// The result field the check protects (`None` for the composite, which protects several).
    pub fn field(self) -> Option<&'static str> {
        match self {
            Self::DocumentNumber => Some("document_number"),
            Self::BirthDate => Some("birth_date"),
            Self::ExpiryDate => Some("expiry_date"),
            Self::OptionalData => Some("optional_data"),
            Self::Composite => None,
        }
    }

    /// The result fields whose characters the check covers: a misread in any of them can make it fail.
    pub fn covers(self) -> &'static [&'static str] {
        match self {
            Self::DocumentNumber => &["document_number"],
            Self::BirthDate => &["birth_date"],
            Self::ExpiryDate => &["expiry_date"],
            Self::OptionalData => &["optional_data"],
            Self::Composite => &[
                "document_number",
                "birth_date",
                "expiry_date",
                "optional_data",
            ],
        }
    }
}

/// One check digit and whether it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CheckOutcome {
    /// What it protects.
    pub field: Checked,
    /// The check digit as read (after repairs).
    pub digit: char,
    /// Whether it holds.
    pub holds: bool,
}

/// One repaired character.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Correction {
    /// The field it belongs to.
    pub field: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// As read.
    pub from: char,
    /// As repaired.
    pub to: char,
    /// What confirmed it: a check digit, or the field's type (a digit where only letters go, or the reverse).
    pub confirmed_by: String,
}

/// One character as OCR read it: the best choice, its confidence (0–1), and the other characters the engine
/// weighed at that position with theirs. Text that was not read (a test's, a caller's) is [`Glyph::certain`].
#[derive(Debug, Clone, PartialEq)]
pub struct Glyph {
    /// The character read.
    pub ch: u8,
    /// Confidence in it, 0–1.
    pub conf: f32,
    /// Other characters weighed here, most likely first, each with its confidence (0–1).
    pub alternatives: Vec<(u8, f32)>,
}

impl Glyph {
    /// A character known for certain.
    pub fn certain(ch: u8) -> Self {
        Self {
            ch,
            conf: 1.0,
            alternatives: Vec::new(),
        }
    }
}

/// A parsed MRZ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mrz {
    /// Which format.
    pub format: MrzFormat,
    /// Document code (`P`, `I`, `ID`, `V`, …), fillers removed.
    pub document_code: String,
    /// Issuing state or organisation code.
    pub issuing_state: String,
    /// Primary identifier.
    pub surname: String,
    /// Secondary identifier, names separated by spaces.
    pub given_names: String,
    /// Document number, fillers removed.
    pub document_number: String,
    /// Nationality code.
    pub nationality: String,
    /// Birth date, if a valid date.
    pub birth_date: Option<NaiveDate>,
    /// Sex.
    pub sex: Sex,
    /// Expiry date, if a valid date (TD1/TD2/TD3 always have one; visas too).
    pub expiry_date: Option<NaiveDate>,
    /// Optional data (TD1: both optional fields joined), fillers removed.
    pub optional_data: String,
    /// Every check digit of the format.
    pub checks: Vec<CheckOutcome>,
    /// Every repaired character.
    pub corrections: Vec<Correction>,
    /// Date fields that are not dates (`birth_date`, `expiry_date`).
    pub invalid_dates: Vec<String>,
    /// Country fields whose code is unknown (`issuing_state`, `nationality`).
    pub unknown_countries: Vec<String>,
    /// The lines after repairs.
    pub lines: Vec<String>,
    /// Fields (names as in the verdict's `fields`) with a character that stays doubtful after every rule was
    /// applied: a doubtful glyph no check digit or list confirmed.
    pub uncertain: Vec<String>,
    /// Checks that fail on a doubtful reading: they may fail because of the image, not the document.
    pub doubtful_checks: Vec<Checked>,
    /// Of those, the checks of letter-and-digit fields, and the composite, that no misread explains: no option
    /// of the doubtful characters (a doubtful character's look-alike among them) makes them hold (for the
    /// composite, together with every field check it covers; see `repair`). Evidence of an altered document
    /// when the rest of the reading is sound.
    pub unexplained_checks: Vec<Checked>,
    /// The rest of those checks of letter-and-digit fields, and the composite, each with the share of the
    /// likeliest misread that would make it hold, 0–1 (its characters' weight against theirs as read; see
    /// `repair`): how well the image explains the failure. The verdict's policy may hold that a misread this
    /// unlikely does not excuse it.
    pub misread_shares: Vec<(Checked, f32)>,
    /// The lowest confidence of a letter of the names (fillers aside), 0–1: how much the names, which no check
    /// digit protects, rest on OCR alone.
    pub name_confidence: f32,
}

impl Mrz {
    /// Whether every check digit holds.
    pub fn checks_hold(&self) -> bool {
        self.checks.iter().all(|c| c.holds)
    }

    /// Whether every check holds and no field is doubtful: nothing more to read.
    pub fn settled(&self) -> bool {
        self.checks_hold() && self.uncertain.is_empty() && self.invalid_dates.is_empty()
    }

    /// The 0-based lines a check reads (its characters' and its digit's): only a misread on these lines can
    /// make it fail.
    pub fn check_lines(&self, check: Checked) -> Vec<usize> {
        let layout = Layout::of(self.format);
        let spans: Vec<Span> = match check {
            // A TD1 number longer than nine characters continues on its own line (see `document_number`).
            Checked::DocumentNumber => vec![layout.number, layout.number_check],
            Checked::BirthDate => vec![layout.birth, layout.birth_check],
            Checked::ExpiryDate => vec![layout.expiry, layout.expiry_check],
            Checked::OptionalData => layout
                .optional_check
                .map(|(data, digit)| vec![data, digit])
                .unwrap_or_default(),
            Checked::Composite => layout
                .composite
                .map(|(parts, digit)| parts.into_iter().chain([digit]).collect())
                .unwrap_or_default(),
        };
        let mut lines: Vec<usize> = spans.iter().map(|s| s.line).collect();
        lines.sort_unstable();
        lines.dedup();
        lines
    }

    /// The 0-based line of a country field (`issuing_state` or `nationality`), `None` for any other name.
    pub fn country_line(&self, field: &str) -> Option<usize> {
        let layout = Layout::of(self.format);
        match field {
            "issuing_state" => Some(layout.state.line),
            "nationality" => Some(layout.nationality.line),
            _ => None,
        }
    }
}

/// Parses MRZ lines (whitespace removed, upper-cased) against `today` (for the century of dates); every
/// character counts as read for certain, so nothing is repaired.
pub fn parse(lines: &[&str], today: NaiveDate) -> Result<Mrz, MrzError> {
    let glyphs: Vec<Vec<Glyph>> = lines
        .iter()
        .map(|l| {
            l.bytes()
                .filter(|b| !b.is_ascii_whitespace())
                .map(|b| Glyph::certain(b.to_ascii_uppercase()))
                .collect()
        })
        .filter(|l: &Vec<Glyph>| !l.is_empty())
        .collect();
    parse_read(&glyphs, &[], today)
}

/// Parses MRZ lines as OCR read them, glyph by glyph: doubtful characters may be repaired where ICAO's rules
/// settle them (see `repair`), and what stays doubtful is reported in [`Mrz::uncertain`]. Where `glyphs`
/// combine several recognisers' readings, `witnesses` are those readings, each as its recogniser read it: what
/// one misread tells how far this capture's look-alikes can be told apart.
pub fn parse_read(
    glyphs: &[Vec<Glyph>],
    witnesses: &[Vec<Vec<Glyph>>],
    today: NaiveDate,
) -> Result<Mrz, MrzError> {
    let mut rows: Vec<Vec<u8>> = glyphs
        .iter()
        .map(|l| l.iter().map(|g| g.ch).collect())
        .collect();
    let lens: Vec<usize> = rows.iter().map(Vec::len).collect();
    let format = MrzFormat::detect(&rows).ok_or(MrzError::Shape(rows.len(), lens))?;
    for (i, row) in rows.iter().enumerate() {
        if let Some(j) = row.iter().position(|c| check::value(*c).is_none()) {
            return Err(MrzError::Alphabet {
                line: i + 1,
                column: j + 1,
                found: char::from(row[j]),
            });
        }
    }
    let layout = Layout::of(format);
    let name_confidence = (layout.names.start..layout.names.start + layout.names.len)
        .filter_map(|c| glyphs.get(layout.names.line)?.get(c))
        .filter(|g| g.ch != b'<')
        .map(|g| g.conf)
        .fold(1.0, f32::min);
    let settled = repair::settle(&mut rows, glyphs, witnesses, &layout);
    let corrections = settled.corrections;
    let doubt = settled.doubt;
    let unexplained = settled.unexplained;
    let excuses = settled.excuses;
    let doubtful = |s: Span| (s.start..s.start + s.len).any(|c| doubt[s.line][c]);
    let text = |s: Span| -> String { String::from_utf8_lossy(s.bytes(&rows)).into_owned() };

    let mut checks = Vec::new();
    let mut doubtful_checks = Vec::new();
    let mut unexplained_checks = Vec::new();
    let mut misread_shares = Vec::new();
    let mut push = |field: Checked, data: Vec<u8>, at: Span, covers: &[Span]| {
        let digit = at.bytes(&rows)[0];
        let holds = check::holds(&data, digit);
        if !holds && (doubtful(at) || covers.iter().any(|s| doubtful(*s))) {
            doubtful_checks.push(field);
            if unexplained.contains(&field) {
                unexplained_checks.push(field);
            } else if let Some(&(_, share)) = excuses.iter().find(|(k, _)| *k == field) {
                misread_shares.push((field, share));
            }
        }
        checks.push(CheckOutcome {
            field,
            digit: char::from(digit),
            holds,
        });
    };
    let (number, number_check) = layout.document_number(&rows);
    let mut number_spans = vec![layout.number];
    if number.len() > layout.number.len {
        number_spans.push(Span {
            len: number.len() - layout.number.len,
            ..layout.optional[0]
        });
    }
    push(
        Checked::DocumentNumber,
        number.clone(),
        number_check,
        &number_spans,
    );
    push(
        Checked::BirthDate,
        layout.birth.bytes(&rows).to_vec(),
        layout.birth_check,
        &[layout.birth],
    );
    push(
        Checked::ExpiryDate,
        layout.expiry.bytes(&rows).to_vec(),
        layout.expiry_check,
        &[layout.expiry],
    );
    if let Some((data, at)) = layout.optional_check {
        push(
            Checked::OptionalData,
            data.bytes(&rows).to_vec(),
            at,
            &[data],
        );
    }
    if let Some((parts, at)) = &layout.composite {
        let data: Vec<u8> = parts.iter().flat_map(|p| p.bytes(&rows).to_vec()).collect();
        push(Checked::Composite, data, *at, parts);
    }
    // Which returned fields hold a doubtful character: the name line splits at its first `<<`.
    let mut uncertain = Vec::new();
    let split = text::name_split(&layout, &rows);
    let surname = Span {
        len: split,
        ..layout.names
    };
    let given = Span {
        start: layout.names.start + split,
        len: layout.names.len - split,
        ..layout.names
    };
    let field_spans: [(&str, Vec<Span>); 10] = [
        ("document_code", vec![layout.code]),
        ("issuing_state", vec![layout.state]),
        ("surname", vec![surname]),
        ("given_names", vec![given]),
        ("document_number", number_spans.clone()),
        ("nationality", vec![layout.nationality]),
        ("birth_date", vec![layout.birth, layout.birth_check]),
        ("sex", vec![layout.sex]),
        ("expiry_date", vec![layout.expiry, layout.expiry_check]),
        ("optional_data", layout.optional.clone()),
    ];
    for (name, spans) in field_spans {
        if spans.iter().any(|s| doubtful(*s)) {
            uncertain.push(name.to_owned());
        }
    }

    let birth_date = birth(&text(layout.birth), today);
    let expiry_date = expiry(&text(layout.expiry), today);
    let mut invalid_dates = Vec::new();
    if birth_date.is_none() {
        invalid_dates.push("birth_date".to_owned());
    }
    if expiry_date.is_none() {
        invalid_dates.push("expiry_date".to_owned());
    }
    let t = text::texts(&layout, &rows);
    Ok(Mrz {
        format,
        document_code: t.document_code,
        issuing_state: t.issuing_state,
        surname: t.surname,
        given_names: t.given_names,
        document_number: String::from_utf8_lossy(&number)
            .trim_end_matches('<')
            .to_owned(),
        nationality: t.nationality,
        birth_date,
        sex: match layout.sex.bytes(&rows)[0] {
            b'M' => Sex::Male,
            b'F' => Sex::Female,
            _ => Sex::Unspecified,
        },
        expiry_date,
        optional_data: t.optional_data,
        checks,
        corrections,
        invalid_dates,
        unknown_countries: t.unknown_countries,
        lines: rows
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect(),
        uncertain,
        doubtful_checks,
        unexplained_checks,
        misread_shares,
        name_confidence,
    })
}

fn ymd(s: &str) -> Option<(i32, u32, u32)> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((
        s[0..2].parse().ok()?,
        s[2..4].parse().ok()?,
        s[4..6].parse().ok()?,
    ))
}

/// A birth date is in the past: the latest century that does not put it after `today`.
pub fn birth(s: &str, today: NaiveDate) -> Option<NaiveDate> {
    let (y, m, d) = ymd(s)?;
    let date = NaiveDate::from_ymd_opt(2000 + y, m, d)?;
    if date <= today {
        Some(date)
    } else {
        NaiveDate::from_ymd_opt(1900 + y, m, d)
    }
}

/// An expiry date lies within 50 years after `today` at most (documents are valid for at most ten years, but
/// expired documents are read too): 20YY unless that is more than 50 years ahead.
pub fn expiry(s: &str, today: NaiveDate) -> Option<NaiveDate> {
    use chrono::Datelike;
    let (y, m, d) = ymd(s)?;
    let year = if 2000 + y > today.year() + 50 {
        1900 + y
    } else {
        2000 + y
    };
    NaiveDate::from_ymd_opt(year, m, d)
}
