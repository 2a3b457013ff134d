//! SCRFD face detection: letterbox into the model's square, run, decode anchors into boxes and landmarks,
//! non-maximum suppression. Mirrors InsightFace's reference decoding so scores match the published model.

use image::RgbImage;

use crate::models::manifest::{DetectorParams, InputSpec};

/// One detected face, in source-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    /// Box corners: x1, y1, x2, y2.
    pub bbox: [f32; 4],
    /// Detector score, 0..1.
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner (as seen in the image).
    pub landmarks: [[f32; 2]; 5],
}

impl Face {
    /// Box area in square pixels.
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }

    /// Distance between the eye centres: the landmark-based face size.
    pub fn eye_distance(&self) -> f32 {
        let [l, r] = [self.landmarks[0], self.landmarks[1]];
        ((l[0] - r[0]).powi(2) + (l[1] - r[1]).powi(2)).sqrt()
    }
}

/// The image fitted into the detector's input, as an NCHW tensor.
#[derive(Debug)]
pub struct Letterbox {
    /// 1×3×height×width, normalised.
    pub tensor: Vec<f32>,
    /// Input width (a multiple of the largest stride, at most the manifest's size).
    pub width: usize,
    /// Input height.
    pub height: usize,
    /// Source pixels × scale = input pixels.
    pub scale: f32,
}

/// Resizes (bilinear, pixel-centre aligned like OpenCV's `INTER_LINEAR`) to fit the manifest's square, keeping
/// the aspect ratio, and normalises in the same pass. The scale is InsightFace's (longer side to `size`), but
/// the padding only reaches the next multiple of 32 rather than the full square: SCRFD is fully convolutional,
/// so the faces and scores are the same while a portrait photo costs about a third less inference.
/// The padding is a black image, normalised like the rest.
pub fn letterbox(img: &RgbImage, input: &InputSpec) -> Letterbox {
    let side = input.size as usize;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let ratio = h as f32 / w as f32;
    let (nw, nh) = if ratio > 1.0 {
        (((side as f32) / ratio) as usize, side)
    } else {
        (side, ((side as f32) * ratio) as usize)
    };
    let (nw, nh) = (nw.max(1), nh.max(1));
    let scale = nh as f32 / h as f32;
    let (iw, ih) = (nw.div_ceil(32) * 32, nh.div_ceil(32) * 32);
    let (iw, ih) = (iw.min(side), ih.min(side));
    let plane = iw * ih;
    let pad = (0.0 - input.mean) / input.std;
    let mut tensor = vec![pad; 3 * plane];
    let order: [usize; 3] = if input.colour == "BGR" {
        [2, 1, 0]
    } else {
        [0, 1, 2]
    };
    let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
    let raw = img.as_raw();
    let xs: Vec<(usize, usize, f32)> = (0..nw)
        .map(|x| taps((x as f32 + 0.5) * sx - 0.5, w))
        .collect();
    for y in 0..nh {
        let (y0, y1, fy) = taps((y as f32 + 0.5) * sy - 0.5, h);
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            for (c, &dst_c) in order.iter().enumerate() {
                let p = |yy: usize, xx: usize| f32::from(raw[(yy * w + xx) * 3 + c]);
                let top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * fx;
                let bottom = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * fx;
                let v = top + (bottom - top) * fy;
                tensor[dst_c * plane + y * iw + x] = (v - input.mean) / input.std;
            }
        }
    }
    Letterbox {
        tensor,
        width: iw,
        height: ih,
        scale,
    }
}

/// The two source taps and the weight of the second for a source coordinate, clamped at the borders.
fn taps(s: f32, len: usize) -> (usize, usize, f32) {
    let s = s.max(0.0);
    let i = (s.floor() as usize).min(len - 1);
    let j = (i + 1).min(len - 1);
    (i, j, s - i as f32)
}

