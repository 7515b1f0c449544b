//! Several printers at once (the terminal's table and `-o FORMAT=PATH`
//! files): every call goes to every sink, and one sink's failure, such as a
//! closed pipe or a full disk, does not cost the others their results.

use std::io;

use super::{Event, RunInfo, Sink, Summary};

/// Fans each call out to every inner sink.
///
/// An I/O error from one sink is remembered and that sink is skipped from
/// then on; the others continue. `start` and `event` report an error only
/// when no sink is left to write to, so the engine can stop early (e.g.
/// `sockeye scan ... | head` with no file output). `finish` returns the
/// first error any sink had.
#[derive(Default)]
pub struct MultiSink {
    sinks: Vec<Box<dyn Sink>>,
    /// Parallel to `sinks`: whether that sink has failed.
    failed: Vec<bool>,
    first_error: Option<io::Error>,
}

impl std::fmt::Debug for MultiSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiSink")
            .field("sinks", &self.sinks.len())
            .field("failed", &self.failed)
            .field("first_error", &self.first_error)
            .finish()
    }
}

impl MultiSink {
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        let failed = vec![false; sinks.len()];
        MultiSink {
            sinks,
            failed,
            first_error: None,
        }
    }

    /// Adds a sink; call before `start`.
    pub fn push(&mut self, sink: Box<dyn Sink>) {
        self.sinks.push(sink);
        self.failed.push(false);
    }

    /// Calls `f` on every sink still working, retiring those that fail.
    fn each(&mut self, mut f: impl FnMut(&mut dyn Sink) -> io::Result<()>) {
        for (sink, failed) in self.sinks.iter_mut().zip(self.failed.iter_mut()) {
            if *failed {
                continue;
            }
            if let Err(e) = f(sink.as_mut()) {
                *failed = true;
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// An error when every sink has failed (and there was at least one).
    fn none_left(&self) -> io::Result<()> {
        if !self.failed.is_empty() && self.failed.iter().all(|&f| f) {
            Err(match &self.first_error {
                Some(e) => io::Error::new(e.kind(), e.to_string()),
                None => io::Error::other("every output failed"),
            })
        } else {
            Ok(())
        }
    }
}

impl Sink for MultiSink {
    fn start(&mut self, info: &RunInfo) -> io::Result<()> {
        self.each(|s| s.start(info));
        self.none_left()
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.each(|s| s.event(event));
        self.none_left()
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        self.each(|s| s.finish(summary));
        match self.first_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::report::fixture::{self, Captured};
    use crate::report::{Format, new_sink};

    /// A reader that went away: every write fails as a closed pipe does.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    fn run(multi: &mut MultiSink) -> (io::Result<()>, Vec<io::Result<()>>) {
        let mut results = vec![multi.start(&fixture::run_info())];
        for event in fixture::events("lab.test") {
            results.push(multi.event(&event));
        }
        (multi.finish(&fixture::summary()), results)
    }

    #[test]
    fn a_failing_sink_does_not_stop_the_others() {
        let good = Captured::default();
        let mut multi = MultiSink::new(vec![
            new_sink(Format::Json, Box::new(ClosedPipe), fixture::opts(false)),
            new_sink(Format::Json, Box::new(good.clone()), fixture::opts(false)),
        ]);
        let (finished, results) = run(&mut multi);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let err = finished.expect_err("finish reports the failed sink");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);

        let alone = Captured::default();
        let mut single = new_sink(Format::Json, Box::new(alone.clone()), fixture::opts(false));
        single.start(&fixture::run_info()).expect("start");
        for event in fixture::events("lab.test") {
            single.event(&event).expect("event");
        }
        single.finish(&fixture::summary()).expect("finish");
        assert_eq!(good.text(), alone.text());
    }

    #[test]
    fn when_every_sink_failed_events_report_it() {
        let mut multi = MultiSink::default();
        multi.push(new_sink(
            Format::Json,
            Box::new(ClosedPipe),
            fixture::opts(false),
        ));
        let (finished, results) = run(&mut multi);
        // JSON writes nothing at start, so the first open port fails it.
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().map_err(io::Error::kind),
            Err(io::ErrorKind::BrokenPipe)
        );
        assert_eq!(
            finished.map_err(|e| e.kind()),
            Err(io::ErrorKind::BrokenPipe)
        );
    }

    #[test]
    fn no_sinks_is_fine() {
        let (finished, results) = run(&mut MultiSink::default());
        assert!(finished.is_ok());
        assert!(results.iter().all(Result::is_ok));
    }
}
