//! `sockeye calc` and `sockeye calc serve`: flags into configuration, then
//! the server or the client from `crate::calc`.

use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::net::SocketAddr;

use anyhow::Context;
use sockeye_proto::calc::ByteOrder;
use tokio_util::sync::CancellationToken;

use super::args::{CalcArgs, CalcClientArgs, CalcCommand, CalcServeArgs};
use super::run::{self, Notice, Threads};
use super::values::parse_duration;
use super::{UsageError, exit};
use crate::calc::client::{self, ClientConfig, Job};
use crate::calc::server::{self, ServerConfig};
use crate::report::calc::{AnswerPrinter, CalcEvent};

/// Default ceiling on TCP connections (also bounded by the open-file limit).
const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

pub fn run(args: CalcArgs) -> anyhow::Result<u8> {
    match args.command {
        Some(CalcCommand::Serve(serve)) => run_server(serve),
        None => run_client(args.client),
    }
}

fn order(little: bool) -> ByteOrder {
    if little {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    }
}

fn run_server(args: CalcServeArgs) -> anyhow::Result<u8> {
    // A bare port listens on every IPv4 address, as `cat -l PORT` does.
    let listen: SocketAddr = match args.listen.parse::<u16>() {
        Ok(port) => SocketAddr::from(([0, 0, 0, 0], port)),
        Err(_) => args.listen.parse().map_err(|_| {
            UsageError::new(format!(
                "--listen {:?}: expected ADDR:PORT or PORT, e.g. 127.0.0.1:7000, [::1]:7000 or 7000",
                args.listen
            ))
        })?,
    };
    let fd_limit = crate::sys::raise_nofile_limit();
    let fd_room = fd_limit.saturating_sub(crate::sys::RESERVED_FDS).max(1) as usize;
    let max_connections = match args.max_connections {
        Some(0) => return Err(UsageError::new("--max-connections 0: must be at least 1").into()),
        Some(n) => n.min(fd_room),
        None => DEFAULT_MAX_CONNECTIONS.min(fd_room),
    };
    let cfg = ServerConfig {
        order: order(args.little_endian),
        max_connections,
        max_per_address: match args.max_per_address {
            0 => return Err(UsageError::new("--max-per-address 0: must be at least 1").into()),
            n => n,
        },
        idle_timeout: parse_duration("--idle-timeout", &args.idle_timeout)?,
        request_timeout: parse_duration("--request-timeout", &args.request_timeout)?,
        write_timeout: parse_duration("--write-timeout", &args.write_timeout)?,
        udp_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let rt = run::runtime(Threads::Many(None))?;
    rt.block_on(async move {
        let tcp = if args.udp_only {
            None
        } else {
            Some(tcp_listener(listen).with_context(|| format!("cannot listen on TCP {listen}"))?)
        };
        // UDP takes the port TCP got (port 0 picks one for both).
        let port = match &tcp {
            Some(l) => l.local_addr()?.port(),
            None => listen.port(),
        };
        let udp_addr = SocketAddr::new(listen.ip(), port);
        let udp = if args.tcp_only {
            None
        } else {
            Some(
                tokio::net::UdpSocket::bind(udp_addr)
                    .await
                    .with_context(|| format!("cannot listen on UDP {udp_addr}"))?,
            )
        };
        let bound = SocketAddr::new(listen.ip(), port);
        let transports = match (&tcp, &udp) {
            (Some(_), Some(_)) => "tcp, udp",
            (Some(_), None) => "tcp",
            _ => "udp",
        };
        // Before "listening on": whoever reads that line may stop us at once.
        let shutdown = CancellationToken::new();
        run::cancel_on_signals(shutdown.clone(), Notice::Shutdown);
        {
            let mut out = io::stdout().lock();
            writeln!(out, "listening on {bound} ({transports})")?;
            out.flush()?;
        }
        server::serve(tcp, udp, cfg, shutdown).await;
        Ok(exit::OK)
    })
}

/// Listen backlog: clients arriving in a burst (thousands connecting at
/// once, or waiting past --max-connections) queue here rather than being
/// dropped; the kernel caps it at net.core.somaxconn.
const BACKLOG: u32 = 4096;

fn tcp_listener(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

fn run_client(args: CalcClientArgs) -> anyhow::Result<u8> {
    let server_text = args
        .server
        .clone()
        .ok_or_else(|| UsageError::new("--server HOST:PORT is required"))?;
    let reply_timeout = parse_duration("--timeout", &args.timeout)?;
    let connect_timeout = parse_duration("--connect-timeout", &args.connect_timeout)?;
    let single = args.op.is_some();
    let jobs: Vec<Job> = match (&args.op, &args.file) {
        (Some(op), _) => {
            let words: Vec<&str> = args.numbers.iter().map(String::as_str).collect();
            vec![client::make_job(args.id, op, &words).map_err(UsageError::new)?]
        }
        (None, Some(path)) => {
            let text = if path.as_os_str() == "-" {
                read_stdin()?
            } else {
                // A file named on the command line that cannot be read is
                // bad usage (status 2), as a bad value is.
                std::fs::read_to_string(path).map_err(|e| {
                    UsageError::new(format!("--file {}: cannot read: {e}", path.display()))
                })?
            };
            client::parse_jobs(&text, args.id)
                .map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?
        }
        (None, None) => {
            if io::stdin().is_terminal() {
                return Err(UsageError::new(
                    "give an operation and numbers (sockeye calc -s HOST:PORT SUM 1 2 3), --file FILE, or requests on stdin",
                )
                .into());
            }
            client::parse_jobs(&read_stdin()?, args.id)
                .map_err(|e| UsageError::new(format!("stdin: {e}")))?
        }
    };
    let rt = run::runtime(Threads::Many(None))?;
    // A printer that cannot write stops the run.
    let cancel = CancellationToken::new();
    rt.block_on(async move {
        let server = resolve(&server_text).await?;
        let cfg = ClientConfig {
            server,
            order: order(args.little_endian),
            connect_timeout,
            reply_timeout,
        };
        let printer = Answers(AnswerPrinter::new(BufWriter::new(io::stdout()), single));
        let (emit, printing) = run::print_on_thread(printer, ANSWER_QUEUE, &cancel)?;
        let outcome = if args.udp {
            // Each unanswered request is reported as it times out; the
            // others go on.
            client::run_udp(&cfg, &jobs, &emit)
                .await
                .map_err(|err| (err, true))
        } else {
            client::run_tcp(&cfg, &jobs, &emit)
                .await
                .map_err(|err| (err, false))
        };
        drop(emit);
        let written = printing.finish(|printer, _| printer.0.finish()).await?;
        if let Err(e) = written
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            return Err(anyhow::Error::new(e).context("cannot write results"));
        }
        match outcome {
            Ok(()) => Ok(exit::OK),
            Err((err, reported)) => {
                if !reported || !matches!(err, client::ClientError::NoReply { .. }) {
                    let _ = writeln!(io::stderr().lock(), "sockeye: {err}");
                }
                Ok(exit::FAILURE)
            }
        }
    })
}

/// Answers waiting for the printer thread at most.
const ANSWER_QUEUE: usize = 1024;

/// [`AnswerPrinter`] on the printer thread: answers to stdout, unanswered
/// requests to stderr.
struct Answers(AnswerPrinter<BufWriter<io::Stdout>>);

impl run::Print for Answers {
    type Event = CalcEvent;
    fn event(&mut self, event: CalcEvent) -> io::Result<()> {
        self.0.event(event, &mut io::stderr().lock())
    }
}

fn read_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    io::stdin()
        .read_to_string(&mut s)
        .context("cannot read requests from stdin")?;
    Ok(s)
}

async fn resolve(text: &str) -> anyhow::Result<SocketAddr> {
    crate::target::resolve::lookup_host_port(text)
        .await
        .map_err(|e| UsageError::new(format!("--server {text:?}: {e}")).into())
}