/// Decodes SCRFD outputs (scores, boxes, landmarks per stride, each flattened) into faces in source pixels,
/// after the score threshold and NMS. Also returns the best raw score, kept or not.
pub fn decode(
    outputs: &[&[f32]],
    (width, height): (usize, usize),
    scale: f32,
    params: &DetectorParams,
) -> Result<(Vec<Face>, f32), String> {
    let n = params.strides.len();
    if outputs.len() != 3 * n {
        return Err(format!("expected {} outputs, got {}", 3 * n, outputs.len()));
    }
    let anchors = params.anchors_per_location as usize;
    let mut faces = Vec::new();
    let mut best = 0.0f32;
    for (i, &stride) in params.strides.iter().enumerate() {
        let stride = stride as usize;
        let (fw, fh) = (width / stride, height / stride);
        let count = fw * fh * anchors;
        let (scores, boxes, kps) = (outputs[i], outputs[i + n], outputs[i + 2 * n]);
        if scores.len() != count || boxes.len() != 4 * count || kps.len() != 10 * count {
            return Err(format!(
                "stride {stride}: expected {count} anchors, got {} scores, {} box values, {} landmark values",
                scores.len(),
                boxes.len(),
                kps.len()
            ));
        }
        let st = stride as f32;
        for (k, &score) in scores.iter().enumerate() {
            best = best.max(score);
            if score < params.score_threshold {
                continue;
            }
            let loc = k / anchors;
            let (cx, cy) = ((loc % fw * stride) as f32, (loc / fw * stride) as f32);
            let b = &boxes[4 * k..4 * k + 4];
            let bbox = [
                (cx - b[0] * st) / scale,
                (cy - b[1] * st) / scale,
                (cx + b[2] * st) / scale,
                (cy + b[3] * st) / scale,
            ];
            let p = &kps[10 * k..10 * k + 10];
            let mut landmarks = [[0.0f32; 2]; 5];
            for (j, l) in landmarks.iter_mut().enumerate() {
                *l = [
                    (cx + p[2 * j] * st) / scale,
                    (cy + p[2 * j + 1] * st) / scale,
                ];
            }
            faces.push(Face {
                bbox,
                score,
                landmarks,
            });
        }
    }
    Ok((nms(faces, params.nms_iou), best))
}

fn iou(a: &Face, b: &Face) -> f32 {
    let ix = (a.bbox[2].min(b.bbox[2]) - a.bbox[0].max(b.bbox[0])).max(0.0);
    let iy = (a.bbox[3].min(b.bbox[3]) - a.bbox[1].max(b.bbox[1])).max(0.0);
    let inter = ix * iy;
    let union = a.area() + b.area() - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy NMS, best score first.
fn nms(mut faces: Vec<Face>, threshold: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| iou(k, &f) <= threshold) {
            kept.push(f);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DetectorParams {
        DetectorParams {
            strides: vec![8, 16, 32],
            anchors_per_location: 2,
            score_threshold: 0.5,
            nms_iou: 0.4,
        }
    }

    fn face(x: f32, score: f32) -> Face {
        Face {
            bbox: [x, 0.0, x + 10.0, 10.0],
            score,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept = nms(vec![face(0.0, 0.6), face(1.0, 0.9), face(50.0, 0.7)], 0.4);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].bbox[0], 50.0);
    }

    #[test]
    fn letterbox_keeps_the_scale_and_trims_the_padding() {
        let input = InputSpec {
            name: "input.1".into(),
            shape: vec![-1, 3, -1, -1],
            layout: "NCHW".into(),
            colour: "RGB".into(),
            mean: 127.5,
            std: 128.0,
            size: 640,
        };
        let portrait = RgbImage::from_pixel(600, 1200, image::Rgb([255, 0, 0]));
        let lb = letterbox(&portrait, &input);
        assert_eq!((lb.width, lb.height, lb.scale), (320, 640, 640.0 / 1200.0));
        assert_eq!(lb.tensor.len(), 3 * 320 * 640);
        assert!(
            (lb.tensor[0] - (255.0 - 127.5) / 128.0).abs() < 1e-6,
            "red channel first"
        );
        let odd = letterbox(&RgbImage::new(1000, 700), &input);
        assert_eq!(
            (odd.width, odd.height),
            (640, 448),
            "448 = 448 rows of image padded to 32"
        );
    }

    #[test]
    fn decode_places_anchors_and_scales_back() {
        let side = 64;
        let p = params();
        let mut outs: Vec<Vec<f32>> = Vec::new();
        for &s in &p.strides {
            let count = (side / s as usize).pow(2) * 2;
            outs.push(vec![0.0; count]);
        }
        for &s in &p.strides {
            outs.push(vec![1.0; 4 * (side / s as usize).pow(2) * 2]);
        }
        for &s in &p.strides {
            outs.push(vec![0.0; 10 * (side / s as usize).pow(2) * 2]);
        }
        // Stride 16 feature map is 4×4; anchor 2 of location (x=1, y=2) is index (2*4+1)*2+1 = 19.
        outs[1][19] = 0.9;
        let refs: Vec<&[f32]> = outs.iter().map(|v| v.as_slice()).collect();
        let (faces, best) = decode(&refs, (side, side), 0.5, &p).unwrap_or_default();
        assert_eq!(best, 0.9);
        assert_eq!(faces.len(), 1);
        // centre (16, 32) in input pixels, distances of one stride, then ÷ 0.5 back to source pixels.
        assert_eq!(faces[0].bbox, [0.0, 32.0, 64.0, 96.0]);
        assert_eq!(faces[0].landmarks[0], [32.0, 64.0]);
    }
}
