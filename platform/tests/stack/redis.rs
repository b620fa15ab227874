//! A Redis round trip through Holdfast's client, under a key prefix of the test's own.

use holdfast_platform::redis::Redis;
use holdfast_platform::testing;
use redis::AsyncCommands;

#[tokio::test]
async fn hash_round_trip_under_a_private_prefix() {
    testing::init_logs();
    let redis = Redis::new(&testing::redis("smoke")).expect("client");
    redis.ping().await.expect("PING answered");
    let mut conn = redis.conn().await.expect("connected");
    let key = redis.key("{room-101}:availability");

    let () = conn.hset_multiple(&key, &[("2026-12-24", "7"), ("2026-12-25", "3")]).await.expect("HSET");
    let left: i64 = conn.hincr(&key, "2026-12-25", -1).await.expect("HINCRBY");
    let all: std::collections::BTreeMap<String, i64> = conn.hgetall(&key).await.expect("HGETALL");
    let _: i64 = conn.del(&key).await.expect("DEL");

    assert!(key.starts_with(&redis.key_prefix) && key.starts_with("t:smoke_"), "{key}");
    assert_eq!(left, 2);
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        vec![("2026-12-24".to_owned(), 7), ("2026-12-25".to_owned(), 2)]
    );
}
