//! Verdicts on real photos.

use serde_json::Value;

use crate::helpers::{
    GENUINE, IMPOSTOR, exif_rotated_jpeg, landscape_png, photo, reasons, spawn_app, spawn_app_with,
    use_s3,
};

fn similarity(v: &Value) -> f64 {
    v["result"]["similarity"].as_f64().unwrap()
}

#[tokio::test]
async fn genuine_pairs_pass_and_impostor_pairs_fail_with_margins() {
    let app = spawn_app().await;
    let mut lowest_genuine = f64::MAX;
    let mut highest_impostor = f64::MIN;
    for (a, b) in GENUINE {
        let (status, v) = app.match_photos(photo(a), photo(b)).await;
        assert_eq!(status, 200, "{v}");
        let s = similarity(&v);
        let pass = v["result"]["thresholds"]["pass"].as_f64().unwrap();
        println!(
            "genuine  {a} ~ {b}: similarity {s:.4}, margin over pass {:.4}",
            s - pass
        );
        assert_eq!(v["verdict"], "pass", "{a} ~ {b}: {v}");
        assert!(reasons(&v).is_empty(), "{v}");
        assert!(v["confidence"].as_f64().unwrap() > 0.9);
        lowest_genuine = lowest_genuine.min(s);
    }
    for (a, b) in IMPOSTOR {
        let (status, v) = app.match_photos(photo(a), photo(b)).await;
        assert_eq!(status, 200, "{v}");
        let s = similarity(&v);
        let fail = v["result"]["thresholds"]["fail"].as_f64().unwrap();
        println!(
            "impostor {a} ~ {b}: similarity {s:.4}, margin under fail {:.4}",
            fail - s
        );
        assert_eq!(v["verdict"], "fail", "{a} ~ {b}: {v}");
        assert_eq!(reasons(&v), ["face_mismatch"]);
        highest_impostor = highest_impostor.max(s);
    }
    println!("lowest genuine {lowest_genuine:.4}, highest impostor {highest_impostor:.4}");
    assert!(lowest_genuine - highest_impostor > 0.3);
}

#[tokio::test]
async fn the_verdict_reports_faces_and_models_and_is_in_the_ledger() {
    let app = spawn_app().await;
    let (status, v) = app
        .match_photos(photo("obama.jpg"), photo("obama2.jpg"))
        .await;
    assert_eq!(status, 200);
    let r = &v["result"];
    for side in ["reference", "probe"] {
        let face = &r[side]["face"];
        assert!(face["box"]["width"].as_f64().unwrap() > 50.0, "{r}");
        assert!(face["detection_score"].as_f64().unwrap() > 0.5);
        assert!(face["eye_distance_px"].as_f64().unwrap() > 20.0);
        let q = face["quality"]["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&q));
        assert_eq!(r[side]["faces_detected"], 1);
    }
    assert_eq!(r["profile"], "default");
    assert_eq!(v["model"]["name"], "arcface_w600k_mbf");
    assert_eq!(r["detector"]["name"], "scrfd_500m_bnkps");
    let p = r["match_probability"].as_f64().unwrap();
    assert_eq!(v["confidence"].as_f64().unwrap(), p);
    assert_eq!(v["artifacts"].as_array().unwrap().len(), 2);
    let id = v["id"].as_str().unwrap();
    assert!(
        app.ledger().contains(id),
        "the verdict has its ledger entry"
    );
}

#[tokio::test]
async fn a_pair_through_the_s3_store_matches() {
    let app = spawn_app_with(|config, _| use_s3(config)).await;
    let (status, v) = app
        .match_photos(photo("obama3.jpg"), photo("obama.jpg"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["verdict"], "pass", "{v}");
}

#[tokio::test]
async fn an_image_without_a_face_fails_naming_its_side() {
    let app = spawn_app().await;
    let (status, v) = app.match_photos(photo("obama.jpg"), landscape_png()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["verdict"], "fail");
    assert_eq!(reasons(&v), ["no_face_probe"]);
    assert!(v["result"]["probe"]["face"].is_null());
    assert!(v["result"]["similarity"].is_null());
    let (_, v) = app.match_photos(landscape_png(), photo("obama.jpg")).await;
    assert_eq!(reasons(&v), ["no_face_reference"]);
    assert!(app.ledger().contains(v["id"].as_str().unwrap()));
}

#[tokio::test]
async fn a_group_photo_as_probe_is_multiple_faces() {
    let app = spawn_app().await;
    let (status, v) = app.match_photos(photo("obama.jpg"), photo("gdp.jpg")).await;
    assert_eq!(status, 200, "{v}");
    let faces = v["result"]["probe"]["faces_detected"].as_u64().unwrap();
    assert!(faces >= 3, "{v}");
    assert!(reasons(&v).contains(&"multiple_faces".to_owned()), "{v}");
    assert_eq!(v["verdict"], "review");
    assert_eq!(
        v["result"]["probe"]["other_faces"]
            .as_array()
            .unwrap()
            .len() as u64,
        faces - 1
    );
}

#[tokio::test]
async fn an_exif_rotated_copy_still_matches() {
    let app = spawn_app().await;
    let rotated = exif_rotated_jpeg(&photo("obama2.jpg"));
    let (status, v) = app.match_photos(photo("obama.jpg"), rotated).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["probe"]["exif_orientation"], 6);
    assert_eq!(v["verdict"], "pass", "{v}");
    println!(
        "EXIF-rotated obama2 ~ obama: similarity {:.4}",
        similarity(&v)
    );
}

#[tokio::test]
async fn the_strict_profile_raises_the_bar() {
    let app = spawn_app().await;
    let (r, p) = (
        app.put(photo("obama.jpg")).await,
        app.put(photo("obama2.jpg")).await,
    );
    let (_, v) = app.match_ids(&r, &p, Some("strict")).await;
    assert_eq!(v["result"]["profile"], "strict");
    assert_eq!(v["result"]["thresholds"]["pass"], 0.5);
    // A well-formed name the manifest does not hold is a missing resource, not a malformed request.
    let (status, v) = app.match_ids(&r, &p, Some("lenient")).await;
    assert_eq!(status, 404);
    assert_eq!(v["code"], "profile_not_found");
    assert!(v["detail"].as_str().unwrap().contains("lenient"));
}
