//! Fuzz target: the parsers of the values that arrive as text — the domain's ids, names, days
//! and day ranges, the bounded numbers, the read-your-writes position token (both services'
//! parsers) and the query API's query string.
//!
//! Every input is read by each parser: as one string (lossily decoded from UTF-8), as two
//! strings split at the first `/` for the ranges, and its first four bytes as a number.
//! Invariants beyond "never panics":
//! - a parsed value prints as the text it came from (or, for position tokens, as a token that
//!   parses to the same value) and parses back to itself;
//! - a value stays within its type's rule (lengths, charsets, bounds, ranges' day counts);
//! - the two services accept the same position tokens;
//! - the query API's parameters mean what the domain parsers say.

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Uri};
use holdfast_command_service::envelope::Position as CommandPosition;
use holdfast_domain::values::DaySpan;
use holdfast_domain::{
    Capacity, CapacityRange, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, ResourceName, Slot,
    SlotRange,
};
use holdfast_query_service::http::params::{MIN_POSITION_HEADER, Params};
use holdfast_query_service::position::Position as QueryPosition;

/// Partitions of the events topic the query-side checks assume.
const PARTITIONS: i32 = 480;

fn main() {
    afl::fuzz!(|input: &[u8]| {
        let text = String::from_utf8_lossy(input);
        ids(&text);
        slot(&text);
        if let Some((from, to)) = text.split_once('/') {
            span::<31>(from, to);
            span::<366>(from, to);
            let reservation = SlotRange::parse(from, to);
            let capacity = CapacityRange::parse(from, to);
            assert!(reservation.is_err() || capacity.is_ok(), "a reservation range is no capacity range");
        }
        let mut word = [0; 4];
        let n = input.len().min(4);
        word[..n].copy_from_slice(&input[..n]);
        amounts(u32::from_le_bytes(word));
        positions(&text);
        query(&text);
    });
}

fn ids(text: &str) {
    if let Ok(id) = ResourceId::parse(text) {
        assert_eq!(id.to_string(), text);
        assert!((1..=128).contains(&text.len()), "resource id of {} bytes", text.len());
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b".:-".contains(&b)), "{text:?}");
        assert_eq!(ResourceId::parse(&id.to_string()).ok(), Some(id));
    }
    if let Ok(id) = CustomerId::parse(text) {
        assert_eq!(id.to_string(), text);
        printable(text, 128);
        assert_eq!(CustomerId::parse(&id.to_string()).ok(), Some(id));
    }
    if let Ok(name) = ResourceName::parse(text) {
        assert_eq!(name.to_string(), text);
        printable(text, 200);
        assert_eq!(ResourceName::parse(&name.to_string()).ok(), Some(name));
    }
    if let Ok(id) = ReservationId::parse(text) {
        // The wire form is canonical: lowercase hex, one layout.
        assert_eq!(id.to_string(), text);
        assert_eq!(ReservationId::new(id.resource_id(), id.uuid()), id);
        assert_eq!(ResourceId::parse(id.resource_id().as_str()).as_ref(), Ok(id.resource_id()));
        assert_eq!(ReservationId::parse(&id.to_string()).ok(), Some(id));
    }
}

/// The rule of customer ids and resource names.
fn printable(text: &str, max_chars: usize) {
    assert!((1..=max_chars).contains(&text.chars().count()), "{text:?}");
    assert!(!text.chars().any(char::is_control), "{text:?}");
    assert_eq!(text.trim(), text);
}

fn slot(text: &str) {
    let Ok(slot) = Slot::parse(text) else { return };
    assert_eq!(slot.to_string(), text);
    assert_eq!(Slot::from_date(slot.date()).ok(), Some(slot));
    if let Some(next) = slot.next() {
        assert_eq!(slot.days_until(next), 1);
        assert!(next > slot);
        assert_eq!(Slot::parse(&next.to_string()).ok(), Some(next));
    } else {
        assert_eq!(text, "9999-12-31");
    }
}

