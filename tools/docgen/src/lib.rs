//! Synthetic identity documents for document-ocr: random identities, their ICAO 9303 MRZ lines (check digits
//! computed, not copied), and a rendered page in OCR-B (Debian `fonts-ocr-b`) with a photo area and other
//! text, then distorted (rotation, blur, noise, scale, JPEG) at a chosen level. Deterministic per seed.

mod junk;
mod render;

use chrono::{Datelike, Duration, NaiveDate};
use document_ocr::mrz::{MrzFormat, check};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

pub use junk::{Junk, junk};
pub use render::{Capture, Distortion, FONT_PATH, load_font, render};

/// What the document says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Document code (`P`, `I`, `ID`, `AC`…).
    pub document_code: String,
    /// Issuing state.
    pub issuing_state: String,
    /// Surname (may hold spaces: two parts).
    pub surname: String,
    /// Given names, space separated.
    pub given_names: String,
    /// Document number (9 characters, letters and digits).
    pub document_number: String,
    /// Nationality.
    pub nationality: String,
    /// Birth date.
    pub birth_date: NaiveDate,
    /// `M`, `F` or `<`.
    pub sex: char,
    /// Expiry date.
    pub expiry_date: NaiveDate,
    /// Optional data (personal number), letters and digits, may be empty.
    pub optional_data: String,
}

const STATES: &[&str] = &[
    "UTO", "D", "FRA", "NLD", "ITA", "ESP", "CAN", "USA", "GBR", "SWE", "POL", "JPN", "BRA", "IND",
    "XXA",
];
const SURNAMES: &[&str] = &[
    "ERIKSSON",
    "MUSTERMANN",
    "DUPONT",
    "ROSSI",
    "GARCIA",
    "NGUYEN",
    "SMITH",
    "KOWALSKA",
    "OKAFOR",
    "TANAKA",
    "SILVA",
    "VAN DER BERG",
    "OBRIEN",
    "MULLER",
    "HANSEN",
    "PETROV",
    "ABUBAKAR",
    "LINDQVIST",
    "MORENO LOPEZ",
    "CHEN",
];
const GIVEN: &[&str] = &[
    "ANNA", "MARIA", "JOHN", "ERIKA", "LUCA", "SOFIA", "AHMED", "YUKI", "PEDRO", "IVAN", "FATIMA",
    "OLIVIA", "NOAH", "ELIF", "MATEO", "AMARA", "LEA", "OSKAR", "PRIYA", "JEAN",
];

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

/// Letters issuers use in document numbers: not O, I or Q, which OCR-B draws almost like 0 and 1 (and an O↔0
/// swap at two positions weighted 7 and 3 leaves the check digit unchanged).
const NUMBER_LETTERS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ";

fn alnum(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|i| {
            // Mostly digits, some letters, as real document numbers are.
            if i == 0 || rng.random_bool(0.25) {
                char::from(NUMBER_LETTERS[rng.random_range(0..NUMBER_LETTERS.len())])
            } else {
                char::from(b'0' + rng.random_range(0..10))
            }
        })
        .collect()
}

/// A random identity for a format, with dates around `today` (the document valid unless `expired`).
pub fn identity(format: MrzFormat, seed: u64, today: NaiveDate, expired: bool) -> Identity {
    let mut rng = StdRng::seed_from_u64(seed);
    let state = pick(&mut rng, STATES).to_owned();
    let nationality = if rng.random_bool(0.8) {
        state.clone()
    } else {
        pick(&mut rng, STATES).to_owned()
    };
    let birth = today - Duration::days(rng.random_range(18 * 365..85 * 365));
    let issued = today - Duration::days(rng.random_range(30..9 * 365));
    let mut expiry = issued + Duration::days(10 * 365);
    if expired {
        expiry = today - Duration::days(rng.random_range(1..3 * 365));
    } else if expiry <= today {
        expiry = today + Duration::days(rng.random_range(30..5 * 365));
    }
    let given = if rng.random_bool(0.5) {
        format!("{} {}", pick(&mut rng, GIVEN), pick(&mut rng, GIVEN))
    } else {
        pick(&mut rng, GIVEN).to_owned()
    };
    let document_code = match format {
        MrzFormat::Td3 => "P".to_owned(),
        MrzFormat::MrvA | MrzFormat::MrvB => "V".to_owned(),
        _ => ["I", "ID", "AC"][rng.random_range(0..3)].to_owned(),
    };
    let optional_data = if rng.random_bool(0.5) {
        let n = rng.random_range(4..10);
        alnum(&mut rng, n)
    } else {
        String::new()
    };
    Identity {
        document_code,
        issuing_state: state,
        surname: pick(&mut rng, SURNAMES).to_owned(),
        given_names: given,
        document_number: alnum(&mut rng, 9),
        nationality,
        birth_date: birth,
        sex: ['M', 'F', '<'][rng.random_range(0..3)],
        expiry_date: expiry,
        optional_data,
    }
}

