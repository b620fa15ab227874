//! [`Follower`]: one partition a standby follows, without I/O. It judges every record read by
//! the reader rule (the rule's state carried from one read to the next), folds what the rule
//! says with [`Rebuild`], and tells when the state up to an owner's claim can be handed over.
//! The shell in [`super`] reads the records and decodes them.
//!
//! Nothing is ever skipped: a valid record whose schema the registry cannot give yet waits at
//! the head of the queue, with every record after it, until it decodes; a valid record that
//! never decodes stops the partition there.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use holdfast_platform::codec::{CodecError, LogRecord};
use holdfast_platform::replay::{Entry, Judgement, judge};
use holdfast_tenure::{Mark, ReaderRule, Token, Void};
use time::OffsetDateTime;

use crate::lane::rebuild::{Rebuild, RebuildError};
use crate::lane::state::Memory;

/// First wait before asking the registry again for a schema it did not give.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest wait between two attempts.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// A record read but not folded yet.
#[derive(Debug)]
enum Unfolded {
    /// A claim. `checkpoint`: appended lately, so its owner may be about to take the state
    /// before it.
    Claim { token: Token, checkpoint: bool },
    /// A valid record, to decode.
    Valid { payload: Vec<u8>, fingerprint: Option<u64> },
    /// A void record.
    Void(Void),
}

/// Whether the state up to a claim can be handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handover {
    /// Every record before the claim is folded and none after it (or the partition is stopped
    /// before the claim, which is as far as it gets).
    Ready,
    /// Records before the claim are still to be read or folded.
    Wait,
    /// Records after the claim are folded and the state before it was not kept.
    Passed,
}

/// The state a standby keeps for one partition.
#[derive(Debug)]
pub(super) struct Follower {
    rule: ReaderRule,
    rebuild: Rebuild,
    /// Why the fold stopped, at offset `folded`.
    stopped: Option<RebuildError>,
    /// Next offset to read.
    read: i64,
    /// The state holds every record before this offset.
    folded: i64,
    /// Records read but not folded yet, in log order: a valid record waiting for its schema,
    /// and every record after it.
    unfolded: VecDeque<(i64, Unfolded)>,
    /// When to ask the registry again, and how long the wait was.
    retry: Option<(Instant, Duration)>,
    /// The state before the latest recent claim: the claim's offset, the state, when it was
    /// folded.
    before_claim: Option<(i64, Box<Rebuild>, Instant)>,
}

impl Follower {
    /// Follows `partition` from its first record, remembering outcomes as `memory` says from `now`.
    pub(super) fn new(partition: i32, memory: Memory, now: OffsetDateTime) -> Self {
        Self {
            rule: ReaderRule::default(),
            rebuild: Rebuild::new(partition, memory, now),
            stopped: None,
            read: 0,
            folded: 0,
            unfolded: VecDeque::new(),
            retry: None,
            before_claim: None,
        }
    }

    /// The next offset to read.
    pub(super) fn next_read(&self) -> i64 {
        self.read
    }

    /// The state holds every record before this offset.
    pub(super) fn folded(&self) -> i64 {
        self.folded
    }

    /// Valid and void records folded.
    pub(super) fn counts(&self) -> (u64, u64) {
        (self.rebuild.valid, self.rebuild.void)
    }

