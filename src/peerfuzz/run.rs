//! The peer fuzzer's drivers: client mode (send each case to a server),
//! server mode (answer each client with a case), failure detection,
//! artifacts and replay. Every loop is bounded by `--cases` and every
//! network step by `--timeout`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::generate::{self, Template, case_rng};
use crate::report::Emit;
pub use crate::report::fuzz::{Event, Failure, FailureKind, FuzzSummary, ReplayOutcome};

/// Bytes read back from one case at most.
const MAX_ANSWER: usize = 1 << 20;
/// How long a target started with `--spawn` gets to start listening.
const SPAWN_READY: Duration = Duration::from_secs(10);
/// When a spawned target refuses connections, how long we wait for its
/// exit status (to tell a crash from a closed listener).
const EXIT_WATCH: Duration = Duration::from_millis(500);

/// Where the cases come from.
#[derive(Debug, Clone)]
pub enum Generator {
    /// Random bytes, 0 to N per case.
    Random {
        max: usize,
    },
    Template(Template),
    /// Mutations of recorded inputs.
    Corpus(Vec<Vec<u8>>),
    /// Line-protocol mutations (of the given lines, and built-in commands).
    Lines(Vec<Vec<u8>>),
}

impl Generator {
    /// The bytes of case `case` under `seed`.
    pub fn case(&self, seed: u64, case: u64) -> Vec<u8> {
        let mut rng = case_rng(seed, case);
        match self {
            Generator::Random { max } => {
                let n = rand::RngExt::random_range(&mut rng, 0..=*max);
                generate::random_bytes(&mut rng, n)
            }
            Generator::Template(t) => t.generate(&mut rng),
            Generator::Corpus(inputs) => {
                let pick = rand::RngExt::random_range(&mut rng, 0..inputs.len());
                generate::mutate(&inputs[pick], inputs, &mut rng)
            }
            Generator::Lines(base) => generate::lines_case(base, &mut rng),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Generator::Random { .. } => "random",
            Generator::Template(_) => "template",
            Generator::Corpus(_) => "corpus",
            Generator::Lines(_) => "lines",
        }
    }
}

/// A client-mode run, validated.
#[derive(Debug, Clone)]
pub struct FuzzConfig {
    pub target: SocketAddr,
    pub generator: Generator,
    pub seed: u64,
    /// Cases to run (numbered from `first_case`).
    pub cases: u64,
    pub first_case: u64,
    /// Cases per second at most.
    pub rate: Option<f64>,
    /// Connect, send and read each wait at most this long.
    pub timeout: Duration,
    /// A case that gets no answer within the timeout is a hang.
    pub expect_answer: bool,
    /// Start the target with `sh -c CMD`, watch it, restart it.
    pub spawn: Option<String>,
    pub artifacts: PathBuf,
    /// Go on after a failure (restarting a spawned target).
    pub keep_going: bool,
}

/// What one case saw.
#[derive(Debug)]
struct CaseOutcome {
    received: usize,
    /// The connection ended (EOF or reset) before the timeout.
    closed: bool,
}

