//! The path every command request takes after its body is read: metadata from headers,
//! validation (all errors at once), load shedding, the envelope, the dispatcher, the answer.
//!
//! Nothing reaches Kafka unless the request is valid and the instance has room for it.

use std::convert::Infallible;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use holdfast_domain::{Command, CommandMeta, ValueError};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use holdfast_platform::auth::{AuthError, Principal};

use super::AppState;
use super::idempotency;
use super::outcome::{key_reused, pending, render};
use super::problem::{FieldError, Problem, ProblemType};
use crate::dispatch::SubmitError;
use crate::envelope::{CommandEnvelope, FORMAT_VERSION, Outcome};
use crate::forward::{DECIDED_BY, Forwarded};

/// Longest `tracestate` carried into the command (W3C allows 512 characters).
const MAX_TRACESTATE: usize = 512;

/// Days before today (UTC) a hold or a capacity change may still start: one, for callers
/// whose local day is still yesterday's in UTC.
pub const GRACE_DAYS: i64 = 1;

/// How far ahead a hold or a capacity change may reach: its end (`to`, exclusive) at most
/// this many days after today (UTC), about three years.
pub const HORIZON_DAYS: i64 = 1096;

/// What a command request brings besides its body: the path and the command metadata derived
/// from its headers (or the header errors, reported together with the body's).
#[derive(Debug)]
pub struct Intake {
    /// The request path (the problem `instance`).
    pub path: String,
    /// Who sends it (left by [`super::auth::authenticate`]); `None` only on a router built
    /// without the token check, and then every command is refused.
    principal: Option<Principal>,
    meta: Result<CommandMeta, Vec<FieldError>>,
}

impl<S: Send + Sync> FromRequestParts<S> for Intake {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let path = parts.uri.path().to_owned();
        let principal = parts.extensions.get::<Principal>().cloned();
        let subject = principal.as_ref().map_or("", |p| p.subject.as_str());
        let meta = meta(&parts.method, &path, &parts.headers, subject);
        Ok(Self { path, principal, meta })
    }
}

impl Intake {
    /// Validates the request, builds its command with `build` (given the command id) and
    /// submits it; answers with the outcome, 202, or a problem.
    ///
    /// A command whose outcome is already known (a retry) is answered from memory even when
    /// the instance is saturated; an outcome decided for a different request under the same
    /// idempotency key is refused with `idempotency-key-reused`.
    pub async fn submit(
        self,
        state: &AppState,
        build: impl FnOnce(Uuid) -> Result<Command, Vec<FieldError>>,
    ) -> Response {
        let envelope = match self.envelope(build) {
            Ok(envelope) => envelope,
            Err(problem) => return problem.into_response(),
        };
        let (answer, decided_by) = match state.dispatcher.outcome(envelope.meta.command_id) {
            Some(known) => (Ok(known), None),
            None => {
                let Some(_permit) = state.try_acquire() else {
                    let detail = "too many commands are in flight on this instance; retry shortly";
                    return Problem::new(ProblemType::RateLimited, detail, &self.path)
                        .retry_after(1)
                        .into_response();
                };
                decide(state, &envelope).await
            }
        };
        match answer {
            Ok(outcome) if outcome.fingerprint != envelope.fingerprint => {
                key_reused(&self.path).into_response()
            }
            Ok(outcome) => {
                let mut response = render(&outcome, &self.path, envelope.command.reservation_id());
                if let Some(owner) = decided_by.and_then(|owner| HeaderValue::from_str(&owner).ok()) {
                    response.headers_mut().insert(DECIDED_BY, owner);
                }
                response
            }
            Err(SubmitError::Pending { command_id }) => {
                state.pending.insert(command_id, envelope.meta.principal.as_deref());
                pending(command_id)
            }
            Err(SubmitError::Undecided { command_id }) => {
                tracing::warn!(%command_id, "decision not confirmed in the log");
                let detail = "the decision could not be confirmed; retry with the same Idempotency-Key \
                              to learn whether it was made";
                Problem::new(ProblemType::Unavailable, detail, &self.path).retry_after(1).into_response()
            }
            Err(SubmitError::Unavailable(reason)) => {
                tracing::warn!(%reason, command_id = %envelope.meta.command_id, "command not accepted by Kafka");
                let detail = "commands cannot be accepted right now; nothing was decided, retry later";
                Problem::new(ProblemType::Unavailable, detail, &self.path).retry_after(1).into_response()
            }
        }
    }

