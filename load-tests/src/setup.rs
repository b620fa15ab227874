//! Set-up before the open-model run: defining the workload's resources.
//!
//! This is a closed loop (a fixed number of requests at once, latency from the actual send):
//! it is not part of the benchmark, only reported next to it.

use futures::StreamExt as _;
use tokio::time::Instant;

use crate::LoadError;
use crate::client::{Answer, Target, problem_code};
use crate::record::OpStats;
use crate::workload::Workload;

/// Resources defined at once.
const DEFINE_CONCURRENCY: usize = 32;

/// Defines every resource of the workload with `capacity`, [`DEFINE_CONCURRENCY`] at once. A
/// repeated definition (200) or one still being decided (202) is fine.
///
/// # Errors
/// The first resource the service refused or did not answer for.
pub async fn define_resources(
    target: &Target,
    workload: &Workload,
    capacity: u32,
    run_id: &str,
    quiet: bool,
) -> Result<OpStats, LoadError> {
    let started = Instant::now();
    let mut stats = OpStats::default();
    let mut answers = futures::stream::iter(0..workload.shape().resources)
        .map(|index| {
            let (key, body) = (format!("{run_id}-d{index}"), workload.define_body(index, capacity));
            async move {
                let sent = Instant::now();
                let answer = target.define(key, body).await;
                (index, sent.elapsed(), answer)
            }
        })
        .buffer_unordered(DEFINE_CONCURRENCY);
    while let Some((index, latency, answer)) = answers.next().await {
        stats.record(latency, &answer);
        let reason = match &answer {
            Answer::Response { status: 200..=202, .. } => continue,
            Answer::Response { status, problem, .. } => {
                format!("status {status} {}", problem.as_deref().map_or("", problem_code))
            }
            Answer::Transport(kind) => format!("no answer ({kind})"),
        };
        return Err(LoadError::Define { resource: workload.resource_id(index).to_owned(), reason });
    }
    if !quiet {
        eprintln!("defined {} resources in {:.1} s", stats.responses(), started.elapsed().as_secs_f64());
    }
    Ok(stats)
}
