//! `POST /v1/reservations` (place a hold), `POST /v1/reservations/{id}/confirm` and
//! `POST /v1/reservations/{id}/cancel`.
//!
//! A reservation id in the path that does not parse answers 404 `unknown-reservation`: ids are
//! minted by this API, so a malformed one cannot name an existing reservation.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use holdfast_domain::ReservationId;

use super::AppState;
use super::body::{JsonBody, OptionalJsonBody};
use super::dto::{CancelRequest, ConfirmRequest, PlaceHoldRequest};
use super::intake::{Intake, path_id};
use super::outcome::{PendingResponse, ReservationResponse};
use super::problem::{Problem, ProblemType};

/// Holds `quantity` units on every day of `[from, to)`, all or nothing, for `hold_seconds`.
///
/// The reservation id is minted from the command id, so a retry with the same
/// `Idempotency-Key` names (and answers for) the same reservation.
#[utoipa::path(
    post, path = "/v1/reservations", tag = "reservations",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; retries with the same key get the first answer", pattern = "^[!-~]{1,255}$", nullable = false)),
    request_body(content = PlaceHoldRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Held", body = ReservationResponse),
        (status = 202, description = "Accepted, not decided yet: poll `location`", body = PendingResponse),
        (status = 400, description = "`malformed-json`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown-resource`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient-capacity`, `reservation-conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`request-timeout`: the body did not arrive within 5 s; the connection is closed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body-too-large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported-media-type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-input`, `idempotency-key-reused`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`, `timeout`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn place_hold(
    State(state): State<AppState>,
    intake: Intake,
    JsonBody(body): JsonBody<PlaceHoldRequest>,
) -> Response {
    intake.submit(&state, |command_id| body.into_command(command_id)).await
}

/// Confirms a live hold. The body is optional.
#[utoipa::path(
    post, path = "/v1/reservations/{id}/confirm", tag = "reservations",
    params(
        ("id" = String, Path, description = "The reservation; an id no reservation can have answers 404", pattern = "^r1_[0-9a-f]{32}_[A-Za-z0-9.:-]{1,128}$", example = "r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel.berlin:room-101"),
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; retries with the same key get the first answer", pattern = "^[!-~]{1,255}$", nullable = false),
    ),
    request_body(content = Option<ConfirmRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "Confirmed (or already confirmed)", body = ReservationResponse),
        (status = 202, description = "Accepted, not decided yet: poll `location`", body = PendingResponse),
        (status = 400, description = "`malformed-json`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown-reservation`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`hold-expired`, `already-cancelled`", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`request-timeout`: the body did not arrive within 5 s; the connection is closed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body-too-large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported-media-type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-input`, `idempotency-key-reused`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`, `timeout`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    intake: Intake,
    OptionalJsonBody(body): OptionalJsonBody<ConfirmRequest>,
) -> Response {
    match reservation(id, &intake) {
        Ok(reservation_id) => intake.submit(&state, |_| body.into_command(reservation_id)).await,
        Err(problem) => problem.into_response(),
    }
}

/// Cancels a held or confirmed reservation; cancelling again answers 200 with the same status.
/// The body is optional.
#[utoipa::path(
    post, path = "/v1/reservations/{id}/cancel", tag = "reservations",
    params(
        ("id" = String, Path, description = "The reservation; an id no reservation can have answers 404", pattern = "^r1_[0-9a-f]{32}_[A-Za-z0-9.:-]{1,128}$", example = "r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel.berlin:room-101"),
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; retries with the same key get the first answer", pattern = "^[!-~]{1,255}$", nullable = false),
    ),
    request_body(content = Option<CancelRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "Cancelled (or already cancelled)", body = ReservationResponse),
        (status = 202, description = "Accepted, not decided yet: poll `location`", body = PendingResponse),
        (status = 400, description = "`malformed-json`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown-reservation`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`hold-expired`", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "`request-timeout`: the body did not arrive within 5 s; the connection is closed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body-too-large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported-media-type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-input`, `idempotency-key-reused`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`, `timeout`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    intake: Intake,
    OptionalJsonBody(body): OptionalJsonBody<CancelRequest>,
) -> Response {
    match reservation(id, &intake) {
        Ok(reservation_id) => intake.submit(&state, |_| body.into_command(reservation_id)).await,
        Err(problem) => problem.into_response(),
    }
}

/// The reservation id in the path, or 404.
#[allow(
    clippy::result_large_err,
    reason = "built once per refused request; boxing would only add an allocation"
)]
fn reservation(id: Result<Path<String>, PathRejection>, intake: &Intake) -> Result<ReservationId, Problem> {
    path_id(id, ReservationId::parse).map_err(|reason| {
        let detail = format!("no reservation has this id: {reason}");
        Problem::new(ProblemType::UnknownReservation, detail, &intake.path)
    })
}
