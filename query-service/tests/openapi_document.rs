//! The query API's OpenAPI document is kept in `docs/api/query-api.openapi.json`, where the
//! infrastructure validation (`make validate-infra`) lints it offline. This test fails when the
//! generated document and the file disagree; `HOLDFAST_BLESS=1` rewrites the file.

#[test]
fn the_committed_openapi_document_matches_the_code() {
    holdfast_platform::testing::committed_document(
        &holdfast_query_service::http::openapi::document(),
        "query-api.openapi.json",
        "cargo test -p holdfast-query-service --test openapi_document",
    );
}
