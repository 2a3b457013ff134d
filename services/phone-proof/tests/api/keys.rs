//! The key ring from a file, rotated by a reload (SIGHUP) while challenges are open.

use serde_json::Value;

use crate::{
    both_backends,
    helpers::{Backend, spawn_app_with},
};

const NUMBER: &str = "+4915112345678";

both_backends!(a_rotation_keeps_open_challenges_and_per_number_counts);

fn secret(byte: u8) -> String {
    hex::encode([byte; 32])
}

async fn a_rotation_keeps_open_challenges_and_per_number_counts(backend: Backend) {
    let keys = tempfile::tempdir().unwrap();
    let ring = keys.path().join("ring");
    std::fs::write(&ring, secret(1)).unwrap();
    let file = ring.clone();
    let app = spawn_app_with(backend, move |_, s| {
        s.secret_key_file = Some(file);
        s.number_max_challenges = 4;
    })
    .await;
    let token = app.token();
    let before = app.challenge(&token, NUMBER).await;

    // Rotate: a second secret appended, the service signalled. Challenges from before still open.
    std::fs::write(&ring, format!("{}\n{}\n", secret(1), secret(2))).unwrap();
    app.kernel.reload();
    let after = app.challenge(&token, NUMBER).await;
    let pending = app.challenge(&token, NUMBER).await;
    for id in [&before, &after] {
        let v = app.verdict(&token, id, &app.code(id)).await;
        assert_eq!(v["verdict"], "pass", "{v}");
    }

    // New challenges were sealed under the new secret: retired too early, it takes them with it (the README says
    // to wait until they have expired).
    std::fs::write(&ring, secret(1)).unwrap();
    app.kernel.reload();
    let v = app.verdict(&token, &pending, &app.code(&pending)).await;
    assert_eq!(v["verdict"], "fail", "{v}");

    // A reload that would rename numbers is refused: the ring stays, and the count of challenges per number
    // carried across every reload.
    std::fs::write(&ring, secret(2)).unwrap();
    app.kernel.reload();
    let fourth = app.challenge(&token, NUMBER).await;
    let v = app.verdict(&token, &fourth, &app.code(&fourth)).await;
    assert_eq!(v["verdict"], "pass", "{v}");
    let res = app.create(&token, &app.put_phone(NUMBER).await).await;
    assert_eq!(
        res.status(),
        429,
        "the fifth challenge of the number in ten minutes"
    );
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "phone_rate_limited"
    );
}
