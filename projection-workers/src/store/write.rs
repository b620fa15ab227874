//! Writing changed rows: one `INSERT … SELECT FROM UNNEST(…) ON CONFLICT DO UPDATE` per table,
//! whatever the number of rows. Each upsert only replaces a stored row with an older version,
//! so writing the same changes twice (or a stale copy after a newer one) changes nothing.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::to_i32;
use crate::model::Changes;

/// Writes every changed row of `changes`.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn changes(conn: &mut PgConnection, changes: &Changes) -> Result<(), sqlx::Error> {
    resources(conn, changes).await?;
    slots(conn, changes).await?;
    reservations(conn, changes).await
}

async fn resources(conn: &mut PgConnection, changes: &Changes) -> Result<(), sqlx::Error> {
    if changes.resources.is_empty() {
        return Ok(());
    }
    let rows = &changes.resources;
    let ids: Vec<&str> = rows.iter().map(|r| r.resource_id.as_str()).collect();
    let partitions: Vec<i32> = rows.iter().map(|r| r.partition).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let capacities: Vec<i32> = rows.iter().map(|r| to_i32(r.capacity)).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
    sqlx::query(
        "INSERT INTO resources (resource_id, partition, name, capacity, version)
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::int[], $5::bigint[])
         ON CONFLICT (resource_id) DO UPDATE SET
             partition = EXCLUDED.partition, name = EXCLUDED.name,
             capacity = EXCLUDED.capacity, version = EXCLUDED.version
         WHERE resources.version < EXCLUDED.version",
    )
    .bind(&ids)
    .bind(&partitions)
    .bind(&names)
    .bind(&capacities)
    .bind(&versions)
    .execute(conn)
    .await?;
    Ok(())
}

async fn slots(conn: &mut PgConnection, changes: &Changes) -> Result<(), sqlx::Error> {
    if changes.slots.is_empty() {
        return Ok(());
    }
    let rows = &changes.slots;
    let ids: Vec<&str> = rows.iter().map(|r| r.resource_id.as_str()).collect();
    let days: Vec<time::Date> = rows.iter().map(|r| r.slot.date()).collect();
    let capacities: Vec<i32> = rows.iter().map(|r| to_i32(r.capacity)).collect();
    let held: Vec<i32> = rows.iter().map(|r| to_i32(r.held)).collect();
    let confirmed: Vec<i32> = rows.iter().map(|r| to_i32(r.confirmed)).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
    sqlx::query(
        "INSERT INTO availability (resource_id, slot, capacity, held, confirmed, version)
         SELECT * FROM UNNEST($1::text[], $2::date[], $3::int[], $4::int[], $5::int[], $6::bigint[])
         ON CONFLICT (resource_id, slot) DO UPDATE SET
             capacity = EXCLUDED.capacity, held = EXCLUDED.held,
             confirmed = EXCLUDED.confirmed, version = EXCLUDED.version
         WHERE availability.version < EXCLUDED.version",
    )
    .bind(&ids)
    .bind(&days)
    .bind(&capacities)
    .bind(&held)
    .bind(&confirmed)
    .bind(&versions)
    .execute(conn)
    .await?;
    Ok(())
}

async fn reservations(conn: &mut PgConnection, changes: &Changes) -> Result<(), sqlx::Error> {
    if changes.reservations.is_empty() {
        return Ok(());
    }
    let rows = &changes.reservations;
    let ids: Vec<String> = rows.iter().map(|r| r.reservation_id.to_string()).collect();
    let resources: Vec<&str> = rows.iter().map(|r| r.reservation_id.resource_id().as_str()).collect();
    let from: Vec<time::Date> = rows.iter().map(|r| r.slot_from.date()).collect();
    let to: Vec<time::Date> = rows.iter().map(|r| r.slot_to.date()).collect();
    let quantities: Vec<i32> = rows.iter().map(|r| to_i32(r.quantity)).collect();
    let customers: Vec<&str> = rows.iter().map(|r| r.customer_id.as_str()).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    let expires: Vec<OffsetDateTime> = rows.iter().map(|r| r.expires_at).collect();
    let payments: Vec<Option<&str>> = rows.iter().map(|r| r.payment_ref.as_deref()).collect();
    let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.cancel_reason.as_deref()).collect();
    let created: Vec<OffsetDateTime> = rows.iter().map(|r| r.created_at).collect();
    let updated: Vec<OffsetDateTime> = rows.iter().map(|r| r.updated_at).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
    sqlx::query(
        "INSERT INTO reservations (reservation_id, resource_id, slot_from, slot_to, quantity, customer_id,
                                   status, expires_at, payment_ref, cancel_reason, created_at, updated_at, version)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::date[], $4::date[], $5::int[], $6::text[],
                              $7::text[], $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[],
                              $12::timestamptz[], $13::bigint[])
         ON CONFLICT (reservation_id) DO UPDATE SET
             status = EXCLUDED.status, payment_ref = EXCLUDED.payment_ref,
             cancel_reason = EXCLUDED.cancel_reason, updated_at = EXCLUDED.updated_at,
             version = EXCLUDED.version
         WHERE reservations.version < EXCLUDED.version",
    )
    .bind(&ids)
    .bind(&resources)
    .bind(&from)
    .bind(&to)
    .bind(&quantities)
    .bind(&customers)
    .bind(&statuses)
    .bind(&expires)
    .bind(&payments)
    .bind(&reasons)
    .bind(&created)
    .bind(&updated)
    .bind(&versions)
    .execute(conn)
    .await?;
    Ok(())
}
