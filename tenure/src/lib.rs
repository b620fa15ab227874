//! The log protocol of Holdfast's single writers, as pure code.
//!
//! Every decision about a resource is appended, once and without a Kafka transaction, to the
//! events partition of its resource by the one instance that owns the partition. Fencing lives
//! in the log itself:
//!
//! - an owner starts a **tenure** by appending a claim record (header `holdfast-claim`) with a
//!   fresh [`Token`], and restores the partition by reading up to its claim;
//! - every record it appends afterwards carries its token (`holdfast-writer`) and a sequence
//!   number (`holdfast-seq`: 0, 1, 2, … since the claim);
//! - the [`ReaderRule`] decides, record by record, which records count: a claim always starts
//!   a new tenure, and a record is valid only if it carries the current tenure's token and the
//!   next sequence number. Everything else is void and skipped by every reader;
//! - the [`Writer`] rule decides when an appended record may be acknowledged to its caller: only
//!   when it is valid under the reader rule, which the writer can tell from the record's offset
//!   and, rarely, from the records in between.
//!
//! This crate owns the rule and its wire marks ([`Mark`], the three headers) and nothing else:
//! no Kafka, no clock, no randomness. Restores, projections, the replay tool, the audit and
//! external consumers all call the same [`ReaderRule::admit`].

mod mark;
mod reader;
mod writer;

pub use mark::{CLAIM_HEADER, Mark, SEQ_HEADER, Token, WRITER_HEADER};
pub use reader::{ReaderRule, Tenure, Verdict, Void};
pub use writer::{Report, Status, Writer};
