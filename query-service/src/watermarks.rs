//! Read-your-writes waits: one shared watcher per instance polls the positions of the
//! partitions someone waits for, however many requests wait, and releases each waiter once the
//! source it can read from has reached its position.
//!
//! The watcher sleeps while nobody waits (a registration wakes it at once) and polls every
//! `poll` while someone does: Redis's positions hash for availability waits, PostgreSQL's
//! `projection_offsets` for reads that only PostgreSQL serves, and PostgreSQL for every wait
//! while Redis fails, or on every tenth poll (Redis is written after PostgreSQL, so a Redis
//! that stopped moving must not hold a read back while PostgreSQL has the event).
//! The last positions seen are kept, so a request whose position was already reached never
//! waits or touches the network.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use holdfast_platform::Shutdown;
use tokio::sync::{Notify, oneshot};

use crate::position::Position;
use crate::read::{ReadModel, Source};

/// Which source a read can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Either (availability: Redis preferred).
    Any,
    /// PostgreSQL only (reservations, lists).
    Postgres,
}

/// The position was not reached within the bound.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the read model did not reach the position within {0:?}")]
pub struct NotReached(pub Duration);

/// One waiting request.
#[derive(Debug)]
struct Waiter {
    wanted: Position,
    need: Need,
    done: oneshot::Sender<Source>,
}

/// The shared watcher's state; cheap to clone.
#[derive(Debug, Clone)]
pub struct Watermarks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Last position seen in Redis, per partition.
    redis: Vec<AtomicI64>,
    /// Last position seen in PostgreSQL, per partition.
    postgres: Vec<AtomicI64>,
    waiters: Mutex<Vec<Waiter>>,
    wake: Notify,
    poll: Duration,
}

impl Watermarks {
    /// A watcher for a topic of `partitions` partitions, polling every `poll` while needed.
    #[must_use]
    pub fn new(partitions: i32, poll: Duration) -> Self {
        let n = usize::try_from(partitions).unwrap_or(0);
        Self {
            inner: Arc::new(Inner {
                redis: (0..n).map(|_| AtomicI64::new(0)).collect(),
                postgres: (0..n).map(|_| AtomicI64::new(0)).collect(),
                waiters: Mutex::new(Vec::new()),
                wake: Notify::new(),
                poll,
            }),
        }
    }

    /// Records a position seen by a read (only ever moves forward).
    pub fn saw(&self, source: Source, position: Position) {
        let table = match source {
            Source::Redis => &self.inner.redis,
            Source::Postgres => &self.inner.postgres,
        };
        if let Some(slot) = usize::try_from(position.partition).ok().and_then(|p| table.get(p)) {
            slot.fetch_max(position.next_offset, Ordering::Relaxed);
        }
    }

    /// The source that has reached `wanted` by what was last seen, if any.
    #[must_use]
    pub fn reached(&self, wanted: Position, need: Need) -> Option<Source> {
        let p = usize::try_from(wanted.partition).ok()?;
        if need == Need::Any && self.inner.redis.get(p)?.load(Ordering::Relaxed) >= wanted.next_offset {
            return Some(Source::Redis);
        }
        (self.inner.postgres.get(p)?.load(Ordering::Relaxed) >= wanted.next_offset)
            .then_some(Source::Postgres)
    }

