//! The owner's side of the peer channel ([`crate::forward`]): decides the commands another
//! instance hands over, each in the lane of its partition, and answers each.
//!
//! Only a batch signed with the peer key and sent within [`FRESH_FOR`] is read: its envelopes
//! carry identities the sending instance has proven, which no caller may claim by itself. An
//! instance without a peer key has no such route (404).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::join_all;
use time::OffsetDateTime;

use super::AppState;
use super::problem::{Problem, ProblemType};
use crate::forward::{
    Answers, Batch, FRESH_FOR, Forwarder, PEER_BODY_LIMIT, PEER_PATH, PEER_VERSION, PeerAnswer, SIGNATURE,
};

/// `POST /internal/v1/decisions`: decides a signed batch of handed-over commands.
pub async fn decide(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(key) = state.forwarder.as_ref().map(Forwarder::key) else {
        return Problem::new(ProblemType::NotFound, "no such route", PEER_PATH).into_response();
    };
    let Ok(bytes) = axum::body::to_bytes(body, PEER_BODY_LIMIT).await else {
        let detail = format!("batches are limited to {PEER_BODY_LIMIT} bytes");
        return Problem::new(ProblemType::BodyTooLarge, detail, PEER_PATH).into_response();
    };
    let signature = headers.get(SIGNATURE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    if !key.verify(&bytes, signature) {
        let detail = "a batch must be signed with this deployment's peer key";
        return Problem::new(ProblemType::Unauthorized, detail, PEER_PATH).into_response();
    }
    let batch: Batch = match serde_json::from_slice(&bytes) {
        Ok(batch) => batch,
        Err(error) => {
            let detail = format!("not a batch of version {PEER_VERSION}: {error}");
            return Problem::new(ProblemType::MalformedJson, detail, PEER_PATH).into_response();
        }
    };
    let age = OffsetDateTime::now_utc() - batch.sent_at;
    if age.unsigned_abs() > FRESH_FOR {
        let detail = format!("the batch was sent {age} ago; batches are read for {FRESH_FOR:?}");
        return Problem::new(ProblemType::Unauthorized, detail, PEER_PATH).into_response();
    }
    let now = tokio::time::Instant::now();
    let dispatcher = &state.dispatcher;
    let answers = join_all(batch.commands.iter().map(|handed| async move {
        let deadline = now + std::time::Duration::from_millis(handed.wait_ms);
        match dispatcher.decide_here(&handed.envelope, deadline).await {
            None => PeerAnswer::NotOwner,
            Some(Ok(outcome)) => PeerAnswer::Decided { outcome: Box::new((*outcome).clone()) },
            // Decided here but not confirmed in the log in time (deciding here never queues).
            Some(Err(_)) => PeerAnswer::Undecided,
        }
    }))
    .await;
    let answers = Answers { v: PEER_VERSION, answers };
    (StatusCode::OK, axum::Json(answers)).into_response()
}