fn span<const MAX: u16>(from: &str, to: &str) {
    let Ok(range) = DaySpan::<MAX>::parse(from, to) else { return };
    let len = range.len();
    assert!((1..=usize::from(MAX)).contains(&len), "{len} days");
    assert_eq!(range.slots().len(), len);
    assert_eq!(range.slots().count(), len);
    assert_eq!(range.slots().next(), Some(range.from()));
    assert_eq!(range.slots().last().and_then(Slot::next), Some(range.to()));
    assert!(range.contains(range.from()) && !range.contains(range.to()));
    assert_eq!(DaySpan::<MAX>::new(range.from(), range.to()).ok(), Some(range));
    assert_eq!((range.from().to_string(), range.to().to_string()), (from.to_owned(), to.to_owned()));
    let json = serde_json::to_string(&range).expect("a range serializes");
    assert_eq!(serde_json::from_str::<DaySpan<MAX>>(&json).ok(), Some(range), "{json}");
}

fn amounts(n: u32) {
    let quantity = Quantity::new(n);
    assert_eq!(quantity.is_ok(), (1..=Quantity::MAX).contains(&n));
    assert_eq!(serde_json::from_str::<Quantity>(&n.to_string()).ok(), quantity.clone().ok());
    if let Ok(quantity) = quantity {
        assert_eq!((quantity.get(), quantity.to_string()), (n, n.to_string()));
    }
    let capacity = Capacity::new(n);
    assert_eq!(capacity.is_ok(), n <= Capacity::MAX);
    assert_eq!(serde_json::from_str::<Capacity>(&n.to_string()).ok(), capacity.clone().ok());
    if let Ok(capacity) = capacity {
        assert_eq!(capacity.get(), n);
    }
    let ttl = HoldTtl::from_seconds(n);
    assert_eq!(ttl.is_ok(), (1..=HoldTtl::MAX_SECONDS).contains(&n));
    if let Ok(ttl) = ttl {
        assert_eq!(ttl.duration().whole_seconds(), i64::from(n));
    }
}

fn positions(text: &str) {
    if let Some(position) = CommandPosition::parse(text) {
        assert!(position.partition >= 0 && position.next_offset >= 0, "{position:?}");
        assert_eq!(CommandPosition::parse(&position.token()), Some(position));
        // What the command service hands out, the query service takes.
        if position.partition < i32::MAX {
            let read = QueryPosition::parse(&position.token(), i32::MAX)
                .unwrap_or_else(|e| panic!("the query service refuses {}: {e}", position.token()));
            assert_eq!((read.partition, read.next_offset), (position.partition, position.next_offset));
        }
    }
    if let Ok(position) = QueryPosition::parse(text, PARTITIONS) {
        assert!((0..PARTITIONS).contains(&position.partition) && position.next_offset >= 0);
        assert_eq!(QueryPosition::parse(&position.to_string(), PARTITIONS), Ok(position));
        let made = CommandPosition::parse(text).map(|p| (p.partition, p.next_offset));
        assert_eq!(made, Some((position.partition, position.next_offset)), "{text:?}");
    }
}

/// The query string of a read route, and the `Min-Position` header.
fn query(text: &str) {
    if let Ok(uri) = Uri::try_from(format!("/v1/resources/r/availability?{text}")) {
        let Ok(params) = Params::from_query(Query::try_from_uri(&uri)) else { return };
        let mut errors = Vec::new();
        let range = params.range(&mut errors);
        let expected = match (params.get("from"), params.get("to")) {
            (Some(from), Some(to)) => CapacityRange::parse(from, to).ok(),
            _ => None,
        };
        assert_eq!(range, expected, "{text:?}");
        assert_eq!(range.is_some(), errors.is_empty(), "{errors:?}");
        let mut errors = Vec::new();
        let wanted = params.min_position(&HeaderMap::new(), PARTITIONS, &mut errors);
        let expected =
            params.get("min_position").and_then(|raw| QueryPosition::parse(raw.trim(), PARTITIONS).ok());
        assert_eq!(wanted, expected, "{text:?}");
        assert_eq!(errors.is_empty(), wanted.is_some() || params.get("min_position").is_none());
    }
    if let Ok(value) = HeaderValue::from_str(text) {
        let mut headers = HeaderMap::new();
        headers.insert(MIN_POSITION_HEADER, value);
        let mut errors = Vec::new();
        let wanted = Params::default().min_position(&headers, PARTITIONS, &mut errors);
        // A header value must be visible ASCII before it is trimmed and parsed.
        let expected = text.is_ascii().then(|| QueryPosition::parse(text.trim(), PARTITIONS).ok()).flatten();
        assert_eq!(wanted, expected, "{text:?}");
        assert_eq!(wanted.is_some(), errors.is_empty());
    }
}
