//! Face detection: letterbox into the model's square, run, decode the family's outputs into boxes and landmarks,
//! non-maximum suppression. Each decoder mirrors its family's reference decoding so scores match the published
//! models: SCRFD's anchors (InsightFace) and CenterFace's centre heatmap.

use image::RgbImage;
use ndarray::{Array4, ArrayView, Dimension, IntoDimension};

use crate::models::manifest::{DetectorParams, Family, InputSpec};

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

    /// The box's linear size: the square root of its area.
    pub fn size(&self) -> f32 {
        self.area().sqrt()
    }

    /// Distance between the eye centres: the landmark-based face size.
    pub fn eye_distance(&self) -> f32 {
        let [l, r] = [self.landmarks[0], self.landmarks[1]];
        ((l[0] - r[0]).powi(2) + (l[1] - r[1]).powi(2)).sqrt()
    }
}

/// Where the image lies in the detector's input: input pixel = origin + source pixel × scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Source pixels × scale = input pixels.
    pub scale: f32,
    /// The input pixel of the source's top-left corner (non-zero when the image is framed by a margin).
    pub origin: [f32; 2],
}

impl Placement {
    /// The source pixel of an input pixel.
    fn source(&self, x: f32, y: f32) -> [f32; 2] {
        [
            (x - self.origin[0]) / self.scale,
            (y - self.origin[1]) / self.scale,
        ]
    }
}

/// The image fitted into the detector's input, as an NCHW tensor.
#[derive(Debug)]
pub struct Letterbox {
    /// 1×3×height×width, normalised.
    pub tensor: Array4<f32>,
    /// Input width (a multiple of 32, at most the manifest's size).
    pub width: usize,
    /// Input height.
    pub height: usize,
    /// Where the image lies in it.
    pub placement: Placement,
}

/// Resizes (bilinear, pixel-centre aligned like OpenCV's `INTER_LINEAR`) to fit the manifest's square, keeping
/// the aspect ratio, and normalises in the same pass. The scale is InsightFace's (longer side to `size`), but
/// the padding only reaches the next multiple of 32 rather than the full square: both families are fully
/// convolutional, so the faces and scores are the same while a portrait photo costs about a third less
/// inference. The padding is a black image, normalised like the rest, as in the models' reference code.
///
/// `margin` frames the image in black first, by that share of its width and height on each side (0: none): a
/// face that fills the frame is outside what detectors were trained on, and the same face with room around it
/// is inside.
pub fn letterbox(img: &RgbImage, input: &InputSpec, margin: f32) -> Letterbox {
    let side = input.size as usize;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let grow = 1.0 + 2.0 * margin.max(0.0);
    let ratio = h as f32 / w as f32;
    let (cw, ch) = if ratio > 1.0 {
        (((side as f32) / ratio) as usize, side)
    } else {
        (side, ((side as f32) * ratio) as usize)
    };
    let (cw, ch) = (cw.max(1), ch.max(1));
    let (nw, nh) = if grow > 1.0 {
        (
            ((cw as f32 / grow) as usize).max(1),
            ((ch as f32 / grow) as usize).max(1),
        )
    } else {
        (cw, ch)
    };
    let (ox, oy) = ((cw - nw) / 2, (ch - nh) / 2);
    let scale = nh as f32 / h as f32;
    let (iw, ih) = (cw.div_ceil(32) * 32, ch.div_ceil(32) * 32);
    let (iw, ih) = (iw.min(side), ih.min(side));
    let pad = (0.0 - input.mean) / input.std;
    let mut tensor = Array4::from_elem((1, 3, ih, iw), pad);
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
                tensor[[0, dst_c, oy + y, ox + x]] = (v - input.mean) / input.std;
            }
        }
    }
    Letterbox {
        tensor,
        width: iw,
        height: ih,
        placement: Placement {
            scale,
            origin: [ox as f32, oy as f32],
        },
    }
}

/// The two source taps and the weight of the second for a source coordinate, clamped at the borders.
fn taps(s: f32, len: usize) -> (usize, usize, f32) {
    let s = s.max(0.0);
    let i = (s.floor() as usize).min(len - 1);
    let j = (i + 1).min(len - 1);
    (i, j, s - i as f32)
}

/// Decodes a detector's outputs (each flattened, in the manifest's order) into faces in source pixels, after
/// the score threshold and NMS. Also returns the best raw score, kept or not.
pub fn decode(
    family: Family,
    outputs: &[&[f32]],
    input: (usize, usize),
    placement: Placement,
    params: &DetectorParams,
) -> Result<(Vec<Face>, f32), String> {
    let (faces, best) = match family {
        Family::Scrfd => decode_scrfd(outputs, input, placement, params)?,
        Family::CenterFace => decode_centerface(outputs, input, placement, params)?,
        Family::Arcface => return Err("an ArcFace model is not a detector".into()),
    };
    Ok((nms(faces, params.nms_iou), best))
}

