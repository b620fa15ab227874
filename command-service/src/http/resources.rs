//! `POST /v1/resources` (define a resource) and `PUT /v1/resources/{id}/capacity` (change the
//! capacity of a date range).
//!
//! A resource id in the path that is not a valid resource id answers 404 `unknown-resource`:
//! no such resource can exist, and the path is not a field the client fills in a form.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use holdfast_domain::ResourceId;

use super::AppState;
use super::body::JsonBody;
use super::dto::{ChangeCapacityRequest, DefineResourceRequest};
use super::intake::{Intake, path_id};
use super::outcome::ResourceResponse;
use super::problem::{Problem, ProblemType};

/// Defines a resource; repeating the exact definition is a no-op answered 200.
#[utoipa::path(
    post, path = "/v1/resources", tag = "resources",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; retries with the same key get the first answer", pattern = "^[!-~]{1,255}$", nullable = false)),
    request_body(content = DefineResourceRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Defined", body = ResourceResponse),
        (status = 200, description = "Already defined exactly so; nothing changed", body = ResourceResponse),
        (status = 202, description = "Accepted, not decided yet: poll `location`", body = super::outcome::PendingResponse),
        (status = 400, description = "`malformed-json`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`resource-conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`request-timeout`: the body did not arrive within 5 s; the connection is closed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body-too-large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported-media-type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-input`, `idempotency-key-reused`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`, `timeout`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn define(
    State(state): State<AppState>,
    intake: Intake,
    JsonBody(body): JsonBody<DefineResourceRequest>,
) -> Response {
    intake.submit(&state, |_| body.into_command()).await
}

/// Sets the capacity of every day in `[from, to)`.
#[utoipa::path(
    put, path = "/v1/resources/{id}/capacity", tag = "resources",
    params(
        ("id" = String, Path, description = "The resource; an id no resource can have answers 404", pattern = "^[A-Za-z0-9.:-]{1,128}$", example = "hotel.berlin:room-101"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional on PUT; same rules as on POST", pattern = "^[!-~]{1,255}$", nullable = false),
    ),
    request_body(content = ChangeCapacityRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed", body = ResourceResponse),
        (status = 202, description = "Accepted, not decided yet: poll `location`", body = super::outcome::PendingResponse),
        (status = 400, description = "`malformed-json`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown-resource`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`capacity-below-usage`", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`request-timeout`: the body did not arrive within 5 s; the connection is closed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body-too-large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported-media-type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-input`, `idempotency-key-reused`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`, `timeout`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_capacity(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    intake: Intake,
    JsonBody(body): JsonBody<ChangeCapacityRequest>,
) -> Response {
    let resource_id = match path_id(id, ResourceId::parse) {
        Ok(resource_id) => resource_id,
        Err(reason) => {
            let detail = format!("no resource has this id: {reason}");
            return Problem::new(ProblemType::UnknownResource, detail, &intake.path).into_response();
        }
    };
    intake.submit(&state, |_| body.into_command(resource_id)).await
}
