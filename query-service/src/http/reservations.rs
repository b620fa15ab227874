//! `GET /v1/reservations/{id}` and `GET /v1/customers/{id}/reservations?limit=&cursor=`, both
//! from PostgreSQL (reservations are not cached in Redis).
//!
//! A customer's list is keyset-paginated in reservation-id order (ids start with a
//! time-ordered UUID, so that is creation order), merged across shards. The cursor is the last
//! id of the page, hex-encoded behind a version prefix: opaque to clients, stable, and it never
//! skips or repeats a reservation however rows change between pages.

use std::hash::{Hash, Hasher};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use holdfast_domain::{CustomerId, ReservationId};
use holdfast_platform::auth::Principal;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::params::{Params, cached_json, etag, not_reached, reach, read_failed};
use super::problem::{FieldError, Problem, ProblemType};
use crate::position::Position;
use crate::read::ReservationView;
use crate::watermarks::Need;

/// Reservations concern one customer: private caches only, always revalidated.
pub const CACHE_CONTROL: &str = "private, no-cache";
/// Page size without `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest accepted `limit`.
pub const MAX_LIMIT: usize = 1000;
/// Prefix of every cursor this version writes.
const CURSOR_PREFIX: &str = "c1.";

/// A page of a customer's reservations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationPage {
    /// The reservations, oldest first.
    pub items: Vec<ReservationView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One reservation as the read model holds it.
#[utoipa::path(
    get, path = "/v1/reservations/{id}", tag = "reservations",
    params(
        ("id" = String, Path, description = "The reservation; an id no reservation can have answers 404", pattern = "^r1_[0-9a-f]{32}_[A-Za-z0-9.:-]{1,128}$", example = "r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel.berlin:room-101"),
        ("min_position" = Option<String>, Query, description = "Read-your-writes: a `position` from a command answer. A partition the events topic does not have is 422", pattern = "^[0-9]{1,9}\\.[0-9]{1,18}$"),
        ("Min-Position" = Option<String>, Header, description = "Same as `min_position` (the query parameter wins); empty counts as absent", pattern = "^([0-9]{1,9}\\.[0-9]{1,18})?$", nullable = false),
        ("If-None-Match" = Option<String>, Header, description = "An ETag of an earlier answer: 304 when unchanged", nullable = false),
    ),
    responses(
        (status = 200, description = "The reservation", body = ReservationView),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the token lacks `reservations:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown-reservation` (also another customer's)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-input`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`position-not-reached`, `unavailable`, `timeout`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reservation(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path();
    let id = match id
        .map_err(|e| e.body_text())
        .and_then(|Path(raw)| ReservationId::parse(&raw).map_err(|e| e.reason))
    {
        Ok(id) => id,
        Err(reason) => {
            let detail = format!("no reservation has this id: {reason}");
            return Problem::new(ProblemType::UnknownReservation, detail, path).into_response();
        }
    };
    let mut errors = Vec::new();
    let wanted = match Params::from_query(query) {
        Ok(params) => {
            params.only(&["min_position"], &mut errors);
            params.min_position(&headers, state.reads.partitions(), &mut errors)
        }
        Err(error) => {
            errors.push(error);
            None
        }
    };
    if !errors.is_empty() {
        return Problem::invalid_input(errors, path).into_response();
    }
    if let Err(problem) = reach(&state, &principal.subject, wanted, Need::Postgres, path).await {
        return problem.into_response();
    }
    match state.reads.reservation(&id).await {
        Ok(Some(found)) if principal.acts_for(&found.customer_id) => {
            if let Some(problem) = behind(&found, wanted, path) {
                return problem.into_response();
            }
            let tag = etag(&found.version.to_string());
            cached_json(&headers, &tag, CACHE_CONTROL, &found, &[])
        }
        // Another customer's reservation is answered as if it did not exist.
        Ok(_) => {
            Problem::new(ProblemType::UnknownReservation, "no reservation has this id", path).into_response()
        }
        Err(error) => read_failed(&error, path).into_response(),
    }
}

/// A 503 when the answer's position is behind the one waited for (never stale silently).
fn behind(found: &ReservationView, wanted: Option<Position>, path: &str) -> Option<Problem> {
    let wanted = wanted?;
    let position = found.position.as_deref().and_then(|p| Position::parse(p, i32::MAX).ok())?;
    (position.partition == wanted.partition && !position.reaches(wanted)).then(|| not_reached(wanted, path))
}

/// A customer's reservations, oldest first, `limit` per page.
#[utoipa::path(
    get, path = "/v1/customers/{id}/reservations", tag = "reservations",
    params(
        ("id" = String, Path, description = "The customer: 1–128 characters, no control characters, no leading or trailing whitespace (422 otherwise)", pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]([^\\u0000-\\u001f\\u007f-\\u009f]{0,126}[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000])?$", example = "customer-42"),
        ("limit" = Option<u32>, Query, description = "Page size (default 50)", minimum = 1, maximum = 1000),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page; anything else is 422", pattern = "^c1\\.([0-9a-f]{2})+$"),
        ("min_position" = Option<String>, Query, description = "Read-your-writes: a `position` from a command answer. A partition the events topic does not have is 422", pattern = "^[0-9]{1,9}\\.[0-9]{1,18}$"),
        ("Min-Position" = Option<String>, Header, description = "Same as `min_position` (the query parameter wins); empty counts as absent", pattern = "^([0-9]{1,9}\\.[0-9]{1,18})?$", nullable = false),
        ("If-None-Match" = Option<String>, Header, description = "An ETag of an earlier answer: 304 when unchanged", nullable = false),
    ),
    responses(
        (status = 200, description = "One page", body = ReservationPage),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the token lacks `reservations:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found`: another customer (only `resources:admin` reads anyone's)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-input`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`position-not-reached`, `unavailable`, `timeout`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn customer_reservations(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path();
    let mut errors = Vec::new();
    let customer = match id {
        Ok(Path(raw)) => {
            CustomerId::parse(&raw).map_err(|e| errors.push(FieldError::new("customer_id", e.reason))).ok()
        }
        Err(e) => {
            errors.push(FieldError::new("customer_id", e.body_text()));
            None
        }
    };
    let params = Params::from_query(query).map_err(|e| errors.push(e)).unwrap_or_default();
    params.only(&["limit", "cursor", "min_position"], &mut errors);
    let limit = parse_limit(params.get("limit"), &mut errors);
    let after = params.get("cursor").and_then(|raw| decode_cursor(raw).map_err(|e| errors.push(e)).ok());
    let wanted = params.min_position(&headers, state.reads.partitions(), &mut errors);
    let Some(customer) = customer.filter(|_| errors.is_empty()) else {
        return Problem::invalid_input(errors, path).into_response();
    };
    if !principal.acts_for(customer.as_str()) {
        let detail = "no reservations of this customer are visible to this token";
        return Problem::new(ProblemType::NotFound, detail, path).into_response();
    }
    if let Err(problem) = reach(&state, &principal.subject, wanted, Need::Postgres, path).await {
        return problem.into_response();
    }
    match state.reads.customer_reservations(&customer, after.as_ref(), limit).await {
        Ok((items, more)) => {
            let next_cursor =
                if more { items.last().map(|last| encode_cursor(&last.reservation_id)) } else { None };
            let page = ReservationPage { items, next_cursor };
            let tag = etag(&fingerprint(&page));
            cached_json(&headers, &tag, CACHE_CONTROL, &page, &[])
        }
        Err(error) => read_failed(&error, path).into_response(),
    }
}

/// `limit` in 1..=[`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
fn parse_limit(raw: Option<&str>, errors: &mut Vec<FieldError>) -> usize {
    let Some(raw) = raw else { return DEFAULT_LIMIT };
    match raw.parse::<usize>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
        _ => {
            errors.push(FieldError::new(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}, got {raw:?}"),
            ));
            DEFAULT_LIMIT
        }
    }
}

