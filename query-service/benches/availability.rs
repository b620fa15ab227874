//! Availability read benchmark: fires `GET /v1/resources/{id}/availability` at saturation from
//! N concurrent connections for D seconds and prints reads/s and latency percentiles.
//!
//! Without `--url` it builds its own fixture on the local stack (a fresh database migrated
//! with the projection's schema, a Redis key prefix filled the way the projection fills it),
//! starts the `query-service` binary of this build against it, and cleans up afterwards.
//! `--write-rate` adds a background writer that changes cached slots, advances positions and
//! publishes live updates like the projection does (1667/s = ten times the reference load of
//! 10,000 reservations a minute), so reads run against a cache that is being written.
//!
//! ```text
//! cargo bench -p holdfast-query-service --bench availability -- \
//!     --connections 64 --duration 20 --resources 1000 --days 7 --write-rate 1667
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used, reason = "a benchmark tool prints its report")]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use holdfast_platform::redis::Redis;
use holdfast_platform::testing::{self, TestDatabase};

#[derive(Debug, Clone)]
struct Args {
    url: Option<String>,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    resources: usize,
    prefix: String,
    days: i64,
    write_rate: u64,
}

impl Args {
    fn parse() -> Self {
        let mut args = Self {
            url: None,
            connections: 64,
            duration: Duration::from_secs(15),
            warmup: Duration::from_secs(3),
            resources: 1000,
            prefix: "bench-room".to_owned(),
            days: 7,
            write_rate: 0,
        };
        let mut raw = std::env::args().skip(1);
        while let Some(flag) = raw.next() {
            let mut value = || raw.next().unwrap_or_else(|| panic!("{flag} needs a value"));
            match flag.as_str() {
                "--url" => args.url = Some(value()),
                "--connections" => args.connections = value().parse().expect("--connections N"),
                "--duration" => {
                    args.duration = Duration::from_secs(value().parse().expect("--duration seconds"))
                }
                "--warmup" => args.warmup = Duration::from_secs(value().parse().expect("--warmup seconds")),
                "--resources" => args.resources = value().parse().expect("--resources N"),
                "--resource-prefix" => args.prefix = value(),
                "--days" => args.days = value().parse().expect("--days N"),
                "--write-rate" => args.write_rate = value().parse().expect("--write-rate per second"),
                // `cargo bench` passes `--bench`; filters are meaningless here.
                _ => {}
            }
        }
        args
    }
}

/// The fixture built when no `--url` is given.
struct Fixture {
    database: TestDatabase,
    redis: Redis,
    service: Child,
    url: String,
}

const PARTITIONS: i32 = 480;
const FIRST_DAY: &str = "2031-03-01";

async fn fixture(args: &Args) -> Fixture {
    let database = TestDatabase::create("bench_query").await.expect("database");
    let pool = sqlx::PgPool::connect(database.url()).await.expect("pool");
    holdfast_projection_workers::MIGRATOR.run(&pool).await.expect("migrated");
    let redis_args = testing::redis("bench-query");
    let redis = Redis::new(&redis_args).expect("redis");
    let mut conn = redis.conn().await.expect("redis connection");
    let first =
        time::Date::parse(FIRST_DAY, &time::format_description::well_known::Iso8601::DATE).expect("day");
    for n in 0..args.resources {
        let id = format!("{}-{n}", args.prefix);
        let partition = holdfast_platform::partitioner::partition_for(id.as_bytes(), PARTITIONS);
        sqlx::query("INSERT INTO resources (resource_id, partition, name, capacity, version) VALUES ($1, $2, $3, 10, 1)")
            .bind(&id)
            .bind(partition)
            .bind(format!("Room {n}"))
            .execute(&pool)
            .await
            .expect("resource row");
        let key = format!("{}avail:{{{id}}}", redis_args.key_prefix);
        let mut fields = vec![("def".to_owned(), format!("1|10|Room {n}"))];
        for day in (0..60).step_by(3) {
            let slot = first + time::Duration::days(day);
            fields.push((slot.to_string(), format!("2|10|{}|{}", day % 4, day % 3)));
        }
        let () = redis::cmd("HSET").arg(&key).arg(&fields).query_async(&mut conn).await.expect("hset");
    }
    let positions: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 1_000)).collect();
    let () = redis::cmd("HSET")
        .arg(format!("{}positions", redis_args.key_prefix))
        .arg(&positions)
        .query_async(&mut conn)
        .await
        .expect("positions");
    pool.close().await;

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let service = Command::new(env!("CARGO_BIN_EXE_query-service"))
        .env("HOLDFAST_QUERY_LISTEN", format!("127.0.0.1:{port}"))
        .env("HOLDFAST_POSTGRES_URLS", database.url())
        .env("HOLDFAST_REDIS_KEY_PREFIX", &redis_args.key_prefix)
        .env("HOLDFAST_PARTITIONS", PARTITIONS.to_string())
        .env("HOLDFAST_LOG", "warn")
        .env("HOLDFAST_AUTH_HS256_SECRET", testing::TEST_SECRET)
        .stdout(Stdio::null())
        .spawn()
        .expect("query-service starts");
    let url = format!("http://127.0.0.1:{port}");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    assert!(testing::wait_ready(addr, Duration::from_secs(30)).await, "query-service ready");
    Fixture { database, redis, service, url }
}

