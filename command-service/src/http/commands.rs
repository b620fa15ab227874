//! `GET /v1/commands/{command_id}`: the outcome of a command first answered `202 Accepted`,
//! rendered exactly as its own endpoint would have rendered it. Only whoever issued the
//! command (or an administrator) sees it; to anyone else it is `unknown-command`.
//!
//! Outcomes come from the dispatcher's memory of recent outcomes. Commands this instance
//! answered 202 for and that are still undecided are remembered (bounded) in
//! [`PendingCommands`], so polling them answers 202 again instead of 404.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use axum::Extension;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use holdfast_platform::auth::Principal;
use uuid::Uuid;

use super::AppState;
use super::outcome::{PendingResponse, ReservationResponse, ResourceResponse, pending, render};
use super::problem::{Problem, ProblemType};

/// The outcome (or the pending state) of an earlier command.
#[utoipa::path(
    get, path = "/v1/commands/{command_id}", tag = "commands",
    params(("command_id" = Uuid, Path, description = "From an earlier 202 answer")),
    responses(
        (status = 200, description = "Decided: the body of the original endpoint", body = ResourceResponse),
        (status = 201, description = "Decided: the body of the original endpoint", body = ReservationResponse),
        (status = 202, description = "Still pending", body = PendingResponse),
        (status = 404, description = "`unknown-command`, or the rejection of the original endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The rejection of the original endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency-key-reused`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn outcome(
    State(state): State<AppState>,
    uri: Uri,
    caller: Option<Extension<Principal>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let path = uri.path();
    let Some(command_id) = id.ok().and_then(|Path(id)| Uuid::try_parse(&id).ok()) else {
        let detail = "no command has this id: it is not a UUID";
        return Problem::new(ProblemType::UnknownCommand, detail, path).into_response();
    };
    // Another caller's command is unknown to this one: its existence does not leak.
    let caller = caller.map(|Extension(principal)| principal);
    let sees = |issuer: Option<&str>| {
        caller.as_ref().is_some_and(|c| c.is_admin() || issuer.is_some_and(|issuer| issuer == c.subject))
    };
    if let Some(outcome) = state.dispatcher.outcome(command_id).filter(|o| sees(o.principal.as_deref())) {
        state.pending.remove(command_id);
        return render(&outcome, path, None);
    }
    if state.pending.issuer(command_id).is_some_and(|issuer| sees(issuer.as_deref())) {
        return pending(command_id);
    }
    let detail =
        "no outcome is known for this command: it was never accepted here, or it was decided too long ago";
    Problem::new(ProblemType::UnknownCommand, detail, path).into_response()
}

/// Command ids answered 202 by this instance, with who issued them, the oldest forgotten
/// first beyond a bound.
#[derive(Debug)]
pub struct PendingCommands {
    capacity: usize,
    inner: Mutex<Issued>,
}

/// The remembered commands: who issued each, and the order to forget them in.
#[derive(Debug, Default)]
struct Issued {
    issuers: HashMap<Uuid, Option<String>>,
    order: VecDeque<Uuid>,
}

impl PendingCommands {
    /// Remembers up to `capacity` pending commands.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), inner: Mutex::new(Issued::default()) }
    }

    /// Records a command answered 202, issued by `principal`.
    pub fn insert(&self, command_id: Uuid, principal: Option<&str>) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Issued { issuers, order } = &mut *guard;
        if issuers.insert(command_id, principal.map(str::to_owned)).is_none() {
            order.push_back(command_id);
        }
        while order.len() > self.capacity {
            if let Some(oldest) = order.pop_front() {
                issuers.remove(&oldest);
            }
        }
    }

    /// Who issued `command_id`, if it was answered 202 and not seen decided since.
    #[must_use]
    pub fn issuer(&self, command_id: Uuid) -> Option<Option<String>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).issuers.get(&command_id).cloned()
    }

    /// Forgets a command once its outcome is known (its id stays in the order queue until it
    /// ages out, which is harmless).
    pub fn remove(&self, command_id: Uuid) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).issuers.remove(&command_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_commands_are_bounded() {
        let pending = PendingCommands::new(2);
        let ids: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
        for id in &ids {
            pending.insert(*id, Some("ada"));
        }
        assert_eq!(pending.issuer(ids[0]), None, "the oldest is forgotten");
        assert_eq!(pending.issuer(ids[1]), Some(Some("ada".to_owned())));
        assert!(pending.issuer(ids[2]).is_some());
        pending.remove(ids[1]);
        assert_eq!(pending.issuer(ids[1]), None);
    }
}
