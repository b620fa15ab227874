//! The audit against real topics on the local stack, written by hand the way partition owners
//! write them (a claim, then records of its tenure; `LogWriter`): a log with an overbooking,
//! a duplicated hold and a lost acknowledged hold must fail it, each violation named; the same
//! kind of log without them must pass, also with a zombie's void records among the valid ones
//! — counted, never applied — and a hold answered 2xx that only a void record carries is lost.

use std::sync::Arc;
use std::time::Duration;

use holdfast_domain::{Event, Quantity, Rejection, ReservationId, Slot};
use holdfast_load_tests::audit::scenario::Scenario;
use holdfast_load_tests::audit::{self, AcceptedRecord, AuditReport, AuditSettings};
use holdfast_load_tests::workload::Status;
use holdfast_platform::codec::{EventCodec, RejectedRecord};
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::testing::{self, LogWriter};
use holdfast_platform::topics::TopicLayout;
use holdfast_platform::{KafkaArgs, TopicArgs};
use holdfast_tenure::Mark;
use uuid::Uuid;

const DAY: (&str, &str) = ("2031-05-01", "2031-05-02");
const PARTITIONS: i32 = 2;

/// A fresh events topic, its codec (schemas registered) and a writer of it.
struct Log {
    topics: TopicArgs,
    topic: String,
    codec: Arc<EventCodec>,
    writer: LogWriter,
}

impl Log {
    async fn create(test: &str) -> Self {
        let topics = testing::topics(test, PARTITIONS);
        let topic = TopicLayout::from_args(&topics).events;
        testing::create_topic(&testing::kafka(), &topic, PARTITIONS).await.expect("topic created");
        let codec = Arc::new(EventCodec::new(&testing::registry(), &topic).expect("codec"));
        codec.register_all().await.expect("schemas registered");
        let writer = LogWriter::new(&testing::kafka(), &topic, Arc::clone(&codec));
        Self { topics, topic, codec, writer }
    }

    /// Appends every event as the next valid record of its partition's current tenure.
    async fn valid(&mut self, events: &[Event]) {
        for event in events {
            self.writer.event(event, PARTITIONS).await;
        }
    }

    /// Appends `event` under `mark`, whatever the reader rule makes of it.
    async fn raw(&self, event: &Event, mark: Mark) {
        let key = event.envelope.resource_id.as_str();
        let partition = partition_for(key.as_bytes(), PARTITIONS);
        let payload = self.codec.encode(event).expect("encodes");
        self.writer.raw(partition, key, &payload, mark).await;
    }

    /// Audits the log against `accepted`, then deletes the topic.
    async fn audit(self, accepted: &[AcceptedRecord]) -> AuditReport {
        let settings = AuditSettings {
            kafka: testing::kafka(),
            topics: self.topics,
            registry: testing::registry(),
            read_model: None,
            catch_up: Duration::from_secs(1),
            load_ended: None,
            deadline: Duration::from_secs(60),
        };
        let report = audit::run(&settings, accepted).await;
        delete_topic(&testing::kafka(), &self.topic).await;
        report.expect("the audit runs")
    }
}

async fn delete_topic(kafka: &KafkaArgs, topic: &str) {
    use rdkafka::admin::AdminOptions;
    let admin = holdfast_platform::kafka::admin(kafka, "holdfast-audit-test").expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    admin.delete_topics(&[topic], &options).await.expect("topic deleted");
}

/// A resource id of its own for `test`.
fn resource(test: &str) -> String {
    testing::unique(test).replace('_', "-")
}

