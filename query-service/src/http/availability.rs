//! `GET /v1/resources/{id}/availability?from=&to=`: per-day capacity, held, confirmed and
//! available units, Redis first, with the position the answer reflects.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use holdfast_domain::{CapacityRange, ResourceId};
use holdfast_platform::auth::Principal;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::params::{Params, cached_json, etag, not_reached, reach, read_failed};
use super::problem::{Problem, ProblemType};
use crate::position::Position;
use crate::read::{Availability, SlotView};
use crate::watermarks::Need;

/// Availability answers may be served from shared caches for a second: availability is
/// advisory (a hold is decided against the log, never against this view) and hot resources
/// are read far more often than they change. Clients revalidate cheaply with `If-None-Match`.
pub const CACHE_CONTROL: &str = "public, max-age=1";

/// Header naming the source of an availability answer (`redis` or `postgres`).
pub const SOURCE_HEADER: &str = "holdfast-source";

/// Answer of the availability endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityResponse {
    /// The resource.
    #[schema(example = "hotel.berlin:room-101")]
    pub resource_id: String,
    /// One entry per day of `[from, to)`, in order.
    pub slots: Vec<SlotView>,
    /// How far the projection of the resource's partition had come (opaque; usable as
    /// `min_position`).
    #[schema(example = "17.4242")]
    pub position: String,
}

impl From<&Availability> for AvailabilityResponse {
    fn from(found: &Availability) -> Self {
        Self {
            resource_id: found.resource_id.clone(),
            slots: found.slots.clone(),
            position: found.position.to_string(),
        }
    }
}

/// Availability of a resource per day over `[from, to)` (1 to 366 days).
#[utoipa::path(
    get, path = "/v1/resources/{id}/availability", tag = "availability",
    params(
        ("id" = String, Path, description = "The resource; an id no resource can have answers 404", pattern = "^[A-Za-z0-9.:-]{1,128}$", example = "hotel.berlin:room-101"),
        ("from" = String, Query, description = "First day, YYYY-MM-DD", format = Date, example = "2031-03-01"),
        ("to" = String, Query, description = "Day after the last (exclusive), YYYY-MM-DD; after `from` and at most 366 days after it (422 otherwise)", format = Date, example = "2031-03-05"),
        ("min_position" = Option<String>, Query, description = "Read-your-writes: a `position` from a command answer; waits (bounded) until the read model reached it. A partition the events topic does not have is 422", pattern = "^[0-9]{1,9}\\.[0-9]{1,18}$"),
        ("Min-Position" = Option<String>, Header, description = "Same as `min_position` (the query parameter wins); empty counts as absent", pattern = "^([0-9]{1,9}\\.[0-9]{1,18})?$", nullable = false),
        ("If-None-Match" = Option<String>, Header, description = "An ETag of an earlier answer: 304 when unchanged", nullable = false),
    ),
    responses(
        (status = 200, description = "Availability per day", body = AvailabilityResponse),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 404, description = "`unknown-resource`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-input`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`: this client has as many read-your-writes waits parked as it may, or made more requests than its rate allows", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`position-not-reached`, `unavailable`, `timeout`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn availability(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path();
    let request = match AvailabilityRequest::parse(&state, id, query, &headers, path) {
        Ok(request) => request,
        Err(problem) => return problem.into_response(),
    };
    match read(&state, &principal.subject, &request.resource, &request.range, request.wanted, path).await {
        Ok(found) => {
            let body = AvailabilityResponse::from(&found);
            let tag = etag(&found.version.to_string());
            cached_json(&headers, &tag, CACHE_CONTROL, &body, &[(SOURCE_HEADER, found.source.as_str())])
        }
        Err(problem) => problem.into_response(),
    }
}

/// A validated availability request.
#[derive(Debug)]
pub struct AvailabilityRequest {
    /// The resource.
    pub resource: ResourceId,
    /// The days.
    pub range: CapacityRange,
    /// The read-your-writes position, if any.
    pub wanted: Option<Position>,
}

impl AvailabilityRequest {
    /// Validates path, query and headers; 404 for an impossible id, 422 listing bad parameters.
    #[allow(clippy::result_large_err, reason = "built once per refused request")]
    pub fn parse(
        state: &AppState,
        id: Result<Path<String>, PathRejection>,
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        headers: &HeaderMap,
        path: &str,
    ) -> Result<Self, Problem> {
        let resource = resource_id(id, path)?;
        let mut errors = Vec::new();
        let params = Params::from_query(query).map_err(|e| Problem::invalid_input(vec![e], path))?;
        params.only(&["from", "to", "min_position"], &mut errors);
        let range = params.range(&mut errors);
        let wanted = params.min_position(headers, state.reads.partitions(), &mut errors);
        match range {
            Some(range) if errors.is_empty() => Ok(Self { resource, range, wanted }),
            _ => Err(Problem::invalid_input(errors, path)),
        }
    }
}

/// The resource id in the path, or 404.
#[allow(clippy::result_large_err, reason = "built once per refused request")]
pub fn resource_id(id: Result<Path<String>, PathRejection>, path: &str) -> Result<ResourceId, Problem> {
    let unknown = |reason: String| {
        Problem::new(ProblemType::UnknownResource, format!("no resource has this id: {reason}"), path)
    };
    let Path(raw) = id.map_err(|e| unknown(e.body_text()))?;
    ResourceId::parse(&raw).map_err(|e| unknown(e.reason))
}

/// Availability after the wait for `wanted`, from the source that reached it; 404 when the
/// resource is unknown.
pub async fn read(
    state: &AppState,
    client: &str,
    resource: &ResourceId,
    range: &CapacityRange,
    wanted: Option<Position>,
    path: &str,
) -> Result<Availability, Problem> {
    let prefer = reach(state, client, wanted, Need::Any, path).await?;
    let found =
        state.reads.availability(resource, range, prefer, wanted).await.map_err(|e| read_failed(&e, path))?;
    let Some(found) = found else {
        return Err(Problem::new(ProblemType::UnknownResource, "no resource has this id", path));
    };
    state.watermarks.saw(found.source, found.position);
    // Never stale data silently: a source that lost ground (Redis flushed) since the wait.
    if let Some(wanted) =
        wanted.filter(|w| w.partition == found.position.partition && !found.position.reaches(*w))
    {
        return Err(not_reached(wanted, path));
    }
    Ok(found)
}
