use super::*;
use crate::audit::scenario::Scenario;

const DAY: (&str, &str) = ("2031-03-01", "2031-03-02");

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn kinds(violations: &[Violation]) -> Vec<&'static str> {
    violations.iter().map(Violation::kind).collect()
}

#[test]
fn a_clean_log_with_a_matching_read_model_passes() {
    let mut log = Scenario::define("audit-clean", 2);
    let (held, confirmed, cancelled) =
        (log.hold(DAY.0, DAY.1, 1), log.hold(DAY.0, DAY.1, 1), log.hold("2031-03-02", "2031-03-04", 2));
    log.confirm(&confirmed);
    log.cancel(&cancelled);
    let accepted = vec![
        log.accepted(&held, DAY.0, DAY.1, 1, Status::Held),
        log.accepted(&confirmed, DAY.0, DAY.1, 1, Status::Confirmed),
        log.accepted(&cancelled, "2031-03-02", "2031-03-04", 2, Status::Cancelled),
    ];
    let postgres: PostgresStatuses = [(&held, "held"), (&confirmed, "confirmed"), (&cancelled, "cancelled")]
        .into_iter()
        .map(|(id, status)| (id.to_string(), vec![status.to_owned()]))
        .collect();
    let audit = log.log_audit();
    assert_eq!(log_violations(&audit), vec![]);
    assert_eq!(accepted_violations(&accepted, &audit, Some(&postgres), now()), vec![]);
}

#[test]
fn an_overbooked_slot_is_a_violation() {
    let mut log = Scenario::define("audit-overbooked", 1);
    let _first = log.hold(DAY.0, DAY.1, 1);
    let _second = log.hold("2031-02-28", "2031-03-02", 1);
    let violations = log_violations(&log.log_audit());
    assert_eq!(
        violations,
        vec![Violation::Overbooked {
            resource_id: "audit-overbooked".to_owned(),
            slot: DAY.0.to_owned(),
            in_use: 2,
            capacity: 1,
            offset: 2,
        }]
    );
}

#[test]
fn an_accepted_hold_missing_from_the_log_is_lost() {
    let mut log = Scenario::define("audit-lost", 5);
    let kept = log.hold(DAY.0, DAY.1, 1);
    let mut elsewhere = Scenario::define("audit-lost", 5);
    let never_written = elsewhere.hold(DAY.0, DAY.1, 1);
    let accepted = vec![
        log.accepted(&kept, DAY.0, DAY.1, 1, Status::Held),
        log.accepted(&never_written, DAY.0, DAY.1, 1, Status::Held),
    ];
    let violations = accepted_violations(&accepted, &log.log_audit(), None, now());
    assert_eq!(violations, vec![Violation::Lost { reservation_id: never_written.to_string() }]);
}

#[test]
fn a_hold_written_twice_is_a_duplicate() {
    let mut log = Scenario::define("audit-duplicate", 5);
    let id = log.hold(DAY.0, DAY.1, 1);
    log.hold_again(&id, DAY.0, DAY.1, 1);
    let violations = log_violations(&log.log_audit());
    assert_eq!(violations, vec![Violation::DuplicateHold { reservation_id: id.to_string(), holds: 2 }]);
}

#[test]
fn the_log_must_agree_with_the_answers_unless_they_were_uncertain() {
    let mut log = Scenario::define("audit-status", 5);
    let id = log.hold(DAY.0, DAY.1, 1);
    let audit = log.log_audit();
    let mut confirmed = log.accepted(&id, DAY.0, DAY.1, 1, Status::Confirmed);
    let violations = accepted_violations(std::slice::from_ref(&confirmed), &audit, None, now());
    assert_eq!(kinds(&violations), vec!["wrong-in-log"]);
    assert!(
        matches!(&violations[0], Violation::WrongInLog { field, found, .. } if field == "status" && found == "held")
    );
    confirmed.uncertain = true;
    assert_eq!(accepted_violations(&[confirmed], &audit, None, now()), vec![]);

    let other_range = log.accepted(&id, DAY.0, "2031-03-03", 2, Status::Held);
    let violations = accepted_violations(&[other_range], &audit, None, now());
    assert_eq!(kinds(&violations), vec!["wrong-in-log", "wrong-in-log"], "{violations:?}");

    let expired = log.accepted(&id, DAY.0, DAY.1, 1, Status::Expired);
    assert_eq!(
        kinds(&accepted_violations(std::slice::from_ref(&expired), &audit, None, now())),
        vec!["wrong-in-log"]
    );
    let later = now() + time::Duration::hours(2);
    assert_eq!(accepted_violations(&[expired], &audit, None, later), vec![], "its hold time has passed");
}

#[test]
fn postgres_must_hold_each_accepted_reservation_once_with_the_logs_status() {
    let mut log = Scenario::define("audit-postgres", 5);
    let (a, b, c) = (log.hold(DAY.0, DAY.1, 1), log.hold(DAY.0, DAY.1, 1), log.hold(DAY.0, DAY.1, 1));
    log.confirm(&b);
    let accepted = vec![
        log.accepted(&a, DAY.0, DAY.1, 1, Status::Held),
        log.accepted(&b, DAY.0, DAY.1, 1, Status::Confirmed),
        log.accepted(&c, DAY.0, DAY.1, 1, Status::Held),
    ];
    let postgres: PostgresStatuses = [
        (b.to_string(), vec!["held".to_owned()]),
        (c.to_string(), vec!["held".to_owned(), "held".to_owned()]),
    ]
    .into_iter()
    .collect();
    let violations = accepted_violations(&accepted, &log.log_audit(), Some(&postgres), now());
    assert_eq!(
        violations,
        vec![
            Violation::MissingInPostgres { reservation_id: a.to_string() },
            Violation::WrongInPostgres {
                reservation_id: b.to_string(),
                log: "confirmed".to_owned(),
                postgres: "held".to_owned()
            },
            Violation::DuplicateInPostgres { reservation_id: c.to_string(), copies: 2 },
        ]
    );
}
