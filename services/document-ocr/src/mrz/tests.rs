use chrono::NaiveDate;

use super::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default()
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Glyphs of `lines`, certain but for `doubts`: (line, column, confidence, alternative, its confidence).
fn glyphs(lines: &[&str], doubts: &[(usize, usize, f32, u8, f32)]) -> Vec<Vec<Glyph>> {
    let mut out: Vec<Vec<Glyph>> = lines
        .iter()
        .map(|l| l.bytes().map(Glyph::certain).collect())
        .collect();
    for &(l, c, conf, alt, p) in doubts {
        out[l][c].conf = conf;
        out[l][c].alternatives = vec![(alt, p)];
    }
    out
}

/// The MRZ `lines` parse to as OCR read them, certain but for `doubts` (see [`glyphs`]).
fn read(lines: &[&str], doubts: &[(usize, usize, f32, u8, f32)]) -> Mrz {
    parse_read(&glyphs(lines, doubts), &[], today()).unwrap_or_else(|e| panic!("{e}"))
}

fn ok(lines: &[&str]) -> Mrz {
    match parse(lines, today()) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

const TD3: [&str; 2] = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
];
const TD1: [&str; 3] = [
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
];
const TD2: [&str; 2] = [
    "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
    "D231458907UTO7408122F1204159<<<<<<<6",
];
const MRV_A: [&str; 2] = [
    "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L8988901C4XXX4009078F96121096ZE184226B<<<<<<",
];
const MRV_B: [&str; 2] = [
    "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
    "L8988901C4XXX4009078F9612109<<<<<<<<",
];

#[test]
fn icao_td3_specimen() {
    let m = ok(&TD3);
    assert_eq!(m.format, MrzFormat::Td3);
    assert_eq!(
        (m.document_code.as_str(), m.issuing_state.as_str()),
        ("P", "UTO")
    );
    assert_eq!(
        (m.surname.as_str(), m.given_names.as_str()),
        ("ERIKSSON", "ANNA MARIA")
    );
    assert_eq!(m.document_number, "L898902C3");
    assert_eq!(m.nationality, "UTO");
    assert_eq!(m.birth_date, date(1974, 8, 12));
    assert_eq!(m.sex, Sex::Female);
    assert_eq!(m.expiry_date, date(2012, 4, 15));
    assert_eq!(m.optional_data, "ZE184226B");
    assert_eq!(m.checks.len(), 5);
    assert!(m.checks_hold(), "{:?}", m.checks);
    assert!(
        m.corrections.is_empty() && m.invalid_dates.is_empty() && m.unknown_countries.is_empty()
    );
}

#[test]
fn icao_td1_specimen() {
    let m = ok(&TD1);
    assert_eq!(m.format, MrzFormat::Td1);
    assert_eq!(m.document_code, "I");
    assert_eq!(m.document_number, "D23145890");
    assert_eq!(m.birth_date, date(1974, 8, 12));
    assert_eq!(m.expiry_date, date(2012, 4, 15));
    assert_eq!(
        (m.surname.as_str(), m.given_names.as_str()),
        ("ERIKSSON", "ANNA MARIA")
    );
    assert_eq!(
        m.checks.iter().map(|c| c.field).collect::<Vec<_>>(),
        [
            Checked::DocumentNumber,
            Checked::BirthDate,
            Checked::ExpiryDate,
            Checked::Composite
        ]
    );
    assert!(m.checks_hold(), "{:?}", m.checks);
}

#[test]
fn icao_td2_specimen() {
    let m = ok(&TD2);
    assert_eq!(m.format, MrzFormat::Td2);
    assert_eq!(m.document_number, "D23145890");
    assert_eq!(m.sex, Sex::Female);
    assert!(m.checks_hold(), "{:?}", m.checks);
}

#[test]
fn icao_visa_specimens() {
    for (lines, format) in [(&MRV_A[..], MrzFormat::MrvA), (&MRV_B[..], MrzFormat::MrvB)] {
        let m = ok(lines);
        assert_eq!(m.format, format);
        assert_eq!(m.document_code, "V");
        assert_eq!(m.document_number, "L8988901C");
        assert_eq!(m.nationality, "XXX");
        assert_eq!(m.birth_date, date(1940, 9, 7));
        assert_eq!(m.expiry_date, date(1996, 12, 10));
        assert_eq!(m.checks.len(), 3, "visas have no composite digit");
        assert!(m.checks_hold(), "{:?}", m.checks);
    }
}

