//! `sockeye mail`: the clap arguments, their validation into a [`MailConfig`] (message
//! built, files read, password found, TLS client made, every address checked) before
//! the first socket opens, and the run: the session's events go to `report/mail.rs`'s
//! printer on the printer thread (a swaks-style transcript on stderr and, with
//! `-o json`, one JSON record per step and a summary on stdout).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use sockeye_proto::smtp::{AuthMechanism, Credentials, TlsMode};
use tokio_util::sync::CancellationToken;

use super::run::{self, Notice, Threads};
use super::values::parse_duration;
use super::{UsageError, exit};
use crate::mail::message::{Attachment, MessageSpec, content_type_for, parse_header};
use crate::mail::{Event, MailConfig, QuitAfter};
use crate::report::mail::Printer;

pub const MAIL_AFTER: &str = "\
TLS: by default STARTTLS when the server offers it. --tls requires STARTTLS,
--tls-on-connect speaks TLS from the first byte (port 465), --no-tls never
upgrades. Credentials are never sent over a connection that is not encrypted
unless --allow-plaintext-auth says so. Certificates are verified (system roots
and --ca-file); --insecure skips that, with a warning.

The password: --auth-password PASS, --auth-password - (one line from stdin), or
the SOCKEYE_SMTP_PASSWORD environment variable. The From header is the envelope
sender unless --header-from sets another: SMTP does not check it, so say so.

Transcript on stderr: ' -> ' sent, '<-  ' received, ' ~> ' and '<~  ' inside TLS,
'===' notes, '***' errors; AUTH secrets are masked unless --show-secrets.

Examples:
  sockeye mail --server mail.example.test --from me@example.test --to you@example.test
  sockeye mail -s 198.18.0.2:587 --tls --auth-user alice --auth-password - \\
      --from alice@lab.test --to bob@lab.test --subject hi --body @msg.txt --attach report.pdf
  sockeye mail -s mail.example.test:465 --tls-on-connect --quit-after auth --auth-user alice ...
  sockeye mail -s 198.18.0.2:25 --from a@lab.test --to b@lab.test --count 100 -o json

Exit status (the step that failed):
  0   sent (or stopped where --quit-after said)
  1   other failure (an output error)
  2   bad usage: nothing was sent
  3   connect: no connection (refused, timed out, no address)
  4   banner: the greeting was not 2xx (421, 554) or never came
  5   ehlo: EHLO and HELO refused
  6   tls: STARTTLS missing or refused, handshake or certificate failed
  7   auth: credentials refused, no usable mechanism, or not sent in clear text
  8   mail: MAIL FROM refused (or RSET between messages)
  9   rcpt: every recipient refused
  10  data: DATA or the message refused, or the connection lost before it was accepted
  130 interrupted";

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum AuthArg {
    Plain,
    Login,
}

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MailOutput {
    /// The transcript on stderr, one summary line on stdout.
    Text,
    /// JSON Lines on stdout: a record per step, then a summary.
    Json,
}

#[derive(Debug, Args)]
pub struct MailArgs {
    /// The server: HOST or HOST:PORT (default port 587, or 465 with --tls-on-connect).
    #[arg(short, long, value_name = "HOST[:PORT]")]
    pub server: String,

    /// The envelope sender (MAIL FROM), also the From header; "" for the null sender <>.
    #[arg(short, long, value_name = "ADDR")]
    pub from: String,

