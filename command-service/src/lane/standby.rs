//! Warm standbys: partitions this instance follows without owning them, so that a lane assigned
//! one of them restores it from where the standby stands instead of from the partition's start.
//!
//! One reader thread (`reader`) follows every partition stood by for: a consumer outside any
//! group, assigned the partitions by hand, tails them from their first record. Each record goes
//! through the reader rule and the fold of a restore (`follower`), so a standby's state is the
//! state a restore would build. When a lane has claimed a partition at offset `c`,
//! [`Standbys::take`] reads on up to `c` (never folding the claim itself) and hands the state
//! over; the partition is not followed from then on.
//!
//! A lane's claim is usually read by the standby before the lane asks for the state: the state
//! before each recent claim is kept for a while, so the hand-over stays exact. A standby never
//! skips a record: registry outages are waited out, and a valid record that never decodes
//! stops that partition alone.
//!
//! Which partitions to follow is not decided here ([`Standbys::follow`] is told).

mod follower;
mod reader;

use std::collections::BTreeSet;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use holdfast_platform::KafkaArgs;
use holdfast_platform::codec::EventCodec;
use holdfast_platform::kafka::reader_config;
use serde::Serialize;
use tokio::sync::oneshot;

use self::reader::Reader;
use super::restore::Restore;
use super::state::Memory;

/// Where one followed partition stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StandbyStatus {
    /// The partition.
    pub partition: i32,
    /// Next offset it folds: its state holds every record before it.
    pub position: i64,
    /// Records between the position and the partition's end (high watermark), when known.
    pub lag: Option<i64>,
    /// Void records skipped so far.
    pub void_records: u64,
    /// Valid records folded so far.
    pub valid_records: u64,
    /// The record at `position` waits for its writer schema: the registry did not answer.
    pub awaiting_schema: bool,
    /// A valid record at `position` cannot be decoded: the partition goes no further.
    pub stopped: bool,
}

/// What the reader thread is asked.
pub(super) enum Request {
    /// Follow exactly these partitions.
    Follow(BTreeSet<i32>),
    /// Hand over a partition's state before a claim.
    Take(Taker),
}

/// A lane waiting for a partition's state.
pub(super) struct Taker {
    /// The partition.
    partition: i32,
    /// Its claim's offset: the state holds every record before it.
    claim: i64,
    /// When the lane asked.
    started: Instant,
    /// Where the state goes.
    answer: oneshot::Sender<Option<Restore>>,
}

/// The partitions this instance stands by for. Clones share one reader thread, which ends when
/// the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Standbys {
    requests: Sender<Request>,
    status: Arc<Mutex<Vec<StandbyStatus>>>,
}

impl Standbys {
    /// Starts the reader thread of `topic`, reading with `client_id` and decoding with `codec`
    /// (schemas it lacks are fetched through `runtime`). Followed partitions remember outcomes
    /// as `memory` says. It follows nothing until [`Self::follow`] is called.
    #[must_use]
    pub fn start(
        kafka: &KafkaArgs,
        client_id: &str,
        topic: &str,
        codec: Arc<EventCodec>,
        runtime: tokio::runtime::Handle,
        memory: Memory,
    ) -> Self {
        let (requests, queue) = mpsc::channel();
        let status = Arc::new(Mutex::new(Vec::new()));
        let mut config = reader_config(kafka, client_id);
        // The partitions' ends, for the lag in the status.
        config.set("statistics.interval.ms", "5000");
        // A tail of many partitions: librdkafka names every one of them in each fetch (it has no
        // incremental fetch sessions), so let the broker gather records for up to 50 ms rather
        // than answer each new record with a fetch of its own. A take waits at most that long
        // more for the records before its claim.
        config.set("fetch.min.bytes", "16384").set("fetch.wait.max.ms", "50");
        let reader = Reader::new(config, topic, codec, runtime, memory, Arc::clone(&status));
        let spawned = std::thread::Builder::new().name("standbys".into()).spawn(move || reader.run(&queue));
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the standby reader; lanes restore from the log");
        }
        Self { requests, status }
    }

    /// Stands by for exactly `partitions` from now on. Partitions new to the set are read from
    /// their first record; partitions left out are forgotten, and a lane waiting for one of them
    /// restores from the log.
    pub fn follow(&self, partitions: BTreeSet<i32>) {
        let _ = self.requests.send(Request::Follow(partitions));
    }

    /// The state of `partition` before its claim at `claim_offset`, read on from where the
    /// standby stands, and the partition is no longer followed. `None` when this instance does
    /// not stand by for it, or has folded records past the claim without keeping the state
    /// before it: restore from the log then.
    ///
    /// # Errors
    /// [`RestoreError::Rebuild`](super::restore::RestoreError::Rebuild) when a valid record
    /// before the claim cannot be decoded.
    pub async fn take(&self, partition: i32, claim_offset: i64) -> Option<Restore> {
        let (answer, result) = oneshot::channel();
        let taker = Taker { partition, claim: claim_offset, started: Instant::now(), answer };
        self.requests.send(Request::Take(taker)).ok()?;
        result.await.ok().flatten()
    }

    /// Where each followed partition stands, by partition (as of the last half second).
    #[must_use]
    pub fn status(&self) -> Vec<StandbyStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}
