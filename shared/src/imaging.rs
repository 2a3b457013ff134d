//! Decoding untrusted images: pixel and allocation limits checked from the header before any pixel is decoded,
//! truncation refused rather than papered over, EXIF orientation applied so faces and text stand upright.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use crate::error::{ApiError, ErrorCode};

/// What a decode may cost.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct DecodeLimits {
    /// Largest width or height in pixels.
    pub max_side: u32,
    /// Largest width × height.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // 40 MP covers every phone camera and flatbed scan at 600 dpi; a 20,000² bomb (400 MP) is refused.
        Self {
            max_side: 12_000,
            max_pixels: 40_000_000,
        }
    }
}

/// Why an image was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Dimensions over the limits (checked from the header, before decoding).
    #[error(
        "the image is {width}×{height} pixels; the limit is {max_side} per side and {max_pixels} in all"
    )]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Limit per side.
        max_side: u32,
        /// Limit in all.
        max_pixels: u64,
    },
    /// The bytes do not decode (truncated, corrupt, unsupported variant).
    #[error("the image could not be decoded: {0}")]
    Invalid(String),
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        let code = match e {
            DecodeError::TooLarge { .. } => ErrorCode::ImageTooLarge,
            DecodeError::Invalid(_) => ErrorCode::InvalidImage,
        };
        ApiError::new(code, e.to_string())
    }
}

/// A decoded, upright image and what was done to get it.
#[derive(Debug)]
pub struct Decoded {
    /// Upright RGB pixels.
    pub image: RgbImage,
    /// The EXIF orientation that was applied (1 = none).
    pub exif_orientation: u8,
}

/// Decodes bytes into an upright RGB image within `limits`.
pub fn decode_rgb(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded, DecodeError> {
    if is_truncated_jpeg(bytes) {
        // The JPEG decoder fills a cut-off scan with grey instead of failing; a half image must not be judged.
        return Err(DecodeError::Invalid(
            "the JPEG stream ends before its end-of-image marker (truncated)".into(),
        ));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Invalid(e.to_string()))?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| DecodeError::Invalid(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if width == 0
        || height == 0
        || width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(DecodeError::TooLarge {
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    let mut alloc = Limits::default();
    alloc.max_image_width = Some(limits.max_side);
    alloc.max_image_height = Some(limits.max_side);
    // RGBA16 is the widest layout we accept: 8 bytes per pixel, plus decoder scratch.
    alloc.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    decoder
        .set_limits(alloc)
        .map_err(|e| DecodeError::Invalid(e.to_string()))?;
    let orientation = decoder.orientation().ok();
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| DecodeError::Invalid(e.to_string()))?;
    let mut exif_orientation = 1;
    if let Some(o) = orientation {
        exif_orientation = orientation_code(o);
        image.apply_orientation(o);
    }
    Ok(Decoded {
        image: image.into_rgb8(),
        exif_orientation,
    })
}

fn orientation_code(o: image::metadata::Orientation) -> u8 {
    use image::metadata::Orientation as O;
    match o {
        O::NoTransforms => 1,
        O::FlipHorizontal => 2,
        O::Rotate180 => 3,
        O::FlipVertical => 4,
        O::Rotate90FlipH => 5,
        O::Rotate90 => 6,
        O::Rotate270FlipH => 7,
        O::Rotate270 => 8,
    }
}

/// A JPEG whose last bytes hold no end-of-image marker was cut off. Some writers pad after EOI, so the marker is
/// looked for in the tail rather than at the very end.
fn is_truncated_jpeg(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return false;
    }
    let tail = &bytes[bytes.len().saturating_sub(256)..];
    !tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, codecs::png::PngEncoder};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let pixels = vec![128u8; (width * height * 3) as usize];
        PngEncoder::new(&mut out)
            .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
            .map(|_| out)
            .unwrap_or_default()
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let img = RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let _ = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img);
        out
    }

    #[test]
    fn decodes_within_limits() {
        let d = decode_rgb(&png(40, 30), DecodeLimits::default());
        assert!(
            matches!(d, Ok(ref d) if d.image.dimensions() == (40, 30) && d.exif_orientation == 1)
        );
    }

    #[test]
    fn refuses_dimensions_from_the_header() {
        let limits = DecodeLimits {
            max_side: 100,
            max_pixels: 5_000,
        };
        assert!(matches!(
            decode_rgb(&png(101, 10), limits),
            Err(DecodeError::TooLarge { width: 101, .. })
        ));
        assert!(matches!(
            decode_rgb(&png(80, 80), limits),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_truncated_and_garbage() {
        let full = jpeg(64, 64);
        assert!(decode_rgb(&full, DecodeLimits::default()).is_ok());
        let cut = &full[..full.len() * 2 / 3];
        assert!(matches!(
            decode_rgb(cut, DecodeLimits::default()),
            Err(DecodeError::Invalid(_))
        ));
        let p = png(64, 64);
        assert!(matches!(
            decode_rgb(&p[..p.len() / 2], DecodeLimits::default()),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode_rgb(b"not an image at all", DecodeLimits::default()),
            Err(DecodeError::Invalid(_))
        ));
    }
}