    /// The envelope of a valid request, or `invalid-input` listing every header and body error.
    #[allow(
        clippy::result_large_err,
        reason = "built once per refused request; boxing would only add an allocation"
    )]
    fn envelope(
        &self,
        build: impl FnOnce(Uuid) -> Result<Command, Vec<FieldError>>,
    ) -> Result<CommandEnvelope, Problem> {
        let command_id = self.meta.as_ref().map_or(Uuid::nil(), |meta| meta.command_id);
        let today = OffsetDateTime::now_utc().date();
        let built = build(command_id).and_then(|command| booking_window(&command, today).map(|()| command));
        let (meta, command) = match (&self.meta, built) {
            (Ok(meta), Ok(command)) => (meta.clone(), command),
            (meta, command) => {
                let header_errors = meta.as_ref().err().into_iter().flatten().cloned();
                let errors = header_errors.chain(command.err().into_iter().flatten());
                return Err(Problem::invalid_input(errors.collect(), &self.path));
            }
        };
        let Some(principal) = &self.principal else {
            return Err(Problem::from_auth(&AuthError::Missing, &self.path));
        };
        if let Command::PlaceHold { customer_id, .. } = &command
            && !principal.acts_for(customer_id.as_str())
        {
            let detail = format!(
                "a customer may hold only for itself: the token is {:?}'s, the hold for {:?}",
                principal.subject,
                customer_id.as_str()
            );
            return Err(Problem::new(ProblemType::Forbidden, detail, &self.path));
        }
        let fingerprint =
            idempotency::fingerprint(&command).map_err(|error| Problem::internal(&error, &self.path))?;
        Ok(CommandEnvelope {
            v: FORMAT_VERSION,
            command,
            meta,
            fingerprint,
            submitted_at: OffsetDateTime::now_utc(),
            reply_to: None,
            acting_for: (!principal.is_admin()).then(|| principal.subject.clone()),
        })
    }
}

/// Decides `envelope` here when this instance owns its partition; otherwise hands it to the
/// owner (naming it, when it decided) or, when no owner is known or it did not take it, queues
/// it on the commands topic.
async fn decide(
    state: &AppState,
    envelope: &CommandEnvelope,
) -> (Result<std::sync::Arc<Outcome>, SubmitError>, Option<String>) {
    let dispatcher = &state.dispatcher;
    let deadline = dispatcher.deadline();
    if let Some(answer) = dispatcher.decide_here(envelope, deadline).await {
        return (answer, None);
    }
    if let Some(forwarder) = &state.forwarder {
        match forwarder.forward(dispatcher.partition_of(envelope), envelope, deadline).await {
            Some(Forwarded::Decided { outcome, owner }) => {
                dispatcher.remember(&outcome);
                return (Ok(outcome), Some(owner));
            }
            Some(Forwarded::Undecided) => {
                let command_id = envelope.meta.command_id;
                return (Err(SubmitError::Undecided { command_id }), None);
            }
            // No owner took it, or its answer did not come: the commands topic path dedupes
            // by command id and brings the outcome, or the caller learns it with a retry.
            None => {}
        }
    }
    (dispatcher.submit_by(envelope, deadline).await, None)
}