#[test]
fn a_forged_check_digit_is_a_mismatch_naming_the_field() {
    let forged = [TD3[0], "L898902C36UTO7408122F1204158ZE184226B<<<<<10"];
    let m = ok(&forged);
    let failed: Vec<Checked> = m
        .checks
        .iter()
        .filter(|c| !c.holds)
        .map(|c| c.field)
        .collect();
    assert_eq!(failed, [Checked::ExpiryDate, Checked::Composite]);
    // A changed date with the old digits: the date check and the composite both catch it.
    let edited = [TD3[0], "L898902C36UTO7408122F1304159ZE184226B<<<<<10"];
    assert!(!ok(&edited).checks_hold());
}

#[test]
fn look_alike_repairs_are_kept_only_when_a_check_digit_confirms_them() {
    // O for 0 in the birth date and S for 5 in the expiry date: the check digits confirm both.
    let m = ok(&[TD3[0], "L898902C36UTO74O8122F12O41S9ZE184226B<<<<<10"]);
    assert!(m.checks_hold(), "{:?}", m.checks);
    assert_eq!(m.birth_date, date(1974, 8, 12));
    let fixed: Vec<(char, char, &str)> = m
        .corrections
        .iter()
        .map(|c| (c.from, c.to, c.field.as_str()))
        .collect();
    assert_eq!(
        fixed,
        [
            ('O', '0', "birth_date"),
            ('O', '0', "expiry_date"),
            ('S', '5', "expiry_date")
        ]
    );
    assert!(
        m.corrections
            .iter()
            .all(|c| c.confirmed_by.ends_with("check digit"))
    );
    // S printed where 5 belongs in a document number, read without doubt: never changed, so a forged number
    // reads as printed and its check digit fails.
    let m = ok(&["I<UTOD2314S8907<<<<<<<<<<<<<<<", TD1[1], TD1[2]]);
    assert!(m.corrections.is_empty());
    assert_eq!(m.document_number, "D2314S890");
    assert_eq!(m.doubtful_checks, []);
    assert!(!m.checks_hold());
    // The same S read with doubt, Tesseract weighing 5 there: a document number is never changed (nothing but
    // the check digit could tell a misread from a forgery); it stays as read, doubtful, its failure doubtful.
    let m = read(
        &["I<UTOD2314S8907<<<<<<<<<<<<<<<", TD1[1], TD1[2]],
        &[(0, 10, 0.55, b'5', 0.4)],
    );
    assert_eq!(m.document_number, "D2314S890");
    assert!(m.corrections.is_empty());
    assert_eq!(m.uncertain, ["document_number"]);
    assert!(m.doubtful_checks.contains(&Checked::DocumentNumber));
    // ... and that doubt explains the failure: the 5 Tesseract weighed would make it hold.
    assert!(m.unexplained_checks.is_empty());
    // A forged number (the 4 changed to 9, the check digit left) with a doubtful 2 elsewhere: neither Z there
    // nor any look-alike swap anywhere makes the check hold, so the doubt does not explain the failure.
    let m = read(
        &["I<UTOD231958907<<<<<<<<<<<<<<<", TD1[1], TD1[2]],
        &[(0, 6, 0.6, b'Z', 0.3)],
    );
    assert_eq!(m.document_number, "D23195890");
    assert!(m.corrections.is_empty());
    assert_eq!(m.uncertain, ["document_number"]);
    assert!(m.doubtful_checks.contains(&Checked::DocumentNumber));
    // Nor does it explain the composite, which covers the number.
    assert_eq!(
        m.unexplained_checks,
        [Checked::DocumentNumber, Checked::Composite]
    );
    // A forged number (the 2 changed to 4) whose check a look-alike of a character read without doubt would
    // satisfy (its last 0 as O), beside a doubtful 3 whose B would not: a character OCR was sure of is not
    // presumed misread to excuse a check, so nothing explains the failure.
    let forged = ["I<UTOD431458907<<<<<<<<<<<<<<<", TD1[1], TD1[2]];
    let m = read(&forged, &[(0, 7, 0.6, b'B', 0.3)]);
    assert_eq!(m.document_number, "D43145890");
    assert_eq!(
        m.unexplained_checks,
        [Checked::DocumentNumber, Checked::Composite]
    );
    // The same 0 read with doubt could be that O: a misread explains the number's check.
    let m = read(&forged, &[(0, 7, 0.6, b'B', 0.3), (0, 13, 0.6, b'O', 0.3)]);
    assert!(m.doubtful_checks.contains(&Checked::DocumentNumber));
    assert!(!m.unexplained_checks.contains(&Checked::DocumentNumber));
    // In L89B902C3 two swaps satisfy the digit (B→8, or 8→B at the second character): ambiguous,
    // so nothing is changed and the mismatch stands.
    let m = ok(&[TD3[0], "L89B902C36UTO7408122F1204159ZE184226B<<<<<10"]);
    assert!(m.corrections.is_empty());
    assert!(!m.checks_hold());
    // A wrong digit that no look-alike explains is not "repaired".
    let m = ok(&[TD3[0], "L898902C36UTO7408122F1204169ZE184226B<<<<<10"]);
    assert!(m.corrections.is_empty());
    assert!(!m.checks_hold());
}

