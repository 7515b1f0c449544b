//! The progress bar on stderr: probes sent/total, rate, ports decided, open
//! ports so far, ETA.
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
        "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} probes sent, {msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Updates `bar` from the engine's counters ten times a second until
/// `done`. The bar moves as probes are sent, not only as ports are
/// decided, so a scan whose probes are all dropped still moves.
pub fn drive(bar: ProgressBar, progress: Arc<Progress>, done: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = done.cancelled() => break,
            }
            let total = progress.total.load(Ordering::Relaxed);
            let sent = progress.sent.load(Ordering::Relaxed);
            let decided = progress.done.load(Ordering::Relaxed);
            bar.set_length(total);
            bar.set_position(sent);
            let elapsed = bar.elapsed();
            let rate = sent as f64 / elapsed.as_secs_f64().max(1e-3);
            let open = progress.open.load(Ordering::Relaxed);
            let eta = eta(total, sent, decided, elapsed)
                .map_or_else(|| "?".to_owned(), crate::net::secs_text);
            bar.set_message(format!(
                "{rate:.0}/s, {decided} decided, {open} open, ETA {eta}"
            ));
        }
        bar.finish_and_clear();
    });
}

/// Time left: the slower of sending what is left at the sending rate so
/// far and deciding what is left at the deciding rate so far. Unknown
/// until a port has been decided (an answer may never come, and how long
/// that takes is the timeouts', not the sending rate's).
fn eta(total: u64, sent: u64, decided: u64, elapsed: Duration) -> Option<Duration> {
    let secs = elapsed.as_secs_f64();
    if decided == 0 || sent == 0 || secs <= 0.0 {
        return None;
    }
    let left = |done: u64| total.saturating_sub(done) as f64 * secs / done as f64;
    Some(Duration::from_secs_f64(left(sent).max(left(decided))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_waits_for_the_slower_of_sending_and_deciding() {
        let s = Duration::from_secs;
        // Everything sent in 1 s, nothing decided yet: unknown, not 0.
        assert_eq!(eta(100, 100, 0, s(1)), None);
        // All sent, a quarter decided in 2 s: 6 s more, not 0.
        assert_eq!(eta(100, 100, 25, s(2)), Some(s(6)));
        // Sending is the slower: half sent in 5 s.
        assert_eq!(eta(100, 50, 50, s(5)), Some(s(5)));
    }
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