/// `Ok` when the days a hold or a capacity change covers lie in the booking window: from
/// [`GRACE_DAYS`] before `today` to [`HORIZON_DAYS`] after it. Other commands name no days.
///
/// # Errors
/// An error on `from` for a start in the past, on `to` for an end past the horizon.
fn booking_window(command: &Command, today: Date) -> Result<(), Vec<FieldError>> {
    let (from, to) = match command {
        Command::PlaceHold { range, .. } => (range.from(), range.to()),
        Command::ChangeCapacity { range, .. } => (range.from(), range.to()),
        _ => return Ok(()),
    };
    let earliest = today.saturating_sub(Duration::days(GRACE_DAYS));
    let latest = today.saturating_add(Duration::days(HORIZON_DAYS));
    let mut errors = Vec::new();
    if from.date() < earliest {
        errors.push(FieldError::new("from", format!("must not be before {earliest} (yesterday, UTC)")));
    }
    if to.date() > latest {
        let reason = format!("must not be after {latest} ({HORIZON_DAYS} days from today, UTC)");
        errors.push(FieldError::new("to", reason));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// An id taken from the path, or why it cannot name anything (then the caller answers 404).
///
/// # Errors
/// The reason the segment is not a valid id.
pub fn path_id<T>(
    segment: Result<Path<String>, PathRejection>,
    parse: impl FnOnce(&str) -> Result<T, ValueError>,
) -> Result<T, String> {
    let Path(segment) = segment.map_err(|rejection| rejection.body_text())?;
    parse(&segment).map_err(|error| error.reason)
}

/// Command metadata from the request headers and the caller's `subject`, or every header
/// error.
fn meta(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    subject: &str,
) -> Result<CommandMeta, Vec<FieldError>> {
    let mut errors = Vec::new();
    let key = idempotency::key(headers).map_err(|e| errors.push(e)).ok().flatten();
    let correlation_id = correlation_id(headers).map_err(|e| errors.push(e)).ok().flatten();
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut meta = CommandMeta::new(idempotency::command_id(subject, method, path, key));
    meta.principal = Some(subject.to_owned());
    if let Some(correlation_id) = correlation_id {
        meta.correlation_id = correlation_id;
    }
    meta.traceparent = header(headers, "traceparent").filter(|t| valid_traceparent(t)).map(str::to_owned);
    if meta.traceparent.is_some() {
        meta.tracestate =
            header(headers, "tracestate").filter(|s| s.len() <= MAX_TRACESTATE).map(str::to_owned);
    }
    Ok(meta)
}

/// The `X-Correlation-Id` header: absent, or a UUID.
fn correlation_id(headers: &HeaderMap) -> Result<Option<Uuid>, FieldError> {
    match headers.get("x-correlation-id") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| Uuid::try_parse(v.trim()).ok())
            .map(Some)
            .ok_or_else(|| FieldError::new("X-Correlation-Id", "must be a UUID")),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Whether `value` is a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`). An invalid one is
/// dropped, as the W3C recommendation asks, rather than refused.
fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    matches!(parts.as_slice(), [version, trace, parent, flags]
        if hex(version, 2) && *version != "ff" && hex(trace, 32) && nonzero(trace)
            && hex(parent, 16) && nonzero(parent) && hex(flags, 2))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_booking_window_runs_from_yesterday_to_the_horizon() {
        let today = time::macros::date!(2030 - 06 - 15);
        let hold = |from: i64, to: i64| {
            let slot = |d: i64| holdfast_domain::Slot::from_date(today + Duration::days(d)).expect("slot");
            Command::PlaceHold {
                reservation_id: holdfast_domain::ReservationId::new(
                    &holdfast_domain::ResourceId::parse("room-1").expect("id"),
                    Uuid::from_u128(1),
                ),
                range: holdfast_domain::SlotRange::new(slot(from), slot(to)).expect("range"),
                quantity: holdfast_domain::Quantity::new(1).expect("quantity"),
                customer_id: holdfast_domain::CustomerId::parse("c").expect("customer"),
                ttl: holdfast_domain::HoldTtl::DEFAULT,
            }
        };
        let fields = |from, to| {
            booking_window(&hold(from, to), today)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(-GRACE_DAYS, 1 - GRACE_DAYS).is_empty(), "yesterday still opens");
        assert!(fields(HORIZON_DAYS - 1, HORIZON_DAYS).is_empty(), "the last day of the horizon");
        assert_eq!(fields(-GRACE_DAYS - 1, 0), ["from"]);
        assert_eq!(fields(HORIZON_DAYS - 1, HORIZON_DAYS + 1), ["to"]);
        let expire = Command::ExpireHold {
            reservation_id: holdfast_domain::ReservationId::new(
                &holdfast_domain::ResourceId::parse("room-1").expect("id"),
                Uuid::from_u128(1),
            ),
        };
        assert!(booking_window(&expire, today).is_ok(), "commands without days pass");
    }

    #[test]
    fn meta_carries_correlation_and_trace_context() {
        let mut headers = HeaderMap::new();
        let correlation = Uuid::from_u128(42);
        headers.insert("x-correlation-id", HeaderValue::from_str(&correlation.to_string()).expect("hv"));
        headers.insert("traceparent", HeaderValue::from_static(TRACEPARENT));
        headers.insert("tracestate", HeaderValue::from_static("vendor=1"));
        headers.insert("idempotency-key", HeaderValue::from_static("k"));
        let meta = meta(&Method::POST, "/v1/resources", &headers, "ops").expect("valid headers");
        assert_eq!(
            meta.command_id,
            idempotency::command_id("ops", &Method::POST, "/v1/resources", Some("k"))
        );
        assert_eq!(meta.causation_id, meta.command_id);
        assert_eq!(meta.correlation_id, correlation);
        assert_eq!(meta.traceparent.as_deref(), Some(TRACEPARENT));
        assert_eq!(meta.tracestate.as_deref(), Some("vendor=1"));
    }

    #[test]
    fn invalid_trace_context_is_dropped_and_bad_ids_are_reported() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("00-xyz-1-01"));
        headers.insert("tracestate", HeaderValue::from_static("vendor=1"));
        let meta = meta(&Method::POST, "/v1/resources", &headers, "ops").expect("valid headers");
        assert_eq!((meta.traceparent, meta.tracestate), (None, None));
        assert_eq!(meta.correlation_id, meta.command_id);

        headers.insert("x-correlation-id", HeaderValue::from_static("nope"));
        headers.insert("idempotency-key", HeaderValue::from_static("a b"));
        let errors = super::meta(&Method::POST, "/", &headers, "ops").expect_err("two bad headers");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["Idempotency-Key", "X-Correlation-Id"]);
    }

    #[test]
    fn traceparent_shape() {
        assert!(valid_traceparent(TRACEPARENT));
        for bad in [
            "",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            assert!(!valid_traceparent(bad), "{bad}");
        }
    }
}
