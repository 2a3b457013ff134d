use phone_proof::{SERVICE, openapi};

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

#[test]
fn every_route_names_a_declared_security_scheme_and_its_scope() {
    let spec = serde_json::to_value(openapi()).unwrap();
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    let mut checked = 0;
    for (path, methods) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in methods.as_object().unwrap() {
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} has no security"));
            for requirement in security {
                for (name, scopes) in requirement.as_object().unwrap() {
                    assert!(
                        schemes.contains_key(name),
                        "{method} {path}: unknown scheme {name}"
                    );
                    assert!(
                        scopes[0].as_str().unwrap().starts_with("phone:"),
                        "{method} {path}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}
