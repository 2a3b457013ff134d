//! Generated documents read end to end through the service.

use docgen::{Distortion, generate, identity, load_font, mrz_lines, render};
use document_ocr::mrz::MrzFormat;
use serde_json::{Value, json};

use crate::helpers::{assert_fields, reasons, spawn_app, spawn_app_with, today, use_s3};

#[tokio::test]
async fn generated_documents_of_every_format_read_exactly() {
    let app = spawn_app().await;
    let font = load_font().unwrap();
    for (format, seed) in [
        (MrzFormat::Td1, 11),
        (MrzFormat::Td2, 12),
        (MrzFormat::Td3, 13),
        (MrzFormat::Td3, 14),
    ] {
        for distortion in [Distortion::CLEAN, Distortion::MILD] {
            let doc = generate(&font, format, distortion, seed, today());
            let (status, v) = app.read(doc.jpeg).await;
            assert_eq!(status, 200, "{v}");
            println!(
                "{format:?} {}: {} {:?}",
                distortion.level,
                v["verdict"],
                reasons(&v)
            );
            assert_ne!(v["verdict"], "fail", "{format:?} {}: {v}", distortion.level);
            assert_eq!(v["result"]["format"], serde_json::to_value(format).unwrap());
            assert_fields(&v, &doc.identity);
            assert!(app.ledger().contains(v["id"].as_str().unwrap()));
        }
    }
}

#[tokio::test]
async fn a_document_through_the_s3_store_passes() {
    let app = spawn_app_with(|config, _| use_s3(config)).await;
    let doc = generate(
        &load_font().unwrap(),
        MrzFormat::Td3,
        Distortion::CLEAN,
        21,
        today(),
    );
    let (status, v) = app.read(doc.jpeg).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["verdict"], "pass", "{v}");
    assert_fields(&v, &doc.identity);
    assert!(
        v["result"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["holds"] == true)
    );
}

#[tokio::test]
async fn expired_and_forged_documents_fail_with_their_reason() {
    let app = spawn_app().await;
    let font = load_font().unwrap();
    let id = identity(MrzFormat::Td3, 31, today(), true);
    let lines = mrz_lines(MrzFormat::Td3, &id);
    let (_, v) = app
        .read(render(
            &font,
            MrzFormat::Td3,
            &id,
            &lines,
            Distortion::CLEAN,
            31,
            None,
        ))
        .await;
    assert_eq!(v["verdict"], "fail", "{v}");
    assert!(reasons(&v).contains(&"document_expired".to_owned()), "{v}");
    assert!(
        !reasons(&v).contains(&"check_digit_mismatch".to_owned()),
        "{v}"
    );

    let id = identity(MrzFormat::Td1, 32, today(), false);
    let mut lines = mrz_lines(MrzFormat::Td1, &id);
    // Forge the birth date's check digit.
    let mut l2: Vec<char> = lines[1].chars().collect();
    l2[6] = if l2[6] == '3' { '4' } else { '3' };
    lines[1] = l2.into_iter().collect();
    let (_, v) = app
        .read(render(
            &font,
            MrzFormat::Td1,
            &id,
            &lines,
            Distortion::CLEAN,
            32,
            None,
        ))
        .await;
    assert_eq!(v["verdict"], "fail", "{v}");
    assert!(
        reasons(&v).contains(&"check_digit_mismatch".to_owned()),
        "{v}"
    );
    let failed: Vec<&Value> = v["result"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["holds"] == false)
        .collect();
    assert!(failed.iter().any(|c| c["field"] == "birth_date"), "{v}");
}