/// An output's values in the shape its family's decoding reads them in. The manifest may declare `[N, 4]` or
/// `[1, N, 4]` for the same values, so outputs are laid out by their count; any other count is refused.
fn view<'a, D: Dimension>(
    stride: usize,
    output: &str,
    values: &'a [f32],
    shape: impl IntoDimension<Dim = D>,
) -> Result<ArrayView<'a, f32, D>, String> {
    let shape = shape.into_dimension();
    let expected = shape.size();
    ArrayView::from_shape(shape, values).map_err(|_| {
        format!(
            "stride {stride}: {output}: expected {expected} values, got {}",
            values.len()
        )
    })
}

/// SCRFD: per stride, scores, boxes (distances from the anchor centre in strides) and landmarks (offsets in
/// strides), `anchors_per_location` anchors per feature-map cell, cell by cell in row-major order.
fn decode_scrfd(
    outputs: &[&[f32]],
    (width, height): (usize, usize),
    placement: Placement,
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
        let fw = width / stride;
        let count = fw * (height / stride) * anchors;
        let scores = view(stride, "scores", outputs[i], count)?;
        // Per anchor: left, top, right, bottom.
        let boxes = view(stride, "boxes", outputs[i + n], (count, 4))?;
        // Per anchor: five landmarks, each (x, y).
        let marks = view(stride, "landmarks", outputs[i + 2 * n], (count, 5, 2))?;
        let st = stride as f32;
        for (k, &score) in scores.indexed_iter() {
            best = best.max(score);
            if score < params.score_threshold {
                continue;
            }
            let cell = k / anchors;
            let (cx, cy) = ((cell % fw * stride) as f32, (cell / fw * stride) as f32);
            let b = |j: usize| boxes[[k, j]] * st;
            let [x1, y1] = placement.source(cx - b(0), cy - b(1));
            let [x2, y2] = placement.source(cx + b(2), cy + b(3));
            let mut landmarks = [[0.0f32; 2]; 5];
            for (j, l) in landmarks.iter_mut().enumerate() {
                *l = placement.source(cx + marks[[k, j, 0]] * st, cy + marks[[k, j, 1]] * st);
            }
            faces.push(Face {
                bbox: [x1, y1, x2, y2],
                score,
                landmarks,
            });
        }
    }
    Ok((faces, best))
}

