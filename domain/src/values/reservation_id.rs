//! [`ReservationId`]: a reservation's identity, which also routes it to its resource.

use std::fmt;

use serde::Deserialize;
use uuid::Uuid;

use super::{ResourceId, ValueError};

/// Scheme tag; bump it (and keep parsing the old one) if the layout ever changes.
const PREFIX: &str = "r1_";
/// Length of the simple (hyphen-less) lowercase hex form of a UUID.
const UUID_HEX_LEN: usize = 32;

/// Identifies a reservation and names the resource that owns it.
///
/// Wire form: `r1_<32 lowercase hex of a UUID>_<resource_id>`, e.g.
/// `r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel.berlin:room-101`. Because `_` cannot occur in a
/// resource id, the id splits unambiguously, so the command service can route a confirm or
/// cancel to the owning partition without reading any read model. The UUID is normally a v7
/// (time-ordered) generated at the edge; any UUID is accepted so the scheme stays total.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct ReservationId {
    /// Unique part; ordered first so ids sort by creation time.
    uuid: Uuid,
    /// The owning resource.
    resource: ResourceId,
}

impl ReservationId {
    /// Mints the id of a new reservation on `resource`.
    pub fn new(resource: &ResourceId, uuid: Uuid) -> Self {
        Self { uuid, resource: resource.clone() }
    }

    /// Validates the wire form.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        const FIELD: &str = "reservation_id";
        let shape = || ValueError::new(FIELD, "must look like r1_<32 lowercase hex digits>_<resource_id>");
        let rest = s.strip_prefix(PREFIX).ok_or_else(shape)?;
        let (hex, resource) = rest.split_at_checked(UUID_HEX_LEN).ok_or_else(shape)?;
        let resource = resource.strip_prefix('_').ok_or_else(shape)?;
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(shape());
        }
        let uuid = Uuid::try_parse(hex).map_err(|_| shape())?;
        let resource = ResourceId::parse(resource)
            .map_err(|e| ValueError::new(FIELD, format!("embedded resource id is invalid: {}", e.reason)))?;
        Ok(Self { uuid, resource })
    }

    /// The resource that owns this reservation (its routing key).
    pub fn resource_id(&self) -> &ResourceId {
        &self.resource
    }

    /// The unique part of the id.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}_{}", self.uuid.simple(), self.resource)
    }
}

impl std::str::FromStr for ReservationId {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for ReservationId {
    type Error = ValueError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ReservationId {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl serde::Serialize for ReservationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> ResourceId {
        ResourceId::parse("hotel.berlin:room-101").expect("valid")
    }

    #[test]
    fn roundtrips_and_routes_to_its_resource() {
        let uuid = Uuid::from_u128(0x0192_f0c1_a2b3_7c3d_8e4f_5a6b_7c8d_9e0f);
        let id = ReservationId::new(&room(), uuid);
        let text = id.to_string();
        assert_eq!(text, "r1_0192f0c1a2b37c3d8e4f5a6b7c8d9e0f_hotel.berlin:room-101");
        let parsed = ReservationId::parse(&text).expect("roundtrip");
        assert_eq!(parsed, id);
        assert_eq!(parsed.resource_id(), &room());
        assert_eq!(parsed.uuid(), uuid);
    }

    #[test]
    fn rejects_malformed_ids_naming_the_field() {
        let good_hex = "0192f0c1a2b37c3d8e4f5a6b7c8d9e0f";
        for bad in [
            String::new(),
            format!("r2_{good_hex}_room"),
            format!("r1_{good_hex}room"),
            format!("r1_{good_hex}_"),
            format!("r1_{}_room", good_hex.to_uppercase()),
            format!("r1_{}_room", &good_hex[1..]),
            format!("r1_{good_hex}_ro_om"),
            format!("r1_{good_hex}_room 1"),
            "r1_é".to_owned(),
        ] {
            let err = ReservationId::parse(&bad).expect_err(&bad);
            assert_eq!(err.field, "reservation_id", "{bad}");
        }
    }
}