/// Writes like the projection at `rate` per second until `stop`: a slot value with a newer
/// version, the partition's position, and a live update.
async fn writer(redis: Redis, args: Args, stop: Arc<AtomicBool>, written: Arc<AtomicU64>) {
    let Ok(mut conn) = redis.conn().await else { return };
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut version: i64 = 10;
    let period = Duration::from_secs_f64(1.0 / args.write_rate.max(1) as f64);
    let mut tick = tokio::time::interval(period.max(Duration::from_micros(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        rng = xorshift(rng);
        let id = format!("{}-{}", args.prefix, rng % args.resources as u64);
        let partition = holdfast_platform::partitioner::partition_for(id.as_bytes(), PARTITIONS);
        version += 1;
        let day = format!("2031-03-{:02}", 1 + rng % 28);
        let value = format!("{version}|10|{}|{}", rng % 5, (rng >> 8) % 5);
        let message = format!(
            r#"{{"resource_id":"{id}","version":{version},"capacity":null,"slots":[{{"slot":"{day}","capacity":10,"held":0,"confirmed":0,"available":10}}]}}"#
        );
        let result: Result<(), redis::RedisError> = redis::pipe()
            .cmd("HSET")
            .arg(format!("{}avail:{{{id}}}", redis.key_prefix))
            .arg(&day)
            .arg(&value)
            .ignore()
            .cmd("HSET")
            .arg(format!("{}positions", redis.key_prefix))
            .arg(partition)
            .arg(1_000 + version)
            .ignore()
            .cmd("PUBLISH")
            .arg(format!("{}avail-updates:{{{id}}}", redis.key_prefix))
            .arg(&message)
            .ignore()
            .query_async(&mut conn)
            .await;
        if result.is_ok() {
            written.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// One connection's loop: GETs until `stop`, recording latencies after `measure_from`.
async fn reader(
    client: reqwest::Client,
    args: Args,
    base: String,
    seed: u64,
    measure_from: Instant,
    stop: Arc<AtomicBool>,
) -> (Histogram<u64>, u64) {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut errors = 0;
    let mut rng = seed | 1;
    let first =
        time::Date::parse(FIRST_DAY, &time::format_description::well_known::Iso8601::DATE).expect("day");
    while !stop.load(Ordering::Relaxed) {
        rng = xorshift(rng);
        let from = first + time::Duration::days((rng % 50) as i64);
        let to = from + time::Duration::days(args.days);
        let url = format!(
            "{base}/v1/resources/{}-{}/availability?from={from}&to={to}",
            args.prefix,
            (rng >> 16) % args.resources as u64
        );
        let started = Instant::now();
        let ok = match client.get(&url).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        if started >= measure_from {
            if ok {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = histogram.record(micros.max(1));
            } else {
                errors += 1;
            }
        }
    }
    (histogram, errors)
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let fixture = if args.url.is_none() { Some(fixture(&args).await) } else { None };
        let base = args.url.clone().or_else(|| fixture.as_ref().map(|f| f.url.clone())).expect("a target");
        let client =
            testing::http_builder().pool_max_idle_per_host(args.connections).build().expect("client");
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let writer_task = match (&fixture, args.write_rate) {
            (Some(fixture), rate) if rate > 0 => {
                Some(tokio::spawn(writer(fixture.redis.clone(), args.clone(), Arc::clone(&stop), Arc::clone(&written))))
            }
            _ => None,
        };
        let measure_from = Instant::now() + args.warmup;
        let readers: Vec<_> = (0..args.connections)
            .map(|c| {
                tokio::spawn(reader(client.clone(), args.clone(), base.clone(), 0x9E37 * (c as u64 + 1), measure_from, Arc::clone(&stop)))
            })
            .collect();
        tokio::time::sleep(args.warmup + args.duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        let mut errors = 0;
        for reader in readers {
            let (h, e) = reader.await.expect("reader");
            histogram.add(&h).expect("histograms merge");
            errors += e;
        }
        if let Some(task) = writer_task {
            let _ = task.await;
        }
        let seconds = args.duration.as_secs_f64();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "availability reads: {} connections, {} s, {}-day ranges over {} resources, background writes {:.0}/s",
            args.connections,
            args.duration.as_secs(),
            args.days,
            args.resources,
            written.load(Ordering::Relaxed) as f64 / (seconds + args.warmup.as_secs_f64()),
        );
        println!(
            "  {:.0} reads/s, errors {errors}; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            histogram.len() as f64 / seconds,
            histogram.value_at_quantile(0.50) as f64 / 1000.0,
            histogram.value_at_quantile(0.90) as f64 / 1000.0,
            histogram.value_at_quantile(0.99) as f64 / 1000.0,
            histogram.value_at_quantile(0.999) as f64 / 1000.0,
            histogram.max() as f64 / 1000.0,
        );
        println!("  machine: {} cores, load average {}", std::thread::available_parallelism().map_or(0, |n| n.get()), load.trim());
        if let Some(mut fixture) = fixture {
            let metrics = match reqwest::get(format!("{}/metrics", fixture.url)).await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            for line in metrics.lines().filter(|l| {
                l.starts_with("holdfast_query_reads_total") || l.starts_with("holdfast_query_redis_fallbacks_total")
            }) {
                println!("  {line}");
            }
            let _ = fixture.service.kill();
            let _ = fixture.service.wait();
            if let Ok(mut conn) = fixture.redis.conn().await {
                let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", fixture.redis.key_prefix)).query_async(&mut conn).await.unwrap_or_default();
                for chunk in keys.chunks(500) {
                    let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
                }
            }
            fixture.database.drop_database().await.expect("database dropped");
        }
    });
}
