//! `dump`: one resource's or one reservation's decoded events, in log order, as JSON lines.
//!
//! A resource's events all live in the partition its id hashes to (murmur2, like the
//! producers), and a reservation id names its resource, so only that partition is read.

use holdfast_domain::{Event, EventPayload, ReservationId, ResourceId};
use holdfast_platform::partitioner::partition_for;
use serde::Serialize;

use super::config::DumpArgs;
use super::log::Offsets;
use super::{Context, Outcome, Output, ReplayError};

/// One line of the dump.
#[derive(Debug, Clone, Serialize)]
pub struct DumpLine {
    /// Partition of the event.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The event, decoded.
    pub event: Event,
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
        match (&args.resource, &args.reservation) {
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

/// Prints the selected events.
///
/// # Errors
/// When the id is invalid, the log cannot be read, or a writer schema cannot be fetched.
pub async fn run(
    context: &Context,
    args: &DumpArgs,
    output: &mut Output<'_>,
) -> Result<Outcome, ReplayError> {
    let lines = history(context, args, output).await?;
    for line in &lines {
        output.json_line(line)?;
    }
    tracing::info!(events = lines.len(), "dump finished");
    Ok(Outcome::Done)
}

/// The selected events, in log order.
///
/// # Errors
/// As [`run`].
pub async fn history(
    context: &Context,
    args: &DumpArgs,
    output: &Output<'_>,
) -> Result<Vec<DumpLine>, ReplayError> {
    let selector = Selector::parse(args)?;
    let partition = partition_for(selector.resource().as_str().as_bytes(), context.log.partitions);
    let from: Offsets = [(partition, 0)].into();
    let ends = context.log.ends().await?;
    let bar = output.bar(ends.get(&partition).copied().map_or(0, |e| u64::try_from(e).unwrap_or(0)), "dump");
    let progress = bar.clone();
    let state = (Vec::new(), None);
    let (lines, failure) = context
        .log
        .replay(&from, state, move |(lines, failure): &mut (Vec<DumpLine>, Option<_>), record| {
            progress.inc(1);
            match record.event {
                Ok(event) if selector.matches(&event) => {
                    lines.push(DumpLine { partition: record.partition, offset: record.offset, event });
                }
                Ok(_) => {}
                Err(error) if error.is_retriable() => *failure = Some(error),
                Err(error) => {
                    tracing::debug!(offset = record.offset, %error, "undecodable record skipped");
                }
            }
        })
        .await?;
    bar.finish_and_clear();
    match failure {
        Some(error) => Err(ReplayError::Codec(error)),
        None => Ok(lines),
    }
}