fn pad(s: &str, n: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c == ' ' { '<' } else { c })
        .take(n)
        .collect();
    while out.len() < n {
        out.push('<');
    }
    out
}

fn yymmdd(d: NaiveDate) -> String {
    format!("{:02}{:02}{:02}", d.year() % 100, d.month(), d.day())
}

fn cd(s: &str) -> char {
    check::digit(s.as_bytes()).map_or('<', char::from)
}

/// The MRZ lines of an identity, check digits computed per ICAO 9303.
pub fn mrz_lines(format: MrzFormat, id: &Identity) -> Vec<String> {
    let names = |n: usize| pad(&format!("{}<<{}", id.surname, id.given_names), n);
    let (num, birth, expiry) = (
        pad(&id.document_number, 9),
        yymmdd(id.birth_date),
        yymmdd(id.expiry_date),
    );
    let code = pad(&id.document_code, 2);
    let state = pad(&id.issuing_state, 3);
    let nat = pad(&id.nationality, 3);
    match format {
        MrzFormat::Td1 => {
            let l1 = format!(
                "{code}{state}{num}{}{}",
                cd(&num),
                pad(&id.optional_data, 15)
            );
            let opt2 = pad("", 11);
            let upper = format!(
                "{}{birth}{}{expiry}{}{opt2}",
                &l1[5..30],
                cd(&birth),
                cd(&expiry)
            );
            let l2 = format!(
                "{birth}{}{}{expiry}{}{nat}{opt2}{}",
                cd(&birth),
                id.sex,
                cd(&expiry),
                cd(&upper)
            );
            vec![l1, l2, names(30)]
        }
        MrzFormat::Td2 | MrzFormat::Td3 => {
            let width = if format == MrzFormat::Td3 { 44 } else { 36 };
            let opt = pad(
                &id.optional_data,
                if format == MrzFormat::Td3 { 14 } else { 7 },
            );
            let opt_block = if format == MrzFormat::Td3 {
                let k = if opt.chars().all(|c| c == '<') {
                    '<'
                } else {
                    cd(&opt)
                };
                format!("{opt}{k}")
            } else {
                opt.clone()
            };
            let upper = format!(
                "{num}{}{birth}{}{expiry}{}{opt_block}",
                cd(&num),
                cd(&birth),
                cd(&expiry)
            );
            let l2 = format!(
                "{num}{}{nat}{birth}{}{}{expiry}{}{opt_block}{}",
                cd(&num),
                cd(&birth),
                id.sex,
                cd(&expiry),
                cd(&upper)
            );
            vec![format!("{code}{state}{}", names(width - 5)), l2]
        }
        MrzFormat::MrvA | MrzFormat::MrvB => {
            let width = if format == MrzFormat::MrvA { 44 } else { 36 };
            let l2 = format!(
                "{num}{}{nat}{birth}{}{}{expiry}{}{}",
                cd(&num),
                cd(&birth),
                id.sex,
                cd(&expiry),
                pad(&id.optional_data, width - 28)
            );
            vec![format!("{code}{state}{}", names(width - 5)), l2]
        }
    }
}

