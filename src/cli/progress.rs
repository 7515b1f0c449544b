//! The progress bar on stderr: done/total, rate, ETA, open ports so far.
//! Shown only when stderr is a terminal and `-q` was not given.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::scan::Progress;

/// A bar on stderr, if stderr is a terminal and `-q` was not given.
pub fn new_bar(quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} probes, {msg}ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Updates `bar` from the engine's counters ten times a second until `done`.
pub fn drive(bar: ProgressBar, progress: Arc<Progress>, done: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = done.cancelled() => break,
            }
            let done = progress.done.load(Ordering::Relaxed);
            bar.set_length(progress.total.load(Ordering::Relaxed));
            bar.set_position(done);
            let rate = done as f64 / bar.elapsed().as_secs_f64().max(1e-3);
            let open = progress.open.load(Ordering::Relaxed);
            bar.set_message(format!("{rate:.0}/s, {open} open, "));
        }
        bar.finish_and_clear();
    });
}

/// A writer that hides the progress bar while it writes, so that results
/// printed on the same terminal are not torn by the bar's redraws.
#[derive(Debug)]
pub struct Suspending<W> {
    pub bar: Option<ProgressBar>,
    pub inner: W,
}

impl<W: Write> Write for Suspending<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.bar {
            Some(bar) if !bar.is_finished() => bar.suspend(|| self.inner.write(buf)),
            _ => self.inner.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &self.bar {
            Some(bar) if !bar.is_finished() => bar.suspend(|| self.inner.flush()),
            _ => self.inner.flush(),
        }
    }
}
