//! `sockeye talk`: the clap arguments, their validation into an endpoint
//! and a compiled conversation (from `--expect/--send` flags in the order
//! typed, or a script file), the run, and the printing of its report.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::run::{self, Notice, Threads};
use super::values::parse_duration;
use super::{UsageError, exit};
use crate::report::talk::{StepRecord, TalkPrinter};
use crate::talk::engine::{DEFAULT_MAX_BUFFER, Pattern};
use crate::talk::script::{
    Conversation, DEFAULT_STEP_TIMEOUT, Eol, ScriptSpec, SourceFormat, Step, Template, Vars,
    parse_source, starttls_protocol,
};
use crate::talk::{Endpoint, TalkConfig};
use crate::target::endpoint::parse_host_port;

pub const TALK_AFTER: &str = "\
Steps run in the order typed. Each --expect (a regex) or --expect-literal
starts a step: wait for it, then send the --send that follows (with the
end of line of --eol). A --send before any --expect is a step of its own.
--name names the current step in failures (\"Timeout at Name prompt\");
--fail RE fails the current step when RE matches first. Responses take
escapes (\\r \\n \\t \\0 \\e \\\\ \\xHH) and {{variables}} from --var NAME=VALUE.

Examples:
  sockeye talk 198.18.0.2:21 --expect '^220 ' --send 'USER anonymous' \\
      --expect '^230 ' --name login
  sockeye talk --tls 198.18.0.2:995 --expect '^\\+OK' --send 'USER {{u}}' \\
      --expect '^\\+OK' --send 'PASS {{p}}' --expect '^\\+OK Logged in' --var u=alice --var p=secret
  sockeye talk --spawn 'ftp 198.18.0.2' --expect Name --send anonymous \\
      --expect 'word:' --send guest@example.test --expect 'ftp>'
  sockeye talk 198.18.0.2:25 --script smtp-starttls.yaml

A script (YAML, or TOML for a .toml file) has the same steps:
  steps:
    - {name: greeting, expect: \"^220 .*\\n\"}
    - {name: tls, starttls: smtp, send: \"EHLO me.test\"}
    - {name: ehlo, expect: \"^250 \"}

Output: one line per step, then `RESULT: Success` or `RESULT: Fail <why>`;
--json prints the report as one JSON object.

Exit status: 0 every step matched, 1 a step failed (timeout, eof, full buffer,
a --fail pattern, no connection), 2 bad usage (nothing was sent).";

#[derive(Debug, Args)]
pub struct TalkArgs {
    /// HOST:PORT to connect to (not with --spawn).
    #[arg(value_name = "HOST:PORT")]
    pub target: Option<String>,

    /// Run CMD on a pty and talk to it (split on spaces; no shell).
    #[arg(long, value_name = "CMD", conflicts_with_all = ["target", "tls"])]
    pub spawn: Option<String>,

    /// TLS from the first byte (imaps, pop3s, smtps, https).
    #[arg(long)]
    pub tls: bool,

    /// Name sent as SNI and checked against the certificate.
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,

    /// Trust the CA certificates in FILE (PEM) too; repeatable.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub ca_file: Vec<PathBuf>,

    /// Read the steps from FILE (YAML; TOML for .toml) instead of flags.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,

    /// Wait for a regex (starts a step).
    #[arg(long, value_name = "RE", action = clap::ArgAction::Append, allow_hyphen_values = true)]
    pub expect: Vec<String>,

    /// Wait for literal text (starts a step).
    #[arg(long, value_name = "TEXT", action = clap::ArgAction::Append, allow_hyphen_values = true)]
    pub expect_literal: Vec<String>,

    /// Send TEXT once the current step's pattern matched.
    #[arg(long, value_name = "TEXT", action = clap::ArgAction::Append, allow_hyphen_values = true)]
    pub send: Vec<String>,

    /// Name of the current step.
    #[arg(long, value_name = "NAME", action = clap::ArgAction::Append)]
    pub name: Vec<String>,

    /// Fail the current step when RE matches before its pattern.
    #[arg(long, value_name = "RE", action = clap::ArgAction::Append, allow_hyphen_values = true)]
    pub fail: Vec<String>,

    /// Upgrade with this protocol's STARTTLS (smtp, pop3, imap, ftp) in the current step.
    #[arg(long, value_name = "PROTO", action = clap::ArgAction::Append)]
    pub starttls: Vec<String>,

    /// A variable for {{NAME}} in responses; repeatable.
    #[arg(long, value_name = "NAME=VALUE", action = clap::ArgAction::Append)]
    pub var: Vec<String>,

    /// What ends each sent line: crlf, lf, cr, none. [default: crlf; cr with --spawn]
    #[arg(long, value_name = "EOL")]
    pub eol: Option<String>,

    /// How long each step waits for its pattern. [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Connect timeout.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub connect_timeout: String,

    /// Bound of the match buffer in bytes; a peer that fills it without a match fails the step.
    #[arg(long, value_name = "BYTES")]
    pub max_buffer: Option<usize>,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The step flags, in the order they were typed (clap keeps each flag's
/// values in order, not their interleaving, so that comes from argv).
fn flag_order(argv: &[String]) -> Vec<&'static str> {
    const FLAGS: [&str; 6] = [
        "--expect",
        "--expect-literal",
        "--send",
        "--name",
        "--fail",
        "--starttls",
    ];
    let mut order = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            break;
        }
        let flag = a.split_once('=').map_or(a, |(f, _)| f);
        if let Some(f) = FLAGS.iter().find(|f| **f == flag) {
            order.push(*f);
            if !a.contains('=') {
                i += 1; // its value, which may look like a flag
            }
        }
        i += 1;
    }
    order
}

fn compile_flags(args: &TalkArgs, order: &[&str]) -> Result<Vec<Step>, UsageError> {
    let mut expect = args.expect.iter();
    let mut literal = args.expect_literal.iter();
    let mut send = args.send.iter();
    let mut name = args.name.iter();
    let mut fail = args.fail.iter();
    let mut starttls = args.starttls.iter();
    let mut steps: Vec<Step> = Vec::new();
    let new_step = |steps: &mut Vec<Step>| {
        steps.push(Step {
            name: format!("step {}", steps.len() + 1),
            expect: None,
            fail: Vec::new(),
            send: None,
            timeout: None,
            starttls: None,
        });
    };
    for flag in order {
        match *flag {
            "--expect" | "--expect-literal" => {
                let pattern = if *flag == "--expect" {
                    let re = expect.next().ok_or_else(|| UsageError::new("--expect"))?;
                    Pattern::regex(re).map_err(|e| {
                        UsageError::new(format!("--expect {re:?}: {}", regex_text(&e)))
                    })?
                } else {
                    let text = literal
                        .next()
                        .ok_or_else(|| UsageError::new("--expect-literal"))?;
                    Pattern::literal(text.as_bytes())
                };
                new_step(&mut steps);
                if let Some(s) = steps.last_mut() {
                    s.expect = Some(pattern);
                }
            }
            "--send" => {
                let text = send.next().ok_or_else(|| UsageError::new("--send"))?;
                let t = Template::parse(text)
                    .map_err(|e| UsageError::new(format!("--send {text:?}: {e}")))?;
                if steps.last().is_none_or(|s| s.send.is_some()) {
                    new_step(&mut steps);
                }
                if let Some(s) = steps.last_mut() {
                    s.send = Some(t);
                }
            }
            "--name" => {
                let n = name.next().ok_or_else(|| UsageError::new("--name"))?;
                match steps.last_mut() {
                    Some(s) => s.name = n.clone(),
                    None => return Err(UsageError::new("--name: before any step")),
                }
            }
            "--fail" => {
                let re = fail.next().ok_or_else(|| UsageError::new("--fail"))?;
                let p = Pattern::regex(re)
                    .map_err(|e| UsageError::new(format!("--fail {re:?}: {}", regex_text(&e))))?;
                match steps.last_mut() {
                    Some(s) if s.expect.is_some() => s.fail.push(p),
                    _ => return Err(UsageError::new("--fail: after an --expect only")),
                }
            }
            _ => {
                let p = starttls
                    .next()
                    .ok_or_else(|| UsageError::new("--starttls"))?;
                let proto = starttls_protocol(p).ok_or_else(|| {
                    UsageError::new(format!(
                        "--starttls {p:?}: expected smtp, pop3, imap or ftp"
                    ))
                })?;
                if steps.last().is_none_or(|s| s.send.is_some()) {
                    new_step(&mut steps);
                }
                if let Some(s) = steps.last_mut() {
                    s.starttls = Some(proto);
                }
            }
        }
    }
    Ok(steps)
}

fn regex_text(e: &regex::Error) -> String {
    crate::talk::script::regex_error_text(e)
}

/// Everything `talk` needs, validated.
struct TalkPlan {
    endpoint: Endpoint,
    conversation: Conversation,
    vars: Vars,
    config: TalkConfig,
    json: bool,
}

fn parse_vars(values: &[String]) -> Result<Vars, UsageError> {
    let mut vars = Vars::new();
    for v in values {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| UsageError::new(format!("--var {v:?}: expected NAME=VALUE")))?;
        vars.insert(k.trim().to_string(), val.to_string());
    }
    Ok(vars)
}

impl TalkPlan {
    fn from_args(args: TalkArgs, argv: &[String]) -> anyhow::Result<TalkPlan> {
        let endpoint = match (&args.spawn, &args.target) {
            (Some(cmd), _) => {
                let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
                if argv.is_empty() {
                    return Err(UsageError::new("--spawn: an empty command").into());
                }
                Endpoint::Spawn { argv }
            }
            (None, Some(t)) => {
                let (host, port) = parse_host_port(t).map_err(|_| {
                    UsageError::new(format!("{t:?}: expected HOST:PORT (port 1-65535)"))
                })?;
                Endpoint::Tcp {
                    host,
                    port,
                    tls: args.tls,
                    sni: args.sni.clone(),
                }
            }
            (None, None) => {
                return Err(UsageError::new("give HOST:PORT or --spawn CMD").into());
            }
        };
        let order = flag_order(argv);
        let mut conversation = match &args.script {
            Some(path) => {
                if !order.is_empty() {
                    return Err(UsageError::new(
                        "--script and step flags (--expect, --send, ...) do not mix",
                    )
                    .into());
                }
                let text = crate::talk::script::read_source(path)
                    .map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?;
                let file = path.display().to_string();
                let spec: ScriptSpec = parse_source(&file, &text, SourceFormat::of(path))
                    .map_err(|e| UsageError::new(e.to_string()))?;
                spec.compile()
                    .map_err(|e| UsageError::new(format!("{file}: {e}")))?
            }
            None => {
                let steps = compile_flags(&args, &order)?;
                if steps.is_empty() {
                    return Err(UsageError::new(
                        "no steps: give --expect/--send flags or --script FILE",
                    )
                    .into());
                }
                Conversation {
                    steps,
                    eol: None,
                    timeout: DEFAULT_STEP_TIMEOUT,
                    max_buffer: DEFAULT_MAX_BUFFER,
                }
            }
        };
        if let Some(eol) = &args.eol {
            conversation.eol = Some(Eol::parse(eol).ok_or_else(|| {
                UsageError::new(format!("--eol {eol:?}: expected crlf, lf, cr or none"))
            })?);
        }
        if let Some(t) = &args.timeout {
            conversation.timeout = parse_duration("--timeout", t)?;
        }
        if let Some(n) = args.max_buffer {
            if !(16..=16 * 1024 * 1024).contains(&n) {
                return Err(UsageError::new("--max-buffer: between 16 and 16777216").into());
            }
            conversation.max_buffer = n;
        }
        let vars = parse_vars(&args.var)?;
        for v in conversation.vars() {
            if !vars.contains_key(v) {
                return Err(UsageError::new(format!(
                    "{{{{{v}}}}} is used but not given: add --var {v}=VALUE"
                ))
                .into());
            }
        }
        let needs_tls = args.tls || conversation.steps.iter().any(|s| s.starttls.is_some());
        let scanner = if needs_tls {
            let roots = crate::tls::root_store(&args.ca_file)
                .map_err(|e| UsageError::new(e.to_string()))?;
            Some(
                crate::tls::Scanner::new(roots, Vec::new())
                    .map_err(|e| UsageError::new(e.to_string()))?,
            )
        } else {
            None
        };
        let connect_timeout = parse_duration("--connect-timeout", &args.connect_timeout)?;
        Ok(TalkPlan {
            endpoint,
            conversation,
            vars,
            config: TalkConfig {
                connect_timeout,
                tls_timeout: Duration::from_secs(10),
                scanner,
                ehlo_name: "sockeye.invalid".into(),
            },
            json: args.json,
        })
    }
}

pub fn run(args: TalkArgs) -> anyhow::Result<u8> {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let plan = TalkPlan::from_args(args, &argv)?;
    let runtime = run::runtime(Threads::One)?;
    let cancel = CancellationToken::new();
    let names = plan
        .conversation
        .steps
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let printer = Steps(TalkPrinter::new(plan.json, plan.endpoint.describe(), names));
    runtime.block_on(async {
        run::cancel_on_signals(cancel.clone(), Notice::Silent);
        let (emit, printing) = run::print_on_thread(printer, STEP_QUEUE, &cancel)?;
        let talk = crate::talk::talk(
            &plan.endpoint,
            &plan.conversation,
            &plan.vars,
            &plan.config,
            &emit,
        );
        let report = tokio::select! {
            r = talk => Some(r),
            _ = cancel.cancelled() => None,
        };
        drop(emit);
        // Interrupted: the steps done are printed, and where it stopped.
        let code = match &report {
            None => exit::INTERRUPTED,
            Some(r) if r.ok => exit::OK,
            Some(_) => exit::FAILURE,
        };
        printing
            .finish(move |printer, _| {
                printer
                    .0
                    .finish(&mut std::io::stdout().lock(), report.as_ref())
            })
            .await?
            .context("cannot write output")?;
        Ok(code)
    })
}

/// Steps waiting for the printer thread at most.
const STEP_QUEUE: usize = 64;

/// [`TalkPrinter`] on the printer thread.
struct Steps(TalkPrinter);

impl run::Print for Steps {
    type Event = StepRecord;
    fn event(&mut self, step: StepRecord) -> std::io::Result<()> {
        self.0.step(&mut std::io::stdout().lock(), step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn step_flags_keep_the_order_typed() {
        let argv = strings(&[
            "sockeye",
            "talk",
            "h:21",
            "--send",
            "HELLO",
            "--expect",
            "^220",
            "--name",
            "greeting",
            "--send=--USER",
            "--expect-literal",
            "331",
            "--fail",
            "^530",
            "--timeout",
            "2s",
        ]);
        assert_eq!(
            flag_order(&argv),
            [
                "--send",
                "--expect",
                "--name",
                "--send",
                "--expect-literal",
                "--fail"
            ]
        );
    }
}