/// Client mode: sends `cfg.cases` cases; emits each failure as it is found
/// (and keeps it in the summary). A reader gone ends the run as an interruption.
/// are found.
pub async fn fuzz_server(
    cfg: &FuzzConfig,
    cancel: CancellationToken,
    emit: Emit<Event>,
) -> std::io::Result<FuzzSummary> {
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.artifacts)?;
    let mut child = match &cfg.spawn {
        Some(cmd) => Some(spawn_target(cmd, cfg.target).await?),
        None => None,
    };
    let mut summary = FuzzSummary::default();
    let mut accepted_before = false;
    let mut ticker = cfg.rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(0.001)));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut case = cfg.first_case;
    let end = cfg.first_case.saturating_add(cfg.cases);
    while case < end {
        if cancel.is_cancelled() {
            summary.interrupted = true;
            break;
        }
        if let Some(t) = &mut ticker {
            t.tick().await;
        }
        let input = cfg.generator.case(cfg.seed, case);
        let outcome = one_case(cfg.target, &input, cfg.timeout).await;
        summary.cases += 1;
        let failure = match outcome {
            Ok(o) => {
                accepted_before = true;
                summary.bytes_sent += input.len() as u64;
                summary.bytes_received += o.received as u64;
                if o.received > 0 {
                    summary.answered += 1;
                }
                // An exit noticed now is this case's; one that lands a
                // moment later shows as a refused connect on the next case.
                let exited = match &mut child {
                    Some(ch) => ch.try_wait().ok().flatten(),
                    None => None,
                };
                if let Some(status) = exited {
                    Some((
                        FailureKind::Exited,
                        case,
                        input,
                        format!("the target exited ({status}) after case {case}"),
                    ))
                } else if cfg.expect_answer && o.received == 0 && !o.closed {
                    Some((
                        FailureKind::Hang,
                        case,
                        input,
                        format!(
                            "no answer within {} to case {case}",
                            crate::net::secs_text(cfg.timeout)
                        ),
                    ))
                } else {
                    None
                }
            }
            Err(ConnectFailure::Refused) if accepted_before && case > cfg.first_case => {
                // The previous case killed it.
                let prev = case - 1;
                let exited = match &mut child {
                    Some(ch) => watch_exit(ch, EXIT_WATCH).await,
                    None => None,
                };
                Some(match exited {
                    Some(status) => (
                        FailureKind::Exited,
                        prev,
                        cfg.generator.case(cfg.seed, prev),
                        format!("the target exited ({status}) after case {prev}"),
                    ),
                    None => (
                        FailureKind::Refused,
                        prev,
                        cfg.generator.case(cfg.seed, prev),
                        format!(
                            "connections refused after case {prev}, which were accepted before"
                        ),
                    ),
                })
            }
            Err(ConnectFailure::Timeout) if accepted_before && case > cfg.first_case => {
                let prev = case - 1;
                Some((
                    FailureKind::Hang,
                    prev,
                    cfg.generator.case(cfg.seed, prev),
                    format!(
                        "the target stopped accepting after case {prev} (connect timed out after {})",
                        crate::net::secs_text(cfg.timeout)
                    ),
                ))
            }
            Err(other) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::HostUnreachable,
                    format!("cannot reach {}: {}", cfg.target, other.text(cfg.timeout)),
                ));
            }
        };
        if let Some((kind, mut at, mut input, mut message)) = failure {
            // An exit is noticed a little after the case that caused it:
            // with a target we can restart, replay the last two cases one
            // at a time and blame the one that really kills it.
            if kind == FailureKind::Exited
                && let Some(cmd) = &cfg.spawn
            {
                if let Some(old) = child.take() {
                    stop(old).await;
                }
                let candidates: Vec<u64> =
                    (at.saturating_sub(1).max(cfg.first_case)..=at).collect();
                match attribute(cfg, cmd, &candidates).await? {
                    Some((case, status)) => {
                        at = case;
                        input = cfg.generator.case(cfg.seed, case);
                        message = format!("the target exits ({status}) on case {case} alone");
                    }
                    None => message.push_str(" (no single case reproduces it alone)"),
                }
            }
            let f = save_failure(cfg, kind, at, &input, message)?;
            let stopped = emit.send(Event::Failure(f.clone())).await.is_err();
            summary.failures.push(f);
            if stopped {
                summary.interrupted = true;
                break;
            }
            if !cfg.keep_going {
                break;
            }
            if let Some(cmd) = &cfg.spawn {
                if let Some(old) = child.take() {
                    stop(old).await;
                }
                child = Some(spawn_target(cmd, cfg.target).await?);
            } else if kind != FailureKind::Hang {
                // Nothing will bring it back.
                break;
            }
        }
        case += 1;
    }
    if let Some(ch) = child {
        stop(ch).await;
    }
    stamp_time(&mut summary, started);
    Ok(summary)
}

/// Replays each candidate case alone against a fresh target; the first
/// that makes it exit, with the exit status.
async fn attribute(
    cfg: &FuzzConfig,
    cmd: &str,
    candidates: &[u64],
) -> std::io::Result<Option<(u64, std::process::ExitStatus)>> {
    for &case in candidates {
        let mut child = spawn_target(cmd, cfg.target).await?;
        let input = cfg.generator.case(cfg.seed, case);
        let _ = one_case(cfg.target, &input, cfg.timeout).await;
        let exited = watch_exit(&mut child, EXIT_WATCH).await;
        stop(child).await;
        if let Some(status) = exited {
            return Ok(Some((case, status)));
        }
    }
    Ok(None)
}