    /// Recipients (RCPT TO), comma-separated or repeated; also the To header.
    #[arg(
        short,
        long,
        value_name = "ADDR[,ADDR...]",
        value_delimiter = ',',
        required = true
    )]
    pub to: Vec<String>,

    /// Name sent with EHLO (default: our address as a literal, e.g. [198.18.0.1]).
    #[arg(long, value_name = "NAME")]
    pub ehlo: Option<String>,

    /// Authenticate as USER.
    #[arg(long, value_name = "USER")]
    pub auth_user: Option<String>,

    /// The password; - reads one line from stdin (default: $SOCKEYE_SMTP_PASSWORD).
    #[arg(long, value_name = "PASS", requires = "auth_user")]
    pub auth_password: Option<String>,

    /// Use this AUTH mechanism (default: the best one offered, PLAIN before LOGIN).
    #[arg(
        long,
        value_enum,
        value_name = "PLAIN|LOGIN",
        requires = "auth_user",
        ignore_case = true
    )]
    pub auth: Option<AuthArg>,

    /// Send credentials even over a connection that is not encrypted.
    #[arg(long)]
    pub allow_plaintext_auth: bool,

    /// Require STARTTLS: stop if the server does not offer or accept it.
    #[arg(long, group = "tls_mode")]
    pub tls: bool,

    /// TLS from the first byte (SMTPS, port 465).
    #[arg(long, group = "tls_mode")]
    pub tls_on_connect: bool,

    /// STARTTLS when offered, plain text otherwise (the default).
    #[arg(long, group = "tls_mode")]
    pub tls_optional: bool,

    /// Never STARTTLS.
    #[arg(long, group = "tls_mode")]
    pub no_tls: bool,

    /// Do not verify the server's certificate (a warning says so).
    #[arg(long)]
    pub insecure: bool,

    /// Trust the CA certificates in FILE (PEM) too; repeatable.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub ca_file: Vec<PathBuf>,

    /// The Subject header (default: "test" and the date).
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,

    /// The body: TEXT, @FILE, or - for stdin (default: "This is a test mailing").
    #[arg(long, value_name = "TEXT|@FILE|-", allow_hyphen_values = true)]
    pub body: Option<String>,

    /// An extra header "Name: value" (To, Subject, Date, Message-ID replace ours); repeatable.
    #[arg(long, value_name = "NAME: VALUE", action = clap::ArgAction::Append)]
    pub header: Vec<String>,

    /// A From header other than the envelope sender, e.g. "Boss <boss@example.test>".
    #[arg(long, value_name = "FROM")]
    pub header_from: Option<String>,

    /// Attach FILE (MIME multipart, type from the extension); repeatable.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub attach: Vec<PathBuf>,

    /// Stop after this step (QUIT), sending no message.
    #[arg(long, value_enum, value_name = "STEP")]
    pub quit_after: Option<QuitAfter>,

    /// Send the message N times over one connection (RSET between).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub count: u32,

    /// Show AUTH secrets in the transcript.
    #[arg(long)]
    pub show_secrets: bool,

    /// How long to wait for the TCP connection.
    #[arg(long, value_name = "TIME", default_value = "10s")]
    pub connect_timeout: String,

    /// How long to wait for each reply (all of it, however slowly it comes).
    #[arg(long, value_name = "TIME", default_value = "30s")]
    pub timeout: String,

    /// How long the whole session may take, connect to QUIT (raise it for a large --count).
    #[arg(long, value_name = "TIME", default_value = "5m")]
    pub session_timeout: String,

    /// How long the TLS handshake may take.
    #[arg(long, value_name = "TIME", default_value = "10s")]
    pub tls_timeout: String,

    /// Output on stdout: text (a summary line) or json (a record per step).
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub output: MailOutput,

    /// Same as -o json.
    #[arg(long)]
    pub json: bool,
}

/// Most messages over one connection.
const MAX_COUNT: u32 = 100_000;
/// The default body, as swaks sends it.
const DEFAULT_BODY: &str = "This is a test mailing\n";

/// HOST[:PORT], [V6]:PORT, or a bare IPv6 address.
fn parse_server(text: &str, default_port: u16) -> Result<(String, u16), UsageError> {
    use crate::target::endpoint::{EndpointError, parse_host_opt_port};
    let bad = |why: &str| UsageError::new(format!("--server {text:?}: {why}"));
    let (host, port) = parse_host_opt_port(text).map_err(|e| match e {
        EndpointError::BadPort(_) | EndpointError::PortZero => bad("the port must be 1-65535"),
        other => bad(&other.to_string()),
    })?;
    if host.contains(char::is_whitespace) {
        return Err(bad("no host"));
    }
    match port {
        None => Ok((host, default_port)),
        Some(0) => Err(bad("the port must be 1-65535")),
        Some(port) => Ok((host, port)),
    }
}

