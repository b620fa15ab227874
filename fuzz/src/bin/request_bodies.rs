//! Fuzz target: the command API's request bodies, as the routes read them — the body
//! extractors (`JsonBody`, `OptionalJsonBody`: size limit, JSON syntax, object shape), then
//! each request type's conversion into a domain `Command` or every field error, then the
//! problem+json answer a refusal renders.
//!
//! Every input is read as each of the five request bodies. Invariants beyond "never panics":
//! - a refusal is a 400, 413 or 422 (415 cannot happen: the media type is right), rendered
//!   as a JSON problem document with that status;
//! - a refused conversion names at least one field;
//! - an accepted command survives the JSON round trip it makes through the commands topic.

use std::panic::AssertUnwindSafe;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use holdfast_command_service::http::body::{JsonBody, OptionalJsonBody};
use holdfast_command_service::http::dto::{
    CancelRequest, ChangeCapacityRequest, ConfirmRequest, DefineResourceRequest, PlaceHoldRequest,
};
use holdfast_command_service::http::problem::{FieldError, Problem};
use holdfast_domain::{Command, ReservationId, ResourceId};
use uuid::Uuid;

fn main() {
    // A panic aborts the process (that is how AFL++ sees a crash), so no state outlives one.
    let runtime = AssertUnwindSafe(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime"),
    );
    let resource = ResourceId::parse("hotel.berlin:room-101").expect("a valid resource id");
    let reservation =
        ReservationId::new(&resource, Uuid::from_u128(0x0192_f0c1_a2b3_7c3d_8e4f_5a6b_7c8d_9e0f));
    let command_id = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
    afl::fuzz!(|input: &[u8]| {
        runtime.block_on(async {
            let define = json::<DefineResourceRequest>(input, "/v1/resources").await;
            check(define.map(DefineResourceRequest::into_command), "/v1/resources").await;
            let path = "/v1/resources/hotel.berlin:room-101/capacity";
            let change = json::<ChangeCapacityRequest>(input, path).await;
            check(change.map(|body| body.into_command(resource.clone())), path).await;
            let hold = json::<PlaceHoldRequest>(input, "/v1/reservations").await;
            check(hold.map(|body| body.into_command(command_id)), "/v1/reservations").await;
            let path = "/v1/reservations/r1/confirm";
            let confirm = optional_json::<ConfirmRequest>(input, path).await;
            check(confirm.map(|body| body.into_command(reservation.clone())), path).await;
            let path = "/v1/reservations/r1/cancel";
            let cancel = optional_json::<CancelRequest>(input, path).await;
            check(cancel.map(|body| body.into_command(reservation.clone())), path).await;
        });
    });
}

/// A request to `path` carrying `input` as its JSON body.
fn request(input: &[u8], path: &str) -> Request {
    Request::builder()
        .method("POST")
        .uri(path)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(input.to_vec()))
        .expect("a well-formed request")
}

async fn json<T: serde::de::DeserializeOwned>(input: &[u8], path: &str) -> Result<T, Problem> {
    JsonBody::<T>::from_request(request(input, path), &()).await.map(|JsonBody(body)| body)
}

async fn optional_json<T>(input: &[u8], path: &str) -> Result<T, Problem>
where
    T: serde::de::DeserializeOwned + Default,
{
    OptionalJsonBody::<T>::from_request(request(input, path), &()).await.map(|OptionalJsonBody(body)| body)
}

/// The invariants, for one request type's outcome.
async fn check(outcome: Result<Result<Command, Vec<FieldError>>, Problem>, path: &str) {
    match outcome {
        Err(problem) => {
            assert!(matches!(problem.status, 400 | 413 | 422), "unexpected refusal: {problem:?}");
            render(problem).await;
        }
        Ok(Err(errors)) => {
            assert!(!errors.is_empty(), "a refused conversion names no field");
            render(Problem::invalid_input(errors, path)).await;
        }
        Ok(Ok(command)) => {
            let text = serde_json::to_string(&command).expect("a command serializes");
            let back: Command = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("a command does not read back: {e}: {text}"));
            assert_eq!(back, command, "a command changes on its way through JSON");
        }
    }
}

/// `problem` as a response: its status, and a JSON body that says the same status.
async fn render(problem: Problem) {
    let status = problem.status;
    let response = problem.into_response();
    assert_eq!(response.status().as_u16(), status);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("an in-memory body");
    let document: serde_json::Value = serde_json::from_slice(&body).expect("a JSON problem document");
    assert_eq!(document["status"], status, "the document's status differs from the response's");
}
