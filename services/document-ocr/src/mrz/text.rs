//! The MRZ's text fields (codes, countries, names, optional data) as returned, and putting a field back as read
//! where a look-alike repair did not settle it.

use super::{
    Mrz, country,
    layout::{Layout, Span},
};

/// The text fields of settled MRZ rows, as returned.
pub(super) struct Texts {
    pub document_code: String,
    pub issuing_state: String,
    pub surname: String,
    pub given_names: String,
    pub nationality: String,
    pub optional_data: String,
    /// `issuing_state` and `nationality` where their code is not on the list.
    pub unknown_countries: Vec<String>,
}

/// Where the name field splits into surname and given names: its first `<<` (the field's length when none).
pub(super) fn name_split(layout: &Layout, rows: &[Vec<u8>]) -> usize {
    layout
        .names
        .bytes(rows)
        .windows(2)
        .position(|w| w == b"<<")
        .unwrap_or(layout.names.len)
}

/// The text fields of `rows`.
pub(super) fn texts(layout: &Layout, rows: &[Vec<u8>]) -> Texts {
    let text = |s: Span| -> String { String::from_utf8_lossy(s.bytes(rows)).into_owned() };
    let clean = |s: Span| {
        text(s)
            .trim_end_matches('<')
            .replace('<', " ")
            .trim()
            .to_owned()
    };
    let tidy = |s: &str| {
        s.split('<')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let names = text(layout.names);
    let (surname, given) = names.split_once("<<").unwrap_or((names.as_str(), ""));
    let unknown_countries = [
        ("issuing_state", layout.state),
        ("nationality", layout.nationality),
    ]
    .into_iter()
    .filter(|(_, span)| !country::is_known(&text(*span)))
    .map(|(name, _)| name.to_owned())
    .collect();
    Texts {
        document_code: clean(layout.code),
        issuing_state: text(layout.state).trim_end_matches('<').to_owned(),
        surname: tidy(surname),
        given_names: tidy(given),
        nationality: text(layout.nationality).trim_end_matches('<').to_owned(),
        optional_data: layout
            .optional
            .iter()
            .map(|s| clean(*s))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        unknown_countries,
    }
}

impl Mrz {
    /// Puts back as read every character the field's type changed (a name's `8` made `B`, see `repair`) in a
    /// field that is still uncertain once all the evidence is in (the visual zone's included): the look-alike
    /// did not settle it, so it changes only what is returned, not the verdict, and a value built on it may be
    /// one the page does not show (measured on phone captures: a nationality read `2OG`, printed `GBR`, came
    /// back `ZOG`). The field is returned as OCR read it, in `uncertain`, and the repair is no longer reported;
    /// the price is a look-alike that was right (a name's `8` where `B` is printed) returned as its digit in a
    /// field that is wrong and held for review either way. Repairs a check digit confirmed are never withdrawn.
    pub fn keep_unsettled_as_read(&mut self) {
        let layout = Layout::of(self.format);
        let mut rows: Vec<Vec<u8>> = self.lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        let split = name_split(&layout, &rows);
        let returned = |field: &str, column: usize| -> String {
            if field != "names" {
                return field.to_owned();
            }
            let surname = column < layout.names.start + split;
            (if surname { "surname" } else { "given_names" }).to_owned()
        };
        let mut withdrawn = false;
        let uncertain = &self.uncertain;
        self.corrections.retain(|c| {
            let (line, column) = (c.line.wrapping_sub(1), c.column.wrapping_sub(1));
            let unsettled = c.confirmed_by == super::repair::BY_FIELD_TYPE
                && uncertain.contains(&returned(&c.field, column));
            let Some(slot) = rows.get_mut(line).and_then(|r| r.get_mut(column)) else {
                return true;
            };
            let Ok(from) = u8::try_from(c.from) else {
                return true;
            };
            if !unsettled {
                return true;
            }
            *slot = from;
            withdrawn = true;
            false
        });
        if !withdrawn {
            return;
        }
        let t = texts(&layout, &rows);
        self.document_code = t.document_code;
        self.issuing_state = t.issuing_state;
        self.surname = t.surname;
        self.given_names = t.given_names;
        self.nationality = t.nationality;
        self.optional_data = t.optional_data;
        self.unknown_countries = t.unknown_countries;
        self.lines = rows
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect();
    }
}