/// One line of stdin, without its line end.
fn read_stdin_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_body(spec: &str) -> anyhow::Result<String> {
    let bytes = if spec == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("cannot read the body from stdin")?;
        b
    } else if let Some(path) = spec.strip_prefix('@') {
        std::fs::read(path).map_err(|e| UsageError::new(format!("--body @{path}: {e}")))?
    } else {
        return Ok(spec.to_owned());
    };
    String::from_utf8(bytes).map_err(|_| {
        UsageError::new("--body: not UTF-8 text (attach binary files with --attach)").into()
    })
}

/// Everything validated, and what the printers need to know.
struct MailPlan {
    config: MailConfig,
    output: MailOutput,
    warnings: Vec<String>,
    server: String,
}

fn duration(flag: &str, text: &str) -> Result<Duration, UsageError> {
    let d = parse_duration(flag, text)?;
    if d.is_zero() {
        return Err(UsageError::new(format!("{flag}: must be more than 0")));
    }
    Ok(d)
}

impl MailPlan {
    fn from_args(args: MailArgs) -> anyhow::Result<MailPlan> {
        let tls_mode = if args.tls {
            TlsMode::Required
        } else if args.tls_on_connect {
            TlsMode::Implicit
        } else if args.no_tls {
            TlsMode::Never
        } else {
            TlsMode::IfOffered
        };
        let default_port = if tls_mode == TlsMode::Implicit {
            465
        } else {
            587
        };
        let (host, port) = parse_server(&args.server, default_port)?;
        if args.count == 0 || args.count > MAX_COUNT {
            return Err(UsageError::new(format!("--count: 1 to {MAX_COUNT}")).into());
        }
        let to: Vec<String> = args.to.iter().map(|t| t.trim().to_owned()).collect();
        if to.iter().any(String::is_empty) {
            return Err(UsageError::new("--to: an empty address").into());
        }
        if args.auth_password.as_deref() == Some("-") && args.body.as_deref() == Some("-") {
            return Err(
                UsageError::new("--auth-password - and --body - cannot both read stdin").into(),
            );
        }
        let auth = match &args.auth_user {
            None => None,
            Some(user) => {
                let pass = match args.auth_password.as_deref() {
                    Some("-") => read_stdin_line()?,
                    Some(p) => p.to_owned(),
                    None => std::env::var("SOCKEYE_SMTP_PASSWORD").map_err(|_| {
                        UsageError::new(
                            "--auth-user needs a password: --auth-password PASS, --auth-password - or SOCKEYE_SMTP_PASSWORD",
                        )
                    })?,
                };
                Some(Credentials {
                    user: user.clone(),
                    pass,
                })
            }
        };
        let mut headers = Vec::new();
        for h in &args.header {
            headers.push(parse_header(h).map_err(UsageError::new)?);
        }
        let mut warnings = Vec::new();
        if let Some(hf) = &args.header_from {
            if hf.contains(['\r', '\n', '\0']) {
                return Err(UsageError::new("--header-from: holds a line break").into());
            }
            if !hf.contains(args.from.as_str()) || args.from.is_empty() {
                warnings.push(format!(
                    "the From header ({hf}) is not the envelope sender (<{}>): the server does not check it, recipients see it",
                    args.from
                ));
            }
        }
        let mut attachments = Vec::new();
        for path in &args.attach {
            let data = std::fs::read(path)
                .map_err(|e| UsageError::new(format!("--attach {}: {e}", path.display())))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".to_owned());
            attachments.push(Attachment {
                content_type: content_type_for(&name).to_owned(),
                name,
                data,
            });
        }
        let body = match &args.body {
            Some(b) => read_body(b)?,
            None => DEFAULT_BODY.to_owned(),
        };
        let subject = match &args.subject {
            Some(s) => s.clone(),
            None => {
                let now = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc2822)
                    .unwrap_or_default();
                format!("test {now}")
            }
        };
        let spec = MessageSpec {
            envelope_from: args.from.clone(),
            to: to.clone(),
            header_from: args.header_from.clone(),
            subject,
            body,
            headers,
            attachments,
        };
        let mut dialogue =
            crate::mail::dialogue(tls_mode, auth, args.from.clone(), to, spec.build());
        if let Some(name) = &args.ehlo {
            // Checked with the rest below (spaces, line breaks).
            dialogue.hello_name = name.clone();
        }
        dialogue.auth_mechanism = args.auth.map(|a| match a {
            AuthArg::Plain => AuthMechanism::Plain,
            AuthArg::Login => AuthMechanism::Login,
        });
        dialogue.allow_plaintext_auth = args.allow_plaintext_auth;
        dialogue.messages = args.count;
        // Every address, name and secret checked, the TLS client started.
        let mut config = MailConfig::new(
            host.clone(),
            port,
            dialogue,
            args.insecure,
            args.ca_file.clone(),
        )
        .map_err(UsageError::new)?;
        if args.insecure {
            warnings.push(
                "--insecure: the server's certificate is not verified; anyone in the path can read the password"
                    .to_owned(),
            );
        }
        let quit_after = args.quit_after;
        let server = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        config.ehlo = args.ehlo;
        config.quit_after = quit_after;
        config.connect_timeout = duration("--connect-timeout", &args.connect_timeout)?;
        config.timeout = duration("--timeout", &args.timeout)?;
        config.tls_timeout = duration("--tls-timeout", &args.tls_timeout)?;
        config.session_timeout = duration("--session-timeout", &args.session_timeout)?;
        config.show_secrets = args.show_secrets;
        Ok(MailPlan {
            config,
            output: if args.json {
                MailOutput::Json
            } else {
                args.output
            },
            warnings,
            server,
        })
    }
}

