//! The command API's OpenAPI document is kept in `docs/api/command-api.openapi.json`, where the
//! infrastructure validation (`make validate-infra`) lints it offline. This test fails when the
//! generated document and the file disagree; `HOLDFAST_BLESS=1 cargo test --test
//! openapi_document` rewrites the file.

use std::path::PathBuf;

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = holdfast_command_service::http::openapi::document();
    let generated = serde_json::to_string_pretty(&generated).expect("the document serializes") + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/api/command-api.openapi.json");
    if std::env::var_os("HOLDFAST_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("docs/api is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: run `HOLDFAST_BLESS=1 cargo test -p holdfast-command-service --test openapi_document`",
        path.display()
    );
}
