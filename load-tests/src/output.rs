//! The results folder: `summary.json`, `summary.md`, `accepted.jsonl` (every hold the service
//! accepted, with its answer's position, and what became of it, for a later audit against the
//! event log) and `pending.jsonl` (holds answered 202 or 503, with their idempotency keys).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::LoadError;
use crate::summary::Summary;
use crate::workload::{HoldPlan, Reservations, Status, Undecided, Workload};

/// File names inside the results folder.
pub const SUMMARY_JSON: &str = "summary.json";
/// Markdown report.
pub const SUMMARY_MD: &str = "summary.md";
/// Accepted reservations, one JSON object per line.
pub const ACCEPTED_JSONL: &str = "accepted.jsonl";
/// Holds answered 202 or 503, one JSON object per line.
pub const PENDING_JSONL: &str = "pending.jsonl";

/// One line of `accepted.jsonl`.
#[derive(Debug, Serialize)]
struct AcceptedLine<'a> {
    reservation_id: &'a str,
    resource_id: &'a str,
    from: &'a str,
    to: &'a str,
    quantity: u32,
    expires_at: Option<&'a str>,
    /// The hold answer's read-your-writes position.
    position: Option<&'a str>,
    status: Status,
    uncertain: bool,
}

/// One line of `pending.jsonl`.
#[derive(Debug, Serialize)]
struct PendingLine<'a> {
    idempotency_key: &'a str,
    /// `pending` (202) or `unavailable` (503).
    answered: Undecided,
    location: Option<&'a str>,
    resource_id: &'a str,
    from: &'a str,
    to: &'a str,
    quantity: u32,
}

/// The results folder of run `run_id`: `out`, or `<temp dir>/holdfast-load-<run id>`.
#[must_use]
pub fn results_dir(out: Option<&Path>, run_id: &str) -> PathBuf {
    out.map_or_else(|| std::env::temp_dir().join(format!("holdfast-load-{run_id}")), Path::to_owned)
}

/// Writes every result file into `dir`, creating it if needed.
///
/// # Errors
/// When the folder or a file cannot be written.
pub fn write(
    dir: &Path,
    summary: &Summary,
    workload: &Workload,
    reservations: &Reservations,
) -> Result<(), LoadError> {
    fs::create_dir_all(dir).map_err(|source| LoadError::Write { path: dir.to_owned(), source })?;
    write_file(&dir.join(SUMMARY_JSON), |out| {
        serde_json::to_writer_pretty(&mut *out, summary)?;
        out.write_all(b"\n")
    })?;
    write_file(&dir.join(SUMMARY_MD), |out| out.write_all(summary.to_markdown().as_bytes()))?;
    let range = |hold: &HoldPlan| (workload.resource_id(hold.resource), workload.range(hold));
    write_file(&dir.join(ACCEPTED_JSONL), |out| {
        for accepted in reservations.all() {
            let (resource_id, (from, to)) = range(&accepted.hold);
            let line = AcceptedLine {
                reservation_id: &accepted.id,
                resource_id,
                from,
                to,
                quantity: accepted.hold.quantity,
                expires_at: accepted.expires_at.as_deref(),
                position: accepted.position.as_deref(),
                status: accepted.status,
                uncertain: accepted.uncertain,
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })?;
    write_file(&dir.join(PENDING_JSONL), |out| {
        for pending in reservations.pending() {
            let (resource_id, (from, to)) = range(&pending.hold);
            let line = PendingLine {
                idempotency_key: &pending.key,
                answered: pending.why,
                location: pending.location.as_deref(),
                resource_id,
                from,
                to,
                quantity: pending.hold.quantity,
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Writes `path` through a buffer filled by `fill`.
fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), LoadError> {
    let error = |source| LoadError::Write { path: PathBuf::from(path), source };
    let mut out = BufWriter::new(File::create(path).map_err(error)?);
    fill(&mut out).and_then(|()| out.flush()).map_err(error)
}
