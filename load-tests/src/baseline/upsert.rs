//! The upsert baseline: batches of reservations written through the projection's own write
//! path into a scratch database migrated with the projection's own migrations.
//!
//! Reusing the projection's schema and statements (rather than copies) keeps the baseline
//! measuring what the projection does as both change. It owns its scratch database (created
//! and dropped by [`upsert`]) and must never write to the database the URL names.

use std::time::Instant;

use holdfast_domain::{CustomerId, ReservationId, ResourceId, Slot};
use holdfast_projection_workers::MIGRATOR;
use holdfast_projection_workers::model::{Changes, ReservationRow, Status};
use holdfast_projection_workers::store::generation::{self, Hold};
use holdfast_projection_workers::store::write;
use rand::Rng as _;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection as _, PgConnection};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{BaselineError, BaselineSettings, UpsertBaseline};
use holdfast_platform::postgres;

/// Resources the rows are spread over (the `resource_id` index).
const RESOURCES: usize = 1_000;
/// Customers the rows are spread over (the `customer_id` index).
const CUSTOMERS: usize = 10_000;
/// Days a hold may start on, from today.
const START_DAYS: usize = 90;
/// Nights of every hold.
const NIGHTS: usize = 2;

fn postgres(during: &'static str) -> impl FnOnce(sqlx::Error) -> BaselineError {
    move |source| BaselineError::Postgres { during, source }
}

/// The upsert baseline: creates a scratch database `baseline_<random>` on the server of
/// `postgres_url`, runs the projection's migrations on it, then writes
/// `settings.upsert_batch`-reservation batches through the projection's write path
/// ([`write::changes`]), one transaction each, half new holds and half confirmations of
/// earlier ones (a higher version each time), until `settings.seconds` have passed. The
/// database is dropped afterwards, also when the run failed.
///
/// # Errors
/// See [`BaselineError`]; a failed drop is reported even after a successful run.
pub async fn upsert(
    postgres_url: &SecretString,
    settings: &BaselineSettings,
) -> Result<UpsertBaseline, BaselineError> {
    settings.check()?;
    let database = format!("baseline_{:016x}", rand::random::<u64>());
    let measured = match postgres::create_database(postgres_url, &database).await {
        Ok(scratch_url) => measure(&scratch_url, settings).await,
        Err(source) => Err(BaselineError::CreateDatabase { database: database.clone(), source }),
    };
    // `IF EXISTS … WITH (FORCE)`: fine after a creation that failed, maybe once the database
    // was made, and with a connection still open on it after a failed batch.
    let dropped = postgres::drop_database(postgres_url, &database).await;
    match (measured, dropped) {
        (measured, Ok(())) => measured,
        // The database most likely never existed: asking to drop it by hand would mislead.
        (Err(created @ BaselineError::CreateDatabase { .. }), Err(_)) => Err(created),
        (measured, Err(source)) => {
            Err(BaselineError::DropDatabase { database, source, earlier: measured.err().map(Box::new) })
        }
    }
}

/// Migrates the scratch database at `scratch_url` and measures batches on it.
async fn measure(
    scratch_url: &SecretString,
    settings: &BaselineSettings,
) -> Result<UpsertBaseline, BaselineError> {
    // One connection: batches follow each other, as in one projection shard.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(scratch_url.expose_secret())
        .await
        .map_err(postgres("connect"))?;
    let measured = async {
        MIGRATOR.run(&pool).await.map_err(|e| postgres("migrate")(e.into()))?;
        let mut conn = pool.acquire().await.map_err(postgres("connect"))?;
        write_batches(&mut conn, settings).await
    }
    .await;
    pool.close().await;
    measured
}

