//! `GET /v1/resources/{id}/availability/stream?from=&to=`: Server-Sent Events with the
//! resource's availability over a range of days.
//!
//! Every stream starts with a `snapshot` event (the availability answer, `id` = its version),
//! then sends `update` events with the changed days of the range as the projection publishes
//! them, and a comment line every heartbeat interval. A reconnecting client (`Last-Event-ID`)
//! gets a fresh snapshot first, like a new one: the snapshot is the resynchronisation point,
//! so nothing depends on what the client saw. A snapshot is also sent whenever updates may
//! have been missed (the Redis pub/sub connection came back, the stream lagged) or the
//! resource's default capacity changed; while live updates are down the stream re-reads the
//! snapshot every poll interval and sends it when it changed.

use std::convert::Infallible;
use std::sync::Arc;

use crate::read::layout::{Update, UpdatedSlot};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use holdfast_domain::{CapacityRange, ResourceId, Slot};
use holdfast_platform::auth::Principal;
use holdfast_platform::auth::slots::ClientSlot;
use holdfast_platform::service::Admitted;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, Interval};

use super::AppState;
use super::availability::{AvailabilityResponse, read, resource_id};
use super::params::Params;
use super::problem::{FieldError, Problem, ProblemType};
use crate::live::Subscription;
use crate::read::Availability;

/// Days streamed without `to`: `from` (default today, UTC) and the 30 after it.
const DEFAULT_DAYS: i64 = 31;

/// The data of an `update` event: the days of the stream's range that changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpdateEvent {
    /// The resource.
    pub resource_id: String,
    /// Version after the change (also the event `id`).
    pub version: i64,
    /// The changed days, with their new values.
    pub slots: Vec<UpdatedSlot>,
}

/// One event of a live stream as an SSE parser hands it over: the documentation of the wire
/// format (axum's [`Event`] writes it), never built here.
#[derive(Debug, utoipa::ToSchema)]
pub struct StreamEvent {
    /// `snapshot` or `update`.
    #[schema(pattern = "^(snapshot|update)$", example = "snapshot")]
    pub event: String,
    /// The event's JSON: an `AvailabilityResponse` for `snapshot`, an `UpdateEvent` for
    /// `update`.
    #[schema(content_media_type = "application/json")]
    pub data: String,
    /// The availability's version after the event; a reconnecting client sends the last one
    /// as `Last-Event-ID`.
    #[schema(pattern = "^[0-9]+$", example = "42")]
    pub id: String,
}

