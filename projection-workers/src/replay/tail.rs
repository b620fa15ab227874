//! `tail`: follow the log live, judged by the reader rule and decoded, as JSON lines
//! ([`super::lines`]), until Ctrl-C. A reader thread polls every partition from its end (or
//! its beginning) and hands lines to the async side, which writes them.
//!
//! The reader rule needs its state at the first record read, which a tail starting at the
//! end does not have: the claim that started a partition's current tenure may be anywhere
//! before. Reading every partition from its beginning to find out would make `tail` as slow to
//! start as a restore of the whole topic, which is not what one runs `tail` for. So, from the
//! end, each partition is judged from its next claim on; records before it are printed with
//! `"verdict":"unjudged"` (unmarked ones are void whatever the tenure and say so), and the
//! first line says so. `--from-beginning` judges every record. Another topic (`--topic`, e.g.
//! the dead letters, which keep their source's headers) is printed without the rule.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use holdfast_platform::Shutdown;
use holdfast_platform::codec::{EventCodec, LogRecord};
use holdfast_platform::headers::RecordHeaders;
use holdfast_platform::kafka::reader_config;
use holdfast_tenure::{Mark, ReaderRule, Verdict as RuleVerdict};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::config::TailArgs;
use super::lines::{Body, RecordLine, Undecodable, Verdict};
use super::{Context, Outcome, Output, ReplayError};

/// The first line of a tail that starts at the end of the events topic.
pub const UNJUDGED_NOTICE: &str = "started at the end of the log: the reader rule's state is unknown until each \
     partition's next claim, so records before it are printed as unjudged; run with --from-beginning to judge \
     every record";

/// A notice about the lines that follow.
#[derive(Debug, Clone, Serialize)]
struct Notice {
    notice: &'static str,
}

/// How the reader thread judges records.
#[derive(Debug)]
enum Judge {
    /// Not the events topic: every record is printed as valid.
    None,
    /// Per partition: the rule, once known (from the beginning, or from a claim on).
    Rule(HashMap<i32, ReaderRule>),
}

impl Judge {
    /// The verdict on the next record of `partition`, which carries `mark`.
    fn verdict(&mut self, partition: i32, mark: &Mark) -> Judged {
        let Self::Rule(rules) = self else { return Judged::Valid };
        match rules.get_mut(&partition) {
            Some(rule) => match rule.admit(mark) {
                RuleVerdict::Valid => Judged::Valid,
                RuleVerdict::Claim => Judged::Claim,
                RuleVerdict::Void(why) => Judged::Void(why),
            },
            None => match mark {
                Mark::Claim { .. } => {
                    let mut rule = ReaderRule::default();
                    rule.admit(mark);
                    rules.insert(partition, rule);
                    Judged::Claim
                }
                Mark::Unmarked => Judged::Void(holdfast_tenure::Void::Unmarked),
                Mark::Data { .. } => Judged::Unjudged,
            },
        }
    }
}

/// What the rule made of a record.
#[derive(Debug, Clone, Copy)]
enum Judged {
    Valid,
    Unjudged,
    Claim,
    Void(holdfast_tenure::Void),
}