/// A check-digit-protected field a forger can alter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forged {
    /// The document number.
    DocumentNumber,
    /// The birth date (kept a valid date in the past).
    BirthDate,
    /// The expiry date (kept a valid date).
    ExpiryDate,
    /// TD3's personal number, when it has one.
    OptionalData,
}

/// One generated document.
#[derive(Debug, Clone)]
pub struct Document {
    /// The identity it shows (for a forgery: what is printed, forged value included).
    pub identity: Identity,
    /// Its MRZ lines.
    pub lines: Vec<String>,
    /// The encoded image (JPEG).
    pub jpeg: Vec<u8>,
    /// The field a forger changed, if any.
    pub forged: Option<Forged>,
}

/// Where a field sits in each format: (line, first column, length).
fn field_span(format: MrzFormat, field: Forged) -> Option<(usize, usize, usize)> {
    let td1 = format == MrzFormat::Td1;
    Some(match field {
        Forged::DocumentNumber if td1 => (0, 5, 9),
        Forged::DocumentNumber => (1, 0, 9),
        Forged::BirthDate if td1 => (1, 0, 6),
        Forged::BirthDate => (1, 13, 6),
        Forged::ExpiryDate if td1 => (1, 8, 6),
        Forged::ExpiryDate => (1, 21, 6),
        Forged::OptionalData if format == MrzFormat::Td3 => (1, 28, 14),
        Forged::OptionalData => return None,
    })
}

/// Forges `field` as a forger alters a printed document: one character changed to another of its kind (digit
/// for digit, letter for letter), every check digit left as printed, the visual zone changed to match. Only
/// changes the check digit detects are made (a weighted difference of 10 is invisible to ICAO's scheme, and no
/// reader can catch it from the MRZ); dates stay valid dates. `None` when the field cannot be forged here.
pub fn forge(
    format: MrzFormat,
    identity: &Identity,
    lines: &[String],
    field: Forged,
    today: NaiveDate,
    rng: &mut StdRng,
) -> Option<(Identity, Vec<String>)> {
    let (line, start, len) = field_span(format, field)?;
    let original = lines.get(line)?.get(start..start + len)?.to_owned();
    if original.bytes().all(|b| b == b'<') {
        return None;
    }
    for _ in 0..50 {
        let at = rng.random_range(0..len);
        let old = original.as_bytes()[at];
        let new = match old {
            b'0'..=b'9' => b'0' + rng.random_range(0..10u8),
            b'A'..=b'Z' => NUMBER_LETTERS[rng.random_range(0..NUMBER_LETTERS.len())],
            _ => continue,
        };
        let mut forged = original.clone().into_bytes();
        forged[at] = new;
        let Ok(forged) = String::from_utf8(forged) else {
            continue;
        };
        let check = lines[line].as_bytes().get(start + len).copied();
        let caught = check.is_some_and(|k| !check::holds(forged.as_bytes(), k));
        if new == old || !caught {
            continue;
        }
        let mut id = identity.clone();
        match field {
            Forged::DocumentNumber => id.document_number = forged.trim_end_matches('<').to_owned(),
            Forged::OptionalData => id.optional_data = forged.trim_end_matches('<').to_owned(),
            // The dates as the printed MRZ means them (its two-digit years take the reader's century).
            Forged::BirthDate => match document_ocr::mrz::birth(&forged, today) {
                Some(d) if d < today => id.birth_date = d,
                _ => continue,
            },
            Forged::ExpiryDate => match document_ocr::mrz::expiry(&forged, today) {
                Some(d) if d > today => id.expiry_date = d,
                _ => continue,
            },
        }
        let mut out = lines.to_vec();
        out[line].replace_range(start..start + len, &forged);
        return Some((id, out));
    }
    None
}

