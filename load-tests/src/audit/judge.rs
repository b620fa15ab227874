//! The audit's verdict: from what the log, PostgreSQL and Redis hold, and from the holds the
//! run was answered 2xx for, every violation of Holdfast's promises. Pure: the facts are read
//! by [`super::run`].

use std::collections::HashMap;

use holdfast_domain::{ReservationId, ReservationStatus};
use holdfast_platform::audit::AuditReport as LogAudit;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::workload::Status;

/// A hold the service answered 2xx, and what the run knows became of it (one line of
/// `accepted.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedRecord {
    /// The reservation id answered.
    pub reservation_id: String,
    /// Its resource.
    pub resource_id: String,
    /// First day held.
    pub from: String,
    /// Day after the last (exclusive).
    pub to: String,
    /// Units held per day.
    pub quantity: u32,
    /// The last status the run's own answers gave it.
    pub status: Status,
    /// A later request's outcome is unknown, so any status is possible.
    pub uncertain: bool,
}

/// One broken promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Violation {
    /// A slot held more than its capacity after an event.
    Overbooked {
        /// The resource.
        resource_id: String,
        /// The day.
        slot: String,
        /// Held + confirmed units there.
        in_use: u32,
        /// Its capacity.
        capacity: u32,
        /// Offset of the event that overbooked it.
        offset: i64,
    },
    /// Committed records that are not events Holdfast can read.
    Undecodable {
        /// How many.
        records: u64,
    },
    /// A reservation held more than once in the log.
    DuplicateHold {
        /// The reservation.
        reservation_id: String,
        /// `ReservationHeld` events found.
        holds: u32,
    },
    /// A hold answered 2xx that no valid record of the log has (it may sit in a void one): an
    /// acknowledged decision was lost.
    Lost {
        /// The reservation.
        reservation_id: String,
    },
    /// The log has the reservation, but not as the run was answered.
    WrongInLog {
        /// The reservation.
        reservation_id: String,
        /// What differs: `resource`, `range`, `quantity` or `status`.
        field: String,
        /// What the answers said.
        expected: String,
        /// What the log says.
        found: String,
    },
    /// An accepted reservation PostgreSQL does not have.
    MissingInPostgres {
        /// The reservation.
        reservation_id: String,
    },
    /// An accepted reservation found in several PostgreSQL shards.
    DuplicateInPostgres {
        /// The reservation.
        reservation_id: String,
        /// Rows found.
        copies: usize,
    },
    /// PostgreSQL's status of an accepted reservation differs from the log's.
    WrongInPostgres {
        /// The reservation.
        reservation_id: String,
        /// The log's status.
        log: String,
        /// PostgreSQL's.
        postgres: String,
    },
    /// A read-model row or Redis field differs from the log's recomputation.
    ReadModelDiffers {
        /// `postgres` or `redis`.
        store: String,
        /// Table or key family.
        table: String,
        /// Which row or key.
        key: String,
        /// What the log implies.
        expected: Option<String>,
        /// What was found.
        actual: Option<String>,
    },
    /// Holds answered 202 that were still undecided when asked again with their idempotency
    /// keys after the load (for the whole wait): acknowledged commands never decided.
    Undecided {
        /// How many.
        holds: u64,
    },
    /// Holds answered 503 that were still undecided when asked again with their idempotency
    /// keys after the load (for the whole wait): the service never became able to decide
    /// them, though nothing stopped it any more.
    Unresolved {
        /// How many.
        holds: u64,
    },
    /// Events the projection had still not applied when the audit stopped waiting.
    NotCaughtUp {
        /// Events behind, summed over partitions.
        behind: u64,
    },
}

impl Violation {
    /// The kind, as serialized (`overbooked`, `lost`…).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Overbooked { .. } => "overbooked",
            Self::Undecodable { .. } => "undecodable",
            Self::DuplicateHold { .. } => "duplicate-hold",
            Self::Lost { .. } => "lost",
            Self::WrongInLog { .. } => "wrong-in-log",
            Self::MissingInPostgres { .. } => "missing-in-postgres",
            Self::DuplicateInPostgres { .. } => "duplicate-in-postgres",
            Self::WrongInPostgres { .. } => "wrong-in-postgres",
            Self::ReadModelDiffers { .. } => "read-model-differs",
            Self::Undecided { .. } => "undecided",
            Self::Unresolved { .. } => "unresolved",
            Self::NotCaughtUp { .. } => "not-caught-up",
        }
    }
}

/// Statuses of reservations found in PostgreSQL: every row found, by id (several rows mean
/// several shards hold it).
pub type PostgresStatuses = HashMap<String, Vec<String>>;