/// Follows the log until `shutdown` is cancelled.
///
/// # Errors
/// When Kafka fails or the output cannot be written.
pub async fn run(
    context: &Context,
    args: &TailArgs,
    output: &mut Output<'_>,
    shutdown: &Shutdown,
) -> Result<Outcome, ReplayError> {
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<RecordLine>(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let config = reader_config(&context.log.kafka, &format!("holdfast-replay-tail-{}", std::process::id()));
    let topic = match &args.topic {
        Some(name) => format!("{}{name}", context.config.topics.topic_prefix),
        None => context.log.topic.clone(),
    };
    let judge = if topic == context.log.topic {
        if !args.from_beginning {
            output.json_line(&Notice { notice: UNJUDGED_NOTICE })?;
        }
        Judge::Rule(HashMap::new())
    } else {
        Judge::None
    };
    let start = if args.from_beginning { Offset::Beginning } else { Offset::End };
    let include_void = args.include_void;
    let codec = Arc::clone(&context.log.codec);
    let runtime = tokio::runtime::Handle::current();
    let reading = {
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || -> Result<(), KafkaError> {
            let mut judge = judge;
            let mut config = config;
            config.set("enable.partition.eof", "false");
            let consumer: BaseConsumer = config.create()?;
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
            let mut assignment = TopicPartitionList::new();
            for p in 0..i32::try_from(partitions).unwrap_or(0) {
                assignment.add_partition_offset(&topic, p, start)?;
                if start == Offset::Beginning
                    && let Judge::Rule(rules) = &mut judge
                {
                    rules.insert(p, ReaderRule::default());
                }
            }
            consumer.assign(&assignment)?;
            while !stop.load(Ordering::Relaxed) {
                let Some(polled) = consumer.poll(Duration::from_millis(100)) else { continue };
                let message = polled?;
                let Some(line) = line_of(&message, &mut judge, include_void, &codec, &runtime) else {
                    continue;
                };
                if lines_tx.blocking_send(line).is_err() {
                    break;
                }
            }
            Ok(())
        })
    };
    tracing::info!("tailing the log; Ctrl-C to stop");
    let mut written: u64 = 0;
    loop {
        let line = tokio::select! {
            () = shutdown.cancelled() => break,
            line = lines.recv() => line,
        };
        let Some(line) = line else { break };
        output.json_line(&line)?;
        written += 1;
    }
    stop.store(true, Ordering::Relaxed);
    drop(lines);
    reading.await.map_err(|_| KafkaError::Canceled)??;
    tracing::info!(lines = written, "tail stopped");
    Ok(Outcome::Done)
}

/// The line to print for `message`, if any.
fn line_of(
    message: &BorrowedMessage<'_>,
    judge: &mut Judge,
    include_void: bool,
    codec: &EventCodec,
    runtime: &tokio::runtime::Handle,
) -> Option<RecordLine> {
    let (partition, offset) = (message.partition(), message.offset());
    let headers = RecordHeaders::read(message);
    let verdict = match judge.verdict(partition, &headers.mark) {
        Judged::Claim => {
            let Mark::Claim { token } = headers.mark else { return None };
            return include_void.then(|| RecordLine::claim(partition, offset, token));
        }
        Judged::Void(why) => return include_void.then(|| RecordLine::void(partition, offset, why)),
        Judged::Valid => Verdict::Valid,
        Judged::Unjudged => Verdict::Unjudged,
    };
    let payload = message.payload().unwrap_or_default();
    let decoded =
        codec.decode_record_cached(payload).unwrap_or_else(|| runtime.block_on(codec.decode_record(payload)));
    let body = match decoded {
        Ok(LogRecord::Event(event)) => Body::Event(Box::new(event)),
        Ok(LogRecord::Rejected(rejected)) => Body::Rejected(Box::new((&rejected).into())),
        Ok(LogRecord::Claim(_)) => Body::Undecodable(Undecodable {
            error: "a claim's body under writer headers".to_owned(),
            headers: headers_of(message),
        }),
        Err(error) => {
            Body::Undecodable(Undecodable { error: error.to_string(), headers: headers_of(message) })
        }
    };
    Some(RecordLine { partition, offset, verdict, body })
}

/// A record's headers as text.
fn headers_of(message: &BorrowedMessage<'_>) -> BTreeMap<String, String> {
    use rdkafka::message::Headers;
    message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use holdfast_tenure::{Token, Void};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn from_the_end_a_partition_is_judged_from_its_next_claim_on() {
        let (a, b) = (Token(Uuid::from_u128(1)), Token(Uuid::from_u128(2)));
        let mut judge = Judge::Rule(HashMap::new());
        let seen: Vec<String> = [
            (0, Mark::Data { token: a, seq: 7 }),
            (0, Mark::Unmarked),
            (0, Mark::Claim { token: b }),
            (0, Mark::Data { token: a, seq: 8 }),
            (0, Mark::Data { token: b, seq: 0 }),
            (1, Mark::Data { token: b, seq: 3 }),
        ]
        .into_iter()
        .map(|(p, mark)| format!("{:?}", judge.verdict(p, &mark)))
        .collect();
        assert_eq!(
            seen,
            [
                "Unjudged",
                "Void(Unmarked)",
                "Claim",
                &format!("{:?}", Judged::Void(Void::OtherWriter)),
                "Valid",
                "Unjudged"
            ]
        );
    }
}