    /// Whether a valid record that cannot be decoded stopped the fold.
    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.is_some()
    }

    /// Whether the fold waits for the schema registry (reading on only fills the queue).
    pub(super) fn is_waiting(&self) -> bool {
        self.retry.is_some()
    }

    /// Judges the record read at `offset` and queues it for [`Self::fold`]. `recent`: it was
    /// appended lately. A record before the next offset to read (read again) is ignored.
    pub(super) fn read(
        &mut self,
        offset: i64,
        mark: Mark,
        payload: Vec<u8>,
        fingerprint: Option<u64>,
        recent: bool,
    ) {
        if offset < self.read || self.stopped.is_some() {
            return;
        }
        self.read = offset + 1;
        let record = match judge(&mut self.rule, mark) {
            Judgement::Claim(token) => Unfolded::Claim { token, checkpoint: recent },
            Judgement::Valid => Unfolded::Valid { payload, fingerprint },
            Judgement::Void(why) => Unfolded::Void(why),
        };
        self.unfolded.push_back((offset, record));
    }

    /// Folds the queued records before `until` (all when `None`), decoding valid ones with
    /// `decode`. Returns the registry's error when a schema could not be fetched just now: the
    /// record waits and is decoded again after a pause.
    pub(super) fn fold(
        &mut self,
        until: Option<i64>,
        now: Instant,
        mut decode: impl FnMut(&[u8]) -> Result<LogRecord, CodecError>,
    ) -> Option<CodecError> {
        if self.retry.is_some_and(|(at, _)| now < at) {
            return None;
        }
        while let Some((offset, record)) = self.unfolded.pop_front() {
            if self.stopped.is_some() || until.is_some_and(|end| offset >= end) {
                self.unfolded.push_front((offset, record));
                return None;
            }
            let entry = match record {
                Unfolded::Claim { token, checkpoint } => {
                    if checkpoint {
                        self.before_claim = Some((offset, Box::new(self.rebuild.clone()), now));
                    }
                    Entry::Claim(token)
                }
                Unfolded::Void(why) => Entry::Void(why),
                Unfolded::Valid { payload, fingerprint } => match decode(&payload) {
                    Err(error) if error.is_retriable() => {
                        let wait = self.retry.map_or(FIRST_RETRY, |(_, wait)| (wait * 2).min(MAX_RETRY));
                        self.retry = Some((now + wait, wait));
                        self.unfolded.push_front((offset, Unfolded::Valid { payload, fingerprint }));
                        return Some(error);
                    }
                    record => Entry::Valid { record, fingerprint },
                },
            };
            self.retry = None;
            match self.rebuild.apply(offset, entry) {
                Ok(()) => self.folded = offset + 1,
                Err(error) => self.stopped = Some(error),
            }
        }
        self.retry = None;
        None
    }

    /// Whether the state before the claim at `claim` can be handed over.
    pub(super) fn handover(&self, claim: i64) -> Handover {
        if self.folded > claim {
            return if self.before_claim.as_ref().is_some_and(|(at, ..)| *at == claim) {
                Handover::Ready
            } else {
                Handover::Passed
            };
        }
        if self.stopped.is_some() {
            return Handover::Ready;
        }
        let next = self.unfolded.front().map_or(self.read, |(offset, _)| *offset);
        if next >= claim { Handover::Ready } else { Handover::Wait }
    }

    /// The state before the claim at `claim`, once [`Self::handover`] says it is ready, with its
    /// outcome memory as of `now`.
    ///
    /// # Errors
    /// [`RebuildError::Undecodable`] when the partition stopped before the claim.
    pub(super) fn hand_over(self, claim: i64, now: OffsetDateTime) -> Result<Rebuild, RebuildError> {
        let mut rebuild = match (self.before_claim, self.stopped) {
            (Some((at, before, _)), _) if self.folded > claim && at == claim => *before,
            (_, Some(error)) => return Err(error),
            (_, None) => self.rebuild,
        };
        rebuild.advance(now);
        Ok(rebuild)
    }

    /// Drops the state kept before a claim folded more than `keep` ago.
    pub(super) fn expire(&mut self, now: Instant, keep: Duration) {
        if self.before_claim.as_ref().is_some_and(|(_, _, at)| now.duration_since(*at) > keep) {
            self.before_claim = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use holdfast_domain::{EventType, Rejection, ResourceId};
    use holdfast_platform::codec::{RejectedRecord, samples};
    use uuid::Uuid;

    use super::*;
    use crate::lane::state::PartitionState;

    const MEMORY: Memory = Memory { window: time::Duration::HOUR, capacity: 100 };
    /// The payload of a valid record that never decodes.
    const GARBAGE: u8 = u8::MAX;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("in range")
    }

    /// A log of one partition: tenures, their valid records (payload: which record), void ones.
    #[derive(Default)]
    struct Log {
        records: Vec<(Mark, Vec<u8>)>,
        tenure: Option<(Token, u64)>,
    }

    impl Log {
        fn claim(&mut self) -> i64 {
            let token = Token::fresh();
            self.tenure = Some((token, 0));
            self.push(Mark::Claim { token }, 0)
        }

        fn valid(&mut self, record: u8) -> i64 {
            let (token, seq) = self.tenure.expect("claimed");
            self.tenure = Some((token, seq + 1));
            self.push(Mark::Data { token, seq }, record)
        }

        fn zombie(&mut self, record: u8) -> i64 {
            self.push(Mark::Data { token: Token::fresh(), seq: 0 }, record)
        }

        fn push(&mut self, mark: Mark, record: u8) -> i64 {
            self.records.push((mark, vec![record]));
            i64::try_from(self.records.len()).expect("small") - 1
        }

        /// A history of two tenures with a zombie's record between them: events and rejections.
        fn history() -> Self {
            let mut log = Self::default();
            log.claim();
            for record in 0..4 {
                log.valid(record);
            }
            log.claim();
            log.zombie(4);
            for record in 5..9 {
                log.valid(record);
            }
            log
        }

        /// Reads every record from `follower`'s next one, all appended lately when `recent`.
        fn feed(&self, follower: &mut Follower, recent: bool) {
            for (offset, (mark, payload)) in
                self.records.iter().enumerate().skip(position(follower.next_read()))
            {
                follower.read(i64::try_from(offset).expect("small"), *mark, payload.clone(), None, recent);
            }
        }

        /// The state a restore folds from the records before `end`.
        fn restored(&self, end: i64) -> Result<PartitionState, RebuildError> {
            let mut rule = ReaderRule::default();
            let mut rebuild = Rebuild::new(0, MEMORY, now());
            for (offset, (mark, payload)) in self.records.iter().take(position(end)).enumerate() {
                let entry = match judge(&mut rule, *mark) {
                    Judgement::Claim(token) => Entry::Claim(token),
                    Judgement::Void(why) => Entry::Void(why),
                    Judgement::Valid => Entry::Valid { record: decode(payload), fingerprint: None },
                };
                rebuild.apply(i64::try_from(offset).expect("small"), entry)?;
            }
            Ok(rebuild.finish())
        }
    }

    fn position(offset: i64) -> usize {
        usize::try_from(offset).expect("not negative")
    }

    /// Record `n`: an event, or a rejection decided a minute before [`now`] (odd `n`).
    fn decode(payload: &[u8]) -> Result<LogRecord, CodecError> {
        let n = payload[0];
        if n == GARBAGE {
            return Err(CodecError::WrongMagicByte { found: 7 });
        }
        if n.is_multiple_of(2) {
            let mut event = samples::event(EventType::ResourceDefined, u64::from(n));
            event.envelope.occurred_at = now() - time::Duration::minutes(2);
            return Ok(LogRecord::Event(event));
        }
        let resource_id = ResourceId::parse("room-1").expect("valid");
        Ok(LogRecord::Rejected(RejectedRecord {
            resource_id: resource_id.clone(),
            occurred_at: now() - time::Duration::minutes(1),
            command_id: Uuid::from_u128(u128::from(n)),
            correlation_id: Uuid::from_u128(u128::from(n)),
            traceparent: None,
            principal: None,
            command: "place-hold".into(),
            rejection: Rejection::UnknownResource { resource_id },
        }))
    }

    fn unreachable() -> CodecError {
        CodecError::RegistryUnreachable { detail: "connection refused".into() }
    }

    fn handed(follower: Follower, claim: i64) -> Result<PartitionState, RebuildError> {
        follower.hand_over(claim, now()).map(Rebuild::finish)
    }

    #[test]
    fn the_state_up_to_a_claim_is_the_state_a_restore_folds() {
        let mut log = Log::history();
        let mut follower = Follower::new(0, MEMORY, now());
        log.feed(&mut follower, false);
        assert!(follower.fold(None, Instant::now(), decode).is_none());
        let claim = log.claim();
        assert_eq!(follower.handover(claim), Handover::Ready, "everything before the claim is folded");
        assert_eq!(follower.folded(), claim);
        assert_eq!(follower.counts(), (8, 1));
        assert_eq!(handed(follower, claim).expect("state"), log.restored(claim).expect("restored"));
    }

    #[test]
    fn a_take_waits_for_the_records_before_its_claim_and_folds_none_after() {
        let mut log = Log::history();
        let mut follower = Follower::new(0, MEMORY, now());
        let claim = log.claim();
        log.zombie(10);
        log.valid(12);
        assert_eq!(follower.handover(claim), Handover::Wait, "nothing read yet");
        log.feed(&mut follower, true);
        follower.fold(Some(claim), Instant::now(), decode);
        assert_eq!(follower.folded(), claim, "stopped before the claim");
        assert_eq!(follower.handover(claim), Handover::Ready);
        assert_eq!(handed(follower, claim).expect("state"), log.restored(claim).expect("restored"));
    }

    #[test]
    fn the_state_before_a_recent_claim_is_kept_when_the_fold_went_past_it() {
        let mut log = Log::history();
        let claim = log.claim();
        log.zombie(10);
        log.valid(12);
        assert_ne!(log.restored(claim + 3).expect("restored"), log.restored(claim).expect("restored"));
        let mut recent = Follower::new(0, MEMORY, now());
        log.feed(&mut recent, true);
        recent.fold(None, Instant::now(), decode);
        assert!(recent.folded() > claim + 1, "read past the claim");
        assert_eq!(recent.handover(claim), Handover::Ready);
        assert_eq!(handed(recent, claim).expect("state"), log.restored(claim).expect("restored"));

        let mut old = Follower::new(0, MEMORY, now());
        log.feed(&mut old, false);
        old.fold(None, Instant::now(), decode);
        assert_eq!(old.handover(claim), Handover::Passed, "an old claim keeps no state");

        let mut expired = Follower::new(0, MEMORY, now());
        log.feed(&mut expired, true);
        let folded_at = Instant::now();
        expired.fold(None, folded_at, decode);
        expired.expire(folded_at + Duration::from_secs(60), Duration::from_secs(30));
        assert_eq!(expired.handover(claim), Handover::Passed, "kept only for a while");
    }

    #[test]
    fn a_registry_outage_holds_the_fold_back_and_skips_nothing() {
        let mut log = Log::history();
        let mut follower = Follower::new(0, MEMORY, now());
        let start = Instant::now();
        log.feed(&mut follower, false);
        let mut down = |payload: &[u8]| if payload[0] == 6 { Err(unreachable()) } else { decode(payload) };
        assert!(follower.fold(None, start, &mut down).is_some(), "the outage is reported");
        assert!(follower.is_waiting());
        let stuck = follower.folded();
        assert!(
            follower.fold(None, start + FIRST_RETRY / 2, decode).is_none(),
            "no attempt before the pause"
        );
        assert_eq!(follower.folded(), stuck);
        let claim = log.claim();
        log.valid(9);
        log.feed(&mut follower, false);
        assert_eq!(follower.handover(claim), Handover::Wait, "the records before the claim are not folded");
        assert!(follower.fold(None, start + FIRST_RETRY * 2, &mut down).is_some(), "still down");
        assert!(follower.fold(Some(claim), start + MAX_RETRY * 2, decode).is_none(), "back");
        assert!(!follower.is_waiting());
        assert_eq!(follower.handover(claim), Handover::Ready);
        assert_eq!(handed(follower, claim).expect("state"), log.restored(claim).expect("restored"));
    }

    #[test]
    fn an_undecodable_valid_record_stops_the_partition_there() {
        let mut log = Log::history();
        let bad = log.valid(GARBAGE);
        log.valid(1);
        let claim = log.claim();
        let mut follower = Follower::new(0, MEMORY, now());
        log.feed(&mut follower, false);
        follower.fold(None, Instant::now(), decode);
        assert!(follower.is_stopped());
        assert_eq!(follower.folded(), bad, "it stands at the record");
        assert_eq!(follower.handover(claim), Handover::Ready);
        let error = handed(follower, claim).expect_err("stopped");
        assert!(matches!(error, RebuildError::Undecodable { offset, .. } if offset == bad));
        assert!(
            matches!(log.restored(claim), Err(RebuildError::Undecodable { offset, .. }) if offset == bad)
        );
    }
}
