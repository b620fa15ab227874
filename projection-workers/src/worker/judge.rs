//! The reader rule applied to a polled batch: every record of an owned partition is judged,
//! in offset order, from the rule as it stood at the partition's stored next offset. Only the
//! headers are read here; what to decode follows from the verdicts.
//!
//! The rules are copies: the worker adopts the rules after the batch only once the batch's
//! positions are committed, so a batch that fails and is read again is judged again from the
//! same state.

use std::collections::HashMap;

use holdfast_platform::headers::RecordHeaders;
use holdfast_tenure::{ReaderRule, Verdict};
use rdkafka::message::{Message, OwnedMessage};

/// A polled record and what the reader rule made of it.
#[derive(Debug)]
pub(super) struct Judged<'a> {
    /// The record.
    pub message: &'a OwnedMessage,
    /// Its verdict.
    pub verdict: Verdict,
}

/// Judges `messages` (each partition's in offset order, as polled) starting from `rules`;
/// returns the verdicts in poll order and the rule of every partition of `rules` after its
/// last record. Records of partitions without a rule are left out (they are not positioned).
pub(super) fn judge<'a>(
    messages: &'a [OwnedMessage],
    rules: &HashMap<i32, ReaderRule>,
) -> (Vec<Judged<'a>>, HashMap<i32, ReaderRule>) {
    let mut after = rules.clone();
    let judged = messages
        .iter()
        .filter_map(|message| {
            let rule = after.get_mut(&message.partition())?;
            let verdict = rule.admit(&RecordHeaders::read(message).mark);
            Some(Judged { message, verdict })
        })
        .collect();
    (judged, after)
}

#[cfg(test)]
mod tests {
    use holdfast_tenure::{Mark, Tenure, Token, Void};
    use rdkafka::Timestamp;
    use uuid::Uuid;

    use super::*;

    fn record(partition: i32, offset: i64, mark: Mark) -> OwnedMessage {
        let headers = RecordHeaders { mark, fingerprint: None }.to_kafka();
        OwnedMessage::new(
            Some(b"x".to_vec()),
            None,
            "events".into(),
            Timestamp::NotAvailable,
            partition,
            offset,
            Some(headers),
        )
    }

    #[test]
    fn each_partition_is_judged_from_its_own_stored_rule() {
        let (a, b) = (Token(Uuid::from_u128(1)), Token(Uuid::from_u128(2)));
        // Partition 0 resumes mid-tenure of `a`; partition 1 starts at its beginning.
        let rules: HashMap<i32, ReaderRule> =
            [(0, ReaderRule::resume(Some(Tenure { token: a, next_seq: 5 }))), (1, ReaderRule::default())]
                .into();
        let polled = [
            record(0, 40, Mark::Data { token: a, seq: 5 }),
            record(1, 0, Mark::Data { token: b, seq: 0 }),
            record(0, 41, Mark::Claim { token: b }),
            record(1, 1, Mark::Claim { token: b }),
            record(0, 42, Mark::Data { token: a, seq: 6 }),
            record(1, 2, Mark::Data { token: b, seq: 0 }),
            record(0, 43, Mark::Data { token: b, seq: 1 }),
            record(2, 7, Mark::Claim { token: a }),
            record(0, 44, Mark::Unmarked),
        ];
        let (judged, after) = judge(&polled, &rules);
        let verdicts: Vec<(i32, i64, Verdict)> =
            judged.iter().map(|j| (j.message.partition(), j.message.offset(), j.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                (0, 40, Verdict::Valid),
                (1, 0, Verdict::Void(Void::NoTenure)),
                (0, 41, Verdict::Claim),
                (1, 1, Verdict::Claim),
                (0, 42, Verdict::Void(Void::OtherWriter)),
                (1, 2, Verdict::Valid),
                (0, 43, Verdict::Void(Void::OutOfSequence { expected: 0, found: 1 })),
                (0, 44, Verdict::Void(Void::Unmarked)),
            ],
            "partition 2 has no rule: not positioned, not judged"
        );
        assert_eq!(after[&0].tenure(), Some(Tenure { token: b, next_seq: 0 }));
        assert_eq!(after[&1].tenure(), Some(Tenure { token: b, next_seq: 1 }));
        assert!(!after.contains_key(&2));
        assert_eq!(
            rules[&0].tenure(),
            Some(Tenure { token: a, next_seq: 5 }),
            "the caller's rules are untouched"
        );
    }
}
