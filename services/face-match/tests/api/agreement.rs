//! The Rust pipeline's embeddings agree with an independent reference: the same aligned crops embedded by
//! Python's onnxruntime with OpenCV/NumPy preprocessing (tools/face-reference/face_reference.py).

use face_match::{
    models::{ModelSet, RuntimeOptions},
    pipeline,
};
use idv_shared::imaging::DecodeLimits;

use crate::helpers::{photo, repo, settings};

#[test]
fn embeddings_agree_with_the_python_onnxruntime_reference() {
    let s = settings();
    let options = RuntimeOptions {
        dylib: s.ort_dylib_path(),
        threads: 1,
        slots: 1,
    };
    let set = ModelSet::load(&s.manifest, &options, 1).unwrap();
    let mut sessions = set.sessions(0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "biden.jpg",
        "yaoming.jpg",
        "gdp.jpg",
    ];
    let mut crops = Vec::new();
    let mut ours = Vec::new();
    for name in names {
        let a = pipeline::analyse(
            &photo(name),
            DecodeLimits::default(),
            &set.manifest,
            &mut sessions,
        )
        .unwrap();
        let crop = a.crop.expect("a face");
        let path = dir.path().join(format!("{name}.png"));
        crop.save(&path).unwrap();
        crops.push(path);
        ours.push(a.chosen.unwrap().1);
    }
    let python = repo().join(".cache/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test.sh installs the test tools",
        python.display()
    );
    let out = std::process::Command::new(python)
        .arg(repo().join("tools/face-reference/face_reference.py"))
        .arg("--manifest")
        .arg(&s.manifest)
        .arg("embed-crops")
        .args(&crops)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), ours.len());
    for ((name, a), b) in names.iter().zip(&ours).zip(&theirs) {
        let cos = pipeline::cosine(a, b);
        println!("{name}: cosine(Rust, Python reference) = {cos:.6}");
        assert!(cos >= 0.99, "{name}: {cos}");
    }
}
