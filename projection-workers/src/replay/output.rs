//! Where the CLI's results go: stdout as text or JSON lines, and progress bars on stderr
//! (only on a terminal, and never with `--json`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// The CLI's output.
pub struct Output<'a> {
    out: &'a mut (dyn Write + Send + Sync),
    json: bool,
    bars: bool,
}

impl std::fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").field("json", &self.json).field("bars", &self.bars).finish_non_exhaustive()
    }
}

impl<'a> Output<'a> {
    /// Writes to `out`; JSON when `json`; progress bars when stderr is a terminal and not
    /// `json`.
    pub fn new(out: &'a mut (dyn Write + Send + Sync), json: bool) -> Self {
        let bars = !json && std::io::stderr().is_terminal();
        Self { out, json, bars }
    }

    /// Whether results are JSON.
    #[must_use]
    pub fn json(&self) -> bool {
        self.json
    }

    /// One JSON object on a line of its own.
    ///
    /// # Errors
    /// When the output cannot be written.
    pub fn json_line(&mut self, value: &impl Serialize) -> std::io::Result<()> {
        serde_json::to_writer(&mut *self.out, value)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// A line of text.
    ///
    /// # Errors
    /// When the output cannot be written.
    pub fn line(&mut self, text: &str) -> std::io::Result<()> {
        writeln!(self.out, "{text}")?;
        self.out.flush()
    }

    /// `value` as a JSON line with `--json`, else the text `human` makes.
    ///
    /// # Errors
    /// When the output cannot be written.
    pub fn report<T: Serialize>(
        &mut self,
        value: &T,
        human: impl FnOnce(&T) -> String,
    ) -> std::io::Result<()> {
        if self.json { self.json_line(value) } else { self.line(&human(value)) }
    }

    /// A progress bar of `total` events with rate and ETA (hidden when bars are off).
    #[must_use]
    pub fn bar(&self, total: u64, message: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg:>10} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events {per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A spinner for work without a known size (index builds, the switch).
    #[must_use]
    pub fn spinner(&self, message: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}
