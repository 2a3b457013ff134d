//! Where each field sits in each format (ICAO 9303 parts 4–7).

use serde::Serialize;
use utoipa::ToSchema;

/// The five MRZ formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum MrzFormat {
    /// ID card, 3 lines of 30.
    #[serde(rename = "TD1")]
    Td1,
    /// ID card, 2 lines of 36.
    #[serde(rename = "TD2")]
    Td2,
    /// Passport booklet, 2 lines of 44.
    #[serde(rename = "TD3")]
    Td3,
    /// Visa, 2 lines of 44.
    #[serde(rename = "MRV-A")]
    MrvA,
    /// Visa, 2 lines of 36.
    #[serde(rename = "MRV-B")]
    MrvB,
}

impl MrzFormat {
    /// The wire name (`TD1`, `TD2`, `TD3`, `MRV-A`, `MRV-B`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Td1 => "TD1",
            Self::Td2 => "TD2",
            Self::Td3 => "TD3",
            Self::MrvA => "MRV-A",
            Self::MrvB => "MRV-B",
        }
    }

    /// The format of these lines, from their count, lengths and (for visas) the document code.
    pub fn detect(rows: &[Vec<u8>]) -> Option<Self> {
        let visa = rows.first().is_some_and(|r| r.first() == Some(&b'V'));
        match rows.iter().map(Vec::len).collect::<Vec<_>>()[..] {
            [30, 30, 30] => Some(Self::Td1),
            [36, 36] if visa => Some(Self::MrvB),
            [36, 36] => Some(Self::Td2),
            [44, 44] if visa => Some(Self::MrvA),
            [44, 44] => Some(Self::Td3),
            _ => None,
        }
    }
}

/// A run of characters on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// 0-based line.
    pub line: usize,
    /// 0-based first column.
    pub start: usize,
    /// Length.
    pub len: usize,
}

const fn at(line: usize, start: usize, len: usize) -> Span {
    Span { line, start, len }
}

impl Span {
    /// The characters under the span.
    pub fn bytes<'a>(&self, rows: &'a [Vec<u8>]) -> &'a [u8] {
        &rows[self.line][self.start..self.start + self.len]
    }
}

/// Field positions of one format.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The format.
    pub format: MrzFormat,
    /// Document code.
    pub code: Span,
    /// Issuing state.
    pub state: Span,
    /// Names.
    pub names: Span,
    /// Document number (TD1 may continue it into the optional data; see [`Layout::document_number`]).
    pub number: Span,
    /// Its check digit.
    pub number_check: Span,
    /// Nationality.
    pub nationality: Span,
    /// Birth date.
    pub birth: Span,
    /// Its check digit.
    pub birth_check: Span,
    /// Sex.
    pub sex: Span,
    /// Expiry date.
    pub expiry: Span,
    /// Its check digit.
    pub expiry_check: Span,
    /// Optional data fields.
    pub optional: Vec<Span>,
    /// Optional data protected by its own check digit (TD3).
    pub optional_check: Option<(Span, Span)>,
    /// The composite check: the spans it covers and its digit.
    pub composite: Option<(Vec<Span>, Span)>,
}

impl Layout {
    /// The layout of a format.
    pub fn of(format: MrzFormat) -> Self {
        match format {
            MrzFormat::Td1 => Self {
                format,
                code: at(0, 0, 2),
                state: at(0, 2, 3),
                number: at(0, 5, 9),
                number_check: at(0, 14, 1),
                optional: vec![at(0, 15, 15), at(1, 18, 11)],
                birth: at(1, 0, 6),
                birth_check: at(1, 6, 1),
                sex: at(1, 7, 1),
                expiry: at(1, 8, 6),
                expiry_check: at(1, 14, 1),
                nationality: at(1, 15, 3),
                names: at(2, 0, 30),
                optional_check: None,
                composite: Some((
                    vec![at(0, 5, 25), at(1, 0, 7), at(1, 8, 7), at(1, 18, 11)],
                    at(1, 29, 1),
                )),
            },
            MrzFormat::Td2 | MrzFormat::Td3 | MrzFormat::MrvA | MrzFormat::MrvB => {
                let width = if matches!(format, MrzFormat::Td3 | MrzFormat::MrvA) {
                    44
                } else {
                    36
                };
                let (optional, optional_check, composite) = match format {
                    MrzFormat::Td3 => (
                        vec![at(1, 28, 14)],
                        Some((at(1, 28, 14), at(1, 42, 1))),
                        Some((
                            vec![at(1, 0, 10), at(1, 13, 7), at(1, 21, 22)],
                            at(1, 43, 1),
                        )),
                    ),
                    MrzFormat::Td2 => (
                        vec![at(1, 28, 7)],
                        None,
                        Some((
                            vec![at(1, 0, 10), at(1, 13, 7), at(1, 21, 14)],
                            at(1, 35, 1),
                        )),
                    ),
                    _ => (vec![at(1, 28, width - 28)], None, None),
                };
                Self {
                    format,
                    code: at(0, 0, 2),
                    state: at(0, 2, 3),
                    names: at(0, 5, width - 5),
                    number: at(1, 0, 9),
                    number_check: at(1, 9, 1),
                    nationality: at(1, 10, 3),
                    birth: at(1, 13, 6),
                    birth_check: at(1, 19, 1),
                    sex: at(1, 20, 1),
                    expiry: at(1, 21, 6),
                    expiry_check: at(1, 27, 1),
                    optional,
                    optional_check,
                    composite,
                }
            }
        }
    }

    /// The document number and the span of its check digit. A TD1 number longer than 9 characters puts `<` in
    /// the check position and continues in the optional data up to the first filler; its last character there
    /// is the check digit (ICAO 9303 part 5, note j).
    pub fn document_number(&self, rows: &[Vec<u8>]) -> (Vec<u8>, Span) {
        let head = self.number.bytes(rows).to_vec();
        if self.format == MrzFormat::Td1 && self.number_check.bytes(rows)[0] == b'<' {
            let opt = self.optional[0].bytes(rows);
            let end = opt.iter().position(|c| *c == b'<').unwrap_or(opt.len());
            if end >= 1 {
                let mut number = head;
                number.extend_from_slice(&opt[..end - 1]);
                return (number, at(0, self.optional[0].start + end - 1, 1));
            }
        }
        (head, self.number_check)
    }
}