    /// Waits until a source usable for `need` has reached `wanted`, at most `bound`.
    ///
    /// # Errors
    /// [`NotReached`] after `bound`.
    pub async fn wait(&self, wanted: Position, need: Need, bound: Duration) -> Result<Source, NotReached> {
        if let Some(source) = self.reached(wanted, need) {
            return Ok(source);
        }
        let (done, reached) = oneshot::channel();
        self.lock().push(Waiter { wanted, need, done });
        self.inner.wake.notify_one();
        match tokio::time::timeout(bound, reached).await {
            Ok(Ok(source)) => Ok(source),
            // The watcher stopped (shutdown) or the bound passed; the waiter is dropped on
            // the watcher's next round as its receiver is gone.
            Ok(Err(_)) | Err(_) => Err(NotReached(bound)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        self.inner.waiters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The watcher loop; ends on shutdown.
    pub async fn run(&self, reads: &ReadModel, shutdown: &Shutdown) {
        let mut round: u64 = 0;
        loop {
            let (any, postgres_only) = self.wanted_partitions();
            if any.is_empty() && postgres_only.is_empty() {
                tokio::select! {
                    () = self.inner.wake.notified() => continue,
                    () = shutdown.cancelled() => return,
                }
            }
            round = round.wrapping_add(1);
            let mut from_postgres = postgres_only;
            if !any.is_empty() {
                let redis_ok = reads.redis_allowed()
                    && match reads.redis_positions(&any).await {
                        Ok(positions) => {
                            for (&partition, next_offset) in any.iter().zip(positions) {
                                self.saw(Source::Redis, Position { partition, next_offset });
                            }
                            true
                        }
                        Err(error) => {
                            tracing::debug!(%error, "positions unreadable in redis; watching postgres");
                            reads.redis_failed();
                            false
                        }
                    };
                if !redis_ok || round.is_multiple_of(10) {
                    from_postgres.extend(any.iter().copied());
                }
            }
            if !from_postgres.is_empty() {
                from_postgres.sort_unstable();
                from_postgres.dedup();
                match reads.postgres_positions(&from_postgres).await {
                    Ok(positions) => {
                        for (partition, next_offset) in positions {
                            self.saw(Source::Postgres, Position { partition, next_offset });
                        }
                    }
                    Err(error) => tracing::debug!(%error, "positions unreadable in postgres"),
                }
            }
            self.release();
            tokio::select! {
                () = tokio::time::sleep(self.inner.poll) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Partitions waited for by availability reads, and by PostgreSQL-only reads.
    fn wanted_partitions(&self) -> (Vec<i32>, Vec<i32>) {
        let waiters = self.lock();
        let (mut any, mut postgres): (Vec<i32>, Vec<i32>) = (Vec::new(), Vec::new());
        for waiter in waiters.iter() {
            match waiter.need {
                Need::Any => any.push(waiter.wanted.partition),
                Need::Postgres => postgres.push(waiter.wanted.partition),
            }
        }
        for list in [&mut any, &mut postgres] {
            list.sort_unstable();
            list.dedup();
        }
        (any, postgres)
    }

    /// Wakes the waiters whose position was reached; forgets those that gave up.
    fn release(&self) {
        let mut waiters = self.lock();
        let mut index = 0;
        while index < waiters.len() {
            let waiter = &waiters[index];
            if waiter.done.is_closed() {
                waiters.swap_remove(index);
            } else if let Some(source) = self.reached(waiter.wanted, waiter.need) {
                let waiter = waiters.swap_remove(index);
                let _ = waiter.done.send(source);
            } else {
                index += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_positions_only_move_forward_and_answer_by_need() {
        let marks = Watermarks::new(4, Duration::from_millis(5));
        let wanted = Position { partition: 2, next_offset: 10 };
        assert_eq!(marks.reached(wanted, Need::Any), None);
        marks.saw(Source::Redis, Position { partition: 2, next_offset: 12 });
        marks.saw(Source::Redis, Position { partition: 2, next_offset: 3 });
        assert_eq!(marks.reached(wanted, Need::Any), Some(Source::Redis));
        assert_eq!(marks.reached(wanted, Need::Postgres), None);
        marks.saw(Source::Postgres, Position { partition: 2, next_offset: 10 });
        assert_eq!(marks.reached(wanted, Need::Postgres), Some(Source::Postgres));
        assert_eq!(marks.reached(Position { partition: 9, next_offset: 0 }, Need::Any), None);
    }
}
