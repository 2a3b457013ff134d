//! Repairs of OCR confusions between look-alike letters and digits, by field type, kept only where something
//! independent confirms them: a check digit for numbers and dates, the country list for country codes. Names
//! carry no digits, so a digit in a name is repaired by type alone and reported like every other repair.

use super::{
    Correction, check, country,
    layout::{Layout, Span},
};

/// Letters OCR reads in place of digits.
fn to_digit(c: u8) -> Option<u8> {
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

struct Fixer<'a> {
    rows: &'a mut [Vec<u8>],
    out: Vec<Correction>,
}

impl Fixer<'_> {
    fn set(&mut self, span: Span, i: usize, to: u8, field: &str, by: &str) {
        let from = self.rows[span.line][span.start + i];
        if from == to {
            return;
        }
        self.rows[span.line][span.start + i] = to;
        self.out.push(Correction {
            field: field.to_owned(),
            line: span.line + 1,
            column: span.start + i + 1,
            from: char::from(from),
            to: char::from(to),
            confirmed_by: by.to_owned(),
        });
    }

    fn digits_of(&self, span: Span) -> Vec<u8> {
        span.bytes(self.rows)
            .iter()
            .map(|c| to_digit(*c).unwrap_or(*c))
            .collect()
    }

    /// A numeric field (a date) and its digit: letters become digits when the check then holds.
    fn numeric(&mut self, data: Span, digit: Span, field: &str) {
        let (d, k) = (self.digits_of(data), self.digits_of(digit)[0]);
        let unchanged = d == data.bytes(self.rows) && k == digit.bytes(self.rows)[0];
        if unchanged || !check::holds(&d, k) {
            return;
        }
        let by = format!("{field} check digit");
        for (i, c) in d.iter().enumerate() {
            self.set(data, i, *c, field, &by);
        }
        self.set(digit, 0, k, field, &by);
    }

    /// An alphanumeric field and its digit: if the check fails, the one single look-alike swap that makes it
    /// hold is taken; none or several, nothing changes.
    fn alphanumeric(&mut self, data: Vec<(Span, usize)>, digit: Span, field: &str) {
        let read: Vec<u8> = data
            .iter()
            .map(|(s, i)| self.rows[s.line][s.start + i])
            .collect();
        let raw_k = digit.bytes(self.rows)[0];
        let k = if raw_k == b'<' {
            raw_k
        } else {
            to_digit(raw_k).unwrap_or(raw_k)
        };
        let by = format!("{field} check digit");
        if check::holds(&read, k) {
            self.set(digit, 0, k, field, &by);
            return;
        }
        let mut found = None;
        for (i, c) in read.iter().enumerate() {
            for alt in [to_digit(*c), to_letter(*c)].into_iter().flatten() {
                let mut candidate = read.clone();
                candidate[i] = alt;
                if check::holds(&candidate, k) {
                    if found.is_some() {
                        return; // ambiguous: leave it to the check-digit verdict
                    }
                    found = Some((i, alt));
                }
            }
        }
        if let Some((i, alt)) = found {
            let (span, j) = data[i];
            self.set(span, j, alt, field, &by);
            self.set(digit, 0, k, field, &by);
        }
    }

    /// A country code: digits become letters when that turns an unknown code into a known one.
    fn country(&mut self, span: Span, field: &str) {
        let read = String::from_utf8_lossy(span.bytes(self.rows)).into_owned();
        let fixed: Vec<u8> = read.bytes().map(|c| to_letter(c).unwrap_or(c)).collect();
        if country::is_known(&read) || !country::is_known(&String::from_utf8_lossy(&fixed)) {
            return;
        }
        for (i, c) in fixed.iter().enumerate() {
            self.set(span, i, *c, field, "country code list");
        }
    }

    /// Names and codes hold letters and fillers only.
    fn letters(&mut self, span: Span, field: &str) {
        let read = span.bytes(self.rows).to_vec();
        for (i, c) in read.iter().enumerate() {
            if let Some(l) = to_letter(*c) {
                self.set(span, i, l, field, "field type (letters only)");
            }
        }
    }
}

fn chars(span: Span) -> Vec<(Span, usize)> {
    (0..span.len).map(|i| (span, i)).collect()
}

/// Repairs `rows` in place and returns what changed.
pub fn repair(rows: &mut [Vec<u8>], layout: &Layout) -> Vec<Correction> {
    let mut f = Fixer {
        rows,
        out: Vec::new(),
    };
    f.numeric(layout.birth, layout.birth_check, "birth_date");
    f.numeric(layout.expiry, layout.expiry_check, "expiry_date");
    let (number, number_check) = layout.document_number(f.rows);
    let mut spans = chars(layout.number);
    if number.len() > layout.number.len {
        let extra = number.len() - layout.number.len;
        spans.extend((0..extra).map(|i| (layout.optional[0], i)));
    }
    f.alphanumeric(spans, number_check, "document_number");
    if let Some((data, digit)) = layout.optional_check {
        f.alphanumeric(chars(data), digit, "optional_data");
    }
    f.country(layout.state, "issuing_state");
    f.country(layout.nationality, "nationality");
    f.letters(layout.names, "names");
    f.letters(layout.code, "document_code");
    if let Some((parts, digit)) = &layout.composite {
        let data: Vec<u8> = parts
            .iter()
            .flat_map(|p| p.bytes(f.rows).to_vec())
            .collect();
        let k = f.digits_of(*digit)[0];
        if k != digit.bytes(f.rows)[0] && check::holds(&data, k) {
            f.set(*digit, 0, k, "composite", "composite check digit");
        }
    }
    f.out
}