/// Writes batches until `settings.seconds` have passed, then checks that the read model holds
/// every row counted.
async fn write_batches(
    conn: &mut PgConnection,
    settings: &BaselineSettings,
) -> Result<UpsertBaseline, BaselineError> {
    let vocabulary = Vocabulary::new(OffsetDateTime::now_utc().date());
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let mut written = Written::default();
    let started = Instant::now();
    while started.elapsed() < settings.seconds {
        let plan = plan_upsert(written.keys(), settings.upsert_batch, &mut rng);
        let reservations = vocabulary.rows(&plan, written.next_version(), OffsetDateTime::now_utc());
        let changes = Changes { reservations, ..Changes::default() };
        let mut tx = conn.begin().await.map_err(postgres("begin"))?;
        // As the workers do: the write path's statements name tables unqualified, and entering
        // the live generation (its pointer held FOR SHARE) sets the transaction's search_path.
        generation::enter(&mut tx, Hold::Write).await.map_err(postgres("enter the read model"))?;
        write::changes(&mut tx, &changes).await.map_err(postgres("upsert"))?;
        tx.commit().await.map_err(postgres("commit"))?;
        written.record(&plan);
    }
    let seconds = started.elapsed().as_secs_f64();
    check_written(conn, &written).await?;
    Ok(UpsertBaseline {
        rows_per_s: written.rows as f64 / seconds,
        batch: settings.upsert_batch,
        seconds,
        rows: written.rows,
    })
}

/// Refuses a run whose rows did not all reach the read model: [`write::changes`] reports no
/// row count, and its upserts skip rows that are not newer than the stored ones.
async fn check_written(conn: &mut PgConnection, written: &Written) -> Result<(), BaselineError> {
    let (found, found_confirmed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'confirmed') FROM read_model.reservations",
    )
    .fetch_one(conn)
    .await
    .map_err(postgres("count rows"))?;
    let (found, found_confirmed) = (found.unsigned_abs(), found_confirmed.unsigned_abs());
    if (found, found_confirmed) == (written.keys(), written.confirmed_keys) {
        return Ok(());
    }
    Err(BaselineError::Unwritten {
        expected: written.keys(),
        expected_confirmed: written.confirmed_keys,
        found,
        found_confirmed,
    })
}

/// What the committed batches wrote.
#[derive(Debug, Default)]
struct Written {
    /// Rows in committed batches.
    rows: u64,
    /// Per key written so far (keys count up from 0), whether an update confirmed it.
    confirmed: Vec<bool>,
    /// Keys an update confirmed.
    confirmed_keys: u64,
}

impl Written {
    /// Distinct keys written.
    fn keys(&self) -> u64 {
        self.confirmed.len() as u64
    }

    /// The version of the next row: one per row written, so every update is newer than the
    /// row it replaces.
    fn next_version(&self) -> i64 {
        i64::try_from(self.rows).unwrap_or(i64::MAX)
    }

    /// Counts a committed batch.
    fn record(&mut self, plan: &UpsertPlan) {
        for key in plan.first_update..plan.first_update + plan.updates {
            if let Some(confirmed) = usize::try_from(key).ok().and_then(|k| self.confirmed.get_mut(k))
                && !*confirmed
            {
                *confirmed = true;
                self.confirmed_keys += 1;
            }
        }
        let keys = plan.first_new + plan.new_keys;
        self.confirmed.resize(usize::try_from(keys).unwrap_or(usize::MAX), false);
        self.rows += plan.updates + plan.new_keys;
    }
}

/// Which rows one batch writes: `updates` consecutive earlier keys from `first_update`, then
/// `new_keys` fresh keys from `first_new`. All distinct, as one `ON CONFLICT DO UPDATE`
/// statement may not touch a row twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UpsertPlan {
    first_update: u64,
    updates: u64,
    first_new: u64,
    new_keys: u64,
}

/// Half the batch updates a random run of the `existing` keys (all of them while there are
/// fewer), the rest are new keys.
fn plan_upsert(existing: u64, batch: usize, rng: &mut SmallRng) -> UpsertPlan {
    let batch = batch as u64;
    let updates = (batch / 2).min(existing);
    let first_update = rng.random_range(0..=existing - updates);
    UpsertPlan { first_update, updates, first_new: existing, new_keys: batch - updates }
}

/// The values rows are made of, validated once before the clock starts.
#[derive(Debug)]
struct Vocabulary {
    resources: Vec<ResourceId>,
    customers: Vec<CustomerId>,
    /// Consecutive days from today, enough for the last start day and its nights.
    days: Vec<Slot>,
}

impl Vocabulary {
    #[allow(clippy::expect_used, reason = "fixed shapes within the domain's rules, years before 9999")]
    fn new(today: Date) -> Self {
        let resources = (0..RESOURCES).map(|r| ResourceId::parse(&format!("bl-r{r}")).expect("resource id"));
        let customers = (0..CUSTOMERS).map(|c| CustomerId::parse(&format!("bl-c{c}")).expect("customer id"));
        let days = (0..START_DAYS + NIGHTS)
            .map(|d| Slot::from_date(today.saturating_add(time::Duration::days(d as i64))).expect("slot"));
        Self { resources: resources.collect(), customers: customers.collect(), days: days.collect() }
    }

