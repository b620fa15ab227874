//! Faults injected under load (`--fault KIND@AT[/EVERY[*TIMES]]`): which ones exist, when they
//! fire, and what they did to the answers (settled from the run's [`Timeline`] afterwards).
//!
//! Injecting them is [`crate::stack::Spawned`]'s job: it owns the processes.

use std::fmt;
use std::time::Duration;

use holdfast_platform::config::parse_duration;

use crate::timeline::{FaultMark, Second};

/// What to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `kill -9` one command-service instance, then start it again.
    KillCommand,
    /// `SIGSTOP` one command-service instance for `--pause`, then `SIGCONT` it: a zombie that
    /// wakes up after its partitions were given to another instance.
    StopCommand,
    /// A rolling restart of every command-service instance: each in turn gets `SIGTERM`, is
    /// waited for until it exited, started again and waited for until ready.
    RestartCommand,
    /// `kill -9` the projection worker, then start it again.
    KillProjection,
    /// Restart the Kafka broker.
    RestartKafka,
    /// Restart PostgreSQL.
    RestartPostgres,
    /// `FLUSHALL` Redis.
    FlushRedis,
}

impl FaultKind {
    /// Every kind, in the order of the flag's help.
    pub const ALL: [Self; 7] = [
        Self::KillCommand,
        Self::StopCommand,
        Self::RestartCommand,
        Self::KillProjection,
        Self::RestartKafka,
        Self::RestartPostgres,
        Self::FlushRedis,
    ];

    /// The flag's spelling.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::KillCommand => "kill-command",
            Self::StopCommand => "stop-command",
            Self::RestartCommand => "restart-command",
            Self::KillProjection => "kill-projection",
            Self::RestartKafka => "restart-kafka",
            Self::RestartPostgres => "restart-postgres",
            Self::FlushRedis => "flush-redis",
        }
    }

    /// Whether it stops command-service instances, so that their partitions change hands (the
    /// faults whose handover the report measures, [`crate::handover`]).
    #[must_use]
    pub fn moves_partitions(self) -> bool {
        matches!(self, Self::KillCommand | Self::StopCommand | Self::RestartCommand)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `--fault`: a kind, when it first fires (since the schedule began, warm-up included), how
/// often it repeats and how many times it fires at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSpec {
    /// What to break.
    pub kind: FaultKind,
    /// First time.
    pub at: Duration,
    /// Period of the repeats, if any.
    pub every: Option<Duration>,
    /// Most firings of a repeating fault; until the end of the run when `None`.
    pub times: Option<u32>,
}

impl FaultSpec {
    /// Parses `KIND@AT[/EVERY[*TIMES]]`, e.g. `kill-command@20s`, `stop-command@15s/30s` or
    /// `kill-command@20s/15s*20` (twenty times, 15 s apart).
    ///
    /// # Errors
    /// A message naming what does not parse.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (kind, when) =
            raw.split_once('@').ok_or_else(|| format!("expected KIND@AT[/EVERY[*TIMES]], got {raw:?}"))?;
        let kind = FaultKind::ALL.into_iter().find(|k| k.name() == kind.trim()).ok_or_else(|| {
            let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown fault {kind:?}; one of {}", names.join(", "))
        })?;
        let (at, every) = match when.split_once('/') {
            Some((at, every)) => (at, Some(every)),
            None => (when, None),
        };
        let (every, times) = match every {
            Some(every) => match every.split_once('*') {
                Some((every, times)) => (Some(every), Some(times)),
                None => (Some(every), None),
            },
            None => (None, None),
        };
        let at = parse_duration(at.trim())?;
        let every = every.map(|e| parse_duration(e.trim())).transpose()?;
        if every.is_some_and(|e| e < Duration::from_secs(1)) {
            return Err(format!("fault {raw:?} repeats more often than once a second"));
        }
        let times = times
            .map(|t| match t.trim().parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("fault {raw:?}: TIMES is a count of at least 1, got {t:?}")),
            })
            .transpose()?;
        Ok(Self { kind, at, every, times })
    }
}

/// Every firing of `specs` before `end`, in time order.
#[must_use]
pub fn schedule(specs: &[FaultSpec], end: Duration) -> Vec<(Duration, FaultKind)> {
    let mut firings = Vec::new();
    for spec in specs {
        let (mut at, mut left) = (spec.at, spec.times.unwrap_or(u32::MAX));
        while at < end && left > 0 {
            firings.push((at, spec.kind));
            left -= 1;
            match spec.every {
                Some(every) => at += every,
                None => break,
            }
        }
    }
    firings.sort_by_key(|(at, _)| *at);
    firings
}

/// What one injection did, before its effect on the answers is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Injected {
    /// What was done.
    pub kind: FaultKind,
    /// When (s since the schedule began).
    pub at_s: f64,
    /// How long the injection took (s).
    pub took_s: f64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The command instances' takeover counts right before it
    /// ([`crate::takeover`]; `None` without spawned services).
    pub takeovers_before: Option<crate::takeover::Takeovers>,
}

