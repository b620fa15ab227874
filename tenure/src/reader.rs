//! [`ReaderRule`]: which records of a partition count.
//!
//! ```text
//! per partition: tenure = None
//! claim(token)        -> tenure = (token, next_seq = 0)      a claim always takes over
//! record(token, seq)  -> valid iff tenure == (token, seq); if valid: next_seq += 1
//!                        otherwise the record is void: skipped, counted
//! ```
//!
//! A tenure's valid records are therefore an unbroken run right after its claim: once one of
//! its records is missing (lost, or appended out of order after a failure), every later record
//! of the tenure is void too, because `next_seq` never reaches them.

use crate::mark::{Mark, Token};

/// The current tenure of a partition: whose records count, and which sequence number is next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tenure {
    /// Token of the claim that started it.
    pub token: Token,
    /// Sequence number the next valid record must carry.
    pub next_seq: u64,
}

/// What the rule made of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// A claim: a new tenure started. Not data; skip it (or read its owner from its body).
    Claim,
    /// A valid record: apply it.
    Valid,
    /// A void record: skip it, and count it.
    Void(Void),
}

/// Why a record is void.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Void {
    /// It carries no (or malformed) tenure headers.
    Unmarked,
    /// No claim came before it in the partition.
    NoTenure,
    /// Its token is not the current tenure's: a fenced writer (a zombie) appended it.
    OtherWriter,
    /// It carries the current token but not the next sequence number: an earlier record of
    /// the tenure is missing, so nothing after the hole counts.
    OutOfSequence {
        /// The sequence number the tenure expected.
        expected: u64,
        /// The one the record carries.
        found: u64,
    },
}

impl Void {
    /// A short, stable label for metrics and reports.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Unmarked => "unmarked",
            Self::NoTenure => "no-tenure",
            Self::OtherWriter => "other-writer",
            Self::OutOfSequence { .. } => "out-of-sequence",
        }
    }
}

/// The reader rule's state for one partition. Start with [`ReaderRule::default`] at the
/// partition's first offset, or [`ReaderRule::resume`] with a tenure stored beside an offset,
/// and feed it every record in offset order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ReaderRule {
    tenure: Option<Tenure>,
}

impl ReaderRule {
    /// The rule as it stood after the records before a stored offset.
    #[must_use]
    pub fn resume(tenure: Option<Tenure>) -> Self {
        Self { tenure }
    }

    /// The current tenure, to store beside the next offset.
    #[must_use]
    pub fn tenure(&self) -> Option<Tenure> {
        self.tenure
    }

    /// Judges the next record of the partition and moves the rule past it.
    pub fn admit(&mut self, mark: &Mark) -> Verdict {
        match (*mark, &mut self.tenure) {
            (Mark::Claim { token }, tenure) => {
                *tenure = Some(Tenure { token, next_seq: 0 });
                Verdict::Claim
            }
            (Mark::Unmarked, _) => Verdict::Void(Void::Unmarked),
            (Mark::Data { .. }, None) => Verdict::Void(Void::NoTenure),
            (Mark::Data { token, seq }, Some(tenure)) => {
                if token != tenure.token {
                    Verdict::Void(Void::OtherWriter)
                } else if seq != tenure.next_seq {
                    Verdict::Void(Void::OutOfSequence { expected: tenure.next_seq, found: seq })
                } else {
                    tenure.next_seq += 1;
                    Verdict::Valid
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;

    fn token(n: u128) -> Token {
        Token(Uuid::from_u128(n))
    }

    fn data(n: u128, seq: u64) -> Mark {
        Mark::Data { token: token(n), seq }
    }

    fn claim(n: u128) -> Mark {
        Mark::Claim { token: token(n) }
    }

    fn verdicts(marks: &[Mark]) -> Vec<Verdict> {
        let mut rule = ReaderRule::default();
        marks.iter().map(|m| rule.admit(m)).collect()
    }

    #[test]
    fn a_claim_takes_over_and_voids_the_previous_writer() {
        use Verdict::{Claim, Valid, Void as V};
        let log =
            [data(1, 0), claim(1), data(1, 0), data(1, 1), claim(2), data(1, 2), data(2, 0), Mark::Unmarked];
        assert_eq!(
            verdicts(&log),
            [V(Void::NoTenure), Claim, Valid, Valid, Claim, V(Void::OtherWriter), Valid, V(Void::Unmarked)]
        );
    }

    #[test]
    fn a_hole_in_the_sequence_voids_the_rest_of_the_tenure() {
        use Verdict::{Claim, Valid, Void as V};
        let log = [claim(1), data(1, 0), data(1, 2), data(1, 3), data(1, 1), data(1, 2)];
        assert_eq!(
            verdicts(&log),
            [
                Claim,
                Valid,
                V(Void::OutOfSequence { expected: 1, found: 2 }),
                V(Void::OutOfSequence { expected: 1, found: 3 }),
                Valid,
                Valid,
            ]
        );
    }

    #[test]
    fn a_claim_repeated_with_the_same_token_restarts_its_sequence() {
        use Verdict::{Claim, Valid, Void as V};
        let log = [claim(1), data(1, 0), claim(1), data(1, 1), data(1, 0)];
        assert_eq!(
            verdicts(&log),
            [Claim, Valid, Claim, V(Void::OutOfSequence { expected: 0, found: 1 }), Valid]
        );
    }

    fn any_mark() -> impl Strategy<Value = Mark> {
        prop_oneof![
            (0..3_u128).prop_map(claim),
            ((0..3_u128), (0..4_u64)).prop_map(|(t, s)| data(t, s)),
            Just(Mark::Unmarked),
        ]
    }

    proptest! {
        /// Resuming from a stored tenure gives the same verdicts as reading from the start.
        #[test]
        fn resuming_from_a_stored_tenure_changes_nothing(log in prop::collection::vec(any_mark(), 0..40), cut in 0_usize..40) {
            let cut = cut.min(log.len());
            let whole = verdicts(&log);
            let mut head = ReaderRule::default();
            for mark in &log[..cut] {
                head.admit(mark);
            }
            let mut tail = ReaderRule::resume(head.tenure());
            let resumed: Vec<Verdict> = log[cut..].iter().map(|m| tail.admit(m)).collect();
            prop_assert_eq!(&whole[cut..], resumed.as_slice());
        }

        /// The valid records after each claim are exactly that claim's token with 0, 1, 2, …
        /// and nothing valid ever precedes the first claim.
        #[test]
        fn valid_records_are_an_unbroken_run_after_their_claim(log in prop::collection::vec(any_mark(), 0..60)) {
            let mut current: Option<(Token, u64)> = None;
            for (mark, verdict) in log.iter().zip(verdicts(&log)) {
                match (mark, verdict) {
                    (Mark::Claim { token }, Verdict::Claim) => current = Some((*token, 0)),
                    (Mark::Data { token, seq }, Verdict::Valid) => {
                        let (tenure, next) = current.as_mut().expect("a valid record follows a claim");
                        prop_assert_eq!((*token, *seq), (*tenure, *next));
                        *next += 1;
                    }
                    (_, Verdict::Void(_)) => {}
                    (mark, verdict) => prop_assert!(false, "{mark:?} judged {verdict:?}"),
                }
            }
        }
    }
}