#[tokio::test]
async fn only_the_requested_fields_are_returned() {
    let app = spawn_app().await;
    let doc = generate(
        &load_font().unwrap(),
        MrzFormat::Td2,
        Distortion::CLEAN,
        41,
        today(),
    );
    let id = app.put(doc.jpeg).await;
    let (status, v) = app
        .ocr(json!({"artifact_id": id.to_string(), "fields": ["birth_date", "nationality"]}))
        .await;
    assert_eq!(status, 200, "{v}");
    let fields = v["result"]["fields"].as_object().unwrap();
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        ["birth_date", "nationality"]
    );
    assert!(
        !v.to_string().contains(&doc.identity.surname),
        "no other field leaks: {v}"
    );
    let (status, v) = app
        .ocr(json!({"artifact_id": id.to_string(), "fields": ["shoe_size"]}))
        .await;
    assert_eq!((status, v["code"].as_str()), (400, Some("invalid_request")));
    let (_, v) = app
        .ocr(json!({"artifact_id": id.to_string(), "document_hint": "passport"}))
        .await;
    assert_eq!(
        reasons(&v),
        ["mrz_unreadable"],
        "a TD2 card is not a passport: {v}"
    );
}

#[tokio::test]
async fn non_documents_and_broken_images_get_their_answers() {
    let app = spawn_app().await;
    let photo = image::RgbImage::from_fn(800, 600, |x, y| {
        image::Rgb([(x / 4) as u8, (y / 3) as u8, 120])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    photo.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let (status, v) = app.read(png.into_inner()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["verdict"].as_str(), reasons(&v)),
        (Some("fail"), vec!["mrz_not_found".to_owned()])
    );

    let doc = generate(
        &load_font().unwrap(),
        MrzFormat::Td3,
        Distortion::CLEAN,
        51,
        today(),
    );
    let (status, v) = app.read(doc.jpeg[..doc.jpeg.len() / 2].to_vec()).await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid_image")));
    let (status, v) = app.read(b"GIF89a not supported".to_vec()).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (415, Some("unsupported_media"))
    );
    let (status, v) = app.read(bomb()).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (413, Some("image_too_large")),
        "{v}"
    );
    // The pool survived all of it.
    let (status, v) = app.read(doc.jpeg).await;
    assert_eq!((status, v["verdict"].as_str()), (200, Some("pass")), "{v}");
}

/// A PNG whose header claims 30,000×30,000 pixels, with a token of data: refused from the header.
fn bomb() -> Vec<u8> {
    let img = image::GrayImage::new(1, 1);
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let mut b = png.into_inner();
    b[16..20].copy_from_slice(&30_000u32.to_be_bytes());
    b[20..24].copy_from_slice(&30_000u32.to_be_bytes());
    // Fix the IHDR CRC so the decoder reads the header rather than refusing a corrupt chunk.
    let crc = crc(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

fn crc(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &byte in data {
        c ^= u32::from(byte);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// `verifications_total` for one format and verdict in region `eu`, from `/metrics`.
async fn verifications(app: &crate::helpers::TestApp, format: &str, verdict: &str) -> f64 {
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .filter(|l| l.starts_with("verifications_total{"))
        .filter(|l| {
            l.contains(&format!("format=\"{format}\""))
                && l.contains(&format!("verdict=\"{verdict}\""))
                && l.contains("region=\"eu\"")
                && l.contains("service=\"document-ocr\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn verdicts_are_counted_by_format_and_region() {
    let app = spawn_app().await;
    // The recorder is per process, shared by tests running beside this one: compare before and after.
    let before = [
        verifications(&app, "TD1", "pass").await,
        verifications(&app, "none", "review").await,
        verifications(&app, "none", "fail").await,
    ];
    let doc = generate(
        &load_font().unwrap(),
        MrzFormat::Td1,
        Distortion::CLEAN,
        31,
        today(),
    );
    let (status, read) = app.read(doc.jpeg).await;
    assert_eq!(status, 200, "{read}");
    let mut blank = Vec::new();
    image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(800, 600, image::Luma([235])))
        .write_to(
            &mut std::io::Cursor::new(&mut blank),
            image::ImageFormat::Png,
        )
        .unwrap();
    let (status, none) = app.read(blank).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["result"]["format"], Value::Null);

    assert_eq!(read["verdict"], "pass", "{read}");
    assert!(
        verifications(&app, "TD1", "pass").await > before[0],
        "counted under format TD1, region eu"
    );
    let none_verdict = none["verdict"].as_str().unwrap();
    let i = if none_verdict == "review" { 1 } else { 2 };
    assert!(
        verifications(&app, "none", none_verdict).await > before[i],
        "a page without an MRZ counted under format none"
    );
}