/// Each injection with its error burst and recovery: the requests without a decision from
/// the fault until the next one (or the end), and how long after the fault the last of them
/// finished.
#[must_use]
pub fn settle(injected: &[Injected], seconds: &[Second]) -> Vec<FaultMark> {
    injected
        .iter()
        .enumerate()
        .map(|(i, fault)| {
            let until = injected.get(i + 1).map_or(f64::INFINITY, |next| next.at_s);
            let from = fault.at_s.floor();
            let window: Vec<&Second> = seconds.iter().filter(|s| s.t >= from && s.t < until).collect();
            let failed: u64 = window.iter().map(|s| s.failed + s.dropped).sum();
            let last_failure = window.iter().rev().find(|s| s.failed + s.dropped > 0).map(|s| s.t + 1.0);
            let recovery_s = last_failure.map_or(0.0, |end| (end - fault.at_s).max(0.0));
            let worst_p99_ms = window
                .iter()
                .filter(|s| s.t < fault.at_s + recovery_s.max(fault.took_s) + 1.0)
                .map(|s| s.p99_ms)
                .fold(0.0, f64::max);
            FaultMark {
                kind: fault.kind.name().to_owned(),
                at_s: fault.at_s,
                took_s: fault.took_s,
                failed,
                recovery_s,
                worst_p99_ms,
                error: fault.error.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_kind_start_and_period() {
        assert_eq!(
            FaultSpec::parse("stop-command@15s/30s"),
            Ok(FaultSpec {
                kind: FaultKind::StopCommand,
                at: Duration::from_secs(15),
                every: Some(Duration::from_secs(30)),
                times: None,
            })
        );
        assert_eq!(
            FaultSpec::parse("flush-redis@1500ms").map(|s| (s.kind, s.at, s.every)),
            Ok((FaultKind::FlushRedis, Duration::from_millis(1500), None))
        );
        assert_eq!(
            FaultSpec::parse("restart-command@20s/15s*3").map(|s| (s.kind, s.every, s.times)),
            Ok((FaultKind::RestartCommand, Some(Duration::from_secs(15)), Some(3)))
        );
        for bad in [
            "kill-command",
            "explode@5s",
            "kill-command@x",
            "kill-command@5s/10ms",
            "@5s",
            "kill-command@5s/10s*0",
            "kill-command@5s/10s*",
            "kill-command@5s/10s*x",
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn repeats_fill_the_run_in_time_order() {
        let specs = [
            FaultSpec::parse("kill-command@10s/20s").expect("valid"),
            FaultSpec::parse("flush-redis@25s").expect("valid"),
            FaultSpec::parse("restart-kafka@90s").expect("valid"),
        ];
        let at = |s: u64| Duration::from_secs(s);
        assert_eq!(
            schedule(&specs, at(60)),
            vec![
                (at(10), FaultKind::KillCommand),
                (at(25), FaultKind::FlushRedis),
                (at(30), FaultKind::KillCommand),
                (at(50), FaultKind::KillCommand),
            ]
        );
        let counted = [
            FaultSpec::parse("kill-command@10s/5s*3").expect("valid"),
            FaultSpec::parse("restart-command@28s").expect("valid"),
        ];
        assert_eq!(
            schedule(&counted, at(60)),
            vec![
                (at(10), FaultKind::KillCommand),
                (at(15), FaultKind::KillCommand),
                (at(20), FaultKind::KillCommand),
                (at(28), FaultKind::RestartCommand),
            ]
        );
    }

    fn second(t: u64, failed: u64, p99_ms: f64) -> Second {
        #[allow(clippy::cast_precision_loss, reason = "small test values")]
        Second { t: t as f64, offered: 10, ok: 10 - failed, failed, p99_ms, ..Second::default() }
    }

    #[test]
    fn a_fault_owns_the_failures_until_the_next_one() {
        let seconds: Vec<Second> = (0..20)
            .map(|t| match t {
                5 | 6 => second(t, 4, 900.0),
                8 => second(t, 1, 300.0),
                15 => second(t, 2, 50.0),
                _ => second(t, 0, 10.0),
            })
            .collect();
        let injected = |kind, at_s| Injected { kind, at_s, took_s: 0.5, error: None, takeovers_before: None };
        let marks =
            settle(&[injected(FaultKind::KillCommand, 4.5), injected(FaultKind::FlushRedis, 12.0)], &seconds);
        assert_eq!((marks[0].failed, marks[0].recovery_s, marks[0].worst_p99_ms), (9, 4.5, 900.0));
        assert_eq!((marks[1].failed, marks[1].recovery_s), (2, 4.0));
        let quiet = settle(&[injected(FaultKind::FlushRedis, 2.0)], &seconds[..4]);
        assert_eq!((quiet[0].failed, quiet[0].recovery_s), (0, 0.0));
    }
}
