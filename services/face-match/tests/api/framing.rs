//! Real selfies: faces that fill the frame, and other faces in it.

use image::{RgbImage, imageops};
use serde_json::Value;

use crate::helpers::{TestApp, jpeg, photo, reasons, spawn_app};

/// The face box the service reports for `name` on its own, as (x, y, width, height).
async fn face_box(app: &TestApp, name: &str) -> (f64, f64, f64, f64) {
    let (status, v) = app.match_photos(photo(name), photo(name)).await;
    assert_eq!(status, 200, "{v}");
    let b = &v["result"]["probe"]["face"]["box"];
    let f = |k: &str| b[k].as_f64().unwrap();
    (f("x"), f("y"), f("width"), f("height"))
}

/// `img` cropped to the box grown by `margin` of its size on each side (clamped to the image).
fn crop_around(img: &RgbImage, (x, y, w, h): (f64, f64, f64, f64), margin: f64) -> RgbImage {
    let x0 = (x - margin * w).max(0.0) as u32;
    let y0 = (y - margin * h).max(0.0) as u32;
    let x1 = ((x + w * (1.0 + margin)) as u32).min(img.width());
    let y1 = ((y + h * (1.0 + margin)) as u32).min(img.height());
    imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image()
}

/// The face's quality on that side; NaN when no face was found (the verdict assertion then shows why).
fn quality(v: &Value, side: &str) -> f64 {
    v["result"][side]["face"]["quality"]["score"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

/// Crops of a photo to its face box plus 10 % and 15 % on each side, upscaled so the longer side is 1,600 px,
/// as capture SDKs and document readers send them: found, of about the uncropped photo's quality, and a pass
/// against another photo of the same person.
#[tokio::test]
async fn a_face_that_fills_the_frame_is_found_and_passes() {
    let app = spawn_app().await;
    for (name, other) in [
        ("obama.jpg", "obama2.jpg"),
        ("obama2.jpg", "obama3.jpg"),
        ("obama3.jpg", "obama2.jpg"),
    ] {
        let whole = image::load_from_memory(&photo(name)).unwrap().to_rgb8();
        let bbox = face_box(&app, name).await;
        let (_, uncropped) = app.match_photos(photo(other), photo(name)).await;
        for margin in [0.10, 0.15] {
            let crop = crop_around(&whole, bbox, margin);
            let k = 1600.0 / f64::from(crop.width().max(crop.height()));
            let (w, h) = (
                (f64::from(crop.width()) * k) as u32,
                (f64::from(crop.height()) * k) as u32,
            );
            let big = imageops::resize(&crop, w, h, imageops::FilterType::Triangle);
            let (status, v) = app.match_photos(photo(other), jpeg(&big)).await;
            assert_eq!(status, 200, "{v}");
            println!(
                "{name} + {margin}: {w}×{h}, similarity {:.4}, quality {:.2} (uncropped {:.2}), score {:.2}",
                v["result"]["similarity"].as_f64().unwrap_or(f64::NAN),
                quality(&v, "probe"),
                quality(&uncropped, "probe"),
                v["result"]["probe"]["face"]["detection_score"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
            );
            assert_eq!(v["verdict"], "pass", "{name} + {margin}: {v}");
            assert!(reasons(&v).is_empty(), "{v}");
            assert!(
                quality(&v, "probe") >= quality(&uncropped, "probe") - 0.25,
                "{name} + {margin}: quality {} against {} uncropped",
                quality(&v, "probe"),
                quality(&uncropped, "probe")
            );
        }
    }
}

/// `small` pasted onto `onto` with its top-left corner at (x, y).
fn paste(onto: &RgbImage, small: &RgbImage, x: i64, y: i64) -> RgbImage {
    let mut out = onto.clone();
    imageops::overlay(&mut out, small, x, y);
    out
}

/// A selfie with a bystander's face a quarter of the subject's size passes and lists the bystander; the same
/// selfie with a second face of the subject's size is held for review.
#[tokio::test]
async fn bystanders_are_listed_and_a_second_face_of_similar_size_holds_the_verdict() {
    let app = spawn_app().await;
    let selfie = image::load_from_memory(&photo("obama.jpg"))
        .unwrap()
        .to_rgb8();
    let (sx, sy, sw, sh) = face_box(&app, "obama.jpg").await;
    let other = image::load_from_memory(&photo("biden.jpg"))
        .unwrap()
        .to_rgb8();
    let other_box = face_box(&app, "biden.jpg").await;
    let head = crop_around(&other, other_box, 0.4);
    let scaled = |ratio: f64| {
        let k = ratio * sw / other_box.2;
        imageops::resize(
            &head,
            (f64::from(head.width()) * k) as u32,
            (f64::from(head.height()) * k) as u32,
            imageops::FilterType::Triangle,
        )
    };
    // The bystander in the top-left corner, away from the subject's face.
    let small = scaled(0.25);
    let with_bystander = paste(&selfie, &small, 10, 10);
    assert!(
        f64::from(small.width()) + 10.0 < sx || f64::from(small.height()) + 10.0 < sy,
        "the bystander does not cover the subject"
    );
    let (status, v) = app
        .match_photos(photo("obama2.jpg"), jpeg(&with_bystander))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["probe"]["faces_detected"], 2, "{v}");
    assert_eq!(v["verdict"], "pass", "{v}");
    assert!(reasons(&v).is_empty(), "{v}");
    let listed = &v["result"]["probe"]["other_faces"][0];
    assert!(listed["width"].as_f64().unwrap() < 0.4 * sw, "{listed}");

    // Someone of the subject's size beside them: on a canvas wide enough for two heads.
    let big = scaled(0.9);
    let mut canvas = RgbImage::from_pixel(
        selfie.width() + big.width() + 20,
        selfie.height().max(big.height()),
        image::Rgb([200, 200, 200]),
    );
    imageops::overlay(&mut canvas, &selfie, 0, 0);
    let pair = paste(
        &canvas,
        &big,
        i64::from(selfie.width()) + 10,
        (sy + sh / 2.0) as i64 - i64::from(big.height() / 2),
    );
    let (status, v) = app.match_photos(photo("obama2.jpg"), jpeg(&pair)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["probe"]["faces_detected"], 2, "{v}");
    assert_eq!(v["verdict"], "review", "{v}");
    assert_eq!(reasons(&v), ["multiple_faces"]);
}
