//! Request body → command conversion: valid bodies become the expected commands, invalid ones
//! report every bad field by its contract name.

use holdfast_domain::{CapacityRange, HoldTtl, ReservationId, ResourceId, SlotRange};
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;

fn body<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("an object always deserializes")
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

fn room() -> ResourceId {
    ResourceId::parse("hotel:room-1").expect("valid")
}

#[test]
fn define_resource_converts_and_ignores_unknown_fields() {
    let request: DefineResourceRequest =
        body(json!({"resource_id": "hotel:room-1", "name": "Room 1", "capacity": 0, "colour": "red"}));
    let command = request.into_command().expect("valid");
    let Command::DefineResource { resource_id, name, capacity } = command else { panic!("not a definition") };
    assert_eq!((resource_id, name.as_str(), capacity.get()), (room(), "Room 1", 0));
}

#[test]
fn define_resource_reports_every_invalid_field() {
    let request: DefineResourceRequest =
        body(json!({"resource_id": "room_1", "name": 7, "capacity": 1_000_001}));
    let errors = request.into_command().expect_err("three errors");
    assert_eq!(fields(&errors), ["resource_id", "name", "capacity"]);
    let errors = body::<DefineResourceRequest>(json!({})).into_command().expect_err("all missing");
    assert_eq!(fields(&errors), ["resource_id", "name", "capacity"]);
    assert!(errors.iter().all(|e| e.reason == "is required"));
}

#[test]
fn change_capacity_checks_range_and_capacity() {
    let request: ChangeCapacityRequest =
        body(json!({"from": "2026-01-01", "to": "2027-01-01", "capacity": 5}));
    let command = request.into_command(room()).expect("365 days");
    let expected = CapacityRange::parse("2026-01-01", "2027-01-01").expect("valid");
    assert!(matches!(command, Command::ChangeCapacity { range, .. } if range == expected));

    for (from, to, field) in [
        ("2026-02-30", "2026-03-01", "from"),
        ("2026-03-01", "2026-03-01", "to"),
        ("2026-01-01", "2027-01-03", "to"),
        ("2026-01-01", "tomorrow", "to"),
    ] {
        let request: ChangeCapacityRequest = body(json!({"from": from, "to": to, "capacity": 1}));
        let errors = request.into_command(room()).expect_err(from);
        assert_eq!(fields(&errors), [field], "{from}..{to}");
    }
    let request: ChangeCapacityRequest = body(json!({"from": 1, "to": "2026-01-02", "capacity": -1}));
    assert_eq!(fields(&request.into_command(room()).expect_err("two")), ["from", "capacity"]);
}

#[test]
fn place_hold_mints_the_reservation_from_the_command_id() {
    let command_id = Uuid::from_u128(0x0192_f0c1);
    let request: PlaceHoldRequest = body(json!({
        "resource_id": "hotel:room-1", "from": "2026-03-01", "to": "2026-03-03",
        "quantity": 2, "customer_id": "c-1"
    }));
    let Command::PlaceHold { reservation_id, range, quantity, customer_id, ttl } =
        request.into_command(command_id).expect("valid")
    else {
        panic!("not a hold")
    };
    assert_eq!(reservation_id, ReservationId::new(&room(), command_id));
    assert_eq!(range, SlotRange::parse("2026-03-01", "2026-03-03").expect("valid"));
    assert_eq!((quantity.get(), customer_id.as_str(), ttl), (2, "c-1", HoldTtl::DEFAULT));
}

#[test]
fn place_hold_reports_every_invalid_field() {
    let request: PlaceHoldRequest = body(json!({
        "resource_id": "", "from": "2026-03-01", "to": "2026-04-02",
        "quantity": 0, "customer_id": " c", "hold_seconds": 3601
    }));
    let errors = request.into_command(Uuid::nil()).expect_err("invalid");
    assert_eq!(fields(&errors), ["resource_id", "quantity", "customer_id", "hold_seconds", "to"]);

    for quantity in [json!(-1), json!(1.5), json!(4_294_967_296_u64), json!("1"), json!(1_000_001)] {
        let request: PlaceHoldRequest = body(json!({
            "resource_id": "r", "from": "2026-03-01", "to": "2026-03-02", "quantity": quantity,
            "customer_id": "c", "hold_seconds": null
        }));
        assert_eq!(fields(&request.into_command(Uuid::nil()).expect_err("quantity")), ["quantity"]);
    }
}

#[test]
fn confirm_and_cancel_bound_their_notes() {
    let id = ReservationId::new(&room(), Uuid::from_u128(1));
    let command = body::<ConfirmRequest>(json!({})).into_command(id.clone()).expect("empty is fine");
    assert!(matches!(command, Command::ConfirmReservation { payment_ref: None, .. }));
    let command = body::<CancelRequest>(json!({"reason": "r"})).into_command(id.clone()).expect("valid");
    assert!(matches!(command, Command::CancelReservation { reason: Some(r), .. } if r == "r"));

    let long = "x".repeat(MAX_NOTE_CHARS + 1);
    let errors =
        body::<ConfirmRequest>(json!({"payment_ref": long})).into_command(id.clone()).expect_err("long");
    assert_eq!(fields(&errors), ["payment_ref"]);
    let errors = body::<CancelRequest>(json!({"reason": 5})).into_command(id).expect_err("type");
    assert_eq!(fields(&errors), ["reason"]);
}