#[test]
fn country_codes_and_names_are_repaired_by_type() {
    let m = ok(&["P<UT0ERIK5SON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", TD3[1]]);
    assert_eq!(m.issuing_state, "UTO");
    assert_eq!(m.surname, "ERIKSSON");
    assert_eq!(m.corrections.len(), 2);
    let m = ok(&["P<QQQERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", TD3[1]]);
    assert_eq!(m.unknown_countries, ["issuing_state"]);
}

#[test]
fn dates_get_their_century_and_invalid_dates_are_reported() {
    assert_eq!(birth("740812", today()), date(1974, 8, 12));
    assert_eq!(birth("150101", today()), date(2015, 1, 1));
    assert_eq!(
        birth("261124", today()),
        date(1926, 11, 24),
        "tomorrow's date is a century ago"
    );
    assert_eq!(expiry("320101", today()), date(2032, 1, 1));
    assert_eq!(expiry("991231", today()), date(1999, 12, 31));
    assert_eq!(birth("741332", today()), None);
    let line2 = "L898902C36UTO7413325F1204159ZE184226B<<<<<10";
    let m = ok(&[TD3[0], line2]);
    assert_eq!(m.invalid_dates, ["birth_date"]);
}

#[test]
fn a_long_td1_document_number_continues_into_the_optional_data() {
    // ICAO 9303 part 5 example: number D23145890123 (12 characters), check digit 3 after it.
    let l1 = "I<UTOD23145890<1233<<<<<<<<<<<";
    let data = format!("{}{}{}{}", &l1[5..30], "7408122", "1204159", "<<<<<<<<<<<");
    let composite = check::digit(data.as_bytes()).map_or('?', char::from);
    let l2 = format!("7408122F1204159UTO<<<<<<<<<<<{composite}");
    let m = ok(&[l1, &l2, TD1[2]]);
    assert_eq!(m.document_number, "D23145890123");
    assert!(m.checks_hold(), "{:?}", m.checks);
}

#[test]
fn shapes_and_alphabet_are_checked() {
    assert!(matches!(
        parse(&["P<UTO", "123"], today()),
        Err(MrzError::Shape(2, _))
    ));
    let bad = [
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<1*",
    ];
    assert!(matches!(
        parse(&bad, today()),
        Err(MrzError::Alphabet {
            line: 2,
            column: 44,
            found: '*'
        })
    ));
    let spaced = [
        "P<UTO ERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        " l898902c36uto7408122f1204159ze184226b<<<<<10 ",
    ];
    assert!(ok(&spaced).checks_hold());
}