/// Live availability of a resource as Server-Sent Events.
#[utoipa::path(
    get, path = "/v1/resources/{id}/availability/stream", tag = "availability",
    params(
        ("id" = String, Path, description = "The resource; an id no resource can have answers 404", pattern = "^[A-Za-z0-9.:-]{1,128}$", example = "hotel.berlin:room-101"),
        ("from" = Option<String>, Query, description = "First day (default today, UTC)", format = Date, example = "2031-03-01"),
        ("to" = Option<String>, Query, description = "Day after the last (exclusive; default 31 days after `from`); after `from` and at most 366 days after it (422 otherwise)", format = Date, example = "2031-03-05"),
        ("min_position" = Option<String>, Query, description = "The first snapshot reflects at least this position. A partition the events topic does not have is 422", pattern = "^[0-9]{1,9}\\.[0-9]{1,18}$"),
        ("Min-Position" = Option<String>, Header, description = "Same as `min_position` (the query parameter wins); empty counts as absent", pattern = "^([0-9]{1,9}\\.[0-9]{1,18})?$", nullable = false),
        ("Last-Event-ID" = Option<String>, Header, description = "Set by reconnecting clients; the stream starts with a fresh snapshot", nullable = false),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: a `snapshot` event (data: an AvailabilityResponse), then `update` events (data: an UpdateEvent), a fresh `snapshot` whenever updates may have been missed, and heartbeat comments. The schema is that of one event", content_type = "text/event-stream", body = StreamEvent),
        (status = 404, description = "`unknown-resource`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-input`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate-limited`: this client has as many streams open as it may", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`too-many-streams`, `position-not-reached`, `unavailable`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path().to_owned();
    let (resource, range, wanted) = match parse(&state, id, query, &headers, &path) {
        Ok(parsed) => parsed,
        Err(problem) => return problem.into_response(),
    };
    let Some(client_slot) = state.client_streams.take(&principal.subject) else {
        let detail = "this client has as many live streams open as it may; close one first";
        return Problem::new(ProblemType::RateLimited, detail, &path).retry_after(5).into_response();
    };
    let Some(slot) = StreamSlot::take(&state) else {
        let detail = "this instance serves as many live streams as it may; retry later";
        return Problem::new(ProblemType::TooManyStreams, detail, &path).retry_after(5).into_response();
    };
    // Subscribed before the snapshot is read, so no update after it can be missed.
    let subscription = state.live.subscribe(resource.as_str());
    let first = match read(&state, &principal.subject, &resource, &range, wanted, &path).await {
        Ok(found) => found,
        Err(problem) => return problem.into_response(),
    };
    let period = |d: std::time::Duration| tokio::time::interval_at(Instant::now() + d, d);
    let live = LiveStream {
        heartbeat: period(state.settings.heartbeat),
        poll: period(state.settings.stream_poll),
        state,
        resource,
        range,
        path,
        subscription,
        first: Some(first),
        resync: false,
        version: 0,
        _slot: slot,
        _client_slot: client_slot,
    };
    let events = futures::stream::unfold(live, |mut live| async move {
        live.next().await.map(|event| (Ok::<_, Infallible>(event), live))
    });
    let mut response = Sse::new(events).into_response();
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

type Parsed = (ResourceId, CapacityRange, Option<crate::position::Position>);

#[allow(clippy::result_large_err, reason = "built once per refused request")]
fn parse(
    state: &AppState,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: &HeaderMap,
    path: &str,
) -> Result<Parsed, Problem> {
    let resource = resource_id(id, path)?;
    let params = Params::from_query(query).map_err(|e| Problem::invalid_input(vec![e], path))?;
    let mut errors = Vec::new();
    params.only(&["from", "to", "min_position"], &mut errors);
    let from =
        params.day_or("from", Slot::from_date(time::OffsetDateTime::now_utc().date()).ok(), &mut errors);
    let to = params.day_or("to", from.and_then(default_end), &mut errors);
    let range = match (from, to) {
        (Some(from), Some(to)) => super::params::range(from, to, &mut errors),
        (Some(from), None) if params.get("to").is_none() => {
            errors.push(FieldError::new(
                "to",
                format!("{DEFAULT_DAYS} days after {from} has no YYYY-MM-DD form"),
            ));
            None
        }
        _ => None,
    };
    let wanted = params.min_position(headers, state.reads.partitions(), &mut errors);
    match range {
        Some(range) if errors.is_empty() => Ok((resource, range, wanted)),
        _ => Err(Problem::invalid_input(errors, path)),
    }
}

/// The end of the default range that starts at `from`.
fn default_end(from: Slot) -> Option<Slot> {
    Slot::from_date(from.date().checked_add(time::Duration::days(DEFAULT_DAYS))?).ok()
}

/// One of the instance's stream slots; released (and the gauge lowered) when the stream ends.
#[derive(Debug)]
struct StreamSlot {
    _admitted: Admitted,
    state: AppState,
}

impl StreamSlot {
    fn take(state: &AppState) -> Option<Self> {
        let admitted = state.streams.try_admit(state.settings.max_streams)?;
        state.metrics.streams.inc();
        Some(Self { _admitted: admitted, state: state.clone() })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.state.metrics.streams.dec();
    }
}

/// One client's stream.
#[derive(Debug)]
struct LiveStream {
    state: AppState,
    resource: ResourceId,
    range: CapacityRange,
    path: String,
    subscription: Subscription,
    /// The snapshot read before the response started.
    first: Option<Availability>,
    /// A fresh snapshot is due.
    resync: bool,
    /// Newest version sent.
    version: i64,
    heartbeat: Interval,
    poll: Interval,
    _slot: StreamSlot,
    /// This stream's place among its client's streams, given back when it ends.
    _client_slot: ClientSlot,
}

impl LiveStream {
    /// The next event; `None` ends the stream (shutdown, or the read model is unreadable:
    /// the client reconnects and resynchronises).
    async fn next(&mut self) -> Option<Event> {
        if let Some(first) = self.first.take() {
            return Some(self.snapshot(&first));
        }
        loop {
            if std::mem::take(&mut self.resync) {
                let found = self.read().await?;
                return Some(self.snapshot(&found));
            }
            let polling = !self.subscription.link.borrow().connected;
            tokio::select! {
                () = self.state.shutdown.cancelled() => return None,
                _ = self.heartbeat.tick() => {
                    self.state.metrics.stream_events.with_label_values(&["heartbeat"]).inc();
                    return Some(Event::default().comment("heartbeat"));
                }
                changed = self.subscription.link.changed() => {
                    changed.ok()?;
                    self.resync = true;
                }
                _ = self.poll.tick(), if polling => {
                    let found = self.read().await?;
                    if found.version != self.version {
                        return Some(self.snapshot(&found));
                    }
                }
                update = self.subscription.updates.recv() => match update {
                    Ok(update) => {
                        if let Some(event) = self.update(&update) {
                            return Some(event);
                        }
                    }
                    Err(RecvError::Lagged(_)) => self.resync = true,
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    async fn read(&self) -> Option<Availability> {
        // No position to wait for, so no client's wait is parked: the client does not matter.
        match read(&self.state, "", &self.resource, &self.range, None, &self.path).await {
            Ok(found) => Some(found),
            Err(problem) => {
                tracing::debug!(detail = %problem.detail, "live stream ends: snapshot unreadable");
                None
            }
        }
    }

    fn snapshot(&mut self, found: &Availability) -> Event {
        self.version = found.version;
        self.state.metrics.stream_events.with_label_values(&["snapshot"]).inc();
        let body = AvailabilityResponse::from(found);
        Event::default()
            .event("snapshot")
            .id(found.version.to_string())
            .json_data(&body)
            .unwrap_or_else(|_| Event::default().comment("snapshot unavailable"))
    }

    /// The `update` event for the days of the range `update` changed, if any; schedules a
    /// snapshot instead when the default capacity changed.
    fn update(&mut self, update: &Arc<Update>) -> Option<Event> {
        if update.version <= self.version {
            return None;
        }
        if update.capacity.is_some() {
            self.resync = true;
            return None;
        }
        let slots: Vec<UpdatedSlot> = update
            .slots
            .iter()
            .filter(|s| Slot::parse(&s.slot).is_ok_and(|day| self.range.contains(day)))
            .cloned()
            .collect();
        if slots.is_empty() {
            return None;
        }
        self.version = update.version;
        self.state.metrics.stream_events.with_label_values(&["update"]).inc();
        let body = UpdateEvent { resource_id: update.resource_id.clone(), version: update.version, slots };
        Some(
            Event::default()
                .event("update")
                .id(update.version.to_string())
                .json_data(&body)
                .unwrap_or_else(|_| Event::default().comment("update unavailable")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_end_is_31_days_on_unless_it_has_no_date_form() {
        let day = |s: &str| Slot::parse(s).expect("a day");
        assert_eq!(default_end(day("2031-03-01")), Some(day("2031-04-01")));
        assert_eq!(default_end(day("9999-12-20")), None);
    }
}
