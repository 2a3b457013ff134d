//! Image-quality factors of one face, each 0..1 (1 = good); the face's quality is the worst of them, so the
//! verdict's `low_quality` names a real weakness rather than an average that hides one.

use image::RgbImage;
use serde::Serialize;
use utoipa::ToSchema;

use super::detect::Face;

/// Quality of one face.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq)]
pub struct Quality {
    /// The worst of the factors below.
    pub score: f64,
    /// From the detector's score: 0 at the manifest's `detection_quality[0]`, 1 at `[1]` and above (SCRFD: 0.5
    /// and 0.8).
    pub detection: f64,
    /// From the variance of the Laplacian of the aligned crop: 0 when flat or blurred, 1 when sharp.
    pub sharpness: f64,
    /// From how far the nose sits off the eyes' midline, relative to the eye distance: 1 when frontal,
    /// 0 at about 60° of yaw.
    pub frontal: f64,
}

/// Laplacian variance at or above which a 112×112 crop counts as fully sharp.
const SHARP_LAPLACIAN_VARIANCE: f64 = 120.0;

/// Measures a face and its aligned crop; `[zero, full]` are the detector scores of detection quality 0 and 1.
pub fn assess(face: &Face, crop: &RgbImage, [zero, full]: [f32; 2]) -> Quality {
    let span = f64::from(full - zero).max(f64::EPSILON);
    let detection = ((f64::from(face.score) - f64::from(zero)) / span).clamp(0.0, 1.0);
    let sharpness = (laplacian_variance(crop) / SHARP_LAPLACIAN_VARIANCE).clamp(0.0, 1.0);
    let [le, re, nose, ..] = face.landmarks;
    let eye = f64::from(face.eye_distance()).max(1.0);
    let (mx, my) = ((le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0);
    // Signed distance of the nose from the line through the eye midpoint perpendicular to the eye axis.
    let (ax, ay) = ((re[0] - le[0]) as f64 / eye, (re[1] - le[1]) as f64 / eye);
    let off = (f64::from(nose[0] - mx) * ax + f64::from(nose[1] - my) * ay).abs() / eye;
    let frontal = (1.0 - off / 0.6).clamp(0.0, 1.0);
    Quality {
        score: detection.min(sharpness).min(frontal),
        detection,
        sharpness,
        frontal,
    }
}

/// Variance of the 4-neighbour Laplacian of the grey crop (its central 3/4, away from the black border that
/// alignment can leave).
pub fn laplacian_variance(crop: &RgbImage) -> f64 {
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    if w < 8 || h < 8 {
        return 0.0;
    }
    let grey: Vec<f64> = crop
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let (x0, x1, y0, y1) = (w / 8, w - w / 8, h / 8, h - h / 8);
    let (mut sum, mut sq, mut n) = (0.0, 0.0, 0.0);
    for y in y0.max(1)..y1.min(h - 1) {
        for x in x0.max(1)..x1.min(w - 1) {
            let c = grey[y * w + x];
            let l = grey[y * w + x - 1]
                + grey[y * w + x + 1]
                + grey[(y - 1) * w + x]
                + grey[(y + 1) * w + x]
                - 4.0 * c;
            sum += l;
            sq += l * l;
            n += 1.0;
        }
    }
    if n == 0.0 {
        0.0
    } else {
        sq / n - (sum / n).powi(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn flat_crops_are_not_sharp_and_textured_ones_are() {
        let flat = RgbImage::from_pixel(112, 112, Rgb([120, 120, 120]));
        assert_eq!(laplacian_variance(&flat), 0.0);
        let checker = RgbImage::from_fn(112, 112, |x, y| {
            if (x + y) % 2 == 0 {
                Rgb([0; 3])
            } else {
                Rgb([255; 3])
            }
        });
        assert!(laplacian_variance(&checker) > SHARP_LAPLACIAN_VARIANCE);
    }

    #[test]
    fn a_turned_head_is_less_frontal() {
        let base = Face {
            bbox: [0.0, 0.0, 100.0, 100.0],
            score: 0.9,
            landmarks: [
                [30.0, 40.0],
                [70.0, 40.0],
                [50.0, 60.0],
                [35.0, 80.0],
                [65.0, 80.0],
            ],
        };
        let crop = RgbImage::from_fn(112, 112, |x, y| {
            if (x + y) % 2 == 0 {
                Rgb([0; 3])
            } else {
                Rgb([255; 3])
            }
        });
        let frontal = assess(&base, &crop, [0.5, 0.8]);
        let mut turned = base;
        turned.landmarks[2] = [66.0, 60.0];
        let side = assess(&turned, &crop, [0.5, 0.8]);
        assert_eq!(frontal.frontal, 1.0);
        assert!(side.frontal < 0.5 && side.score == side.frontal);
    }
}
