//! The run harness every subcommand shares: the async runtime, the one
//! signal policy (a task on that runtime: the first Ctrl-C or SIGTERM
//! cancels the run's token, the second exits 130 at once), the printer
//! thread that reads an engine's events and writes them, and the mapping of
//! a command's outcome to its exit status.
//!
//! Commands validate their flags into an engine's config, then call these
//! instead of each building a runtime and catching signals its own way.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use indicatif::ProgressBar;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{UsageError, exit, progress};
use crate::report::{Emit, Event, MultiSink, RunInfo, Sink, Summary};
use crate::scan::Progress;

/// The command line as typed, for the printers' headers (nmap XML's
/// `args`, the grepable format's first line).
pub(crate) fn command_line() -> String {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Which runtime a command runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Threads {
    /// One thread: a single conversation (mail, talk).
    One,
    /// A worker per core, or this many.
    Many(Option<usize>),
}

/// The async runtime of a command. Dropped, it does not wait for blocking
/// tasks still running (a name lookup the command gave up on): the signal
/// task is gone by then, and a second Ctrl-C must not meet a process that
/// waits for nothing the user wants.
#[derive(Debug)]
pub(crate) struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    /// Runs `future` to its end on this runtime (see [`tokio::runtime::Runtime::block_on`]).
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match &self.0 {
            Some(rt) => rt.block_on(future),
            None => unreachable!("the runtime is only taken when dropped"),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The async runtime of a command.
pub(crate) fn runtime(threads: Threads) -> anyhow::Result<Runtime> {
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::Many(workers) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = workers {
                b.worker_threads(n);
            }
            b
        }
    };
    builder
        .enable_all()
        .build()
        .map(|rt| Runtime(Some(rt)))
        .context("cannot start the async runtime")
}

/// What the first signal says on stderr before the command winds down.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Notice {
    /// A run that writes what it found so far (scan, probe, fuzz, exercise).
    Results,
    /// A server that finishes the requests in flight (calc serve).
    Shutdown,
    /// Nothing: the command stops at once and says so itself (mail, talk).
    Silent,
}

/// First Ctrl-C (or SIGTERM): `cancel` fires and the command wraps up.
/// Second: leave now, with status 130.
///
/// Called from inside the command's runtime, before its work starts: both
/// signals are registered before this returns (a handler installed later
/// would leave a window in which Ctrl-C kills the process without its
/// summary: a test caught it), and the policy is a task of that runtime.
/// That is safe because no command prints on a runtime thread: output goes
/// through the printer thread ([`print_on_thread`]), or is written from
/// `block_on`'s own thread while a multi-threaded runtime's workers run this
/// task. A current-thread runtime (mail, talk) runs it whenever the command
/// awaits, and those commands await their printer rather than write.
pub(crate) fn cancel_on_signals(cancel: CancellationToken, notice: Notice) {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(%err, "no signal handler: Ctrl-C will stop sockeye without a summary");
            return;
        }
    };
    let terminate = signal(SignalKind::terminate()).ok();
    tokio::spawn(handle_signals(cancel, notice, interrupt, terminate));
}

async fn handle_signals(
    cancel: CancellationToken,
    notice: Notice,
    mut interrupt: tokio::signal::unix::Signal,
    mut terminate: Option<tokio::signal::unix::Signal>,
) {
    let term = async {
        match terminate.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term => {}
    }
    match notice {
        Notice::Results => tracing::warn!(
            "interrupted: finishing probes in flight and writing results (Ctrl-C again to quit now)"
        ),
        Notice::Shutdown => tracing::info!("shutting down: finishing requests in flight"),
        Notice::Silent => {}
    }
    cancel.cancel();
    interrupt.recv().await;
    std::process::exit(i32::from(exit::INTERRUPTED));
}