/// As [`generate_with`], with `field` forged (see [`forge`]); falls back to the document number when the field
/// cannot be forged on this document.
pub fn generate_forged(
    font: &ab_glyph::FontVec,
    format: MrzFormat,
    distortion: Distortion,
    seed: u64,
    today: NaiveDate,
    field: Forged,
) -> Document {
    let genuine = identity(format, seed, today, false);
    let lines = mrz_lines(format, &genuine);
    let mut rng = StdRng::seed_from_u64(seed ^ 0xf0_26ed);
    let (identity, lines, forged) = forge(format, &genuine, &lines, field, today, &mut rng)
        .map(|(i, l)| (i, l, field))
        .or_else(|| {
            forge(
                format,
                &genuine,
                &lines,
                Forged::DocumentNumber,
                today,
                &mut rng,
            )
            .map(|(i, l)| (i, l, Forged::DocumentNumber))
        })
        .unwrap_or((genuine, lines, Forged::DocumentNumber));
    let jpeg = render(font, format, &identity, &lines, distortion, seed, None);
    Document {
        identity,
        lines,
        jpeg,
        forged: Some(forged),
    }
}

/// Generates one document: identity, lines, page, distortion, JPEG.
pub fn generate(
    font: &ab_glyph::FontVec,
    format: MrzFormat,
    distortion: Distortion,
    seed: u64,
    today: NaiveDate,
) -> Document {
    generate_with(font, format, distortion, seed, today, None)
}

/// As [`generate`], with `photo` in the photo area.
pub fn generate_with(
    font: &ab_glyph::FontVec,
    format: MrzFormat,
    distortion: Distortion,
    seed: u64,
    today: NaiveDate,
    photo: Option<&image::RgbImage>,
) -> Document {
    let identity = identity(format, seed, today, false);
    let lines = mrz_lines(format, &identity);
    let jpeg = render(font, format, &identity, &lines, distortion, seed, photo);
    Document {
        identity,
        lines,
        jpeg,
        forged: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use document_ocr::mrz::parse;

    #[test]
    fn generated_mrzs_parse_back_to_their_identity_in_every_format() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        for format in [
            MrzFormat::Td1,
            MrzFormat::Td2,
            MrzFormat::Td3,
            MrzFormat::MrvA,
            MrzFormat::MrvB,
        ] {
            for seed in 0..200 {
                let id = identity(format, seed, today, false);
                let lines = mrz_lines(format, &id);
                let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                let m = parse(&refs, today).unwrap();
                assert_eq!(m.format, format, "{lines:?}");
                assert!(m.checks_hold(), "{lines:?} {:?}", m.checks);
                assert!(m.corrections.is_empty(), "{lines:?} {:?}", m.corrections);
                assert_eq!(m.document_number, id.document_number);
                assert_eq!(m.surname, id.surname, "{lines:?}");
                assert_eq!(m.given_names, id.given_names);
                assert_eq!(m.birth_date, Some(id.birth_date));
                assert_eq!(m.expiry_date, Some(id.expiry_date));
                assert_eq!(m.nationality, id.nationality);
                assert!(m.unknown_countries.is_empty());
            }
        }
    }

    #[test]
    fn a_forgery_changes_one_character_and_breaks_its_check_digit() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        for format in [
            MrzFormat::Td1,
            MrzFormat::Td2,
            MrzFormat::Td3,
            MrzFormat::MrvB,
        ] {
            for field in [
                Forged::DocumentNumber,
                Forged::BirthDate,
                Forged::ExpiryDate,
            ] {
                for seed in 0..40 {
                    let id = identity(format, seed, today, false);
                    let lines = mrz_lines(format, &id);
                    let (forged_id, forged) =
                        forge(format, &id, &lines, field, today, &mut rng).unwrap();
                    let changed: usize = lines
                        .iter()
                        .zip(&forged)
                        .map(|(a, b)| a.bytes().zip(b.bytes()).filter(|(x, y)| x != y).count())
                        .sum();
                    assert_eq!(changed, 1, "{lines:?} {forged:?}");
                    let refs: Vec<&str> = forged.iter().map(String::as_str).collect();
                    let m = parse(&refs, today).unwrap();
                    assert!(!m.checks_hold(), "{forged:?}");
                    assert_eq!(m.document_number, forged_id.document_number);
                    assert_eq!(m.birth_date, Some(forged_id.birth_date));
                    assert_eq!(m.expiry_date, Some(forged_id.expiry_date));
                }
            }
        }
    }
}
