//! Holdfast's load generator (`holdfast-load`), as a library so tests and later tools (the
//! correctness audit, fault injection) drive the same code.
//!
//! The workload is an **open model**: requests start at fixed intended times set by the
//! arrival rate, each as a task of its own, and every latency is measured from the intended
//! start, so a slow service cannot hide its latency by slowing the generator down (no
//! coordinated omission). A request that cannot start because the in-flight limit is reached
//! is counted as dropped, never delayed.
//!
//! - [`cli`]: the flags of a run;
//! - [`schedule`]: intended start times (pure);
//! - [`workload`]: operation mix, Zipf over resources, holds, accepted reservations (pure);
//! - [`client`]: sending a request and classifying the answer;
//! - [`record`], [`summary`], [`progress`], [`output`]: histograms, the report and its files;
//! - [`setup`]: defining the resources before the run;
//! - [`driver`]: the run itself; [`harness`] around it ([`run`]): [`services`], [`fault`]s and
//!   the [`handover`] of the command service's partitions through them, [`baseline`]s, the
//!   [`audit`], the [`report`] and its [`compare`]ison with the baselines;
//! - [`idle`]: CPU of the broker and the services with no load (`holdfast-load idle`).

pub mod audit;
pub mod baseline;
pub mod cli;
pub mod client;
pub mod compare;
pub mod driver;
pub mod fault;
pub mod handover;
pub mod harness;
pub mod idle;
pub mod monitor;
pub mod output;
pub mod plot;
pub mod progress;
pub mod record;
pub mod report;
pub mod schedule;
pub mod services;
pub mod setup;
pub mod stack;
pub mod summary;
pub mod takeover;
pub mod timeline;
pub mod workload;

use std::path::PathBuf;

pub use crate::cli::RunArgs;
pub use crate::driver::Report;
pub use crate::harness::run;
pub use crate::report::RunReport;
pub use crate::summary::Summary;

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The settings do not describe a runnable workload: fix the flags.
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The HTTP client could not be built (TLS initialisation): check the system's TLS library.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// A resource could not be defined: check that the target is a ready command service and
    /// that `--prefix` was not used before with another `--capacity`.
    #[error("cannot define resource {resource}: {reason}")]
    Define {
        /// The resource.
        resource: String,
        /// What the service answered, or why it did not.
        reason: String,
    },
    /// The services could not be started for the run (`--spawn`): see the message.
    #[error("cannot start the services")]
    Stack(#[source] crate::stack::StackError),
    /// A result file could not be written: check `--out`.
    #[error("cannot write {path}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `error` with its causes, `: `-separated.
#[must_use]
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
