//! The audit against real topics on the local stack: a log written by hand with an
//! overbooking, a duplicated hold and a lost acknowledged hold must fail it, each violation
//! named; the same kind of log without them must pass.

use std::sync::Arc;
use std::time::Duration;

use holdfast_domain::Event;
use holdfast_load_tests::audit::scenario::Scenario;
use holdfast_load_tests::audit::{self, AcceptedRecord, AuditReport, AuditSettings};
use holdfast_load_tests::workload::Status;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::producer_config;
use holdfast_platform::testing;
use holdfast_platform::topics::TopicLayout;
use rdkafka::producer::{FutureProducer, FutureRecord};

const DAY: (&str, &str) = ("2031-05-01", "2031-05-02");

/// Writes `events` to a fresh events topic of `test` and audits it against `accepted`.
async fn audit(test: &str, events: &[Event], accepted: &[AcceptedRecord]) -> AuditReport {
    let topics = testing::topics(test, 2);
    let layout = TopicLayout::from_args(&topics);
    testing::create_topic(&testing::kafka(), &layout.events, layout.partitions).await.expect("topic created");
    let codec = Arc::new(EventCodec::new(&testing::registry(), &layout.events).expect("codec"));
    codec.register_all().await.expect("schemas registered");
    let producer: FutureProducer =
        producer_config(&testing::kafka(), &testing::unique("audit-writer")).create().expect("producer");
    for event in events {
        let payload = codec.encode(event).expect("encodes");
        let key = event.envelope.resource_id.to_string();
        producer
            .send(FutureRecord::to(&layout.events).key(&key).payload(&payload), Duration::from_secs(10))
            .await
            .map_err(|(error, _)| error)
            .expect("written");
    }
    let settings = AuditSettings {
        kafka: testing::kafka(),
        topics,
        registry: testing::registry(),
        read_model: None,
        catch_up: Duration::from_secs(1),
        deadline: Duration::from_secs(60),
    };
    audit::run(&settings, accepted).await.expect("the audit runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overbooked_duplicated_and_lossy_log_fails_the_audit() {
    let resource = testing::unique("audit-bad").replace('_', "-");
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

    let report = audit("audit_bad", log.events(), &accepted).await;

    assert!(!report.passed, "{report:?}");
    assert_eq!(report.events, 4, "{report:?}");
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
    let resource = testing::unique("audit-good").replace('_', "-");
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

    let report = audit("audit_good", log.events(), &accepted).await;

    assert!(report.passed, "{report:?}");
    assert_eq!((report.events, report.reservations_in_log, report.accepted_checked), (6, 3, 3), "{report:?}");
}
