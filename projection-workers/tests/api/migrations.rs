//! The embedded migrations apply to an empty database and the read model answers queries.

use holdfast_platform::testing::{self, TestDatabase};
use holdfast_projection_workers::MIGRATOR;
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
