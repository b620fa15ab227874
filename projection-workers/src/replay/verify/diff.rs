//! Comparing rows: the read model recomputed from the log against what PostgreSQL and Redis
//! hold, as a list of [`Difference`]s.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::cache::format;
use crate::model::{ReservationRow, ResourceRow, SlotRow};

/// One row or value that differs from the log's recomputation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `postgres` or `redis`.
    pub store: &'static str,
    /// The table (PostgreSQL), or `availability`, `generation` (Redis).
    pub table: &'static str,
    /// The row's key.
    pub key: String,
    /// What the log says (absent: no such row).
    pub expected: Option<String>,
    /// What the store holds (absent: no such row).
    pub actual: Option<String>,
}

/// A row's content as one comparable string.
pub trait Describe {
    /// The row's key.
    fn key(&self) -> String;
    /// Every column but the key.
    fn describe(&self) -> String;
}

impl Describe for ResourceRow {
    fn key(&self) -> String {
        self.resource_id.to_string()
    }
    fn describe(&self) -> String {
        format!(
            "name={:?} capacity={} partition={} version={}",
            self.name.as_str(),
            self.capacity,
            self.partition,
            self.version
        )
    }
}

impl Describe for SlotRow {
    fn key(&self) -> String {
        format!("{}/{}", self.resource_id, self.slot)
    }
    fn describe(&self) -> String {
        format!(
            "capacity={} held={} confirmed={} version={}",
            self.capacity, self.held, self.confirmed, self.version
        )
    }
}

impl Describe for ReservationRow {
    fn key(&self) -> String {
        self.reservation_id.to_string()
    }
    fn describe(&self) -> String {
        format!(
            "status={} range={}..{} quantity={} customer={} expires_at={} payment_ref={:?} cancel_reason={:?} \
             created_at={} updated_at={} version={}",
            self.status.as_str(),
            self.slot_from,
            self.slot_to,
            self.quantity,
            self.customer_id.as_str(),
            self.expires_at,
            self.payment_ref,
            self.cancel_reason,
            self.created_at,
            self.updated_at,
            self.version
        )
    }
}

/// Differences between `expected` and `actual` rows of `table`.
pub fn rows<'a, R: Describe + 'a>(
    table: &'static str,
    expected: impl IntoIterator<Item = &'a R>,
    actual: impl IntoIterator<Item = &'a R>,
) -> Vec<Difference> {
    let expected: BTreeMap<String, String> = expected.into_iter().map(|r| (r.key(), r.describe())).collect();
    let actual: BTreeMap<String, String> = actual.into_iter().map(|r| (r.key(), r.describe())).collect();
    let keys: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let (e, a) = (expected.get(key), actual.get(key));
            (e != a).then(|| Difference {
                store: "postgres",
                table,
                key: key.clone(),
                expected: e.cloned(),
                actual: a.cloned(),
            })
        })
        .collect()
}

/// The version a cached value starts with.
fn version_of(value: &str) -> Option<i64> {
    value.split('|').next()?.parse().ok()
}

/// Differences between one resource's expected availability fields and its cached hash.
///
/// `applied` is PostgreSQL's next offset for the resource's partition (the recomputation is
/// as of it); `cached` is Redis's position there. A cached value newer than `applied` (Redis
/// moved on after the snapshot) or an expected value at or after `cached` (Redis has not
/// caught up with it yet) is not compared.
pub fn availability(
    key: &str,
    expected: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
    applied: i64,
    cached: i64,
) -> Vec<Difference> {
    let fields: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    fields
        .into_iter()
        .filter_map(|field| {
            let (e, a) = (expected.get(field), actual.get(field));
            if a.and_then(|v| version_of(v)).is_some_and(|v| v >= applied) {
                return None;
            }
            if e.and_then(|v| version_of(v)).is_some_and(|v| v >= cached) {
                return None;
            }
            (e != a).then(|| Difference {
                store: "redis",
                table: "availability",
                key: format!("{key} {field}"),
                expected: e.cloned(),
                actual: a.cloned(),
            })
        })
        .collect()
}

/// The expected availability fields of every resource.
pub fn expected_fields<'a>(
    resources: impl IntoIterator<Item = &'a ResourceRow>,
    slots: impl IntoIterator<Item = &'a SlotRow>,
) -> BTreeMap<holdfast_domain::ResourceId, BTreeMap<String, String>> {
    let mut fields: BTreeMap<holdfast_domain::ResourceId, BTreeMap<String, String>> = BTreeMap::new();
    for row in resources {
        fields
            .entry(row.resource_id.clone())
            .or_default()
            .insert(format::DEFINITION_FIELD.to_owned(), format::definition_value(row));
    }
    for row in slots {
        let (field, value) = format::slot_field(row);
        fields.entry(row.resource_id.clone()).or_default().insert(field, value);
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn cached_values_are_compared_only_where_both_sides_are_settled() {
        let expected = map(&[("2031-03-01", "5|10|1|0|"), ("2031-03-02", "9|10|2|0")]);
        // Tampered (same version, other numbers) → a difference.
        let actual = map(&[("2031-03-01", "5|10|7|0|"), ("2031-03-02", "9|10|2|0")]);
        assert_eq!(availability("k", &expected, &actual, 10, 10).len(), 1);
        // Redis has moved on past the snapshot for the first field: not compared.
        let actual = map(&[("2031-03-01", "12|10|7|0"), ("2031-03-02", "9|10|2|0")]);
        assert!(availability("k", &expected, &actual, 10, 13).is_empty());
        // Redis has not caught up with the second field yet: not compared; missing otherwise.
        let actual = map(&[("2031-03-01", "5|10|1|0|")]);
        assert!(availability("k", &expected, &actual, 10, 8).is_empty());
        assert_eq!(availability("k", &expected, &actual, 10, 10).len(), 1);
    }
}