/// A command's printers, fed on a thread of their own: a blocked stdout (a
/// pipe nobody reads) then slows the engine through its full queue but
/// never holds a runtime thread, so the runtime's tasks (the signal
/// handler among them) keep running.
pub(crate) trait Print: Send + 'static {
    type Event: Send + 'static;
    /// Prints one event. An error means no output is left: the run is
    /// cancelled and the rest of the events are not read.
    fn event(&mut self, event: Self::Event) -> io::Result<()>;
}

/// What runs on the printer thread once the last event is printed.
type End<P> = Box<dyn FnOnce(P, bool) + Send>;

/// The printer thread of a run.
pub(crate) struct Printing<P> {
    end: oneshot::Sender<End<P>>,
    thread: JoinHandle<()>,
}

impl<P> std::fmt::Debug for Printing<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printing").finish_non_exhaustive()
    }
}

/// Starts `printer` on the printer thread. The engine sends its events into
/// the returned [`Emit`]; `queue` of them may wait there, so that a slow
/// printer slows the run rather than growing memory. When the printer
/// fails (every output gone), `cancel` fires and the engine's sends fail.
pub(crate) fn print_on_thread<P: Print>(
    printer: P,
    queue: usize,
    cancel: &CancellationToken,
) -> anyhow::Result<(Emit<P::Event>, Printing<P>)> {
    let (emit, rx) = Emit::channel(queue);
    let (end, end_rx) = oneshot::channel::<End<P>>();
    let cancel = cancel.clone();
    // A runtime of its own, without I/O or timers: it only waits for the
    // next event or for the end, whichever comes first.
    let waiter = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("cannot start the printer thread")?;
    let thread = std::thread::Builder::new()
        .name("sockeye-printer".into())
        .spawn(move || waiter.block_on(print_events(printer, rx, end_rx, cancel)))
        .context("cannot start the printer thread")?;
    Ok((emit, Printing { end, thread }))
}

/// The printer thread's loop: every event until the senders are gone or
/// the command says it is done ([`Printing::finish`]), then the end.
async fn print_events<P: Print>(
    mut printer: P,
    mut rx: tokio::sync::mpsc::Receiver<P::Event>,
    mut end_rx: oneshot::Receiver<End<P>>,
    cancel: CancellationToken,
) {
    let mut gone = false;
    let mut end = None;
    loop {
        tokio::select! {
            biased;
            event = rx.recv() => match event {
                Some(event) => {
                    if printer.event(event).is_err() {
                        cancel.cancel();
                        gone = true;
                        break;
                    }
                }
                None => break,
            },
            // The command is done while a task of its engine may still hold
            // a sender (a relay's standard input, blocked in a read that
            // cannot be cancelled): what was sent is printed, later sends fail.
            done = &mut end_rx => {
                end = Some(done);
                rx.close();
                while let Some(event) = rx.recv().await {
                    if printer.event(event).is_err() {
                        gone = true;
                        break;
                    }
                }
                break;
            }
        }
    }
    drop(rx);
    let end = match end {
        Some(end) => end,
        None => end_rx.await,
    };
    // An error: the command ended without a summary.
    if let Ok(end) = end {
        end(printer, gone);
    }
}

impl<P: Print> Printing<P> {
    /// Once the engine is done: every event sent so far is printed (later
    /// sends fail with [`crate::report::Stopped`]), then `end(printer,
    /// outputs_gone)` runs on the printer thread (the summary), awaited
    /// without holding the runtime's thread.
    pub(crate) async fn finish<R: Send + 'static>(
        self,
        end: impl FnOnce(P, bool) -> R + Send + 'static,
    ) -> anyhow::Result<R> {
        let panicked = || anyhow::anyhow!("the printer thread panicked");
        let (done, result) = oneshot::channel();
        self.end
            .send(Box::new(move |printer, gone| {
                let _ = done.send(end(printer, gone));
            }))
            .map_err(|_| panicked())?;
        let r = result.await.map_err(|_| panicked())?;
        // It has nothing left to do but return.
        self.thread.join().map_err(|_| panicked())?;
        Ok(r)
    }
}

/// The printer of a command whose engine emits nothing while it runs.
struct NoEvents;

