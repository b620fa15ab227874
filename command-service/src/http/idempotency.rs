//! Idempotency: the `Idempotency-Key` header, the command id derived from it, and the
//! request fingerprint that tells a retry from a different request reusing the key.
//!
//! Everything here is pure. Whether a key was seen before is decided by the partition that
//! owns the resource (it remembers command ids and fingerprints), never at the edge.

use std::io;

use axum::http::{HeaderMap, Method};
use holdfast_domain::Command;
use uuid::Uuid;

use super::problem::FieldError;

/// Name of the idempotency header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest accepted idempotency key, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// Namespace of the UUIDv5 command ids derived from idempotency keys
/// (`ffd7c114-b98d-4cb6-87a1-ba5380eeb483`). Never change it: every stored command id and
/// every reservation id minted from a key depends on it.
pub const COMMAND_ID_NAMESPACE: Uuid = Uuid::from_u128(0xffd7_c114_b98d_4cb6_87a1_ba53_80ee_b483);

/// The request's idempotency key: `None` without the header.
///
/// # Errors
/// When the header is repeated, or is not 1–255 visible ASCII characters.
pub fn key(headers: &HeaderMap) -> Result<Option<&str>, FieldError> {
    let invalid = |reason: &str| FieldError::new("Idempotency-Key", reason);
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(invalid("must be sent once"));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_CHARS {
        return Err(invalid(&format!("must be 1 to {MAX_KEY_CHARS} characters, got {}", bytes.len())));
    }
    match value.to_str() {
        Ok(key) if bytes.iter().all(u8::is_ascii_graphic) => Ok(Some(key)),
        _ => Err(invalid("must contain only visible ASCII characters (no spaces)")),
    }
}

/// The command id of a request: UUIDv5 over `"{METHOD} {path} {key} {subject}"` with a key,
/// so every retry by the same caller names the same command (and the same reservation), and
/// the same key sent by two callers names two commands; a fresh UUIDv7 without a key. The
/// subject comes last: method, path and key hold no spaces, so the name is unambiguous.
#[must_use]
pub fn command_id(subject: &str, method: &Method, path: &str, key: Option<&str>) -> Uuid {
    match key {
        Some(key) => Uuid::new_v5(
            &COMMAND_ID_NAMESPACE,
            format!("{} {path} {key} {subject}", method.as_str()).as_bytes(),
        ),
        None => Uuid::now_v7(),
    }
}

/// FNV-1a 64 over the command's JSON form (`serde_json::to_vec(command)`): the same request
/// always gives the same fingerprint, on every instance and every version that keeps the
/// command's serialization.
///
/// # Errors
/// Only if the command cannot be serialized, which its types rule out.
pub fn fingerprint(command: &Command) -> Result<u64, serde_json::Error> {
    let mut hasher = Fnv1a::default();
    serde_json::to_writer(&mut hasher, command)?;
    Ok(hasher.0)
}

/// FNV-1a, 64-bit, fed as an `io::Write` so the JSON is hashed without being buffered.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl io::Write for Fnv1a {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use axum::http::HeaderValue;
    use holdfast_domain::{ReservationId, ResourceId};

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(IDEMPOTENCY_KEY, HeaderValue::from_bytes(value.as_bytes()).expect("header value"));
        }
        headers
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert_eq!(key(&HeaderMap::new()), Ok(None));
        assert_eq!(key(&headers(&["k-1"])), Ok(Some("k-1")));
        assert!(key(&headers(&[&"x".repeat(255)])).is_ok());
        let long = "x".repeat(256);
        for bad in [&[""][..], &["a b"], &["\u{e9}"], &["a", "b"], &[&long]] {
            let error = key(&headers(bad)).expect_err("invalid key");
            assert_eq!(error.field, "Idempotency-Key");
        }
    }

    #[test]
    fn command_ids_derive_from_caller_method_path_and_key() {
        let id = command_id("ada", &Method::POST, "/v1/reservations", Some("k"));
        assert_eq!(id, command_id("ada", &Method::POST, "/v1/reservations", Some("k")));
        assert_eq!(id.get_version_num(), 5);
        let expected = Uuid::new_v5(&COMMAND_ID_NAMESPACE, b"POST /v1/reservations k ada");
        assert_eq!(id, expected);
        assert_ne!(id, command_id("bob", &Method::POST, "/v1/reservations", Some("k")), "another caller");
        assert_ne!(id, command_id("ada", &Method::POST, "/v1/resources", Some("k")));
        assert_ne!(id, command_id("ada", &Method::POST, "/v1/reservations", Some("k2")));
        let fresh = command_id("ada", &Method::POST, "/v1/reservations", None);
        assert_eq!(fresh.get_version_num(), 7);
    }

    #[test]
    fn fingerprints_are_fnv1a_of_the_json_and_stable() {
        let mut empty = Fnv1a::default();
        empty.write_all(b"a").expect("hash");
        assert_eq!(empty.0, 0xaf63_dc4c_8601_ec8c, "FNV-1a 64 test vector for \"a\"");

        let room = ResourceId::parse("room-1").expect("valid");
        let command = Command::CancelReservation {
            reservation_id: ReservationId::new(&room, Uuid::from_u128(1)),
            reason: None,
        };
        let print = fingerprint(&command).expect("serializable");
        // Pinned: a change means the command's JSON changed, and keys in flight during a
        // deploy would be reported as reused. Change it only together with the format version.
        assert_eq!(print, 0x3c70_64c1_098f_62f9);
        assert_eq!(print, fingerprint(&command.clone()).expect("serializable"));
        let mut by_hand = Fnv1a::default();
        by_hand.write_all(&serde_json::to_vec(&command).expect("json")).expect("hash");
        assert_eq!(print, by_hand.0);
        let other = Command::CancelReservation {
            reservation_id: ReservationId::new(&room, Uuid::from_u128(1)),
            reason: Some("x".into()),
        };
        assert_ne!(print, fingerprint(&other).expect("serializable"));
    }
}
