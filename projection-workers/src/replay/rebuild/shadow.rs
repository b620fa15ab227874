//! The shadow generation in PostgreSQL: its schema and tables, its row in
//! `read_model_builds`, loading back what an interrupted run wrote, writing checkpoints, and
//! building the indexes once the bulk of the rows is in.
//!
//! The tables are those of the migrations (a test compares them), created without indexes so
//! the first load is a plain COPY; primary keys and secondary indexes come after it. The
//! offsets table holds the reader rule's tenure beside each next offset, like the live one
//! (migration 0004), in the same column order, so the `read_model` view can switch to it.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use super::copy::{self, RESERVATION_COLUMNS, RESOURCE_COLUMNS, SLOT_COLUMNS};
use crate::model::{Changes, ReservationRow, ResourceRow, SlotRow};
use crate::replay::ReplayError;
use crate::replay::log::Offsets;
use crate::store::generation::use_schema;
use crate::store::offsets::{self, Position};
use crate::store::rows;

/// Tables of a generation, without indexes (`{s}` is the schema).
const TABLES: &str = r"
CREATE TABLE IF NOT EXISTS {s}.projection_offsets (
    topic            TEXT        NOT NULL,
    partition        INTEGER     NOT NULL CHECK (partition >= 0),
    next_offset      BIGINT      NOT NULL CHECK (next_offset >= 0),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    tenure_token     UUID,
    tenure_next_seq  BIGINT      CHECK (tenure_next_seq >= 0),
    PRIMARY KEY (topic, partition),
    CONSTRAINT projection_offsets_tenure_whole CHECK ((tenure_token IS NULL) = (tenure_next_seq IS NULL))
);
CREATE TABLE IF NOT EXISTS {s}.resources (
    resource_id  TEXT    NOT NULL,
    partition    INTEGER NOT NULL CHECK (partition >= 0),
    name         TEXT    NOT NULL,
    capacity     INTEGER NOT NULL CHECK (capacity >= 0),
    version      BIGINT  NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.availability (
    resource_id  TEXT    NOT NULL,
    slot         DATE    NOT NULL,
    capacity     INTEGER NOT NULL CHECK (capacity >= 0),
    held         INTEGER NOT NULL CHECK (held >= 0),
    confirmed    INTEGER NOT NULL CHECK (confirmed >= 0),
    version      BIGINT  NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.reservations (
    reservation_id  TEXT        NOT NULL,
    resource_id     TEXT        NOT NULL,
    slot_from       DATE        NOT NULL,
    slot_to         DATE        NOT NULL CHECK (slot_to > slot_from),
    quantity        INTEGER     NOT NULL CHECK (quantity > 0),
    customer_id     TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    expires_at      TIMESTAMPTZ NOT NULL,
    payment_ref     TEXT,
    cancel_reason   TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    version         BIGINT      NOT NULL
)";

/// Index builds after the load; independent of each other, so they run in parallel.
const INDEXES: [&str; 6] = [
    "CREATE UNIQUE INDEX resources_pkey ON {s}.resources (resource_id)",
    "CREATE INDEX resources_by_partition ON {s}.resources (partition)",
    "CREATE UNIQUE INDEX availability_pkey ON {s}.availability (resource_id, slot)",
    "CREATE UNIQUE INDEX reservations_pkey ON {s}.reservations (reservation_id)",
    "CREATE INDEX reservations_by_customer ON {s}.reservations (customer_id, reservation_id)",
    "CREATE INDEX reservations_by_resource ON {s}.reservations (resource_id, slot_from)",
];

/// The unique indexes become the primary keys (a quick catalog change).
const PRIMARY_KEYS: &str = r"
ALTER TABLE {s}.resources ADD CONSTRAINT resources_pkey PRIMARY KEY USING INDEX resources_pkey;
ALTER TABLE {s}.availability ADD CONSTRAINT availability_pkey PRIMARY KEY USING INDEX availability_pkey;
ALTER TABLE {s}.reservations ADD CONSTRAINT reservations_pkey PRIMARY KEY USING INDEX reservations_pkey;
ANALYZE {s}.resources, {s}.availability, {s}.reservations";

/// Where a shard's shadow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Rows are being written; no indexes yet.
    Loading,
    /// Complete up to its offsets, indexed; catching up.
    Indexed,
}

/// A rebuild in progress.
#[derive(Debug, Clone)]
pub struct Build {
    /// The generation being built.
    pub generation: i64,
    /// Its schema.
    pub schema: String,
    /// Events before this instant are not projected.
    pub since: Option<OffsetDateTime>,
    /// Whether it continues an interrupted run.
    pub resumed: bool,
}

fn sql(template: &str, schema: &str) -> String {
    template.replace("{s}", &format!("\"{schema}\""))
}

/// Continues the unfinished rebuild, or starts generation (newest known + 1); creates its
/// schema and tables on every shard.
///
/// # Errors
/// When PostgreSQL fails, or an unfinished rebuild has another `--since`.
pub async fn prepare(pools: &[PgPool], since: Option<OffsetDateTime>) -> Result<Build, ReplayError> {
    let mut newest = 0_i64;
    let mut unfinished: Option<(i64, String, Option<OffsetDateTime>)> = None;
    for pool in pools {
        let live: i64 =
            sqlx::query_scalar("SELECT generation FROM read_model_pointer").fetch_one(pool).await?;
        let built: Option<i64> =
            sqlx::query_scalar("SELECT max(generation) FROM read_model_builds").fetch_one(pool).await?;
        newest = newest.max(live).max(built.unwrap_or(0));
        let open: Option<(i64, String, Option<OffsetDateTime>)> = sqlx::query_as(
            "SELECT generation, schema_name, since FROM read_model_builds
             WHERE phase IN ('loading', 'indexed') ORDER BY generation DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await?;
        if unfinished.is_none() {
            unfinished = open;
        }
    }
    let build = match unfinished {
        Some((generation, schema, stored)) => {
            let micros = |t: Option<OffsetDateTime>| t.map(|t| t.unix_timestamp_nanos() / 1000);
            if since.is_some() && micros(since) != micros(stored) {
                return Err(ReplayError::Refused(format!(
                    "an unfinished rebuild of generation {generation} (since {stored:?}) exists; run again \
                     without --since to continue it"
                )));
            }
            Build { generation, schema, since: stored, resumed: true }
        }
        None => {
            let generation = newest + 1;
            Build { generation, schema: format!("rm_{generation}"), since, resumed: false }
        }
    };
    for pool in pools {
        let mut tx = pool.begin().await?;
        sqlx::query(&sql("CREATE SCHEMA IF NOT EXISTS {s}", &build.schema)).execute(&mut *tx).await?;
        sqlx::raw_sql(&sql(TABLES, &build.schema)).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO read_model_builds (generation, schema_name, since, phase) VALUES ($1, $2, $3, 'loading')
             ON CONFLICT (generation) DO NOTHING",
        )
        .bind(build.generation)
        .bind(&build.schema)
        .bind(build.since)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(build)
}

/// What one shard's shadow holds.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Its phase.
    pub phase: Option<Phase>,
    /// Stored positions (empty: no checkpoint yet, the tables were emptied).
    pub positions: BTreeMap<i32, Position>,
    /// Its rows.
    pub resources: Vec<ResourceRow>,
    /// Its slot rows.
    pub slots: Vec<SlotRow>,
    /// Its reservation rows.
    pub reservations: Vec<ReservationRow>,
}

/// Reads back a shard's shadow. Without a checkpoint (no stored offsets) any rows are left
/// from an interrupted first load and are removed.
///
/// # Errors
/// When PostgreSQL fails or a row is corrupt.
pub async fn load(pool: &PgPool, build: &Build, topic: &str) -> Result<Loaded, ReplayError> {
    let mut tx = pool.begin().await?;
    use_schema(&mut tx, &build.schema).await?;
    let phase: String =
        sqlx::query_scalar("SELECT phase FROM public.read_model_builds WHERE generation = $1")
            .bind(build.generation)
            .fetch_one(&mut *tx)
            .await?;
    let phase = if phase == "loading" { Phase::Loading } else { Phase::Indexed };
    let positions = offsets::all(&mut tx, topic).await?;
    if positions.is_empty() {
        sqlx::query("TRUNCATE resources, availability, reservations").execute(&mut *tx).await?;
        tx.commit().await?;
        return Ok(Loaded { phase: Some(phase), ..Loaded::default() });
    }
    let (resources, slots, reservations) = rows::everything(&mut tx).await?;
    tx.commit().await?;
    Ok(Loaded {
        phase: Some(phase),
        positions: positions.into_iter().collect(),
        resources,
        slots,
        reservations,
    })
}

/// Rows of one shard to write at a checkpoint.
#[derive(Debug)]
pub enum Rows<'a> {
    /// Every row the shard has (its first load, into empty tables).
    All {
        /// Resource rows.
        resources: Vec<&'a ResourceRow>,
        /// Slot rows.
        slots: Vec<&'a SlotRow>,
        /// Reservation rows.
        reservations: Vec<&'a ReservationRow>,
    },
    /// The rows changed since the last checkpoint.
    Changed(&'a Changes),
}

/// Writes the first load of a shard: parallel COPY streams into the empty tables, then the
/// positions (the checkpoint). Not one transaction: until the positions are written, a later
/// run finds no checkpoint and starts the shard again (see [`load`]).
///
/// # Errors
/// When PostgreSQL fails.
pub async fn copy_all(
    pool: &PgPool,
    build: &Build,
    topic: &str,
    rows: &Rows<'_>,
    positions: &[(i32, Position)],
    streams: usize,
) -> Result<(), ReplayError> {
    let Rows::All { resources, slots, reservations } = rows else {
        return Err(ReplayError::Refused("a first load writes every row".into()));
    };
    let schema = &build.schema;
    let table = |name: &str| format!("\"{schema}\".{name}");
    let streams = streams.max(1);
    let chunk = reservations.len().div_ceil(streams).max(1);
    let (resources_table, slots_table, reservations_table) =
        (table("resources"), table("availability"), table("reservations"));
    let small = async {
        let mut conn = pool.acquire().await?;
        let n =
            copy::copy_in(&mut conn, &resources_table, RESOURCE_COLUMNS, resources.iter().copied()).await?;
        Ok::<u64, sqlx::Error>(
            n + copy::copy_in(&mut conn, &slots_table, SLOT_COLUMNS, slots.iter().copied()).await?,
        )
    };
    let big = futures::future::try_join_all(reservations.chunks(chunk).map(|part| {
        let reservations_table = &reservations_table;
        async move {
            let mut conn = pool.acquire().await?;
            copy::copy_in(&mut conn, reservations_table, RESERVATION_COLUMNS, part.iter().copied()).await
        }
    }));
    futures::future::try_join(small, big).await?;
    let mut tx = pool.begin().await?;
    use_schema(&mut tx, schema).await?;
    write_positions(&mut tx, topic, positions).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes changed rows of a shard and its positions on `conn`, inside the caller's
/// transaction: the rows go to temporary tables by COPY, replace their stored versions, and
/// the positions move. Works with and without the indexes.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn write_changes(
    conn: &mut PgConnection,
    build: &Build,
    topic: &str,
    changes: &Changes,
    positions: &[(i32, Position)],
) -> Result<(), ReplayError> {
    let schema = &build.schema;
    use_schema(conn, schema).await?;
    let tables: [(&str, &str, &str); 3] = [
        ("resources", RESOURCE_COLUMNS, "t.resource_id = s.resource_id"),
        ("availability", SLOT_COLUMNS, "t.resource_id = s.resource_id AND t.slot = s.slot"),
        ("reservations", RESERVATION_COLUMNS, "t.reservation_id = s.reservation_id"),
    ];
    for (name, columns, key) in tables {
        let count = match name {
            "resources" => changes.resources.len(),
            "availability" => changes.slots.len(),
            _ => changes.reservations.len(),
        };
        if count == 0 {
            continue;
        }
        let stage = format!("pg_temp.stage_{name}");
        sqlx::query(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS stage_{name} (LIKE \"{schema}\".{name}) ON COMMIT DELETE ROWS"
        ))
        .execute(&mut *conn)
        .await?;
        match name {
            "resources" => copy::copy_in(conn, &stage, columns, &changes.resources).await?,
            "availability" => copy::copy_in(conn, &stage, columns, &changes.slots).await?,
            _ => copy::copy_in(conn, &stage, columns, &changes.reservations).await?,
        };
        sqlx::query(&format!("DELETE FROM \"{schema}\".{name} AS t USING {stage} AS s WHERE {key}"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!("INSERT INTO \"{schema}\".{name} ({columns}) SELECT {columns} FROM {stage}"))
            .execute(&mut *conn)
            .await?;
    }
    write_positions(conn, topic, positions).await
}

/// Sets the shadow's positions (the rebuild is their only writer).
async fn write_positions(
    conn: &mut PgConnection,
    topic: &str,
    positions: &[(i32, Position)],
) -> Result<(), ReplayError> {
    let partitions: Vec<i32> = positions.iter().map(|(p, _)| *p).collect();
    let next: Vec<i64> = positions.iter().map(|(_, position)| position.next_offset).collect();
    let (tokens, seqs): (Vec<Option<uuid::Uuid>>, Vec<Option<i64>>) =
        positions.iter().map(|(_, position)| position.tenure_columns()).unzip();
    sqlx::query(
        "INSERT INTO projection_offsets (topic, partition, next_offset, tenure_token, tenure_next_seq)
         SELECT $1, p, o, t, s FROM UNNEST($2::int[], $3::bigint[], $4::uuid[], $5::bigint[]) AS u(p, o, t, s)
         ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,
             tenure_token = EXCLUDED.tenure_token, tenure_next_seq = EXCLUDED.tenure_next_seq,
             updated_at = now()",
    )
    .bind(topic)
    .bind(&partitions)
    .bind(&next)
    .bind(&tokens)
    .bind(&seqs)
    .execute(conn)
    .await?;
    Ok(())
}

/// Builds the indexes and primary keys of a shard's shadow (two builds at a time) and marks
/// it indexed. Idempotent: indexes that exist are kept.
///
/// # Errors
/// When PostgreSQL fails.
pub async fn finalize(pool: &PgPool, build: &Build) -> Result<(), ReplayError> {
    let schema = &build.schema;
    let existing: Vec<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = $1")
            .bind(schema)
            .fetch_all(pool)
            .await?;
    let wanted: Vec<String> = INDEXES
        .iter()
        .filter(|statement| !existing.iter().any(|name| statement.contains(&format!("INDEX {name} "))))
        .map(|statement| sql(statement, schema))
        .collect();
    futures::stream::iter(wanted)
        .map(|statement| async move {
            let mut conn = pool.acquire().await?;
            sqlx::query("SET maintenance_work_mem = '512MB'").execute(&mut *conn).await?;
            sqlx::query(&statement).execute(&mut *conn).await.map(|_| ())
        })
        .buffer_unordered(2)
        .try_collect::<Vec<()>>()
        .await?;
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE n.nspname = $1 AND c.contype = 'p'",
    )
    .bind(schema)
    .fetch_one(pool)
    .await?;
    let mut tx = pool.begin().await?;
    // projection_offsets has had its key from the start; the three others get theirs now.
    if keys < 4 {
        sqlx::raw_sql(&sql(PRIMARY_KEYS, schema)).execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE read_model_builds SET phase = 'indexed', updated_at = now() WHERE generation = $1")
        .bind(build.generation)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Splits `changes` by shard with `route` (resource → shard).
#[must_use]
pub fn split_changes(
    changes: Changes,
    shards: usize,
    route: impl Fn(&holdfast_domain::ResourceId) -> usize,
) -> Vec<Changes> {
    let mut parts: Vec<Changes> = (0..shards).map(|_| Changes::default()).collect();
    for row in changes.resources {
        parts[route(&row.resource_id)].resources.push(row);
    }
    for row in changes.slots {
        parts[route(&row.resource_id)].slots.push(row);
    }
    for row in changes.reservations {
        parts[route(row.reservation_id.resource_id())].reservations.push(row);
    }
    parts
}

/// The offsets of the partitions of shard `shard` among `shards`.
#[must_use]
pub fn shard_offsets(offsets: &Offsets, shards: usize, shard: usize) -> Offsets {
    offsets
        .iter()
        .filter(|(p, _)| usize::try_from(**p).unwrap_or(0) % shards == shard)
        .map(|(p, o)| (*p, *o))
        .collect::<BTreeMap<_, _>>()
}