/// CenterFace: at one stride, a heatmap of face centres; per cell the box's log-size (height, width) in
/// strides, the centre's offset within the cell (y, x), and 5 landmarks (y, x) as fractions of the box from its
/// top-left corner. Each output is one NCHW plane set: heatmap 1, scale 2, offset 2, landmarks 10 channels.
fn decode_centerface(
    outputs: &[&[f32]],
    (width, height): (usize, usize),
    placement: Placement,
    params: &DetectorParams,
) -> Result<(Vec<Face>, f32), String> {
    let [heat, size, offset, marks] = outputs else {
        return Err(format!("expected 4 outputs, got {}", outputs.len()));
    };
    let stride = params.strides.first().copied().unwrap_or(4).max(1) as usize;
    let (fw, fh) = (width / stride, height / stride);
    let heat = view(stride, "heatmap", heat, (fh, fw))?;
    // Channels: log height, log width.
    let size = view(stride, "scale", size, (2, fh, fw))?;
    // Channels: y, x.
    let offset = view(stride, "offset", offset, (2, fh, fw))?;
    // Channels: landmark j's y at 2j, its x at 2j + 1.
    let marks = view(stride, "landmarks", marks, (5, 2, fh, fw))?;
    let st = stride as f32;
    let mut faces = Vec::new();
    let mut best = 0.0f32;
    for ((gy, gx), &score) in heat.indexed_iter() {
        best = best.max(score);
        if score < params.score_threshold {
            continue;
        }
        let (bh, bw) = (size[[0, gy, gx]].exp() * st, size[[1, gy, gx]].exp() * st);
        let (oy, ox) = (offset[[0, gy, gx]], offset[[1, gy, gx]]);
        let x1 = (gx as f32 + ox + 0.5) * st - bw / 2.0;
        let y1 = (gy as f32 + oy + 0.5) * st - bh / 2.0;
        if !(x1.is_finite() && y1.is_finite() && bw.is_finite() && bh.is_finite()) {
            continue;
        }
        let mut landmarks = [[0.0f32; 2]; 5];
        for (j, l) in landmarks.iter_mut().enumerate() {
            let (my, mx) = (marks[[j, 0, gy, gx]], marks[[j, 1, gy, gx]]);
            *l = placement.source(x1 + mx * bw, y1 + my * bh);
        }
        let [a, b] = placement.source(x1, y1);
        let [c, d] = placement.source(x1 + bw, y1 + bh);
        faces.push(Face {
            bbox: [a, b, c, d],
            score,
            landmarks,
        });
    }
    Ok((faces, best))
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
            detection_quality: [0.5, 0.8],
        }
    }

    const AT_ORIGIN: Placement = Placement {
        scale: 0.5,
        origin: [0.0, 0.0],
    };

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
        let lb = letterbox(&portrait, &input, 0.0);
        assert_eq!(
            (lb.width, lb.height, lb.placement.scale),
            (320, 640, 640.0 / 1200.0)
        );
        assert_eq!(lb.tensor.len(), 3 * 320 * 640);
        assert!(
            (lb.tensor[[0, 0, 0, 0]] - (255.0 - 127.5) / 128.0).abs() < 1e-6,
            "red channel first"
        );
        let odd = letterbox(&RgbImage::new(1000, 700), &input, 0.0);
        assert_eq!(
            (odd.width, odd.height),
            (640, 448),
            "448 = 448 rows of image padded to 32"
        );
        // Framed by half its size on each side, the image is half as large and centred.
        let framed = letterbox(&portrait, &input, 0.5);
        assert_eq!((framed.width, framed.height), (320, 640));
        assert_eq!(
            framed.placement,
            Placement {
                scale: 320.0 / 1200.0,
                origin: [80.0, 160.0]
            }
        );
        let at = |x: usize, y: usize| framed.tensor[[0, 0, y, x]];
        let black = (0.0 - 127.5) / 128.0;
        assert_eq!((at(79, 300), at(80, 159)), (black, black));
        assert!((at(80, 160) - (255.0 - 127.5) / 128.0).abs() < 1e-6);
        assert!((at(239, 479) - (255.0 - 127.5) / 128.0).abs() < 1e-6);
        assert_eq!((at(240, 300), at(100, 480)), (black, black));
        assert_eq!(framed.placement.source(80.0, 160.0), [0.0, 0.0]);
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
        let (faces, best) =
            decode(Family::Scrfd, &refs, (side, side), AT_ORIGIN, &p).unwrap_or_default();
        assert_eq!(best, 0.9);
        assert_eq!(faces.len(), 1);
        // centre (16, 32) in input pixels, distances of one stride, then ÷ 0.5 back to source pixels.
        assert_eq!(faces[0].bbox, [0.0, 32.0, 64.0, 96.0]);
        assert_eq!(faces[0].landmarks[0], [32.0, 64.0]);
    }

    #[test]
    fn centerface_decodes_one_centre_into_box_and_landmarks() {
        let side = 32;
        let p = DetectorParams {
            strides: vec![4],
            score_threshold: 0.5,
            ..params()
        };
        let n = (side / 4) * (side / 4);
        let (mut heat, mut size, mut offset, mut marks) = (
            vec![0.0; n],
            vec![0.0; 2 * n],
            vec![0.0; 2 * n],
            vec![0.0; 10 * n],
        );
        // Cell (x=3, y=2) is index 19: a face 2 strides high (ln 2) and 1 wide (ln 1), its centre a quarter of a
        // cell down and half a cell right.
        let k = 2 * 8 + 3;
        heat[k] = 0.9;
        heat[0] = 0.3;
        size[k] = 2f32.ln();
        offset[k] = 0.25;
        offset[n + k] = 0.5;
        // Landmark 0 at (y 0.5, x 0.25) of the box.
        marks[k] = 0.5;
        marks[n + k] = 0.25;
        let refs: Vec<&[f32]> = vec![&heat, &size, &offset, &marks];
        let (faces, best) =
            decode(Family::CenterFace, &refs, (side, side), AT_ORIGIN, &p).unwrap_or_default();
        assert_eq!((faces.len(), best), (1, 0.9));
        // Centre in input pixels: x (3 + 0.5 + 0.5)·4 = 16, y (2 + 0.25 + 0.5)·4 = 11; box 4 wide, 8 high.
        // Source pixels are input pixels ÷ 0.5.
        assert_eq!(faces[0].bbox, [28.0, 14.0, 36.0, 30.0]);
        assert_eq!(faces[0].landmarks[0], [30.0, 22.0]);
        let short = decode(Family::CenterFace, &refs[..3], (side, side), AT_ORIGIN, &p);
        assert!(short.is_err(), "three outputs are refused");
        let wrong = decode(Family::CenterFace, &refs, (64, 64), AT_ORIGIN, &p);
        assert!(wrong.is_err(), "outputs of another input size are refused");
    }
}