/// The last event `scenario` wrote.
fn last(scenario: &Scenario) -> &Event {
    scenario.events().last().expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overbooked_duplicated_and_lossy_log_fails_the_audit() {
    let resource = resource("audit-bad");
    let mut log = Scenario::define(&resource, 1);
    let first = log.hold(DAY.0, DAY.1, 1);
    let overbooking = log.hold(DAY.0, DAY.1, 1);
    log.hold_again(&first, DAY.0, DAY.1, 1);
    let mut unwritten = Scenario::define(&resource, 1);
    let lost = unwritten.hold("2031-05-03", "2031-05-04", 1);
    let accepted = vec![
        log.accepted(&first, DAY.0, DAY.1, 1, Status::Held),
        log.accepted(&overbooking, DAY.0, DAY.1, 1, Status::Held),
        log.accepted(&lost, "2031-05-03", "2031-05-04", 1, Status::Held),
    ];

    let mut topic = Log::create("audit_bad").await;
    topic.valid(log.events()).await;
    let report = topic.audit(&accepted).await;

    assert!(!report.passed, "{report:?}");
    assert_eq!((report.events, report.claims, report.void_total), (4, 1, 0), "{report:?}");
    assert_eq!(
        report.violations.get("overbooked"),
        Some(&2),
        "the second hold and the duplicate each overbook the day: {report:?}"
    );
    assert_eq!(report.violations.get("duplicate-hold"), Some(&1), "{report:?}");
    assert_eq!(report.violations.get("lost"), Some(&1), "{report:?}");
    assert_eq!(report.violation_count(), 4, "nothing else: {report:?}");
    assert!(report.examples.iter().any(
        |v| matches!(v, audit::Violation::Lost { reservation_id } if *reservation_id == lost.to_string())
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_keeps_every_promise_passes_the_audit() {
    let resource = resource("audit-good");
    let mut log = Scenario::define(&resource, 2);
    let (held, confirmed) = (log.hold(DAY.0, DAY.1, 1), log.hold(DAY.0, DAY.1, 1));
    log.confirm(&confirmed);
    let cancelled = log.hold("2031-05-02", "2031-05-04", 2);
    log.cancel(&cancelled);
    let accepted = vec![
        log.accepted(&held, DAY.0, DAY.1, 1, Status::Held),
        log.accepted(&confirmed, DAY.0, DAY.1, 1, Status::Confirmed),
        log.accepted(&cancelled, "2031-05-02", "2031-05-04", 2, Status::Cancelled),
    ];

    let mut topic = Log::create("audit_good").await;
    topic.valid(log.events()).await;
    let report = topic.audit(&accepted).await;

    assert!(report.passed, "{report:?}");
    assert_eq!((report.events, report.reservations_in_log, report.accepted_checked), (6, 3, 3), "{report:?}");
    assert_eq!((report.claims, report.void_total, report.rejected), (1, 0, 0), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombies_void_records_among_valid_ones_are_counted_and_pass_the_audit() {
    let resource = resource("audit-zombie");
    let partition = partition_for(resource.as_bytes(), PARTITIONS);
    let mut log = Scenario::define(&resource, 1);
    let held = log.hold(DAY.0, DAY.1, 1);
    // What a fenced owner (a zombie) still appends after the next owner's claim: a hold on the
    // full day (an overbooking if it counted) and the held reservation again (a duplicate).
    let mut zombie = Scenario::define(&resource, 1);
    let _ghost = zombie.hold(DAY.0, DAY.1, 1);
    let ghost_hold = last(&zombie).clone();
    zombie.hold_again(&held, DAY.0, DAY.1, 1);
    let duplicate = last(&zombie).clone();

    let mut topic = Log::create("audit_zombie").await;
    topic.valid(log.events()).await;
    let old = topic.writer.token(partition).expect("the first owner's token");
    topic.writer.claim(partition).await;
    let new = topic.writer.token(partition).expect("the second owner's token");
    topic.raw(&ghost_hold, Mark::Data { token: old, seq: 2 }).await;
    topic.raw(&duplicate, Mark::Data { token: old, seq: 3 }).await;
    log.confirm(&held);
    topic.valid(std::slice::from_ref(last(&log))).await;
    // After the new owner's first valid record: one out of sequence, one with no tenure marks,
    // then its next valid record, a recorded rejection.
    topic.raw(&ghost_hold, Mark::Data { token: new, seq: 7 }).await;
    topic.raw(&ghost_hold, Mark::Unmarked).await;
    let rejected = RejectedRecord {
        resource_id: ghost_hold.envelope.resource_id.clone(),
        occurred_at: ghost_hold.envelope.occurred_at,
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        traceparent: None,
        principal: Some("ada".to_owned()),
        command: "place-hold".to_owned(),
        rejection: Rejection::InsufficientCapacity {
            slot: Slot::parse(DAY.0).expect("a day"),
            requested: Quantity::new(1).expect("a quantity"),
            available: 0,
        },
    };
    let payload = topic.codec.encode_rejected(&rejected).expect("encodes");
    topic.writer.raw(partition, &resource, &payload, Mark::Data { token: new, seq: 1 }).await;
    let accepted = vec![log.accepted(&held, DAY.0, DAY.1, 1, Status::Confirmed)];

    let report = topic.audit(&accepted).await;

    assert!(report.passed, "void records are no violation and count for nothing: {report:?}");
    assert_eq!((report.events, report.reservations_in_log), (3, 1), "define, hold, confirm: {report:?}");
    assert_eq!((report.claims, report.rejected, report.void_total), (2, 1, 4), "{report:?}");
    let void: Vec<(&str, u64)> = report.void.iter().map(|(why, n)| (why.as_str(), *n)).collect();
    assert_eq!(void, [("other-writer", 2), ("out-of-sequence", 1), ("unmarked", 1)], "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_answered_2xx_that_only_a_void_record_carries_is_lost() {
    let resource = resource("audit-void-hold");
    let partition = partition_for(resource.as_bytes(), PARTITIONS);
    let mut log = Scenario::define(&resource, 5);
    let kept = log.hold(DAY.0, DAY.1, 1);
    let fenced: ReservationId = log.hold(DAY.0, DAY.1, 1);
    let fenced_hold = last(&log).clone();
    let valid = &log.events()[..2];

    let mut topic = Log::create("audit_void_hold").await;
    topic.valid(valid).await;
    let old = topic.writer.token(partition).expect("the first owner's token");
    topic.writer.claim(partition).await;
    // The old owner appended the hold after the new claim: void, though it may have answered.
    topic.raw(&fenced_hold, Mark::Data { token: old, seq: 2 }).await;
    let accepted = vec![
        log.accepted(&kept, DAY.0, DAY.1, 1, Status::Held),
        log.accepted(&fenced, DAY.0, DAY.1, 1, Status::Held),
    ];

    let report = topic.audit(&accepted).await;

    assert!(!report.passed, "{report:?}");
    assert_eq!(report.violations.get("lost"), Some(&1), "{report:?}");
    assert_eq!(report.violation_count(), 1, "nothing else: {report:?}");
    assert!(report.examples.iter().any(
        |v| matches!(v, audit::Violation::Lost { reservation_id } if *reservation_id == fenced.to_string())
    ));
    assert_eq!((report.events, report.void_total), (2, 1), "{report:?}");
    assert_eq!(report.void.get("other-writer"), Some(&1), "{report:?}");
}
