use std::time::Duration;

use super::*;
use crate::cli::Step;
use crate::client::Answer;
use crate::record::histogram;

fn response(status: u16, problem: Option<&str>) -> Answer {
    Answer::Response { status, problem: problem.map(Into::into), reservation: None, location: None }
}

#[test]
fn percentiles_come_from_the_histogram_in_milliseconds() {
    let mut h = histogram();
    for micros in 1..=1000_u64 {
        h.record(micros * 100).expect("in range");
    }
    let l = Latency::of(&h);
    // 3 significant digits: each value is within 0.1% of the exact one.
    let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
    assert!(close(l.p50, 50.0), "p50 {}", l.p50);
    assert!(close(l.p90, 90.0), "p90 {}", l.p90);
    assert!(close(l.p95, 95.0), "p95 {}", l.p95);
    assert!(close(l.p99, 99.0), "p99 {}", l.p99);
    assert!(close(l.p99_9, 99.9), "p99.9 {}", l.p99_9);
    assert!(close(l.max, 100.0), "max {}", l.max);
    assert!(close(l.mean, 50.05), "mean {}", l.mean);
    assert_eq!(Latency::of(&histogram()), Latency::default(), "empty: all zero");
}

fn sample() -> Summary {
    let phase = Phase::step(0, &Step { rate: 100.0, duration: Duration::from_secs(2) });
    let mut stats = PhaseStats {
        scheduled: 200,
        started: 199,
        dropped: 1,
        finished_in_window: 190,
        ..PhaseStats::default()
    };
    for i in 0..150 {
        stats.record(Op::Hold, Duration::from_millis(2 + i % 5), &response(201, None));
    }
    for _ in 0..30 {
        stats.record(
            Op::Hold,
            Duration::from_millis(3),
            &response(409, Some("https://holdfast.dev/problems/insufficient-capacity")),
        );
    }
    for _ in 0..18 {
        stats.record(Op::Confirm, Duration::from_millis(4), &response(200, None));
    }
    stats.record(Op::Confirm, Duration::from_secs(30), &Answer::Transport("timeout"));
    let mut define = OpStats::default();
    define.record(Duration::from_millis(8), &response(201, None));
    Summary {
        run_id: "0badcafe".to_owned(),
        target: "http://127.0.0.1:8080".to_owned(),
        started_at: "2030-01-01T00:00:00Z".to_owned(),
        settings: Settings {
            prefix: "lt-0badcafe".to_owned(),
            resources: 1,
            capacity: 100,
            zipf: 0.0,
            mix: "hold=80,confirm=15,cancel=5".to_owned(),
            days_max: 3,
            date_window: 90,
            quantity_max: 2,
            hold_seconds: None,
            max_in_flight: 4096,
            warmup_s: 0.0,
            timeout_s: 30.0,
            seed: 7,
        },
        stopped_early: false,
        generator_errors: 0,
        define: OpSummary::of(&define),
        steps: vec![StepSummary::of(&phase, &stats)],
        accepted_reservations: AcceptedSummary {
            accepted: 150,
            held: 132,
            confirmed: 18,
            cancelled: 0,
            expired: 0,
            uncertain: 1,
            pending_holds: 0,
            unavailable_holds: 0,
        },
    }
}

#[test]
fn steps_report_offered_achieved_and_answers() {
    let summary = sample();
    let step = &summary.steps[0];
    assert_eq!(step.label, "step 1: 100/s for 2s");
    assert!((step.achieved_rps - 95.0).abs() < 1e-9, "190 finished in 2 s");
    assert_eq!((step.responses, step.transport_errors, step.server_errors), (198, 1, 0));
    assert_eq!(step.ops.keys().collect::<Vec<_>>(), ["confirm", "hold"], "cancel was never sent");
    let hold = &step.ops["hold"];
    assert_eq!(hold.count, 180);
    assert_eq!(hold.status["201"], 150);
    assert_eq!(hold.problems["https://holdfast.dev/problems/insufficient-capacity"], 30);
    assert_eq!(hold.answers(), "201 × 150, 409 × 30 (insufficient-capacity × 30)");
    assert_eq!(step.ops["confirm"].answers(), "200 × 18, timeout × 1");
}

