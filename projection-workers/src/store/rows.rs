//! Reading read-model rows: by key (what a batch [`crate::model::Needs`]) and whole tables
//! (verification, tests). Rows are validated back into domain values on the way in.

use holdfast_domain::{CustomerId, ReservationId, ResourceId, ResourceName, Slot};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use super::{StoreError, to_u32};
use crate::model::{ReservationRow, ResourceRow, SlotKey, SlotRow, Status};

pub(crate) const RESOURCE_COLUMNS: &str = "resource_id, partition, name, capacity, version";
pub(crate) const SLOT_COLUMNS: &str = "resource_id, slot, capacity, held, confirmed, version";
pub(crate) const RESERVATION_COLUMNS: &str = "reservation_id, slot_from, slot_to, quantity, customer_id, status, \
     expires_at, payment_ref, cancel_reason, created_at, updated_at, version";

/// The resource rows of `ids` that exist.
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn resources<'a>(
    conn: &mut PgConnection,
    ids: impl IntoIterator<Item = &'a ResourceId>,
) -> Result<Vec<ResourceRow>, StoreError> {
    let ids: Vec<&str> = ids.into_iter().map(ResourceId::as_str).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE resource_id = ANY($1)");
    let rows = sqlx::query(&sql).bind(&ids).fetch_all(conn).await?;
    rows.iter().map(resource).collect()
}

/// The reservation rows of `ids` that exist.
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn reservations<'a>(
    conn: &mut PgConnection,
    ids: impl IntoIterator<Item = &'a ReservationId>,
) -> Result<Vec<ReservationRow>, StoreError> {
    let ids: Vec<String> = ids.into_iter().map(ToString::to_string).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {RESERVATION_COLUMNS} FROM reservations WHERE reservation_id = ANY($1)");
    let rows = sqlx::query(&sql).bind(&ids).fetch_all(conn).await?;
    rows.iter().map(reservation).collect()
}

/// The slot rows of `keys` that exist.
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn slots<'a>(
    conn: &mut PgConnection,
    keys: impl IntoIterator<Item = &'a SlotKey>,
) -> Result<Vec<SlotRow>, StoreError> {
    let (resources, days): (Vec<&str>, Vec<time::Date>) =
        keys.into_iter().map(|(resource, slot)| (resource.as_str(), slot.date())).unzip();
    if resources.is_empty() {
        return Ok(Vec::new());
    }
    let sql = "SELECT a.resource_id, a.slot, a.capacity, a.held, a.confirmed, a.version
         FROM UNNEST($1::text[], $2::date[]) AS k(resource_id, slot)
         JOIN availability AS a ON a.resource_id = k.resource_id AND a.slot = k.slot";
    let rows = sqlx::query(sql).bind(&resources).bind(&days).fetch_all(conn).await?;
    rows.iter().map(slot).collect()
}

/// Every row of every table, in key order (verification and tests; not for large models).
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn everything(
    conn: &mut PgConnection,
) -> Result<(Vec<ResourceRow>, Vec<SlotRow>, Vec<ReservationRow>), StoreError> {
    let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources ORDER BY resource_id");
    let resources =
        sqlx::query(&sql).fetch_all(&mut *conn).await?.iter().map(resource).collect::<Result<_, _>>()?;
    let sql = format!("SELECT {SLOT_COLUMNS} FROM availability ORDER BY resource_id, slot");
    let slots = sqlx::query(&sql).fetch_all(&mut *conn).await?.iter().map(slot).collect::<Result<_, _>>()?;
    let sql = format!("SELECT {RESERVATION_COLUMNS} FROM reservations ORDER BY reservation_id");
    let reservations =
        sqlx::query(&sql).fetch_all(&mut *conn).await?.iter().map(reservation).collect::<Result<_, _>>()?;
    Ok((resources, slots, reservations))
}

fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table, detail: detail.to_string() }
}

pub(crate) fn resource(row: &PgRow) -> Result<ResourceRow, StoreError> {
    let id: &str = row.try_get(0)?;
    let name: &str = row.try_get(2)?;
    Ok(ResourceRow {
        resource_id: ResourceId::parse(id).map_err(|e| corrupt("resources", e.reason))?,
        partition: row.try_get(1)?,
        name: ResourceName::parse(name).map_err(|e| corrupt("resources", e.reason))?,
        capacity: to_u32(row.try_get(3)?),
        version: row.try_get(4)?,
    })
}

pub(crate) fn slot(row: &PgRow) -> Result<SlotRow, StoreError> {
    let id: &str = row.try_get(0)?;
    let day: time::Date = row.try_get(1)?;
    Ok(SlotRow {
        resource_id: ResourceId::parse(id).map_err(|e| corrupt("availability", e.reason))?,
        slot: Slot::from_date(day).map_err(|e| corrupt("availability", e.reason))?,
        capacity: to_u32(row.try_get(2)?),
        held: to_u32(row.try_get(3)?),
        confirmed: to_u32(row.try_get(4)?),
        version: row.try_get(5)?,
    })
}

pub(crate) fn reservation(row: &PgRow) -> Result<ReservationRow, StoreError> {
    let id: &str = row.try_get(0)?;
    let day = |index: usize| -> Result<Slot, StoreError> {
        let date: time::Date = row.try_get(index)?;
        Slot::from_date(date).map_err(|e| corrupt("reservations", e.reason))
    };
    let customer: &str = row.try_get(4)?;
    let status: &str = row.try_get(5)?;
    Ok(ReservationRow {
        reservation_id: ReservationId::parse(id).map_err(|e| corrupt("reservations", e.reason))?,
        slot_from: day(1)?,
        slot_to: day(2)?,
        quantity: to_u32(row.try_get(3)?),
        customer_id: CustomerId::parse_recorded(customer).map_err(|e| corrupt("reservations", e.reason))?,
        status: Status::parse(status).ok_or_else(|| corrupt("reservations", format!("status {status:?}")))?,
        expires_at: row.try_get::<OffsetDateTime, _>(6)?,
        payment_ref: row.try_get(7)?,
        cancel_reason: row.try_get(8)?,
        created_at: row.try_get(9)?,
        updated_at: row.try_get(10)?,
        version: row.try_get(11)?,
    })
}
