//! The parallel replay against the real broker: every record of every partition comes back
//! judged by the reader rule, in log order per partition — valid ones decoded, claims as
//! claims, a zombie's, an unmarked and an out-of-sequence record as void — and an undecodable
//! valid record comes back as an error in its place instead of stopping the replay.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use holdfast_domain::{Event, EventType};
use holdfast_platform::codec::{EventCodec, LogRecord, samples};
use holdfast_platform::kafka::reader_config;
use holdfast_platform::replay::{Entry, Plan, replay};
use holdfast_platform::testing::{self, LogWriter, TopicsGuard};
use holdfast_platform::topics::TopicLayout;
use holdfast_tenure::{Mark, Token, Void};

const PARTITIONS: i32 = 3;

#[derive(Default)]
struct Seen {
    events: HashMap<i32, Vec<(i64, Event)>>,
    claims: HashMap<i32, Vec<Token>>,
    void: Vec<(i32, i64, Void)>,
    undecodable: Vec<(i32, i64)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_judges_every_record_by_the_reader_rule_in_log_order() {
    testing::init_logs();
    let kafka = testing::kafka();
    let topics = testing::topics("replay", PARTITIONS);
    let _deleted_at_end = TopicsGuard::new(&topics);
    let topic = TopicLayout::from_args(&topics).events;
    testing::create_topic(&kafka, &topic, PARTITIONS).await.expect("topic");
    let codec = Arc::new(EventCodec::new(&testing::registry(), &topic).expect("codec"));
    codec.register_all().await.expect("schemas");
    let mut writer = LogWriter::new(&kafka, &topic, codec.clone());

    // More records than one decoder chunk, with every kind of record in between.
    let mut expected: HashMap<i32, Vec<Event>> = HashMap::new();
    let mut claims: HashMap<i32, Vec<Token>> = HashMap::new();
    let mut void = Vec::new();
    let mut seed = 0;
    for round in 0..3 {
        for _ in 0..1_000 {
            seed += 1;
            let event = samples::event(EventType::ALL[usize::try_from(seed % 6).expect("small")], seed);
            let claimed = writer.token(partition_of(&event));
            let (partition, _) = writer.event(&event, PARTITIONS).await;
            if claimed.is_none() {
                claims.entry(partition).or_default().push(writer.token(partition).expect("claimed"));
            }
            expected.entry(partition).or_default().push(event);
        }
        match round {
            0 => {
                // A zombie's record (a token that is not the tenure's) and one without marks.
                let zombie = Mark::Data { token: Token::fresh(), seq: 1 };
                void.push((1, writer.raw(1, "zombie", b"ignored", zombie).await, Void::OtherWriter));
                void.push((2, writer.raw(2, "unmarked", b"ignored", Mark::Unmarked).await, Void::Unmarked));
            }
            1 => {
                // A new tenure on partition 0; a valid record that is not Avro on partition 1.
                writer.claim(0).await;
                claims.entry(0).or_default().push(writer.token(0).expect("claimed"));
                writer.valid_raw(1, "broken", b"not an event").await;
            }
            _ => {
                // A record of the current tenure that skips a sequence number.
                let token = writer.token(2).expect("claimed");
                let skipped = Mark::Data { token, seq: 1_000_000 };
                let offset = writer.raw(2, "skipped", b"ignored", skipped).await;
                void.push((2, offset, Void::OutOfSequence { expected: 0, found: 1_000_000 })); // compared by label
            }
        }
    }

    let plan = Plan::from_beginning(&topic, 0..PARTITIONS).expect("plan");
    let runtime = tokio::runtime::Handle::current();
    let seen = tokio::task::block_in_place(|| {
        let mut seen = Seen::default();
        replay(
            &reader_config(&kafka, "replay-test"),
            &plan,
            Duration::from_secs(60),
            &codec,
            &runtime,
            |r| match r.entry {
                Entry::Claim(token) => seen.claims.entry(r.partition).or_default().push(token),
                Entry::Void(why) => seen.void.push((r.partition, r.offset, why)),
                Entry::Valid { record: Ok(LogRecord::Event(event)), .. } => {
                    seen.events.entry(r.partition).or_default().push((r.offset, event));
                }
                Entry::Valid { record: Ok(other), .. } => panic!("unexpected record {other:?}"),
                Entry::Valid { record: Err(_), .. } => seen.undecodable.push((r.partition, r.offset)),
            },
        )
        .expect("replayed");
        seen
    });

    for partition in 0..PARTITIONS {
        let got = &seen.events[&partition];
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "partition {partition} in offset order");
        let events: Vec<_> = got.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(events.len(), expected[&partition].len(), "partition {partition}: valid records only");
        assert!(events == expected[&partition], "partition {partition}: the same events in the same order");
        assert_eq!(seen.claims.get(&partition), claims.get(&partition), "partition {partition}: its claims");
    }
    // Partitions interleave in any order; within one, log order is checked above.
    let labels = |records: &[(i32, i64, Void)]| -> std::collections::BTreeSet<(i32, i64, &str)> {
        records.iter().map(|(p, o, why)| (*p, *o, why.label())).collect()
    };
    let (judged, wanted) = (labels(&seen.void), labels(&void));
    assert_eq!(judged, wanted, "exactly the void records, as void, for the right reason");
    assert_eq!(seen.undecodable.len(), 1, "the one broken record is reported, not skipped silently");
    assert_eq!(seen.undecodable[0].0, 1);
}

fn partition_of(event: &Event) -> i32 {
    holdfast_platform::partitioner::partition_for(event.envelope.resource_id.as_str().as_bytes(), PARTITIONS)
}