#[derive(Debug)]
enum ConnectFailure {
    Refused,
    Timeout,
    Other(std::io::Error),
}

impl ConnectFailure {
    /// A connect's error. A reset or an abort is a refusal too: the kernel
    /// completed the handshake for a listener that was closing (the target
    /// dying with our connection in its accept queue), and the reset came
    /// before the connect was seen to finish.
    fn from_connect(e: std::io::Error) -> ConnectFailure {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
        match e.kind() {
            ConnectionRefused | ConnectionReset | ConnectionAborted => ConnectFailure::Refused,
            _ => ConnectFailure::Other(e),
        }
    }

    fn text(&self, timeout: Duration) -> String {
        match self {
            ConnectFailure::Refused => "connection refused".into(),
            ConnectFailure::Timeout => {
                format!("connect timed out after {}", crate::net::secs_text(timeout))
            }
            ConnectFailure::Other(e) => e.to_string(),
        }
    }
}

async fn one_case(
    target: SocketAddr,
    input: &[u8],
    timeout: Duration,
) -> Result<CaseOutcome, ConnectFailure> {
    let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
        Err(_) => return Err(ConnectFailure::Timeout),
        Ok(Err(e)) => return Err(ConnectFailure::from_connect(e)),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + timeout;
    // A target that dies mid-send resets us: that is an outcome, not an error.
    let sent = tokio::time::timeout_at(deadline, async {
        stream.write_all(input).await?;
        stream.shutdown().await
    })
    .await;
    let mut closed = !matches!(sent, Ok(Ok(())));
    let mut received = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    if !closed {
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(n)) => {
                    received += n;
                    if received >= MAX_ANSWER {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    Ok(CaseOutcome { received, closed })
}

async fn spawn_target(cmd: &str, target: SocketAddr) -> std::io::Result<Child> {
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|e| std::io::Error::other(format!("cannot start {cmd:?}: {e}")))?;
    let until = Instant::now() + SPAWN_READY;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(std::io::Error::other(format!(
                "{cmd:?} exited ({status}) before listening on {target}"
            )));
        }
        if TcpStream::connect(target).await.is_ok() {
            return Ok(child);
        }
        if Instant::now() > until {
            stop(child).await;
            return Err(std::io::Error::other(format!(
                "{cmd:?} did not listen on {target} within {} s",
                SPAWN_READY.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn watch_exit(child: &mut Child, wait: Duration) -> Option<std::process::ExitStatus> {
    tokio::time::timeout(wait, child.wait()).await.ok()?.ok()
}

/// Ends a spawned target: its whole process group, TERM then KILL.
async fn stop(mut child: Child) {
    if let Some(pid) = child.id() {
        let group = nix::unistd::Pid::from_raw(-(pid as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_millis(500), child.wait())
            .await
            .is_err()
        {
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _ = child.wait().await;
}

fn save_failure(
    cfg: &FuzzConfig,
    kind: FailureKind,
    case: u64,
    input: &[u8],
    message: String,
) -> std::io::Result<Failure> {
    let stem = format!("{}-s{}-c{}", kind_word(kind), cfg.seed, case);
    let bin = cfg.artifacts.join(format!("{stem}.bin"));
    std::fs::write(&bin, input)?;
    let failure = Failure {
        kind,
        seed: cfg.seed,
        case,
        generator: cfg.generator.name().into(),
        target: cfg.target.to_string(),
        message,
        bytes: input.len(),
        input: bin.clone(),
    };
    let meta = serde_json::to_vec_pretty(&failure).map_err(std::io::Error::other)?;
    std::fs::write(bin.with_extension("json"), meta)?;
    Ok(failure)
}

fn kind_word(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Exited => "crash",
        FailureKind::Refused => "died",
        FailureKind::Hang => "hang",
    }
}

/// Sends a saved input once and watches the target as the run did.
pub async fn replay(
    target: SocketAddr,
    input: &[u8],
    timeout: Duration,
    spawn: Option<&str>,
    expect_answer: bool,
) -> std::io::Result<ReplayOutcome> {
    let mut child = match spawn {
        Some(cmd) => Some(spawn_target(cmd, target).await?),
        None => None,
    };
    let outcome = one_case(target, input, timeout).await.map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::HostUnreachable,
            format!("cannot reach {target}: {}", e.text(timeout)),
        )
    })?;
    let mut reproduced = None;
    let mut message = format!(
        "sent {} bytes, received {}; the target survived",
        input.len(),
        outcome.received
    );
    if let Some(ch) = &mut child
        && let Some(status) = watch_exit(ch, EXIT_WATCH.max(Duration::from_millis(500))).await
    {
        reproduced = Some(FailureKind::Exited);
        message = format!("the target exited ({status})");
    }
    if reproduced.is_none() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match one_case(target, b"", timeout).await {
            Err(ConnectFailure::Refused) => {
                reproduced = Some(FailureKind::Refused);
                message = "connections are refused after the input: the target died".into();
            }
            Err(ConnectFailure::Timeout) => {
                reproduced = Some(FailureKind::Hang);
                message = "the target stopped accepting after the input".into();
            }
            _ if expect_answer && outcome.received == 0 && !outcome.closed => {
                reproduced = Some(FailureKind::Hang);
                message = format!("no answer within {}", crate::net::secs_text(timeout));
            }
            _ => {}
        }
    }
    if let Some(ch) = child {
        stop(ch).await;
    }
    Ok(ReplayOutcome {
        bytes: input.len(),
        received: outcome.received,
        reproduced,
        message,
    })
}

/// Reads a saved failure's metadata (`X.json` beside `X.bin`), if present.
pub fn read_meta(input: &Path) -> Option<Failure> {
    let text = std::fs::read(input.with_extension("json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Server mode: answers each of `cases` clients with one generated case
/// (after reading what the client sends, up to the timeout or its first
/// blank line), then closes. Each is emitted as [`Event::Served`]; a reader
/// gone ends the run as an interruption.
pub async fn fuzz_clients(
    listener: TcpListener,
    generator: &Generator,
    seed: u64,
    cases: u64,
    timeout: Duration,
    cancel: CancellationToken,
    emit: Emit<Event>,
) -> std::io::Result<FuzzSummary> {
    let started = Instant::now();
    let mut summary = FuzzSummary::default();
    for case in 0..cases {
        let (mut stream, peer) = tokio::select! {
            a = listener.accept() => a?,
            _ = cancel.cancelled() => {
                summary.interrupted = true;
                break;
            }
        };
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + timeout;
        while request.len() < 64 * 1024 && !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        summary.bytes_received += request.len() as u64;
        let answer = generator.case(seed, case);
        let _ = tokio::time::timeout(timeout, async {
            stream.write_all(&answer).await?;
            stream.shutdown().await
        })
        .await;
        summary.cases += 1;
        summary.bytes_sent += answer.len() as u64;
        let served = Event::Served {
            case,
            peer,
            bytes: answer.len(),
        };
        if emit.send(served).await.is_err() {
            summary.interrupted = true;
            break;
        }
    }
    stamp_time(&mut summary, started);
    Ok(summary)
}

/// The run's duration (ms, to the microsecond) and its rate, once it ends.
fn stamp_time(summary: &mut FuzzSummary, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    summary.elapsed_ms = (secs * 1e6).round() / 1e3;
    summary.cases_per_sec = if secs > 0.0 {
        summary.cases as f64 / secs
    } else {
        0.0
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn a_target_closing_under_a_connect_is_a_refusal() {
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionAborted,
        ] {
            assert!(
                matches!(
                    ConnectFailure::from_connect(Error::from(kind)),
                    ConnectFailure::Refused
                ),
                "{kind:?}"
            );
        }
        assert!(matches!(
            ConnectFailure::from_connect(Error::from(ErrorKind::AddrNotAvailable)),
            ConnectFailure::Other(_)
        ));
    }
}