#[test]
fn a_forged_character_read_without_doubt_is_never_changed_even_where_a_look_alike_would_hold() {
    // M49O16460 with its check digit, then the O forged to 0: only O↔0 would make it hold again, and the 0 is
    // read confidently, so the forgery stands and the check fails on a confident reading.
    let number = "M49O16460";
    let digit = char::from(check::digit(number.as_bytes()).unwrap_or(b'0'));
    let line2 = format!("M49016460{digit}UTO7408122F1204159ZE184226B<<<<<10");
    let m = read(&[TD3[0], &line2], &[]);
    assert_eq!(m.document_number, "M49016460");
    assert!(m.corrections.is_empty());
    assert!(
        m.checks
            .iter()
            .any(|c| c.field == Checked::DocumentNumber && !c.holds)
    );
    assert!(!m.doubtful_checks.contains(&Checked::DocumentNumber));
}

#[test]
fn a_doubtful_name_character_leaves_the_name_uncertain() {
    // IOANA with its O read at 0.6 and D weighed at 0.35: no check digit can settle it.
    let lines = [
        "I<UTOD231458907<<<<<<<<<<<<<<<",
        TD1[1],
        "POPESCU<<IOANA<<<<<<<<<<<<<<<<",
    ];
    let m = read(&lines, &[(2, 10, 0.6, b'D', 0.35)]);
    assert_eq!(m.given_names, "IOANA");
    assert_eq!(m.uncertain, ["given_names"]);
    assert!(m.checks_hold() && !m.settled());
}

#[test]
fn o_and_0_are_read_within_the_fields_class_without_a_repair() {
    // OCR-B reads a round glyph as O or 0 nearly alike: in the birth date (digits) the 0 is what was read, in
    // the name (letters) the O, and neither is reported as a correction or left doubtful.
    let lines = [
        "P<UTOERIKSS0N<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO74O8122F1204159ZE184226B<<<<<10",
    ];
    let m = read(
        &lines,
        &[(0, 11, 0.65, b'O', 0.35), (1, 15, 0.6, b'0', 0.4)],
    );
    assert_eq!(m.surname, "ERIKSSON");
    assert_eq!(m.birth_date, date(1974, 8, 12));
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert!(m.uncertain.is_empty(), "{:?}", m.uncertain);
    assert!(m.settled());
    // A digit in a name that the recogniser did not weigh as a letter is still a repair by type.
    let m = read(&lines, &[(1, 15, 0.6, b'0', 0.4)]);
    assert_eq!(m.corrections.len(), 1);
    // OCR-B sure of the round shape but taking it for a 0, its O kept at the least share: in a name it is the
    // O, with the weight of both, and nothing is repaired.
    let m = read(
        &lines,
        &[(0, 11, 0.95, b'O', 0.05), (1, 15, 0.6, b'0', 0.4)],
    );
    assert_eq!(m.surname, "ERIKSSON");
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert!(m.uncertain.is_empty(), "{:?}", m.uncertain);
}

#[test]
fn a_check_digit_confirms_nothing_between_two_readings_that_both_hold() {
    // Two round glyphs at weights 7 and 3 read O (0.75 and 0.69, 0 weighed beside each): OO and 00 change the
    // weighted sum by 7·24 + 3·24 = 240, so both hold and only the recogniser chooses, at 0.87: not enough for
    // a field that no check digit protects, so the number stays doubtful.
    let lines = [MRV_B[0], "P77O392O72UTO7408122F1204159<<<<<<<<"];
    let m = read(
        &lines,
        &[(1, 3, 0.75, b'0', 0.25), (1, 7, 0.69, b'0', 0.31)],
    );
    assert_eq!(m.document_number, "P77O392O7");
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert_eq!(m.uncertain, ["document_number"]);
    // One of them read without doubt: the check digit rules the other's 0 out, and confirms the number.
    let m = read(&lines, &[(1, 3, 0.75, b'0', 0.25)]);
    assert!(m.uncertain.is_empty(), "{:?}", m.uncertain);
    assert!(m.settled());
}