/// The log's own violations: overbooked slots, undecodable records, duplicated holds — all
/// judged on the valid records alone (`log` is the reader rule's fold); void records are no
/// violation.
#[must_use]
pub fn log_violations(log: &LogAudit) -> Vec<Violation> {
    let mut violations: Vec<Violation> = log
        .overbookings
        .iter()
        .map(|o| Violation::Overbooked {
            resource_id: o.resource_id.to_string(),
            slot: o.slot.to_string(),
            in_use: o.in_use,
            capacity: o.capacity,
            offset: o.offset,
        })
        .collect();
    if log.undecodable > 0 {
        violations.push(Violation::Undecodable { records: log.undecodable });
    }
    let mut duplicated: Vec<(String, u32)> =
        log.holds.iter().filter(|(_, n)| **n > 1).map(|(id, n)| (id.to_string(), *n)).collect();
    duplicated.sort();
    violations.extend(
        duplicated
            .into_iter()
            .map(|(reservation_id, holds)| Violation::DuplicateHold { reservation_id, holds }),
    );
    violations
}

/// Checks every accepted hold against the log and PostgreSQL: valid exactly once (a hold only
/// a void record carries is lost), as answered, with a status the run's answers allow, and
/// the same status in PostgreSQL.
/// `postgres` is `None` when the read model was not audited.
#[must_use]
pub fn accepted_violations(
    accepted: &[AcceptedRecord],
    log: &LogAudit,
    postgres: Option<&PostgresStatuses>,
    now: OffsetDateTime,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for record in accepted {
        let id = record.reservation_id.clone();
        let wrong = |field: &str, expected: String, found: String| Violation::WrongInLog {
            reservation_id: record.reservation_id.clone(),
            field: field.to_owned(),
            expected,
            found,
        };
        let Ok(parsed) = record.reservation_id.parse::<ReservationId>() else {
            violations.push(Violation::Lost { reservation_id: id });
            continue;
        };
        let found = log.resources.get(parsed.resource_id()).and_then(|state| state.reservation(&parsed));
        let Some(reservation) = found else {
            violations.push(Violation::Lost { reservation_id: id });
            continue;
        };
        if parsed.resource_id().as_str() != record.resource_id {
            violations.push(wrong("resource", record.resource_id.clone(), parsed.resource_id().to_string()));
        }
        let range = (reservation.range.from().to_string(), reservation.range.to().to_string());
        if range != (record.from.clone(), record.to.clone()) {
            violations.push(wrong(
                "range",
                format!("{}..{}", record.from, record.to),
                format!("{}..{}", range.0, range.1),
            ));
        }
        if reservation.quantity.get() != record.quantity {
            violations.push(wrong(
                "quantity",
                record.quantity.to_string(),
                reservation.quantity.get().to_string(),
            ));
        }
        let status = reservation.status;
        if !record.uncertain && !allowed(record.status, status, now) {
            violations.push(wrong("status", expected(record.status).to_owned(), status.as_str().to_owned()));
        }
        if let Some(postgres) = postgres {
            match postgres.get(&record.reservation_id).map(Vec::as_slice) {
                None | Some([]) => violations.push(Violation::MissingInPostgres { reservation_id: id }),
                Some([row]) if row == status.as_str() => {}
                Some([row]) => violations.push(Violation::WrongInPostgres {
                    reservation_id: id,
                    log: status.as_str().to_owned(),
                    postgres: row.clone(),
                }),
                Some(rows) => {
                    violations
                        .push(Violation::DuplicateInPostgres { reservation_id: id, copies: rows.len() });
                }
            }
        }
    }
    violations
}

/// The statuses the log may show for a reservation the run last saw as `known`.
fn expected(known: Status) -> &'static str {
    match known {
        Status::Held => "held or expired",
        Status::Confirmed => "confirmed",
        Status::Cancelled => "cancelled",
        Status::Expired => "expired",
    }
}

/// Whether the log's `status` agrees with the run's `known` one. A hold may have lapsed
/// since (by an event, or by its time having passed), and a hold found expired by a confirm
/// may still be `held` in the log with its time passed.
fn allowed(known: Status, status: ReservationStatus, now: OffsetDateTime) -> bool {
    let lapsed = matches!(status, ReservationStatus::Held { expires_at } if expires_at <= now);
    match known {
        Status::Held => matches!(status, ReservationStatus::Held { .. } | ReservationStatus::Expired { .. }),
        Status::Confirmed => status == ReservationStatus::Confirmed,
        Status::Cancelled => status == ReservationStatus::Cancelled,
        Status::Expired => lapsed || matches!(status, ReservationStatus::Expired { .. }),
    }
}

#[cfg(test)]
mod tests;
