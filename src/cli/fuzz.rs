//! `sockeye fuzz`: the clap arguments, their validation, and the run
//! (client mode, server mode, replay) with its report.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::run::{Print, Printing, print_on_thread};
use super::values::parse_duration;
use super::{UsageError, exit};
use crate::peerfuzz::run;
use crate::peerfuzz::{FuzzConfig, Generator, Template};
use crate::report;
use crate::report::fuzz::{Event, FuzzSummary, Printer};

pub const FUZZ_AFTER: &str = "\
Generators (one; --random 1024 by default):
  --random N          0 to N random bytes per case
  --template FILE     the file's bytes with placeholders: {{random N}}, {{random A-B}},
                      {{mutate TEXT}}, {{int}} (an interesting integer), {{long}} (a very
                      long run); \\r \\n \\xHH escapes in TEXT
  --corpus DIR        mutations of the files in DIR (bit flips, insertions, deletions,
                      splices, interesting integers)
  --lines [FILE]      line-protocol mutations (very long lines, missing or doubled CR/LF,
                      NULs, format strings, huge numbers) of built-in SMTP/FTP/POP3/IMAP/HTTP
                      commands and of FILE's lines

A target that dies (connections refused where they were accepted, or the --spawn process
exits) or hangs (stops accepting; with --expect-answer, no answer within --timeout) is a
failure: the input is saved as DIR/crash|died|hang-sSEED-cCASE.bin with a .json beside it,
and `sockeye fuzz --replay FILE` sends it again. The same --seed gives the same bytes.

Examples:
  sockeye fuzz --lines --spawn './server 7000' --cases 5000 --seed 1 127.0.0.1:7000
  sockeye fuzz --template req.tpl --rate 100 --expect-answer 198.18.0.2:80
  sockeye fuzz --listen 8080 --template header-then-random.tpl   (serve a browser)
  sockeye fuzz --replay sockeye-fuzz/crash-s1-c812.bin --spawn './server 7000'

Exit status: 0 no failure found (replay: the target survived), 1 a failure found (replay:
it happened again), 2 bad usage, 3 the target is unreachable (nothing was fuzzed),
130 interrupted.";

/// Exit status when the target cannot be reached at all: not a finding.
pub const UNREACHABLE: u8 = 3;

/// A target that cannot be reached is said in one line and has its own
/// status, apart from a failure found.
fn reach<T>(result: std::io::Result<T>) -> anyhow::Result<Result<T, u8>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.kind() == std::io::ErrorKind::HostUnreachable => {
            let _ = writeln!(std::io::stderr().lock(), "sockeye: {e}");
            Ok(Err(UNREACHABLE))
        }
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// The server to fuzz, HOST:PORT (not with --listen).
    #[arg(value_name = "HOST:PORT")]
    pub target: Option<String>,

    /// Server mode: listen on PORT (127.0.0.1) or ADDR:PORT and answer each client with a case.
    #[arg(long, value_name = "[ADDR:]PORT")]
    pub listen: Option<String>,

    /// Send a saved input once and report whether the failure happens again.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    /// 0 to N random bytes per case.
    #[arg(long, value_name = "N", group = "generator")]
    pub random: Option<usize>,

    /// A template with random or mutated parts (see below).
    #[arg(long, value_name = "FILE", group = "generator")]
    pub template: Option<PathBuf>,

    /// Mutate the recorded inputs in DIR.
    #[arg(long, value_name = "DIR", group = "generator")]
    pub corpus: Option<PathBuf>,

    /// Line-protocol mutations, of built-in commands and FILE's lines.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "", group = "generator")]
    pub lines: Option<String>,

    /// Seed of the run (default: random, printed in the summary).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,

    /// Cases to run.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub cases: u64,

    /// Start at this case number (to resume a run, or re-run one case).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub first_case: u64,

    /// Cases per second at most.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Connect, send and read each wait at most this long.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub timeout: String,

    /// A case with no answer within --timeout is a hang.
    #[arg(long)]
    pub expect_answer: bool,

    /// Start the target with `sh -c CMD`; its exit is a crash.
    #[arg(long, value_name = "CMD")]
    pub spawn: Option<String>,

    /// Where failing inputs are saved.
    #[arg(long, value_name = "DIR", default_value = "sockeye-fuzz")]
    pub artifacts: PathBuf,

    /// Go on after a failure (restarting a --spawn target).
    #[arg(long)]
    pub keep_going: bool,

    /// JSON Lines on stdout: a record per failure, then a summary.
    #[arg(long)]
    pub json: bool,
}

