//! [`Writer`]: when a writer may acknowledge what it appended.
//!
//! The writer knows the offset of the last record it knows is valid — at first its own claim.
//! A delivery report of its next record at exactly that offset + 1 makes the record valid: no
//! record came in between, so the reader rule sees this tenure's token with the next sequence
//! number. A report further on means other records landed in between; the writer reads them
//! ([`Report::CheckGap`]): if one is a claim, it is fenced; otherwise they are all void (no
//! claim started a tenure after ours, and only we write ours) and its record is valid.
//!
//! A failed or unclear append breaks the tenure: the reader rule may void any later record of
//! it (a hole in the sequence) or count the unclear one after all, so nothing more is
//! acknowledged and the writer must claim again and restore before it decides anything else.

use crate::mark::{Mark, Token};

/// Where a tenure stands for its writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every record reported so far was valid; later ones may be acknowledged.
    Acknowledging,
    /// An append failed, its outcome is unclear, or reports came out of order: acknowledge
    /// nothing more, claim again.
    Broken,
    /// Another claim came after ours: stop writing, drop the partition and its state.
    Fenced,
}

/// What a delivery report (or a gap check) means for the record and its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The record is valid: answer its caller.
    Valid,
    /// Read the records at offsets `from..to` (up to the reported record) and pass their marks
    /// to [`Writer::gap`]. No further report may be passed in until then.
    CheckGap {
        /// First offset after the last record known valid.
        from: i64,
        /// The reported record's offset.
        to: i64,
    },
    /// See [`Status::Broken`]: answer nobody, claim again.
    Broken,
    /// See [`Status::Fenced`]: answer nobody, drop the partition.
    Fenced,
}

/// The acknowledge rule of one tenure. Feed it the delivery report of every record the tenure
/// appended, in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    token: Token,
    last_valid: i64,
    sent: u64,
    reported: u64,
    gap: Option<(u64, i64)>,
    status: Status,
}

impl Writer {
    /// The tenure whose claim was appended at `claim_offset` with `token`.
    #[must_use]
    pub fn new(token: Token, claim_offset: i64) -> Self {
        Self {
            token,
            last_valid: claim_offset,
            sent: 0,
            reported: 0,
            gap: None,
            status: Status::Acknowledging,
        }
    }

    /// The tenure's token.
    #[must_use]
    pub fn token(&self) -> Token {
        self.token
    }

    /// Offset of the last record known valid (the claim's before any report).
    #[must_use]
    pub fn last_valid(&self) -> i64 {
        self.last_valid
    }

