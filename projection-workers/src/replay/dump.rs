//! `dump`: one resource's or one reservation's history, in log order, as JSON lines
//! ([`super::lines`]), judged by the reader rule, then a summary line.
//!
//! A resource's records all live in the partition its id hashes to (murmur2, like the
//! producers), and a reservation id names its resource, so only that partition is read, from
//! its beginning (the reader rule starts there). Valid events of the selection are printed,
//! and for a resource its refused commands; with `--include-void` also the partition's claims
//! and void records. The last line is `{"summary":{…}}`: what the partition held, void records
//! by reason included.

use std::collections::BTreeMap;

use holdfast_domain::{Event, EventPayload, ReservationId, ResourceId};
use holdfast_platform::codec::LogRecord;
use holdfast_platform::partitioner::partition_for;
use holdfast_platform::replay::Entry;
use serde::Serialize;

use super::config::DumpArgs;
use super::lines::{Body, RecordLine, Verdict};
use super::log::{Offsets, Span};
use super::{Context, Outcome, Output, ReplayError};

/// What the dumped partition held, by the reader rule.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DumpSummary {
    /// The partition read.
    pub partition: i32,
    /// Records read.
    pub records: u64,
    /// Lines printed for the selection (events, and refused commands of a resource).
    pub selected: u64,
    /// Valid events in the partition (all resources).
    pub events: u64,
    /// Claims in the partition.
    pub claims: u64,
    /// Valid refused commands in the partition.
    pub rejected: u64,
    /// Void records in the partition, by reason (`holdfast_tenure::Void::label`).
    pub void: BTreeMap<&'static str, u64>,
    /// Valid records that could not be decoded.
    pub undecodable: u64,
}

/// The last line of a dump.
#[derive(Debug, Clone, Serialize)]
struct SummaryLine<'a> {
    summary: &'a DumpSummary,
}

/// What to select.
#[derive(Debug, Clone)]
enum Selector {
    Resource(ResourceId),
    Reservation(ReservationId),
}

impl Selector {
    fn parse(args: &DumpArgs) -> Result<Self, ReplayError> {
        let refused =
            |e: holdfast_domain::ValueError| ReplayError::Refused(format!("{}: {}", e.field, e.reason));
        match (&args.select.resource, &args.select.reservation) {
            (Some(resource), None) => Ok(Self::Resource(ResourceId::parse(resource).map_err(refused)?)),
            (None, Some(reservation)) => {
                Ok(Self::Reservation(ReservationId::parse(reservation).map_err(refused)?))
            }
            _ => Err(ReplayError::Refused("give exactly one of --resource and --reservation".into())),
        }
    }

    fn resource(&self) -> &ResourceId {
        match self {
            Self::Resource(id) => id,
            Self::Reservation(id) => id.resource_id(),
        }
    }

    fn matches(&self, event: &Event) -> bool {
        match self {
            Self::Resource(id) => &event.envelope.resource_id == id,
            Self::Reservation(id) => match &event.payload {
                EventPayload::ReservationHeld { reservation_id, .. }
                | EventPayload::ReservationConfirmed { reservation_id, .. }
                | EventPayload::ReservationCancelled { reservation_id, .. }
                | EventPayload::HoldExpired { reservation_id } => reservation_id == id,
                EventPayload::ResourceDefined { .. } | EventPayload::CapacityChanged { .. } => false,
            },
        }
    }
}

/// Prints the selected history and the summary.
///
/// # Errors
/// When the id is invalid, the log cannot be read, or a writer schema cannot be fetched.
pub async fn run(
    context: &Context,
    args: &DumpArgs,
    output: &mut Output<'_>,
) -> Result<Outcome, ReplayError> {
    let (lines, summary) = history(context, args, output).await?;
    for line in &lines {
        output.json_line(line)?;
    }
    output.json_line(&SummaryLine { summary: &summary })?;
    tracing::info!(lines = lines.len(), void = summary.void.values().sum::<u64>(), "dump finished");
    Ok(Outcome::Done)
}

/// The selected lines in log order, and the partition's summary.
///
/// # Errors
/// As [`run`].
pub async fn history(
    context: &Context,
    args: &DumpArgs,
    output: &Output<'_>,
) -> Result<(Vec<RecordLine>, DumpSummary), ReplayError> {
    let selector = Selector::parse(args)?;
    let include_void = args.include_void;
    let partition = partition_for(selector.resource().as_str().as_bytes(), context.log.partitions);
    let span = Span { from: Offsets::from([(partition, 0)]), ..Span::default() };
    let ends = context.log.ends().await?;
    let bar = output.bar(ends.get(&partition).copied().map_or(0, |e| u64::try_from(e).unwrap_or(0)), "dump");
    let progress = bar.clone();
    let summary = DumpSummary { partition, ..DumpSummary::default() };
    type State = (Vec<RecordLine>, DumpSummary, Option<ReplayError>);
    let state: State = (Vec::new(), summary, None);
    let (lines, summary, failure) = context
        .log
        .replay(&span, state, move |(lines, summary, failure): &mut State, record| {
            progress.inc(1);
            summary.records += 1;
            let (partition, offset) = (record.partition, record.offset);
            let valid = |body| RecordLine { partition, offset, verdict: Verdict::Valid, body };
            match record.entry {
                Entry::Claim(token) => {
                    summary.claims += 1;
                    if include_void {
                        lines.push(RecordLine::claim(partition, offset, token));
                    }
                }
                Entry::Void(why) => {
                    *summary.void.entry(why.label()).or_default() += 1;
                    if include_void {
                        lines.push(RecordLine::void(partition, offset, why));
                    }
                }
                Entry::Valid { record: Ok(LogRecord::Event(event)), .. } => {
                    summary.events += 1;
                    if selector.matches(&event) {
                        summary.selected += 1;
                        lines.push(valid(Body::Event(Box::new(event))));
                    }
                }
                Entry::Valid { record: Ok(LogRecord::Rejected(rejected)), .. } => {
                    summary.rejected += 1;
                    if matches!(&selector, Selector::Resource(id) if *id == rejected.resource_id) {
                        summary.selected += 1;
                        lines.push(valid(Body::Rejected(Box::new((&rejected).into()))));
                    }
                }
                Entry::Valid { record: Err(error), .. } if error.is_retriable() => {
                    failure.get_or_insert(ReplayError::Codec(error));
                }
                Entry::Valid { record: Ok(LogRecord::Claim(_)) | Err(_), .. } => {
                    tracing::debug!(offset, "undecodable record skipped");
                    summary.undecodable += 1;
                }
            }
        })
        .await?;
    bar.finish_and_clear();
    match failure {
        Some(error) => Err(error),
        None => Ok((lines, summary)),
    }
}