/// Steps waiting for the printer at most: a session has a few at a time.
const EVENT_QUEUE: usize = 64;

impl run::Print for Printer {
    type Event = Event;
    fn event(&mut self, event: Event) -> std::io::Result<()> {
        // The transcript goes on even when stdout is gone: it is on stderr.
        Printer::event(self, event);
        Ok(())
    }
}

pub fn run(args: MailArgs, quiet: bool) -> anyhow::Result<u8> {
    let plan = MailPlan::from_args(args)?;
    let mut printer = Printer::new(quiet, plan.output == MailOutput::Json);
    if !quiet {
        for w in &plan.warnings {
            printer.event(Event::Warning { text: w.clone() });
        }
        printer.trying(&plan.server);
    }
    let runtime = run::runtime(Threads::One)?;
    let cancel = CancellationToken::new();
    runtime.block_on(async {
        run::cancel_on_signals(cancel.clone(), Notice::Silent);
        let (emit, printing) = run::print_on_thread(printer, EVENT_QUEUE, &cancel)?;
        let report = tokio::select! {
            r = crate::mail::send(&plan.config, emit) => Some(r),
            _ = cancel.cancelled() => None,
        };
        let Some(report) = report else {
            // The steps so far are printed, then nothing more.
            printing.finish(|_, _| ()).await?;
            return Ok(exit::INTERRUPTED);
        };
        let code = report.exit_code();
        let server = plan.server.clone();
        let written = printing
            .finish(move |mut printer, _| printer.summary(&report, &server))
            .await?;
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(anyhow::Error::new(e).context("cannot write output")),
        }
        Ok(code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_specs() {
        let ok = [
            ("mail.lab.test", ("mail.lab.test", 587)),
            ("198.18.0.2:465", ("198.18.0.2", 465)),
            ("[fd00::2]:25", ("fd00::2", 25)),
            ("[fd00::2]", ("fd00::2", 587)),
            ("fd00::2", ("fd00::2", 587)),
        ];
        for (text, (host, port)) in ok {
            assert_eq!(
                parse_server(text, 587).unwrap(),
                (host.to_owned(), port),
                "{text}"
            );
        }
        for bad in [
            "",
            ":25",
            "host:0",
            "host:x",
            "[fd00::2",
            "[fd00::2]x",
            "a b",
        ] {
            assert!(parse_server(bad, 587).is_err(), "{bad:?}");
        }
    }
}