fn generator(args: &FuzzArgs) -> anyhow::Result<Generator> {
    if let Some(n) = args.random {
        if n > crate::peerfuzz::generate::MAX_INPUT {
            return Err(UsageError::new(format!(
                "--random {n}: at most {}",
                crate::peerfuzz::generate::MAX_INPUT
            ))
            .into());
        }
        return Ok(Generator::Random { max: n });
    }
    if let Some(path) = &args.template {
        let text = std::fs::read(path)
            .map_err(|e| UsageError::new(format!("--template {}: {e}", path.display())))?;
        let t = Template::parse(&text)
            .map_err(|e| UsageError::new(format!("--template {}: {e}", path.display())))?;
        return Ok(Generator::Template(t));
    }
    if let Some(dir) = &args.corpus {
        let mut inputs = Vec::new();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| UsageError::new(format!("--corpus {}: {e}", dir.display())))?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        // Sorted: the same directory gives the same run.
        paths.sort();
        for p in paths.iter().filter(|p| p.is_file()) {
            let bytes = std::fs::read(p)
                .map_err(|e| UsageError::new(format!("--corpus {}: {e}", p.display())))?;
            inputs.push(bytes);
        }
        if inputs.is_empty() {
            return Err(
                UsageError::new(format!("--corpus {}: no files in it", dir.display())).into(),
            );
        }
        return Ok(Generator::Corpus(inputs));
    }
    if let Some(file) = &args.lines {
        let mut base = Vec::new();
        if !file.is_empty() {
            let text =
                std::fs::read(file).map_err(|e| UsageError::new(format!("--lines {file}: {e}")))?;
            base = text
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
                .filter(|l| !l.is_empty())
                .collect();
        }
        return Ok(Generator::Lines(base));
    }
    Ok(Generator::Random { max: 1024 })
}

async fn resolve(text: &str) -> anyhow::Result<SocketAddr> {
    crate::target::resolve::lookup_host_port(text)
        .await
        .map_err(|e| UsageError::new(format!("{text:?}: {e}")).into())
}

pub fn run(args: FuzzArgs) -> anyhow::Result<u8> {
    let modes = [
        args.target.is_some() && args.replay.is_none(),
        args.listen.is_some(),
        args.replay.is_some(),
    ];
    if args.listen.is_some() && args.target.is_some() {
        return Err(
            UsageError::new("--listen and HOST:PORT: choose one (server or client mode)").into(),
        );
    }
    if !modes.iter().any(|m| *m) {
        return Err(UsageError::new(
            "nothing to fuzz: give HOST:PORT (a server), --listen PORT (clients) or --replay FILE",
        )
        .into());
    }
    if args.cases == 0 {
        return Err(UsageError::new("--cases: must be at least 1").into());
    }
    if let Some(r) = args.rate
        && !(r > 0.0 && r.is_finite())
    {
        return Err(UsageError::new("--rate: must be a positive number").into());
    }
    let timeout = parse_duration("--timeout", &args.timeout)?;
    if timeout.is_zero() {
        return Err(UsageError::new("--timeout: must be more than 0").into());
    }
    let generator = generator(&args)?;
    let runtime = super::run::runtime(super::run::Threads::Many(None))?;
    runtime.block_on(fuzz_main(args, generator, timeout))
}

