//! Content sniffing: the bytes say what they are; names and declared types are not trusted.

/// What a store object's bytes turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// JPEG (SOI marker).
    Jpeg,
    /// PNG (8-byte signature).
    Png,
    /// WebP (RIFF container with a WEBP form).
    Webp,
    /// TIFF (either byte order).
    Tiff,
    /// A JSON object.
    Json,
    /// Anything else.
    Unknown,
}

impl MediaType {
    /// Whether an image decoder should be handed these bytes.
    pub fn is_image(self) -> bool {
        matches!(self, Self::Jpeg | Self::Png | Self::Webp | Self::Tiff)
    }

    /// The MIME type stored with the object.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Tiff => "image/tiff",
            Self::Json => "application/json",
            Self::Unknown => "application/octet-stream",
        }
    }
}

/// Sniffs bytes by their signature; JSON must start (after whitespace) with `{` and parse.
pub fn sniff(bytes: &[u8]) -> MediaType {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => MediaType::Jpeg,
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => MediaType::Png,
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => MediaType::Webp,
        [b'I', b'I', 0x2A, 0x00, ..] | [b'M', b'M', 0x00, 0x2A, ..] => MediaType::Tiff,
        _ if is_json_object(bytes) => MediaType::Json,
        _ => MediaType::Unknown,
    }
}

fn is_json_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_signatures_not_names() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), MediaType::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), MediaType::Png);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), MediaType::Webp);
        assert_eq!(sniff(b"II*\0...."), MediaType::Tiff);
        assert_eq!(
            sniff(br#"  {"phone_number": "+4915112345678"}"#),
            MediaType::Json
        );
        assert_eq!(sniff(br#"{"truncated": "#), MediaType::Unknown);
        assert_eq!(sniff(b"[1,2]"), MediaType::Unknown);
        assert_eq!(sniff(b"GIF89a"), MediaType::Unknown);
        assert_eq!(sniff(b""), MediaType::Unknown);
    }
}
