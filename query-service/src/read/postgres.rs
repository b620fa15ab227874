//! Availability, reservations and customers' lists from the PostgreSQL read model
//! (`projection-workers/migrations`), each in one statement so the rows and the partition's
//! stored offset come from one snapshot: the position returned is exactly what the rows reflect.

use super::layout::CachedSlot;
use holdfast_domain::{CapacityRange, CustomerId, ReservationId, ResourceId, Slot};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use super::view::{Availability, ReservationView, assemble};
use super::{ReadError, Source};
use crate::position::Position;

const AVAILABILITY: &str = "
SELECT r.capacity, r.version,
       (SELECT o.next_offset FROM read_model.projection_offsets o WHERE o.topic = $2 AND o.partition = $3) AS position,
       a.slot, a.capacity AS slot_capacity, a.held, a.confirmed, a.version AS slot_version
  FROM read_model.resources r
  LEFT JOIN read_model.availability a ON a.resource_id = r.resource_id AND a.slot >= $4 AND a.slot < $5
 WHERE r.resource_id = $1
 ORDER BY a.slot";

const RESERVATION: &str = "
SELECT reservation_id, resource_id, slot_from, slot_to, quantity, customer_id, status, expires_at, version,
       (SELECT o.next_offset FROM read_model.projection_offsets o WHERE o.topic = $2 AND o.partition = $3) AS position
  FROM read_model.reservations
 WHERE reservation_id = $1";

/// Keyset page in byte order (`COLLATE \"C\"`), so pages of several shards merge the same way
/// whatever the databases' collation is.
const CUSTOMER_PAGE: &str = "
SELECT reservation_id, resource_id, slot_from, slot_to, quantity, customer_id, status, expires_at, version,
       NULL::BIGINT AS position
  FROM read_model.reservations
 WHERE customer_id = $1 AND reservation_id COLLATE \"C\" > $2
 ORDER BY reservation_id COLLATE \"C\"
 LIMIT $3";

const POSITIONS: &str = "SELECT partition, next_offset FROM read_model.projection_offsets WHERE topic = $1 AND partition = ANY($2)";

/// Availability of `resource` (in `partition`) over `range`; `None` when it is not defined.
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn availability(
    pool: &PgPool,
    topic: &str,
    resource: &ResourceId,
    partition: i32,
    range: &CapacityRange,
) -> Result<Option<Availability>, ReadError> {
    let rows = sqlx::query(AVAILABILITY)
        .bind(resource.as_str())
        .bind(topic)
        .bind(partition)
        .bind(range.from().date())
        .bind(range.to().date())
        .fetch_all(pool)
        .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let default_capacity = count(first.try_get("capacity")?);
    let definition_version: i64 = first.try_get("version")?;
    let next_offset: Option<i64> = first.try_get("position")?;
    let mut stored = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(day) = row.try_get::<Option<Date>, _>("slot")? else { continue };
        let day = Slot::from_date(day).map_err(|e| ReadError::Corrupt(format!("availability slot: {e}")))?;
        let slot = CachedSlot {
            version: row.try_get("slot_version")?,
            capacity: count(row.try_get("slot_capacity")?),
            held: count(row.try_get("held")?),
            confirmed: count(row.try_get("confirmed")?),
        };
        stored.push((day, slot));
    }
    let (slots, version) = assemble(range, default_capacity, definition_version, stored);
    Ok(Some(Availability {
        resource_id: resource.to_string(),
        slots,
        position: Position { partition, next_offset: next_offset.unwrap_or(0) },
        version,
        source: Source::Postgres,
    }))
}

/// The reservation `id` (in `partition`), with the partition's position.
///
/// # Errors
/// When PostgreSQL fails or the row is corrupt.
pub async fn reservation(
    pool: &PgPool,
    topic: &str,
    id: &ReservationId,
    partition: i32,
) -> Result<Option<ReservationView>, ReadError> {
    let row = sqlx::query(RESERVATION)
        .bind(id.to_string())
        .bind(topic)
        .bind(partition)
        .fetch_optional(pool)
        .await?;
    row.map(|row| reservation_view(&row, Some(partition))).transpose()
}

/// Up to `limit` reservations of `customer` after `after`, merged from every shard in id
/// order, and whether more follow.
///
/// # Errors
/// When a shard fails or a row is corrupt.
pub async fn customer_reservations(
    shards: &[PgPool],
    customer: &CustomerId,
    after: Option<&ReservationId>,
    limit: usize,
) -> Result<(Vec<ReservationView>, bool), ReadError> {
    let after = after.map(ToString::to_string).unwrap_or_default();
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let pages = shards.iter().map(|pool| {
        sqlx::query(CUSTOMER_PAGE).bind(customer.as_str()).bind(&after).bind(fetch).fetch_all(pool)
    });
    let mut items = Vec::new();
    for rows in futures::future::try_join_all(pages).await? {
        for row in &rows {
            items.push(reservation_view(row, None)?);
        }
    }
    // Byte order, as `COLLATE "C"` sorted each shard's page.
    items.sort_unstable_by(|a, b| a.reservation_id.as_bytes().cmp(b.reservation_id.as_bytes()));
    let more = items.len() > limit;
    items.truncate(limit);
    Ok((items, more))
}

/// Stored positions of `partitions` of `topic` (0 where none is stored yet).
///
/// # Errors
/// When PostgreSQL fails.
pub async fn positions(pool: &PgPool, topic: &str, partitions: &[i32]) -> Result<Vec<(i32, i64)>, ReadError> {
    let rows: Vec<(i32, i64)> =
        sqlx::query_as(POSITIONS).bind(topic).bind(partitions).fetch_all(pool).await?;
    let mut found: Vec<(i32, i64)> = partitions.iter().map(|p| (*p, 0)).collect();
    for (partition, next_offset) in rows {
        if let Some(entry) = found.iter_mut().find(|(p, _)| *p == partition) {
            entry.1 = next_offset;
        }
    }
    Ok(found)
}

fn reservation_view(row: &PgRow, partition: Option<i32>) -> Result<ReservationView, ReadError> {
    let day = |column: &str| -> Result<String, ReadError> {
        let date: Date = row.try_get(column)?;
        Slot::from_date(date).map(|s| s.to_string()).map_err(|e| ReadError::Corrupt(format!("{column}: {e}")))
    };
    let expires_at: OffsetDateTime = row.try_get("expires_at")?;
    let expires_at = expires_at
        .to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| ReadError::Corrupt(format!("expires_at: {e}")))?;
    let position: Option<i64> = row.try_get("position")?;
    Ok(ReservationView {
        reservation_id: row.try_get("reservation_id")?,
        resource_id: row.try_get("resource_id")?,
        from: day("slot_from")?,
        to: day("slot_to")?,
        quantity: count(row.try_get("quantity")?),
        customer_id: row.try_get("customer_id")?,
        status: row.try_get("status")?,
        expires_at,
        version: row.try_get("version")?,
        position: partition
            .map(|p| Position { partition: p, next_offset: position.unwrap_or(0) }.to_string()),
    })
}

/// A stored count (non-negative by the schema) as `u32`.
fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}
