//! The progress bar on stderr: done/total, rate, ETA, open ports so far.
//! Shown only when stderr is a terminal and `-q` was not given.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::scan::Progress;

/// Starts the bar, if stderr is a terminal. Returns it so that stdout
/// writers can suspend it while they print.
pub fn start(progress: Arc<Progress>, quiet: bool, done: CancellationToken) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(
        Some(progress.total.load(Ordering::Relaxed)),
        ProgressDrawTarget::stderr_with_hz(10),
    );
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} probes, {per_sec}, ETA {eta} {msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    let b = bar.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = done.cancelled() => break,
            }
            b.set_length(progress.total.load(Ordering::Relaxed));
            b.set_position(progress.done.load(Ordering::Relaxed));
            let open = progress.open.load(Ordering::Relaxed);
            if open > 0 {
                b.set_message(format!("({open} open)"));
            }
        }
        b.finish_and_clear();
    });
    Some(bar)
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
