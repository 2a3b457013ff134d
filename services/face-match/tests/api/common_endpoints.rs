use face_match::{SERVICE, openapi};

use crate::helpers::spawn_app;

#[test]
fn openapi_file_matches_the_code() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../openapi")
        .join(format!("{SERVICE}.json"));
    idv_shared::testkit::openapi_drift(&openapi(), &file).unwrap();
}

#[tokio::test]
async fn common_endpoints_answer() {
    let app = spawn_app().await;
    idv_shared::testkit::assert_common_endpoints(app.addr, SERVICE, &openapi()).await;
}
