//! The embedded migrations apply to an empty database and the read model answers queries;
//! migration 0004 gives the reader rule's tenure columns to every generation's offsets table,
//! rebuilt generations included.

use holdfast_platform::testing::{self, TestDatabase};
use holdfast_projection_workers::MIGRATOR;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_and_offsets_round_trip() {
    testing::init_logs();
    let database = TestDatabase::create("migrations").await.expect("database");
    let pool = PgPoolOptions::new().max_connections(2).connect(database.url()).await.expect("connect");

    MIGRATOR.run(&pool).await.expect("migrations apply");
    // Running them again is a no-op, as on every start of every worker.
    MIGRATOR.run(&pool).await.expect("migrations are idempotent");

    sqlx::query(
        "INSERT INTO projection_offsets (topic, partition, next_offset)
         SELECT 'reservations.events', p, p * 10 FROM generate_series(0, 479) AS p
         ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
    )
    .execute(&pool)
    .await
    .expect("offsets written");
    let (count, sum): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(next_offset)::BIGINT FROM projection_offsets WHERE topic = $1")
            .bind("reservations.events")
            .fetch_one(&pool)
            .await
            .expect("offsets read");
    let rejected =
        sqlx::query("INSERT INTO projection_offsets (topic, partition, next_offset) VALUES ('x', -1, 0)")
            .execute(&pool)
            .await;
    let half_tenure = sqlx::query(
        "INSERT INTO projection_offsets (topic, partition, next_offset, tenure_token) VALUES ('x', 1, 0, gen_random_uuid())",
    )
    .execute(&pool)
    .await;
    assert!(half_tenure.is_err(), "a token without a sequence number is refused");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .expect("migration history");

    assert_eq!(count, 480);
    assert_eq!(sum, (0..480).map(|p| p * 10).sum::<i64>());
    assert!(rejected.is_err(), "negative partitions are refused by the schema");
    assert_eq!(applied, i64::try_from(MIGRATOR.iter().count()).expect("small"));

    pool.close().await;
    database.drop_database().await.expect("database dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenure_columns_reach_every_generation() {
    testing::init_logs();
    let database = TestDatabase::create("migration_tenure").await.expect("database");
    let pool = PgPoolOptions::new().max_connections(2).connect(database.url()).await.expect("connect");
    // The migrations before 0004, as a database migrated by an older build has them.
    let old = std::env::temp_dir().join(testing::unique("migrations"));
    std::fs::create_dir_all(&old).expect("temp dir");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&dir).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        if name.as_str() < "0004" {
            std::fs::copy(&path, old.join(&name)).expect("copied");
        }
    }
    Migrator::new(old.as_path())
        .await
        .expect("old migrations")
        .run(&pool)
        .await
        .expect("old migrations apply");
    std::fs::remove_dir_all(&old).expect("temp dir removed");
    // A live rebuilt generation and an unfinished one, with the offsets table older builds made.
    sqlx::raw_sql(
        "CREATE SCHEMA rm_1;
         CREATE TABLE rm_1.projection_offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL,
             next_offset BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (topic, partition));
         INSERT INTO rm_1.projection_offsets (topic, partition, next_offset) VALUES ('events', 0, 42);
         CREATE SCHEMA rm_2;
         CREATE TABLE rm_2.projection_offsets (LIKE rm_1.projection_offsets INCLUDING ALL);
         INSERT INTO read_model_builds (generation, schema_name, phase) VALUES (1, 'rm_1', 'live'), (2, 'rm_2', 'loading');
         UPDATE read_model_pointer SET generation = 1, schema_name = 'rm_1';
         CREATE OR REPLACE VIEW read_model.projection_offsets AS SELECT * FROM rm_1.projection_offsets;",
    )
    .execute(&pool)
    .await
    .expect("generations set up");

    MIGRATOR.run(&pool).await.expect("0004 applies");

    for schema in ["public", "rm_1", "rm_2", "read_model"] {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = 'projection_offsets' ORDER BY ordinal_position",
        )
        .bind(schema)
        .fetch_all(&pool)
        .await
        .expect("columns");
        assert_eq!(
            columns,
            ["topic", "partition", "next_offset", "updated_at", "tenure_token", "tenure_next_seq"],
            "{schema}"
        );
    }
    let (next, token): (i64, Option<uuid::Uuid>) = sqlx::query_as(
        "SELECT next_offset, tenure_token FROM read_model.projection_offsets WHERE topic = 'events'",
    )
    .fetch_one(&pool)
    .await
    .expect("the live generation's row through the view");
    assert_eq!((next, token), (42, None), "stored offsets are kept, without a tenure");
    let half = sqlx::query("UPDATE rm_1.projection_offsets SET tenure_next_seq = 3").execute(&pool).await;
    assert!(half.is_err(), "a sequence number without a token is refused in rebuilt generations too");

    pool.close().await;
    database.drop_database().await.expect("database dropped");
}