/// The cursor after `reservation_id`.
fn encode_cursor(reservation_id: &str) -> String {
    let mut cursor = String::with_capacity(CURSOR_PREFIX.len() + reservation_id.len() * 2);
    cursor.push_str(CURSOR_PREFIX);
    for byte in reservation_id.bytes() {
        cursor.push_str(&format!("{byte:02x}"));
    }
    cursor
}

/// The reservation id a cursor continues after.
fn decode_cursor(cursor: &str) -> Result<ReservationId, FieldError> {
    let invalid = || FieldError::new("cursor", "not a cursor from a previous page's next_cursor");
    let hex = cursor.strip_prefix(CURSOR_PREFIX).ok_or_else(invalid)?;
    if hex.len() % 2 != 0 || hex.len() > 1024 {
        return Err(invalid());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    let id = String::from_utf8(bytes).map_err(|_| invalid())?;
    ReservationId::parse(&id).map_err(|_| invalid())
}

/// A tag of a page's content: its ids, their versions and the cursor.
fn fingerprint(page: &ReservationPage) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    for item in &page.items {
        item.reservation_id.hash(&mut hasher);
        item.version.hash(&mut hasher);
    }
    page.next_cursor.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = "r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel.berlin:room-101";
        let parsed = ReservationId::parse(id).expect("valid id");
        assert_eq!(decode_cursor(&encode_cursor(id)).expect("round trip"), parsed);
        for bad in ["", "c1.", "c1.zz", "c1.abc", "x", "c2.41", "c1.4142"] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_are_1_to_1000() {
        let mut errors = Vec::new();
        assert_eq!(parse_limit(None, &mut errors), DEFAULT_LIMIT);
        assert_eq!(parse_limit(Some("1000"), &mut errors), 1000);
        assert!(errors.is_empty());
        for bad in ["0", "1001", "10000", "-1", "x", "1.5"] {
            parse_limit(Some(bad), &mut errors);
        }
        assert_eq!(errors.len(), 6);
    }
}
