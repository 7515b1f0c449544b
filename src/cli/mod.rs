//! The command line: clap structures, their validation into configuration,
//! and the glue that runs each subcommand.
//!
//! What the user typed lives in the clap structs; each subcommand's file
//! turns them into validated engine configuration before the first socket
//! opens (a bad flag is a one-line error and exit status 2), then runs the
//! engine with the printers. `anyhow` is used here and in `main.rs` only.

pub mod agent;
pub mod args;
pub mod calc;
pub mod cat;
pub mod exercise;
pub mod fuzz;
pub mod mail;
pub mod nmap_compat;
pub mod output;
pub mod probe;
pub mod progress;
pub mod report;
mod run;
pub mod scan;
mod scan_agents;
pub mod talk;
pub mod values;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

pub use args::{Cli, Command};

/// Exit statuses, documented in `--help` and the README.
pub mod exit {
    /// The command did its job (a scan finished, whatever it found).
    pub const OK: u8 = 0;
    /// The command could not do its job: nothing could be scanned, an
    /// output file could not be written, an internal error.
    pub const FAILURE: u8 = 1;
    /// Bad usage: an unknown flag, a bad target, port or value. Nothing was sent.
    pub const USAGE: u8 = 2;
    /// Interrupted by Ctrl-C (SIGINT) or SIGTERM; results so far were written.
    pub const INTERRUPTED: u8 = 130;
}

/// A usage error: printed as one line, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(msg: impl Into<String>) -> Self {
        UsageError(msg.into())
    }
}

/// Parses `argv` (after rewriting nmap's multi-letter flags) and runs it.
pub fn main_with_args(argv: Vec<std::ffi::OsString>) -> ExitCode {
    // `ncat ...` (a link to sockeye) and `sockeye cat ...` parse ncat's own
    // command line, so that sockeye's global -v/-q never take ncat's flags.
    let invoked = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    if invoked.as_deref() == Some("ncat") {
        return ExitCode::from(cat::main(argv.into_iter().skip(1).collect(), true));
    }
    if argv.get(1).is_some_and(|a| a == "cat") {
        return ExitCode::from(cat::main(argv.into_iter().skip(2).collect(), false));
    }
    // nmap's spellings are for the commands people type: `agent` has a
    // --max-rate of its own (a controller writes its command line).
    let argv = match if argv.get(1).is_some_and(|a| a == "agent") {
        Ok(argv)
    } else {
        nmap_compat::rewrite(argv)
    } {
        Ok(argv) => argv,
        Err(msg) => {
            let _ = writeln!(std::io::stderr().lock(), "sockeye: {msg}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version: stdout, status 0.
            let _ = err.print();
            return ExitCode::from(exit::OK);
        }
        Err(err)
            if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            // `sockeye` or `sockeye exercise` alone: the help, on stdout
            // where it can be paged, with clap's status for it (2).
            let _ = write!(std::io::stdout().lock(), "{}", err.render());
            return ExitCode::from(exit::USAGE);
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr().lock(), "sockeye: {}", clap_one_line(&err));
            return ExitCode::from(exit::USAGE);
        }
    };
    init_logging(cli.verbose, cli.quiet);
    run::exit_status(dispatch(cli))
}

/// clap's error as one line: its message without the "error: " prefix,
/// followed by what clap says under it (the missing arguments, the valid
/// values, "a similar argument exists"), and a pointer to --help; clap's
/// usage block and closing hint are left out.
pub(crate) fn clap_one_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let mut lines = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut text = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    let rest: Vec<&str> = lines
        .map(|l| {
            l.strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .unwrap_or(l)
        })
        .collect();
    if !rest.is_empty() {
        // "...were not provided:" lists its items; anything else is a note.
        text.push_str(if text.ends_with(':') { " " } else { "; " });
        text.push_str(&rest.join(if text.ends_with(": ") { ", " } else { "; " }));
    }
    format!("{text} (see --help)")
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("SOCKEYE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Scan(args) => scan::run(*args, cli.quiet, cli.color),
        Command::Calc(args) => calc::run(*args),
        Command::Probe(args) => probe::run(*args, cli.quiet, cli.color),
        Command::Fuzz(args) => fuzz::run(*args),
        Command::Mail(args) => mail::run(*args, cli.quiet),
        Command::Talk(args) => talk::run(*args),
        Command::Exercise(args) => exercise::run(*args),
        Command::Agent(args) => agent::run(*args),
        Command::Report(args) => report::run(*args, cli.color),
        // Reached only after global flags (`sockeye -v cat ...`): the cat
        // parses its own arguments all the same.
        Command::Cat(raw) => Ok(cat::main(raw.args, false)),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut cmd, "sockeye", &mut out);
            Ok(exit::OK)
        }
        Command::Man { command } => {
            let cmd = Cli::command();
            let mut pages = Vec::new();
            match command {
                None => pages.push(cmd.clone()),
                Some(name) if cmd.find_subcommand(&name).is_none() || name == "help" => {
                    let names: Vec<&str> = cmd
                        .get_subcommands()
                        .map(clap::Command::get_name)
                        .filter(|n| *n != "help")
                        .collect();
                    return Err(UsageError::new(format!(
                        "man: no command {name:?}; one of: {}",
                        names.join(", ")
                    ))
                    .into());
                }
                Some(_) => {}
            }
            for sub in cmd.get_subcommands() {
                let wanted = match &command {
                    None => sub.get_name() != "help",
                    Some(name) => sub.get_name() == name,
                };
                if wanted {
                    pages.push(sub.clone().name(format!("sockeye-{}", sub.get_name())));
                }
            }
            let mut out = std::io::stdout().lock();
            for page in pages {
                match clap_mangen::Man::new(page).render(&mut out) {
                    // `sockeye man | head`: the reader has all it wanted.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(exit::OK),
                    other => other?,
                }
            }
            Ok(exit::OK)
        }
    }
}