#[test]
fn a_composite_that_holds_confirms_nothing_its_field_checks_left_in_doubt() {
    // The number's two round glyphs as above, on a TD2 whose composite holds as read: the composite weighs the
    // number as the number's own check does, so OO and 00 hold it alike and the number stays doubtful.
    let lines = [TD2[0], "P77O392O72UTO7408122F1204159<<<<<<<6"];
    let doubts = [(1, 3, 0.75, b'0', 0.25), (1, 7, 0.69, b'0', 0.31)];
    let m = read(&lines, &doubts);
    assert!(m.checks_hold(), "{:?}", m.checks);
    assert_eq!(m.document_number, "P77O392O7");
    assert_eq!(m.uncertain, ["document_number"]);
    assert!(!m.settled());
    // One of them read without doubt: the number's check settles it, and the composite confirms the rest.
    let m = read(&lines, &doubts[..1]);
    assert!(m.settled(), "{:?}", m.uncertain);
}

#[test]
fn a_page_that_reads_its_dates_zeros_as_o_confirms_no_o_in_its_document_number() {
    let number = [(1, 3, 0.8, b'0', 0.2), (1, 7, 0.8, b'0', 0.2)];
    // Its dates read right, the recogniser's 0.94 for OO against 00 settles what the check digit cannot.
    let lines = [MRV_B[0], "P77O392O72UTO7408122F1204159<<<<<<<<"];
    assert!(read(&lines, &number).uncertain.is_empty());
    // The same page with its birth date's 0 read first as an O: on this capture an O says nothing of whether
    // an O or a 0 is printed, so the number's two O stay doubtful and nothing is changed.
    let lines = [lines[0], "P77O392O72UTO74O8122F1204159<<<<<<<<"];
    let mut doubts = number.to_vec();
    doubts.push((1, 15, 0.7, b'0', 0.3));
    let m = read(&lines, &doubts);
    assert_eq!(m.birth_date, date(1974, 8, 12));
    assert_eq!(m.document_number, "P77O392O7");
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert_eq!(m.uncertain, ["document_number"]);
}

#[test]
fn a_zero_one_recogniser_read_as_o_in_a_date_is_evidence_though_the_combination_reads_0() {
    let number = [(1, 3, 0.8, b'0', 0.2), (1, 7, 0.8, b'0', 0.2)];
    let lines = [MRV_B[0], "P77O392O72UTO7408122F1204159<<<<<<<<"];
    let combined = glyphs(&lines, &number);
    // The combination reads the dates right (Tesseract's sure 0 outweighed OCR-B's O), but OCR-B's own reading
    // of the birth date's 0 was an O: the number's two O stay doubtful, as when the combination kept the O.
    let ocrb = glyphs(
        &[lines[0], "P77O392O72UTO74O8122F1204159<<<<<<<<"],
        &[(1, 15, 0.7, b'0', 0.3)],
    );
    let m = parse_read(&combined, std::slice::from_ref(&ocrb), today())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.document_number, "P77O392O7");
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert_eq!(m.uncertain, ["document_number"]);
    // A witness whose line is of another width says nothing of these positions.
    let short = vec![ocrb[0].clone(), ocrb[1][1..].to_vec()];
    let m = parse_read(&combined, &[short], today()).unwrap_or_else(|e| panic!("{e}"));
    assert!(m.uncertain.is_empty(), "{:?}", m.uncertain);
}

#[test]
fn a_character_no_field_can_hold_becomes_only_its_look_alike() {
    // A 5 in a name is the S it resembles; a 3 resembles no letter, so the M weighed faintly in its place is a
    // guess: the name keeps the 3, doubtful, and nothing is changed. A document code's K is no ICAO kind and
    // resembles none: kept, doubtful.
    let lines = ["P<UTOERIK5SON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", TD3[1]];
    let m = read(&lines, &[]);
    assert_eq!(m.surname, "ERIKSSON");
    assert_eq!(m.corrections.len(), 1);
    let lines = ["K<UTOERIK3SON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", TD3[1]];
    let m = read(&lines, &[(0, 9, 0.9, b'M', 0.08), (0, 0, 0.9, b'P', 0.08)]);
    assert_eq!(m.surname, "ERIK3SON");
    assert_eq!(m.document_code, "K");
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert!(
        m.uncertain.iter().any(|f| f == "surname")
            && m.uncertain.iter().any(|f| f == "document_code"),
        "{:?}",
        m.uncertain
    );
}