    /// Where the tenure stands.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status
    }

    /// Records sent whose report has not been taken yet.
    #[must_use]
    pub fn unreported(&self) -> u64 {
        self.sent - self.reported
    }

    /// The sequence number the next record will get.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.sent
    }

    /// The mark of the next record to append (and counts it as sent).
    pub fn next_mark(&mut self) -> Mark {
        let mark = Mark::Data { token: self.token, seq: self.sent };
        self.sent += 1;
        mark
    }

    /// The delivery report of record `seq`: appended at `offset`, or `None` when the append
    /// failed or its outcome is unknown.
    pub fn delivered(&mut self, seq: u64, offset: Option<i64>) -> Report {
        if self.status != Status::Acknowledging {
            return self.settled();
        }
        if self.gap.is_some() || seq != self.reported || seq >= self.sent {
            return self.break_off();
        }
        let Some(offset) = offset else { return self.break_off() };
        if offset == self.last_valid + 1 {
            self.accept(offset)
        } else if offset > self.last_valid + 1 {
            self.gap = Some((seq, offset));
            Report::CheckGap { from: self.last_valid + 1, to: offset }
        } else {
            // At or before a record already known valid: the broker's offsets make no sense.
            self.break_off()
        }
    }

    /// The marks of the records between the last valid one and record `seq` at `offset`,
    /// answering a [`Report::CheckGap`].
    pub fn gap(&mut self, seq: u64, offset: i64, marks: &[Mark]) -> Report {
        if self.status != Status::Acknowledging {
            return self.settled();
        }
        if self.gap.take() != Some((seq, offset)) {
            return self.break_off();
        }
        if marks.iter().any(|m| matches!(m, Mark::Claim { .. })) {
            self.status = Status::Fenced;
            return Report::Fenced;
        }
        if marks.iter().any(|m| matches!(m, Mark::Data { token, .. } if *token == self.token)) {
            // Only this writer appends with its token, and its records land in order: one of
            // ours in the gap means reports and the log disagree.
            return self.break_off();
        }
        self.accept(offset)
    }

    fn accept(&mut self, offset: i64) -> Report {
        self.last_valid = offset;
        self.reported += 1;
        Report::Valid
    }

    fn break_off(&mut self) -> Report {
        self.status = Status::Broken;
        Report::Broken
    }

    fn settled(&self) -> Report {
        match self.status {
            Status::Fenced => Report::Fenced,
            _ => Report::Broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn token(n: u128) -> Token {
        Token(Uuid::from_u128(n))
    }

    #[test]
    fn records_right_after_the_last_valid_one_are_valid() {
        let mut writer = Writer::new(token(1), 10);
        assert_eq!(writer.next_mark(), Mark::Data { token: token(1), seq: 0 });
        assert_eq!(writer.next_mark(), Mark::Data { token: token(1), seq: 1 });
        assert_eq!(writer.delivered(0, Some(11)), Report::Valid);
        assert_eq!(writer.delivered(1, Some(12)), Report::Valid);
        assert_eq!(
            (writer.last_valid(), writer.unreported(), writer.status()),
            (12, 0, Status::Acknowledging)
        );
    }

    #[test]
    fn a_gap_of_void_records_is_read_and_passed() {
        let mut writer = Writer::new(token(1), 10);
        writer.next_mark();
        assert_eq!(writer.delivered(0, Some(14)), Report::CheckGap { from: 11, to: 14 });
        let zombie = Mark::Data { token: token(9), seq: 5 };
        assert_eq!(writer.gap(0, 14, &[zombie, Mark::Unmarked, zombie]), Report::Valid);
        assert_eq!(writer.last_valid(), 14);
    }

    #[test]
    fn a_claim_in_the_gap_fences_the_writer_for_good() {
        let mut writer = Writer::new(token(1), 10);
        writer.next_mark();
        writer.next_mark();
        assert_eq!(writer.delivered(0, Some(12)), Report::CheckGap { from: 11, to: 12 });
        assert_eq!(writer.gap(0, 12, &[Mark::Claim { token: token(2) }]), Report::Fenced);
        assert_eq!(writer.delivered(1, Some(13)), Report::Fenced, "nothing after it either");
        assert_eq!(writer.status(), Status::Fenced);
    }

    #[test]
    fn after_a_failed_append_nothing_is_acknowledged() {
        let mut writer = Writer::new(token(1), 10);
        for _ in 0..3 {
            writer.next_mark();
        }
        assert_eq!(writer.delivered(0, Some(11)), Report::Valid);
        assert_eq!(writer.delivered(1, None), Report::Broken);
        assert_eq!(writer.delivered(2, Some(12)), Report::Broken, "lands where expected, still void");
        assert_eq!(writer.last_valid(), 11);
    }

    #[test]
    fn reports_out_of_order_or_against_the_log_break_the_tenure() {
        let mut writer = Writer::new(token(1), 10);
        writer.next_mark();
        writer.next_mark();
        assert_eq!(writer.delivered(1, Some(11)), Report::Broken, "seq 1 reported before seq 0");

        let mut writer = Writer::new(token(1), 10);
        writer.next_mark();
        assert_eq!(writer.delivered(0, Some(10)), Report::Broken, "at the claim's own offset");

        let mut writer = Writer::new(token(1), 10);
        writer.next_mark();
        assert_eq!(writer.delivered(1, Some(11)), Report::Broken, "never sent");

        let mut writer = Writer::new(token(1), 10);
        writer.next_mark();
        writer.next_mark();
        assert_eq!(writer.delivered(0, Some(13)), Report::CheckGap { from: 11, to: 13 });
        assert_eq!(writer.delivered(1, Some(14)), Report::Broken, "a report while a gap is open");

        let mut writer = Writer::new(token(1), 10);
        writer.next_mark();
        assert_eq!(writer.delivered(0, Some(12)), Report::CheckGap { from: 11, to: 12 });
        let ours = Mark::Data { token: token(1), seq: 0 };
        assert_eq!(writer.gap(0, 12, &[ours]), Report::Broken, "our own record in the gap");
    }
}
