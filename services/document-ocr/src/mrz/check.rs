//! ICAO 9303 check digits: characters valued `0`–`9` → 0–9, `A`–`Z` → 10–35, `<` → 0, weighted 7, 3, 1 repeating,
//! summed modulo 10.

/// The value of one MRZ character, or `None` for a character the MRZ alphabet does not have.
pub fn value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'<' => Some(0),
        _ => None,
    }
}

/// The check digit of a field, or `None` if it holds a character outside the MRZ alphabet.
pub fn digit(field: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 3] = [7, 3, 1];
    let mut sum = 0;
    for (i, c) in field.iter().enumerate() {
        sum += value(*c)? * WEIGHTS[i % 3];
    }
    Some(b'0' + (sum % 10) as u8)
}

/// Whether `check` is the check digit of `field`. A `<` check digit is accepted for an all-filler field (ICAO
/// allows it for empty optional data).
pub fn holds(field: &[u8], check: u8) -> bool {
    if check == b'<' {
        return field.iter().all(|c| *c == b'<');
    }
    digit(field) == Some(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_weights_follow_icao() {
        assert_eq!(value(b'<'), Some(0));
        assert_eq!(value(b'A'), Some(10));
        assert_eq!(value(b'Z'), Some(35));
        assert_eq!(value(b'a'), None);
        // ICAO 9303 part 3, 4.9 worked example: date 520727 → 3.
        assert_eq!(digit(b"520727"), Some(b'3'));
        // The specimen passport number L898902C3 → 6.
        assert_eq!(digit(b"L898902C3"), Some(b'6'));
        assert_eq!(digit(b"AB2134<<<"), Some(b'5'));
        assert!(holds(b"<<<<<<<<<<<<<<", b'<'));
        assert!(holds(b"<<<<<<<<<<<<<<", b'0'));
        assert!(!holds(b"ZE184226B<<<<<", b'<'));
        assert_eq!(digit(b"12a"), None);
    }
}