#[test]
fn a_look_alike_that_settles_nothing_is_returned_as_read() {
    // A name's 8 read with doubt: B is its look-alike, but the shape itself is in doubt, so the name stays
    // uncertain with B for the visual zone to confirm. Nothing settles it here, so it is returned as read, and
    // the repair is no longer reported.
    let lines = ["P<UTOERIK8SON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", TD3[1]];
    let mut m = read(&lines, &[(0, 9, 0.6, b'9', 0.3)]);
    assert_eq!(m.surname, "ERIKBSON");
    assert!(
        m.uncertain.iter().any(|f| f == "surname"),
        "{:?}",
        m.uncertain
    );
    m.keep_unsettled_as_read();
    assert_eq!(m.surname, "ERIK8SON");
    assert_eq!(m.given_names, "ANNA MARIA");
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert_eq!(m.lines[0], lines[0]);
    // Read surely, the 5 is the S it resembles: the name is settled and keeps it.
    let mut m = read(
        &["P<UTOERIK5SON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", TD3[1]],
        &[],
    );
    m.keep_unsettled_as_read();
    assert_eq!(m.surname, "ERIKSSON");
    assert_eq!(m.corrections.len(), 1);
    assert!(m.uncertain.is_empty(), "{:?}", m.uncertain);
    // A nationality's 2 read surely, whose look-alike makes no known code (`ZTO`): doubtful, returned as read.
    let line = "L898902C362TO7408122F1204159ZE184226B<<<<<10";
    let mut m = read(&[TD3[0], line], &[]);
    assert!(
        m.uncertain.iter().any(|f| f == "nationality"),
        "{:?}",
        m.uncertain
    );
    m.keep_unsettled_as_read();
    assert_eq!(m.nationality, "2TO");
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert!(m.unknown_countries.iter().any(|f| f == "nationality"));
    // One that makes a known code is settled by it.
    let line = "L898902C36UT07408122F1204159ZE184226B<<<<<10";
    let mut m = read(&[TD3[0], line], &[]);
    m.keep_unsettled_as_read();
    assert_eq!(m.nationality, "UTO");
    assert!(m.uncertain.is_empty(), "{:?}", m.uncertain);
}

#[test]
fn the_name_field_after_its_given_names_holds_only_fillers() {
    // The last filler read as a sure 5: ICAO pads the names with fillers, so it is a misread of one. It stays
    // as read, doubtful, and never becomes a given name `S`.
    let mut m = read(
        &["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<5", TD3[1]],
        &[],
    );
    m.keep_unsettled_as_read();
    assert_eq!(m.given_names, "ANNA MARIA 5");
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert!(
        m.uncertain.iter().any(|f| f == "given_names"),
        "{:?}",
        m.uncertain
    );
    // A separator read with one filler too many still leaves the given names as they are.
    let m = read(
        &["P<UTOERIKSSON<<<ANNA<MARIA<<<<<<<<<<<<<<<<<<", TD3[1]],
        &[],
    );
    assert_eq!(m.given_names, "ANNA MARIA");
    assert!(m.uncertain.is_empty(), "{:?}", m.uncertain);
}

#[test]
fn a_date_digit_is_never_changed_for_another_digit_to_make_its_check_hold() {
    // The birth date's last 2 read as a doubtful 8, the 2 weighed beside it: the 2 would make the check hold,
    // but a forger changes exactly such a digit, so the date stays as read, doubtful, and nothing is changed.
    let line = "L898902C36UTO7408182F1204159ZE184226B<<<<<10";
    let m = read(&[TD3[0], line], &[(1, 18, 0.6, b'2', 0.35)]);
    assert!(m.corrections.is_empty(), "{:?}", m.corrections);
    assert_eq!(m.birth_date, date(1974, 8, 18));
    assert!(
        m.uncertain.iter().any(|f| f == "birth_date"),
        "{:?}",
        m.uncertain
    );
    assert!(m.doubtful_checks.contains(&Checked::BirthDate));
}

#[test]
fn format_names_in_metrics_are_the_wire_names() {
    use MrzFormat::*;
    for f in [Td1, Td2, Td3, MrvA, MrvB] {
        assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
    }
}