    /// The rows of `plan`: updates confirm an earlier hold, new keys are holds. Versions count
    /// up from `version`.
    fn rows(&self, plan: &UpsertPlan, version: i64, now: OffsetDateTime) -> Vec<ReservationRow> {
        let updates = (plan.first_update..plan.first_update + plan.updates).map(|k| (k, Status::Confirmed));
        let news = (plan.first_new..plan.first_new + plan.new_keys).map(|k| (k, Status::Held));
        // The remainder is below `count`, a `usize`.
        let pick = |count: usize, key: u64| (key % count as u64) as usize;
        updates
            .chain(news)
            .zip(version..)
            .map(|((key, status), version)| {
                let resource = &self.resources[pick(RESOURCES, key)];
                let start = pick(START_DAYS, key);
                ReservationRow {
                    reservation_id: ReservationId::new(resource, Uuid::from_u128(u128::from(key))),
                    slot_from: self.days[start],
                    slot_to: self.days[start + NIGHTS],
                    quantity: 1,
                    customer_id: self.customers[pick(CUSTOMERS, key)].clone(),
                    status,
                    expires_at: now + time::Duration::seconds(900),
                    payment_ref: (status == Status::Confirmed).then(|| format!("pay-{key}")),
                    cancel_reason: None,
                    created_at: now,
                    updated_at: now,
                    version,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary::new(OffsetDateTime::now_utc().date())
    }

    #[test]
    fn upserts_are_half_updates_of_distinct_earlier_keys() {
        let vocabulary = vocabulary();
        let mut rng = SmallRng::seed_from_u64(7);
        let first = plan_upsert(0, 500, &mut rng);
        assert_eq!((first.updates, first.new_keys, first.first_new), (0, 500, 0));
        let few = plan_upsert(100, 500, &mut rng);
        assert_eq!((few.first_update, few.updates, few.new_keys), (0, 100, 400));
        for _ in 0..100 {
            let plan = plan_upsert(10_000, 501, &mut rng);
            assert_eq!((plan.updates, plan.new_keys), (250, 251));
            assert!(plan.first_update + plan.updates <= 10_000);
            let rows = vocabulary.rows(&plan, 40, OffsetDateTime::now_utc());
            let ids: HashSet<&ReservationId> = rows.iter().map(|r| &r.reservation_id).collect();
            assert_eq!(ids.len(), 501, "no key twice in one statement");
            assert_eq!(rows.iter().filter(|r| r.status == Status::Confirmed).count(), 250);
            assert_eq!(rows.first().map(|r| r.version), Some(40));
            assert_eq!(rows.last().map(|r| r.version), Some(540));
        }
    }

    #[test]
    fn rows_respect_the_read_model_checks() {
        let plan = UpsertPlan { first_update: 0, updates: 3, first_new: 3, new_keys: 3 };
        let rows = vocabulary().rows(&plan, 0, OffsetDateTime::now_utc());
        assert!(rows.iter().all(|r| r.slot_to > r.slot_from && r.quantity > 0));
        assert!(
            rows.iter().all(
                |r| ReservationId::parse(&r.reservation_id.to_string()).as_ref() == Ok(&r.reservation_id)
            ),
            "ids of the real shape"
        );
        assert!(rows.iter().all(|r| r.payment_ref.is_some() == (r.status == Status::Confirmed)));
    }

    #[test]
    fn written_counts_rows_and_distinct_confirmations() {
        let mut written = Written::default();
        written.record(&UpsertPlan { first_update: 0, updates: 0, first_new: 0, new_keys: 4 });
        assert_eq!(
            (written.rows, written.keys(), written.confirmed_keys, written.next_version()),
            (4, 4, 0, 4)
        );
        written.record(&UpsertPlan { first_update: 0, updates: 2, first_new: 4, new_keys: 2 });
        written.record(&UpsertPlan { first_update: 1, updates: 3, first_new: 6, new_keys: 1 });
        assert_eq!(
            (written.rows, written.keys(), written.confirmed_keys),
            (12, 7, 4),
            "key 1 confirmed twice"
        );
    }
}