async fn fuzz_main(args: FuzzArgs, generator: Generator, timeout: Duration) -> anyhow::Result<u8> {
    let cancel = CancellationToken::new();
    super::run::cancel_on_signals(cancel.clone(), super::run::Notice::Results);
    let seed = args.seed.unwrap_or_else(rand::random);

    if let Some(path) = &args.replay {
        let input = std::fs::read(path)
            .map_err(|e| UsageError::new(format!("--replay {}: {e}", path.display())))?;
        let meta = run::read_meta(path);
        let target = match (&args.target, &meta) {
            (Some(t), _) => resolve(t).await?,
            (None, Some(m)) => resolve(&m.target).await?,
            (None, None) => {
                return Err(UsageError::new(format!(
                    "--replay {}: no HOST:PORT given and no {} beside it",
                    path.display(),
                    path.with_extension("json").display()
                ))
                .into());
            }
        };
        let outcome = match reach(
            run::replay(
                target,
                &input,
                timeout,
                args.spawn.as_deref(),
                args.expect_answer,
            )
            .await,
        )? {
            Ok(outcome) => outcome,
            Err(code) => return Ok(code),
        };
        let code = if outcome.reproduced.is_some() {
            exit::FAILURE
        } else {
            exit::OK
        };
        let (json, path) = (args.json, path.clone());
        super::run::print_report(move || {
            report::fuzz::print_replay(&mut std::io::stdout().lock(), json, &path, target, &outcome)
        })
        .await??;
        return Ok(code);
    }

    if let Some(listen) = &args.listen {
        let addr: SocketAddr = match listen.parse::<u16>() {
            Ok(port) => SocketAddr::from(([127, 0, 0, 1], port)),
            Err(_) => listen.parse().map_err(|_| {
                UsageError::new(format!("--listen {listen:?}: expected PORT or ADDR:PORT"))
            })?,
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        report::fuzz::listening(local, seed, args.cases, generator.name());
        let (emit, printing) = print_on_thread(Printer::new(args.json), EVENT_QUEUE, &cancel)?;
        let summary = run::fuzz_clients(
            listener,
            &generator,
            seed,
            args.cases,
            timeout,
            cancel.clone(),
            emit,
        )
        .await;
        let (summary, printing) = match ended(summary, printing).await? {
            Ok(ran) => ran,
            Err(code) => return Ok(code),
        };
        let interrupted = summary.interrupted;
        print_summary(printing, seed, generator.name(), summary).await?;
        return Ok(if interrupted {
            exit::INTERRUPTED
        } else {
            exit::OK
        });
    }

    let target = resolve(args.target.as_deref().unwrap_or_default()).await?;
    let cfg = FuzzConfig {
        target,
        generator: generator.clone(),
        seed,
        cases: args.cases,
        first_case: args.first_case,
        rate: args.rate,
        timeout,
        expect_answer: args.expect_answer,
        spawn: args.spawn.clone(),
        artifacts: args.artifacts.clone(),
        keep_going: args.keep_going,
    };
    let printer = Printer::new(args.json).spawn(args.spawn.clone());
    let (emit, printing) = print_on_thread(printer, EVENT_QUEUE, &cancel)?;
    let summary = run::fuzz_server(&cfg, cancel.clone(), emit).await;
    let (summary, printing) = match ended(summary, printing).await? {
        Ok(ran) => ran,
        Err(code) => return Ok(code),
    };
    let (interrupted, failed) = (summary.interrupted, !summary.failures.is_empty());
    print_summary(printing, seed, generator.name(), summary).await?;
    Ok(if interrupted {
        exit::INTERRUPTED
    } else if !failed {
        exit::OK
    } else {
        exit::FAILURE
    })
}

/// Failures and cases served waiting for the printer at most.
const EVENT_QUEUE: usize = 256;

impl Print for Printer {
    type Event = Event;
    fn event(&mut self, event: Event) -> std::io::Result<()> {
        Printer::event(self, event);
        Ok(())
    }
}

/// A run that ended in an error: the printer writes what it was sent
/// (cases served), then the error is returned, as when `sockeye fuzz`
/// printed from the run itself; an unreachable target is its exit status.
async fn ended(
    run: std::io::Result<FuzzSummary>,
    printing: Printing<Printer>,
) -> anyhow::Result<Result<(FuzzSummary, Printing<Printer>), u8>> {
    match run {
        Ok(summary) => Ok(Ok((summary, printing))),
        Err(err) => {
            printing.finish(|_, _| ()).await?;
            reach(Err(err))
        }
    }
}

/// The failures and the summary, written on the printer thread.
async fn print_summary(
    printing: Printing<Printer>,
    seed: u64,
    generator: &'static str,
    summary: FuzzSummary,
) -> anyhow::Result<()> {
    printing
        .finish(move |printer, _| {
            printer.summary(&mut std::io::stdout().lock(), seed, generator, &summary)
        })
        .await??;
    Ok(())
}
