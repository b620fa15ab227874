//! Request bodies of the command API and their conversion to domain [`Command`]s.
//!
//! The JSON field names are the public contract (DESIGN.md, "Command API") and must never be
//! renamed. Unknown fields are ignored. Each conversion reports *every* invalid field at once;
//! the rules themselves live in the domain's value types, not here.

use holdfast_domain::{
    Capacity, CapacityRange, Command, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, ResourceName,
    Slot, SlotRange,
};
use serde::Deserialize;
use serde_json::Number;
use utoipa::ToSchema;
use uuid::Uuid;

use super::field::{Checker, Field, note, whole};
use super::problem::FieldError;

/// Longest `payment_ref` or cancellation `reason`, in characters.
pub const MAX_NOTE_CHARS: usize = 256;

/// Body of `POST /v1/resources`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DefineResourceRequest {
    /// 1–128 characters of `[A-Za-z0-9.:-]`.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9.:-]{1,128}$", example = "hotel.berlin:room-101")]
    pub resource_id: Field<String>,
    /// 1–200 characters, no control characters, no surrounding whitespace.
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]([^\\u0000-\\u001f\\u007f-\\u009f]{0,198}[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000])?$", example = "Room 101")]
    pub name: Field<String>,
    /// Default capacity of every slot, 0..=1,000,000.
    #[schema(value_type = u32, minimum = 0, maximum = 1_000_000, example = 2)]
    pub capacity: Field<Number>,
}

impl DefineResourceRequest {
    /// The `DefineResource` command.
    ///
    /// # Errors
    /// Every invalid field.
    pub fn into_command(self) -> Result<Command, Vec<FieldError>> {
        let mut check = Checker::default();
        let resource_id = check.required("resource_id", self.resource_id, |s| ResourceId::parse(&s));
        let name = check.required("name", self.name, |s| ResourceName::parse(&s));
        let capacity = check.required("capacity", self.capacity, parse_capacity);
        check.finish(|| {
            Some(Command::DefineResource { resource_id: resource_id?, name: name?, capacity: capacity? })
        })
    }
}

/// Body of `PUT /v1/resources/{id}/capacity`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ChangeCapacityRequest {
    /// First day (`YYYY-MM-DD`), yesterday (UTC) or later.
    #[schema(value_type = String, format = Date, example = "2028-03-01")]
    pub from: Field<String>,
    /// Day after the last one (exclusive): after `from`, at most 366 days after it and at most
    /// 1096 days after today (UTC).
    #[schema(value_type = String, format = Date, example = "2028-03-08")]
    pub to: Field<String>,
    /// New capacity of every day in the range, 0..=1,000,000.
    #[schema(value_type = u32, minimum = 0, maximum = 1_000_000, example = 3)]
    pub capacity: Field<Number>,
}

impl ChangeCapacityRequest {
    /// The `ChangeCapacity` command for `resource_id` (taken from the path).
    ///
    /// # Errors
    /// Every invalid field.
    pub fn into_command(self, resource_id: ResourceId) -> Result<Command, Vec<FieldError>> {
        let mut check = Checker::default();
        let from = check.required("from", self.from, |s| Slot::parse(&s));
        let to = check.required("to", self.to, |s| Slot::parse(&s));
        let capacity = check.required("capacity", self.capacity, parse_capacity);
        let range = match (from, to) {
            (Some(from), Some(to)) => check.check(CapacityRange::new(from, to)),
            _ => None,
        };
        check.finish(|| Some(Command::ChangeCapacity { resource_id, range: range?, capacity: capacity? }))
    }
}

