//! The command API's OpenAPI document is kept in `docs/api/command-api.openapi.json`, where the
//! infrastructure validation (`make validate-infra`) lints it offline. This test fails when the
//! generated document and the file disagree; `HOLDFAST_BLESS=1` rewrites the file.

#[test]
fn the_committed_openapi_document_matches_the_code() {
    holdfast_platform::testing::committed_document(
        &holdfast_command_service::http::openapi::document(),
        "command-api.openapi.json",
        "cargo test -p holdfast-command-service --test openapi_document",
    );
}
