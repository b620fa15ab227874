//! Renders a committed [`Outcome`] as the HTTP answer of the endpoint that issued it, the same
//! way whether it is answered at once or polled later through `/v1/commands/{command_id}`.
//!
//! This module owns the mapping from verdicts and rejection codes to status codes and problem
//! types. It never decides anything; a missing or inconsistent outcome is a bug (500).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use holdfast_domain::{Rejection, ReservationId, ReservationStatus};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use utoipa::ToSchema;
use uuid::Uuid;

use super::problem::{Problem, ProblemType};
use crate::envelope::{Outcome, Verdict};

/// Answer of the resource endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceResponse {
    /// The resource.
    #[schema(example = "hotel.berlin:room-101")]
    pub resource_id: String,
    /// Read-your-writes token for the query service (opaque).
    #[schema(example = "17.4242")]
    pub position: String,
}

/// Answer of the reservation endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationResponse {
    /// The reservation (it encodes its resource).
    #[schema(example = "r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel.berlin:room-101")]
    pub reservation_id: String,
    /// `held`, `confirmed`, `cancelled` or `expired`, as the reservation stands now.
    #[schema(example = "held")]
    pub status: String,
    /// When a hold lapses unless confirmed (RFC 3339, UTC); only for `held`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-03-01T12:15:00Z")]
    pub expires_at: Option<String>,
    /// Read-your-writes token for the query service (opaque).
    #[schema(example = "17.4242")]
    pub position: String,
}

/// Answer when a command was handed to its partition but not decided within the wait.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingResponse {
    /// The command to poll for.
    pub command_id: Uuid,
    /// Always `pending`.
    #[schema(example = "pending")]
    pub status: &'static str,
    /// Where to poll: `/v1/commands/{command_id}` (also the `Location` header).
    pub location: String,
}

/// 202 Accepted with a `Location` to poll.
pub fn pending(command_id: Uuid) -> Response {
    let location = format!("/v1/commands/{command_id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(PendingResponse { command_id, status: "pending", location: location.clone() }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The answer for `outcome` at `instance`. `reservation` names the reservation when the
/// caller knows it, in case the outcome carries no view of it.
pub fn render(outcome: &Outcome, instance: &str, reservation: Option<&ReservationId>) -> Response {
    match &outcome.verdict {
        Verdict::Accepted { events, reservation: view } => {
            let position = outcome.position.token();
            let created = if *events > 0 { StatusCode::CREATED } else { StatusCode::OK };
            let reservation_answer = |status: StatusCode| {
                let (id, state) = match (view, reservation) {
                    (Some(view), _) => (&view.reservation_id, Some(view.status)),
                    (None, Some(id)) => (id, None),
                    (None, None) => {
                        let cause = format!("accepted {} outcome without a reservation", outcome.command);
                        return Problem::internal(&cause, instance).into_response();
                    }
                };
                match reservation_body(id, state, outcome.command.as_str(), position.clone()) {
                    Ok(body) => (status, Json(body)).into_response(),
                    Err(cause) => Problem::internal(&cause, instance).into_response(),
                }
            };
            match outcome.command.as_str() {
                "define-resource" | "change-capacity" => {
                    let status = if outcome.command == "define-resource" { created } else { StatusCode::OK };
                    let body = ResourceResponse { resource_id: outcome.resource_id.to_string(), position };
                    (status, Json(body)).into_response()
                }
                "place-hold" => reservation_answer(StatusCode::CREATED),
                "confirm-reservation" | "cancel-reservation" => reservation_answer(StatusCode::OK),
                other => Problem::internal(&format!("outcome of unknown command kind {other:?}"), instance)
                    .into_response(),
            }
        }
        Verdict::Rejected { rejection } => rejected(rejection, instance).into_response(),
        Verdict::KeyReused => key_reused(instance).into_response(),
    }
}

/// 422 `idempotency-key-reused`.
#[must_use]
pub fn key_reused(instance: &str) -> Problem {
    let detail = "this Idempotency-Key was used before for a different request; use a new key";
    Problem::new(ProblemType::IdempotencyKeyReused, detail, instance)
}

/// The body of a reservation answer. Without a view, the status is the one the command aims at.
fn reservation_body(
    id: &ReservationId,
    status: Option<ReservationStatus>,
    command: &str,
    position: String,
) -> Result<ReservationResponse, String> {
    let (status, expires_at) = match status {
        Some(ReservationStatus::Held { expires_at }) => ("held", Some(rfc3339(expires_at)?)),
        Some(other) => (other.as_str(), None),
        None => match command {
            "place-hold" => ("held", None),
            "confirm-reservation" => ("confirmed", None),
            _ => ("cancelled", None),
        },
    };
    Ok(ReservationResponse {
        reservation_id: id.to_string(),
        status: status.to_owned(),
        expires_at,
        position,
    })
}

/// `at` as RFC 3339 in UTC.
fn rfc3339(at: OffsetDateTime) -> Result<String, String> {
    at.to_offset(UtcOffset::UTC).format(&Rfc3339).map_err(|e| format!("cannot format {at}: {e}"))
}

/// The problem for a business rejection: 404 for unknown ids, 409 for conflicts with the
/// current state, 500 for a misrouted command (a bug in the command service).
#[must_use]
pub fn rejected(rejection: &Rejection, instance: &str) -> Problem {
    let detail = rejection.to_string();
    let problem = |kind| Problem::new(kind, detail.clone(), instance);
    match rejection {
        Rejection::UnknownResource { resource_id } => {
            Problem { resource_id: Some(resource_id.to_string()), ..problem(ProblemType::UnknownResource) }
        }
        Rejection::ResourceConflict { resource_id, .. } => {
            Problem { resource_id: Some(resource_id.to_string()), ..problem(ProblemType::ResourceConflict) }
        }
        Rejection::CapacityBelowUsage { slot, requested, in_use } => Problem {
            slot: Some(slot.to_string()),
            requested: Some(requested.get()),
            in_use: Some(*in_use),
            ..problem(ProblemType::CapacityBelowUsage)
        },
        Rejection::InsufficientCapacity { slot, requested, available } => Problem {
            slot: Some(slot.to_string()),
            requested: Some(requested.get()),
            available: Some(*available),
            ..problem(ProblemType::InsufficientCapacity)
        },
        Rejection::ReservationConflict { reservation_id } => Problem {
            reservation_id: Some(reservation_id.to_string()),
            ..problem(ProblemType::ReservationConflict)
        },
        Rejection::UnknownReservation { reservation_id } => Problem {
            reservation_id: Some(reservation_id.to_string()),
            ..problem(ProblemType::UnknownReservation)
        },
        Rejection::HoldExpired { reservation_id, expired_at } => Problem {
            reservation_id: Some(reservation_id.to_string()),
            expired_at: rfc3339(*expired_at).ok(),
            ..problem(ProblemType::HoldExpired)
        },
        Rejection::AlreadyCancelled { reservation_id } => Problem {
            reservation_id: Some(reservation_id.to_string()),
            ..problem(ProblemType::AlreadyCancelled)
        },
        Rejection::MisroutedCommand { .. } => Problem::internal(rejection, instance),
    }
}

#[cfg(test)]
mod tests;
