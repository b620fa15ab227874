//! The transactional producer of one processor instance and the classification of its
//! errors. librdkafka's transaction calls block, so they run on the processor's own thread.
//!
//! Following librdkafka's guidance: an error that requires an abort is answered with an
//! abort; a fatal error, or a timeout on commit or abort (librdkafka does not implement
//! KIP-890's server-side defence, so the transaction's fate is unknown), means the producer
//! is recreated, which fences its previous incarnation and aborts whatever it left open.

use std::time::Duration;

use holdfast_platform::KafkaArgs;
use holdfast_platform::kafka::transactional_producer_config;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};

/// How long one transaction call may block.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What to do after a failed transaction step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Abort the transaction and carry on with the same producer.
    Abort,
    /// The producer is unusable (fenced, fatal, or a commit/abort of unknown fate): make a new one.
    Recreate,
}

/// Classifies an error of any transaction step.
#[must_use]
pub fn recovery(error: &KafkaError) -> Recovery {
    match error {
        KafkaError::Transaction(e) if e.is_fatal() => Recovery::Recreate,
        KafkaError::Transaction(e) if e.code() == RDKafkaErrorCode::OperationTimedOut => Recovery::Recreate,
        KafkaError::Transaction(e) if e.code() == RDKafkaErrorCode::InvalidProducerEpoch => {
            Recovery::Recreate
        }
        KafkaError::Transaction(e)
            if matches!(e.code(), RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::Fenced) =>
        {
            Recovery::Recreate
        }
        _ => Recovery::Abort,
    }
}

/// Creates a transactional producer and registers it with the transaction coordinator,
/// fencing any previous producer with the same transactional id.
///
/// # Errors
/// When the client cannot be created or the coordinator does not answer.
pub fn create(
    kafka: &KafkaArgs,
    transactional_id: &str,
    transaction_timeout: Duration,
) -> Result<FutureProducer, KafkaError> {
    let producer: FutureProducer =
        transactional_producer_config(kafka, transactional_id, transactional_id, transaction_timeout)
            .create()?;
    producer.init_transactions(Duration::from_secs(30))?;
    Ok(producer)
}

/// Aborts the open transaction; tells whether the producer is still usable.
pub fn abort(producer: &FutureProducer) -> Recovery {
    match producer.abort_transaction(CALL_TIMEOUT) {
        Ok(()) => Recovery::Abort,
        Err(error) => {
            tracing::warn!(%error, "abort failed; recreating the producer");
            Recovery::Recreate
        }
    }
}
