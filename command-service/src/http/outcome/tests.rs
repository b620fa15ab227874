//! Outcome rendering: statuses and bodies per command kind, and rejection → problem mapping.

use axum::body::to_bytes;
use holdfast_domain::{Capacity, Quantity, ResourceDefinition, ResourceId, ResourceName, Slot};
use serde_json::{Value, json};
use time::macros::datetime;

use super::*;
use crate::envelope::{FORMAT_VERSION, Position, ReservationView};

fn room() -> ResourceId {
    ResourceId::parse("room-1").expect("valid")
}

fn reservation() -> ReservationId {
    ReservationId::new(&room(), Uuid::from_u128(7))
}

fn outcome(command: &str, verdict: Verdict) -> Outcome {
    Outcome {
        v: FORMAT_VERSION,
        command_id: Uuid::from_u128(1),
        resource_id: room(),
        command: command.to_owned(),
        verdict,
        position: Position { partition: 3, next_offset: 42 },
        decided_at: datetime!(2026-03-01 12:00 UTC),
        fingerprint: 0,
        principal: Some("ada".to_owned()),
    }
}

async fn answer(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("json"))
}

fn accepted(events: u32, status: Option<ReservationStatus>) -> Verdict {
    let reservation = status.map(|status| ReservationView { reservation_id: reservation(), status });
    Verdict::Accepted { events, reservation }
}

#[tokio::test]
async fn resources_answer_201_then_200() {
    let created = answer(render(&outcome("define-resource", accepted(1, None)), "/", None)).await;
    assert_eq!(created, (201, json!({"resource_id": "room-1", "position": "3.42"})));
    let again = answer(render(&outcome("define-resource", accepted(0, None)), "/", None)).await;
    assert_eq!(again.0, 200);
    let changed = answer(render(&outcome("change-capacity", accepted(2, None)), "/", None)).await;
    assert_eq!(changed, (200, json!({"resource_id": "room-1", "position": "3.42"})));
}

#[tokio::test]
async fn reservations_report_the_status_they_have() {
    let held = ReservationStatus::Held { expires_at: datetime!(2026-03-01 14:15 +02:00) };
    let (status, body) = answer(render(&outcome("place-hold", accepted(1, Some(held))), "/", None)).await;
    assert_eq!(status, 201);
    assert_eq!(
        body,
        json!({"reservation_id": reservation().to_string(), "status": "held",
               "expires_at": "2026-03-01T12:15:00Z", "position": "3.42"})
    );
    let cancelled = Some(ReservationStatus::Cancelled);
    let (status, body) =
        answer(render(&outcome("cancel-reservation", accepted(0, cancelled)), "/", None)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")));
    let expired = Some(ReservationStatus::Expired { expired_at: datetime!(2026-03-01 12:00 UTC) });
    let (_, body) = answer(render(&outcome("confirm-reservation", accepted(1, expired)), "/", None)).await;
    assert_eq!(body["status"], "expired");
    let (status, body) =
        answer(render(&outcome("confirm-reservation", accepted(1, None)), "/", Some(&reservation()))).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("confirmed")));
    let (status, _) = answer(render(&outcome("place-hold", accepted(1, None)), "/", None)).await;
    assert_eq!(status, 500, "an accepted hold without any reservation id is a bug");
}

#[tokio::test]
async fn key_reuse_is_422() {
    let (status, body) = answer(render(&outcome("place-hold", Verdict::KeyReused), "/x", None)).await;
    assert_eq!(status, 422);
    assert_eq!(body["type"], "https://holdfast.dev/problems/idempotency-key-reused");
    assert_eq!(body["instance"], "/x");
}

#[test]
fn rejections_map_to_their_code_status_and_members() {
    let slot = Slot::parse("2026-03-01").expect("valid");
    let definition =
        ResourceDefinition { name: ResourceName::parse("R").expect("valid"), capacity: Capacity::ZERO };
    let cases = [
        (Rejection::UnknownResource { resource_id: room() }, 404),
        (Rejection::UnknownReservation { reservation_id: reservation() }, 404),
        (
            Rejection::InsufficientCapacity {
                slot,
                requested: Quantity::new(2).expect("valid"),
                available: 1,
            },
            409,
        ),
        (Rejection::CapacityBelowUsage { slot, requested: Capacity::ZERO, in_use: 3 }, 409),
        (
            Rejection::HoldExpired {
                reservation_id: reservation(),
                expired_at: datetime!(2026-03-01 12:00 UTC),
            },
            409,
        ),
        (Rejection::AlreadyCancelled { reservation_id: reservation() }, 409),
        (
            Rejection::ResourceConflict {
                resource_id: room(),
                existing: definition.clone(),
                requested: definition,
            },
            409,
        ),
        (Rejection::ReservationConflict { reservation_id: reservation() }, 409),
        (Rejection::MisroutedCommand { state_resource: room(), command_resource: room() }, 500),
    ];
    for (rejection, status) in cases {
        let problem = rejected(&rejection, "/v1/reservations");
        assert_eq!(problem.status, status, "{}", rejection.code());
        let code = if status == 500 { "internal" } else { rejection.code() };
        assert_eq!(problem.problem_type, format!("https://holdfast.dev/problems/{code}"));
    }
    let short = rejected(
        &Rejection::InsufficientCapacity { slot, requested: Quantity::new(2).expect("valid"), available: 1 },
        "/",
    );
    let json = serde_json::to_value(&short).expect("json");
    assert_eq!(
        (json["slot"].as_str(), json["requested"].as_u64(), json["available"].as_u64()),
        (Some("2026-03-01"), Some(2), Some(1))
    );
    let over = serde_json::to_value(rejected(
        &Rejection::CapacityBelowUsage { slot, requested: Capacity::ZERO, in_use: 3 },
        "/",
    ))
    .expect("json");
    assert_eq!((over["requested"].as_u64(), over["in_use"].as_u64()), (Some(0), Some(3)));
}
