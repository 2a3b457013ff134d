//! Bad input: each gets its documented problem, and the workers survive it.

use serde_json::json;

use crate::helpers::{TestApp, photo, png_bomb, spawn_app, spawn_app_with};

async fn problem(app: &TestApp, reference: Vec<u8>) -> (u16, String, String) {
    let (status, v) = app.match_photos(reference, photo("obama.jpg")).await;
    (
        status,
        v["code"].as_str().unwrap_or_default().to_owned(),
        v["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn broken_images_get_their_errors_and_nothing_crashes() {
    let app = spawn_app().await;
    let full = photo("obama2.jpg");
    let (status, code, detail) = problem(&app, full[..full.len() / 2].to_vec()).await;
    assert_eq!((status, code.as_str()), (422, "invalid_image"), "{detail}");
    assert!(
        detail.contains("reference") && detail.contains("truncated"),
        "{detail}"
    );
    let (status, code, _) = problem(&app, b"%PDF-1.7 definitely not a photo".to_vec()).await;
    assert_eq!((status, code.as_str()), (415, "unsupported_media"));
    let mut png_header_only = photo("32bit.png");
    png_header_only.truncate(100);
    let (status, code, _) = problem(&app, png_header_only).await;
    assert_eq!((status, code.as_str()), (422, "invalid_image"));
    let bomb = png_bomb();
    assert!(
        bomb.len() < 2 * 1024 * 1024,
        "the bomb is small in bytes: {}",
        bomb.len()
    );
    let (status, code, detail) = problem(&app, bomb).await;
    assert_eq!(
        (status, code.as_str()),
        (413, "image_too_large"),
        "{detail}"
    );
    assert!(detail.contains("20000"), "{detail}");
    // Still serving.
    let (status, v) = app
        .match_photos(photo("obama.jpg"), photo("obama3.jpg"))
        .await;
    assert_eq!((status, v["verdict"].as_str()), (200, Some("pass")));
}

#[tokio::test]
async fn requests_are_checked_at_the_edge() {
    let app = spawn_app().await;
    let good = app.put(photo("obama.jpg")).await.to_string();
    let cases = [
        (
            json!({"reference_artifact_id": good}),
            400,
            "invalid_request",
        ),
        (
            json!({"reference_artifact_id": good, "probe_artifact_id": 7}),
            400,
            "invalid_request",
        ),
        (
            json!({"reference_artifact_id": good, "probe_artifact_id": "not-an-id"}),
            400,
            "invalid_request",
        ),
        (
            json!({"reference_artifact_id": good, "probe_artifact_id": good, "extra": 1}),
            400,
            "invalid_request",
        ),
        (
            json!({"reference_artifact_id": good, "probe_artifact_id": good, "profile": "../x"}),
            400,
            "invalid_request",
        ),
        (
            json!({"reference_artifact_id": good, "probe_artifact_id": "art_eu_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P"}),
            404,
            "artifact_not_found",
        ),
        (
            json!({"reference_artifact_id": good, "probe_artifact_id": "art_us_01JD3Z8Q8Y5Q0W6F9T3K2M1N4P"}),
            403,
            "residency_violation",
        ),
    ];
    for (body, status, code) in cases {
        let resp = app.post_match(body.clone()).await;
        assert_eq!(resp.status().as_u16(), status, "{body}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["code"], code, "{body}: {v}");
    }
    let resp = app
        .client
        .post(app.url("/v1/faces/match"))
        .bearer_auth(app.token_with(&["ocr:verify"], &["eu"]))
        .json(&json!({"reference_artifact_id": good, "probe_artifact_id": good}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}

#[tokio::test]
async fn a_full_queue_answers_overloaded_at_once() {
    let app = std::sync::Arc::new(
        spawn_app_with(|_, s| {
            s.workers = 1;
            s.queue_capacity = 2;
        })
        .await,
    );
    let (r, p) = (
        app.put(photo("obama3.jpg")).await,
        app.put(photo("biden.jpg")).await,
    );
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (app, r, p) = (app.clone(), r.clone(), p.clone());
        tasks.push(tokio::spawn(
            async move { app.match_ids(&r, &p, None).await },
        ));
    }
    let (mut ok, mut overloaded) = (0, 0);
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            200 => {
                ok += 1;
                assert!(app.ledger().contains(v["id"].as_str().unwrap()));
            }
            503 => {
                overloaded += 1;
                assert_eq!(v["code"], "overloaded");
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    println!("{ok} answered, {overloaded} refused as overloaded");
    assert!(
        ok >= 1 && overloaded >= 1,
        "{ok} ok, {overloaded} overloaded"
    );
    let resp = app
        .post_match(
            json!({"reference_artifact_id": r.to_string(), "probe_artifact_id": p.to_string()}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200, "capacity comes back");
}
