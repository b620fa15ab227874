//! `GET /v1/commands/{command_id}`: the outcome of a command first answered `202 Accepted`,
//! rendered exactly as its own endpoint would have rendered it.
//!
//! Outcomes come from the dispatcher's memory of recent outcomes. Commands this instance
//! answered 202 for and that are still undecided are remembered (bounded) in
//! [`PendingCommands`], so polling them answers 202 again instead of 404.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
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
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let path = uri.path();
    let Some(command_id) = id.ok().and_then(|Path(id)| Uuid::try_parse(&id).ok()) else {
        let detail = "no command has this id: it is not a UUID";
        return Problem::new(ProblemType::UnknownCommand, detail, path).into_response();
    };
    if let Some(outcome) = state.dispatcher.outcome(command_id) {
        state.pending.remove(command_id);
        return render(&outcome, path, None);
    }
    if state.pending.contains(command_id) {
        return pending(command_id);
    }
    let detail =
        "no outcome is known for this command: it was never accepted here, or it was decided too long ago";
    Problem::new(ProblemType::UnknownCommand, detail, path).into_response()
}

/// Command ids answered 202 by this instance, the oldest forgotten first beyond a bound.
#[derive(Debug)]
pub struct PendingCommands {
    capacity: usize,
    inner: Mutex<(HashSet<Uuid>, VecDeque<Uuid>)>,
}

impl PendingCommands {
    /// Remembers up to `capacity` pending commands.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), inner: Mutex::new((HashSet::new(), VecDeque::new())) }
    }

    /// Records a command answered 202.
    pub fn insert(&self, command_id: Uuid) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if set.insert(command_id) {
            order.push_back(command_id);
        }
        while order.len() > self.capacity {
            if let Some(oldest) = order.pop_front() {
                set.remove(&oldest);
            }
        }
    }

    /// Whether `command_id` was answered 202 and not seen decided since.
    #[must_use]
    pub fn contains(&self, command_id: Uuid) -> bool {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).0.contains(&command_id)
    }

    /// Forgets a command once its outcome is known (its id stays in the order queue until it
    /// ages out, which is harmless).
    pub fn remove(&self, command_id: Uuid) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).0.remove(&command_id);
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
            pending.insert(*id);
        }
        assert!(!pending.contains(ids[0]), "the oldest is forgotten");
        assert!(pending.contains(ids[1]) && pending.contains(ids[2]));
        pending.remove(ids[1]);
        assert!(!pending.contains(ids[1]));
    }
}