#[test]
fn markdown_has_a_latency_table_per_step() {
    let markdown = sample().to_markdown();
    assert!(markdown.starts_with("# holdfast-load run 0badcafe\n"), "{markdown}");
    assert!(markdown.contains("\n## step 1: 100/s for 2s\n"), "{markdown}");
    assert!(
        markdown.contains("offered 100.0/s, achieved 95.0/s: 200 scheduled, 199 started, 1 dropped"),
        "{markdown}"
    );
    assert!(markdown.contains("| op | count | p50 ms | p90 ms | p95 ms | p99 ms | p99.9 ms | max ms |"));
    let hold_row = markdown.lines().find(|l| l.starts_with("| hold | 180 |")).expect("a hold row");
    assert_eq!(hold_row.matches('|').count(), 9, "{hold_row}");
    assert!(markdown.contains("| confirm | 18 | 4.00 | 4.00 | 4.00 | 4.00 | 4.00 | 4.00 |"), "{markdown}");
    let hold_at = markdown.find("| hold | 180 |").expect("hold row");
    assert!(hold_at < markdown.find("| confirm | 18 |").expect("confirm row"), "hold first: {markdown}");
    assert!(markdown.contains("| hold | 201 × 150, 409 × 30 (insufficient-capacity × 30) |"));
    assert!(markdown.contains("| define | 1 | 8.00 |"), "{markdown}");
    assert!(markdown.contains("150 holds accepted: 132 held, 18 confirmed"), "{markdown}");
}

#[test]
fn json_round_trips() {
    let summary = sample();
    let json = serde_json::to_string_pretty(&summary).expect("serializes");
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["steps"][0]["ops"]["hold"]["latency_ms"]["p99_9"].as_f64().map(|v| v > 0.0), Some(true));
    assert_eq!(value["accepted_reservations"]["accepted"], 150);
    let back: Summary = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back.accepted_reservations, summary.accepted_reservations);
    assert_eq!(back.steps[0].ops["hold"].status, summary.steps[0].ops["hold"].status);
}

#[test]
fn reads_are_reported_after_the_commands() {
    let phase = Phase::step(0, &Step { rate: 10.0, duration: Duration::from_secs(1) });
    let mut stats = PhaseStats { scheduled: 10, started: 10, fallback_holds: 1, ..PhaseStats::default() };
    stats.record(Op::Hold, Duration::from_millis(2), &response(201, None));
    for _ in 0..4 {
        stats.record(Op::Read, Duration::from_millis(1), &response(200, None));
    }
    stats.record(
        Op::Read,
        Duration::from_millis(1),
        &response(404, Some("https://holdfast.dev/problems/unknown-resource")),
    );
    for _ in 0..3 {
        stats.record(Op::Ryw, Duration::from_millis(5), &response(200, None));
    }
    stats.record(
        Op::Ryw,
        Duration::from_millis(900),
        &response(503, Some("https://holdfast.dev/problems/position-not-reached")),
    );
    let step = StepSummary::of(&phase, &stats);
    let order: Vec<&str> = step.ops_in_order().map(|(op, _)| op).collect();
    assert_eq!(order, ["hold", "read", "ryw"]);
    assert_eq!((step.responses, step.server_errors), (10, 1));
    assert_eq!(step.ops["read"].answers(), "200 × 4, 404 × 1 (unknown-resource × 1)");
    assert_eq!(step.ops["ryw"].answers(), "200 × 3, 503 × 1 (position-not-reached × 1)");

    let mut summary = sample();
    summary.settings.mix = "hold=1,confirm=0,cancel=0,read=5,ryw=4".to_owned();
    summary.steps = vec![step];
    let markdown = summary.to_markdown();
    let rows: Vec<&str> = markdown.lines().filter(|l| l.starts_with("| r")).collect();
    assert_eq!(rows.len(), 4, "a latency row and an answers row each: {markdown}");
    assert!(
        rows[0].starts_with("| read | 5 | 1.00 |") && rows[1].starts_with("| ryw | 4 | 5.00 |"),
        "{rows:?}"
    );
    assert_eq!(rows[3], "| ryw | 200 × 3, 503 × 1 (position-not-reached × 1) |");
    assert!(markdown.contains("mix hold=1,confirm=0,cancel=0,read=5,ryw=4"), "{markdown}");
    assert!(markdown.contains("1 confirms/cancels/ryw reads sent as holds"), "{markdown}");
    let json = serde_json::to_value(&summary).expect("serializes");
    assert_eq!(json["steps"][0]["ops"]["ryw"]["status"]["503"], 1);
    assert_eq!(
        json["steps"][0]["ops"]["read"]["problems"]["https://holdfast.dev/problems/unknown-resource"],
        1
    );
}