impl Print for NoEvents {
    type Event = std::convert::Infallible;
    fn event(&mut self, event: Self::Event) -> io::Result<()> {
        match event {}
    }
}

/// Writes a command's output in one go, from the report its engine
/// returned (talk, a fuzz replay), on the printer thread (see [`Print`]).
pub(crate) async fn print_report<R: Send + 'static>(
    write: impl FnOnce() -> R + Send + 'static,
) -> anyhow::Result<R> {
    let (emit, printing) = print_on_thread(NoEvents, 1, &CancellationToken::new())?;
    drop(emit);
    printing.finish(move |_, _| write()).await
}

impl Print for MultiSink {
    type Event = Event;
    fn event(&mut self, event: Event) -> io::Result<()> {
        // MultiSink keeps going with the sinks that still work and errs
        // only once none is left.
        Sink::event(self, &event)
    }
}

/// The sinks of a scan or a probe on the printer thread, and the progress bar.
#[derive(Debug)]
pub(crate) struct Printer {
    printing: Printing<MultiSink>,
    bar: Option<ProgressBar>,
    progress_done: CancellationToken,
}

/// Starts the progress bar (if any) and the printers: `sink.start(info)`
/// is written at once, then every event sent on the returned channel, in
/// order (see [`print_on_thread`]).
pub(crate) fn start_printer(
    mut sink: MultiSink,
    info: &RunInfo,
    queue: usize,
    bar: Option<ProgressBar>,
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
) -> anyhow::Result<(Emit<Event>, Printer)> {
    let progress_done = CancellationToken::new();
    if let Some(bar) = &bar {
        progress::drive(bar.clone(), Arc::clone(progress), progress_done.clone());
    }
    sink.start(info).context("cannot write output")?;
    let (emit, printing) = print_on_thread(sink, queue, cancel)?;
    Ok((
        emit,
        Printer {
            printing,
            bar,
            progress_done,
        },
    ))
}

impl Printer {
    /// Once the engine is done: stops the bar, waits for the printers to
    /// write every event, and writes `summary()` (made then, so that its
    /// times include the printing). Returns the exit status when the run's
    /// end decides it: the outputs were gone (`| head`: the reader has what
    /// it wanted) or the run was interrupted; `None` leaves it to the command.
    pub(crate) async fn finish(
        self,
        summary: impl FnOnce() -> Summary + Send + 'static,
    ) -> anyhow::Result<Option<u8>> {
        self.progress_done.cancel();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let (interrupted, written, outputs_gone) = self
            .printing
            .finish(move |mut sink, outputs_gone| {
                let mut summary = summary();
                summary.interrupted &= !outputs_gone;
                (summary.interrupted, sink.finish(&summary), outputs_gone)
            })
            .await?;
        if let Err(err) = written
            && err.kind() != io::ErrorKind::BrokenPipe
        {
            return Err(anyhow::Error::new(err).context("cannot write output"));
        }
        if outputs_gone {
            return Ok(Some(exit::OK));
        }
        if interrupted {
            return Ok(Some(exit::INTERRUPTED));
        }
        Ok(None)
    }
}

/// A command's outcome as its exit status: its own status, or for an
/// error one line on stderr and 2 (usage) or 1 (anything else).
pub(crate) fn exit_status(outcome: anyhow::Result<u8>) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = if err.downcast_ref::<UsageError>().is_some() {
                exit::USAGE
            } else {
                exit::FAILURE
            };
            let mut stderr = io::stderr().lock();
            let _ = writeln!(stderr, "sockeye: {}", one_line(&err));
            ExitCode::from(code)
        }
    }
}

/// An error and its causes on one line: "outer: inner: root".
fn one_line(err: &anyhow::Error) -> String {
    let mut s = String::new();
    for (i, cause) in err.chain().enumerate() {
        let text = cause.to_string();
        if i > 0 {
            if s.ends_with(&text) {
                continue;
            }
            s.push_str(": ");
        }
        s.push_str(&text);
    }
    s
}