/// Body of `POST /v1/reservations`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PlaceHoldRequest {
    /// The resource to hold units on.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9.:-]{1,128}$", example = "hotel.berlin:room-101")]
    pub resource_id: Field<String>,
    /// First day (`YYYY-MM-DD`), yesterday (UTC) or later.
    #[schema(value_type = String, format = Date, example = "2028-03-01")]
    pub from: Field<String>,
    /// Day after the last one (exclusive): after `from`, at most 31 days after it and at most
    /// 1096 days after today (UTC).
    #[schema(value_type = String, format = Date, example = "2028-03-03")]
    pub to: Field<String>,
    /// Units held on every day, 1..=1,000,000.
    #[schema(value_type = u32, minimum = 1, maximum = 1_000_000, example = 1)]
    pub quantity: Field<Number>,
    /// Who holds them: 1–128 characters, no control characters, no surrounding whitespace.
    #[schema(value_type = String, min_length = 1, max_length = 128, pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]([^\\u0000-\\u001f\\u007f-\\u009f]{0,126}[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000])?$", example = "customer-42")]
    pub customer_id: Field<String>,
    /// Hold duration in seconds, 1..=3600; 900 when absent.
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 3600, example = 900)]
    pub hold_seconds: Field<Number>,
}

impl PlaceHoldRequest {
    /// The `PlaceHold` command; its reservation id is minted from `command_id`, so a retry
    /// with the same idempotency key names the same reservation.
    ///
    /// # Errors
    /// Every invalid field.
    pub fn into_command(self, command_id: Uuid) -> Result<Command, Vec<FieldError>> {
        let mut check = Checker::default();
        let resource = check.required("resource_id", self.resource_id, |s| ResourceId::parse(&s));
        let from = check.required("from", self.from, |s| Slot::parse(&s));
        let to = check.required("to", self.to, |s| Slot::parse(&s));
        let quantity = check
            .required("quantity", self.quantity, |n| whole(&n, 1, Quantity::MAX).and_then(Quantity::new));
        let customer_id = check.required("customer_id", self.customer_id, |s| CustomerId::parse(&s));
        let ttl = check.optional("hold_seconds", self.hold_seconds, |n| {
            whole(&n, 1, HoldTtl::MAX_SECONDS).and_then(HoldTtl::from_seconds)
        });
        let range = match (from, to) {
            (Some(from), Some(to)) => check.check(SlotRange::new(from, to)),
            _ => None,
        };
        check.finish(|| {
            Some(Command::PlaceHold {
                reservation_id: ReservationId::new(&resource?, command_id),
                range: range?,
                quantity: quantity?,
                customer_id: customer_id?,
                ttl: ttl?.unwrap_or_default(),
            })
        })
    }
}

/// Body of `POST /v1/reservations/{id}/confirm`; an empty body or `null` means `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ConfirmRequest {
    /// Payment reference recorded with the confirmation, 1–256 characters, no control
    /// characters.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,256}$", example = "pay_123")]
    pub payment_ref: Field<String>,
}

impl ConfirmRequest {
    /// The `ConfirmReservation` command for `reservation_id` (taken from the path).
    ///
    /// # Errors
    /// Every invalid field.
    pub fn into_command(self, reservation_id: ReservationId) -> Result<Command, Vec<FieldError>> {
        let mut check = Checker::default();
        let payment_ref = check.optional("payment_ref", self.payment_ref, |s| note(s, MAX_NOTE_CHARS));
        check.finish(|| Some(Command::ConfirmReservation { reservation_id, payment_ref: payment_ref? }))
    }
}

/// Body of `POST /v1/reservations/{id}/cancel`; an empty body or `null` means `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CancelRequest {
    /// Why the reservation is cancelled, 1–256 characters, no control characters.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,256}$", example = "plans changed")]
    pub reason: Field<String>,
}

impl CancelRequest {
    /// The `CancelReservation` command for `reservation_id` (taken from the path).
    ///
    /// # Errors
    /// Every invalid field.
    pub fn into_command(self, reservation_id: ReservationId) -> Result<Command, Vec<FieldError>> {
        let mut check = Checker::default();
        let reason = check.optional("reason", self.reason, |s| note(s, MAX_NOTE_CHARS));
        check.finish(|| Some(Command::CancelReservation { reservation_id, reason: reason? }))
    }
}

/// A capacity field: a whole number accepted by [`Capacity::new`].
fn parse_capacity(n: Number) -> Result<Capacity, holdfast_domain::ValueError> {
    whole(&n, 0, Capacity::MAX).and_then(Capacity::new)
}

#[cfg(test)]
mod tests;
