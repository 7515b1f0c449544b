//! `sockeye cat` (and the binary run under the name `ncat`): ncat's
//! command line, parsed by its own clap command so that ncat's `-v`, `-q`
//! and `-C` keep their meaning whatever sockeye's global flags are, then
//! validated into a [`crate::relay::Config`] before any socket opens.
//!
//! Exit status as ncat: 0 the session ended normally, 1 a network error
//! (refused, unreachable, timed out, TLS or proxy failure, reset), 2 bad
//! usage (nothing was sent).

use std::ffi::OsString;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{ArgAction, Parser, ValueEnum};
use tokio_util::sync::CancellationToken;

use super::run::{self, Threads};
use super::values::parse_duration;
use super::{UsageError, exit};
use crate::relay::exec::ExecCommand;
use crate::relay::{
    Access, Config, DEFAULT_MAX_QUEUE, DEFAULT_PORT, DataOpts, ExecSpec, Family, HubKind, Mode,
    Notice, Proto, ProxyConfig, ProxyKind, ProxyServer, RelayError, Tap, Timing, TlsOptions,
};
use crate::report::relay::NoticePrinter;
use crate::target::endpoint::{EndpointError, parse_host_opt_port};
use crate::target::{ExcludeItem, Excludes, HostSpec, parse_exclude_list};

const ABOUT: &str =
    "A netcat that speaks ncat's language: connect, listen, exec, broker, chat, TLS, proxies.";

const AFTER: &str = "\
Connect: sockeye cat HOST [PORT]; listen: sockeye cat -l [HOST] [PORT] or -lp PORT.
The default port is 31337. Installed as (or linked to) `ncat`, it is ncat.

Examples:
  sockeye cat -lp 10101                             one client, stdin/stdout
  sockeye cat localhost 10101                       connect
  sockeye cat -c 'echo hello world' -lp 10101 -k    a MOTD server, every client
  sockeye cat -c cat -lp 10101 -k                   an echo server
  sockeye cat -l --broker 10101                     clients talk to each other
  sockeye cat -l --chat 10101                       named clients, announcements
  sockeye cat -z 127.0.0.1 20-25,80                 which ports accept
  sockeye cat --ssl -l 8443                         TLS with a generated certificate
  sockeye cat --ssl --ssl-alpn h2 host 443
  sockeye cat --proxy 127.0.0.1:1080 --proxy-type socks5 host 80
  sockeye cat -l 3128 --proxy-type http             an HTTP proxy (CONNECT, GET, HEAD, POST)
  sockeye cat -x dump.txt host 80                   hex dump: > sent, < received

Half-close: stdin EOF sends FIN (TLS: close_notify) and keeps receiving; the
peer's FIN ends what it sends, and the session ends once stdin has ended too
(as ncat); a child's (-e/-c) output EOF ends its session.
See the README's table for every case.

Exit status: 0 done, 1 network error (refused, unreachable, timed out, TLS,
proxy, reset, idle timeout), 2 bad usage (nothing was sent) or, as ncat, a
listener's idle timeout.";

/// ncat's options, as typed.
#[derive(Debug, Parser)]
#[command(name = "sockeye cat", about = ABOUT, after_help = AFTER, max_term_width = 100)]
#[command(disable_version_flag = true)]
pub struct CatArgs {
    /// Listen for connections instead of connecting.
    #[arg(short = 'l', long = "listen")]
    pub listen: bool,

    /// Listen mode: the port to listen on. Connect mode: the source port.
    #[arg(short = 'p', long = "source-port", value_name = "PORT")]
    pub port: Option<String>,

    /// Accept more clients after the first (listen mode).
    #[arg(short = 'k', long = "keep-open")]
    pub keep_open: bool,

    /// IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,

    /// UDP instead of TCP.
    #[arg(short = 'u', long = "udp")]
    pub udp: bool,

    /// Unix-domain socket: HOST is its path.
    #[arg(short = 'U', long = "unixsock")]
    pub unix: bool,

    /// Run PROG (split on spaces) with its stdin/stdout connected to the peer.
    #[arg(
        short = 'e',
        long = "exec",
        value_name = "PROG",
        conflicts_with = "sh_exec"
    )]
    pub exec: Option<String>,

    /// Run CMD with /bin/sh -c, its stdin/stdout connected to the peer.
    #[arg(
        short = 'c',
        long = "sh-exec",
        value_name = "CMD",
        conflicts_with = "lua_exec"
    )]
    pub sh_exec: Option<String>,

    /// Run the Lua script FILE with the system's interpreter (lua5.4,
    /// lua5.3 or lua on PATH), as -e runs a program.
    #[arg(long = "lua-exec", value_name = "FILE", conflicts_with = "exec")]
    pub lua_exec: Option<std::path::PathBuf>,

    /// Give the -e/-c child a terminal (a pty).
    #[arg(long)]
    pub pty: bool,

    /// Send the -e/-c child's stderr to the peer too.
    #[arg(long)]
    pub stderr: bool,

    /// Connection brokering: what a client sends goes to every other client.
    #[arg(long)]
    pub broker: bool,

    /// A chat server: a broker that names clients and announces them.
    #[arg(long, alias = "talk")]
    pub chat: bool,

    /// At most N clients at once (default: 100 with -e/-c, as ncat; else as many as the open-file limit allows).
    #[arg(short = 'm', long = "max-conns", value_name = "N")]
    pub max_conns: Option<usize>,

    /// Bytes queued for a broker/chat client that stops reading before it is dropped.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_QUEUE)]
    pub max_queue: usize,

    /// Serve only these hosts (comma-separated; addresses, CIDR, ranges).
    #[arg(long, value_name = "HOSTS", action = ArgAction::Append)]
    pub allow: Vec<String>,

    /// Serve only the hosts listed in FILE.
    #[arg(long, value_name = "FILE")]
    pub allowfile: Option<PathBuf>,

    /// Refuse these hosts.
    #[arg(long, value_name = "HOSTS", action = ArgAction::Append)]
    pub deny: Vec<String>,

    /// Refuse the hosts listed in FILE.
    #[arg(long, value_name = "FILE")]
    pub denyfile: Option<PathBuf>,

    /// Only send; ignore what arrives, and quit at stdin's EOF.
    #[arg(long, conflicts_with = "recv_only")]
    pub send_only: bool,

    /// Only receive; do not read stdin.
    #[arg(long)]
    pub recv_only: bool,

    /// Do not send FIN at stdin's EOF (half-duplex peers that quit on it).
    #[arg(long)]
    pub no_shutdown: bool,

    /// Send CRLF for LF.
    #[arg(short = 'C', long = "crlf")]
    pub crlf: bool,

    /// Copy everything sent and received to FILE.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Hex dump of everything sent (>) and received (<) to FILE.
    #[arg(short = 'x', long = "hex-dump", value_name = "FILE")]
    pub hex_dump: Option<PathBuf>,

    /// Connect timeout (e.g. 2, 500ms, 1m).
    #[arg(short = 'w', long = "wait", value_name = "TIME")]
    pub wait: Option<String>,

    /// Quit when nothing was sent or received for TIME.
    #[arg(short = 'i', long = "idle-timeout", value_name = "TIME")]
    pub idle_timeout: Option<String>,

    /// Quit SECS after stdin's EOF.
    #[arg(short = 'q', value_name = "SECS")]
    pub quit_after_eof: Option<String>,

    /// Wait TIME between reads of stdin.
    #[arg(short = 'd', long = "delay", value_name = "TIME")]
    pub delay: Option<String>,

    /// Zero-I/O: report which ports accept a connection (PORT may be a list or range).
    #[arg(short = 'z')]
    pub zero_io: bool,

    /// Source address to connect from.
    #[arg(short = 's', long = "source", value_name = "ADDR")]
    pub source: Option<String>,

    /// Numeric addresses only: no DNS.
    #[arg(short = 'n', long = "nodns")]
    pub nodns: bool,

    /// TLS.
    #[arg(long)]
    pub ssl: bool,

    /// Certificate (PEM) to present.
    #[arg(long, value_name = "FILE")]
    pub ssl_cert: Option<PathBuf>,

    /// Private key (PEM) of --ssl-cert.
    #[arg(long, value_name = "FILE")]
    pub ssl_key: Option<PathBuf>,

    /// Verify the peer: the server's certificate, or (listen mode) require client certificates.
    #[arg(long)]
    pub ssl_verify: bool,

    /// CA certificates (PEM) to verify against (default: the system's).
    #[arg(long, value_name = "FILE")]
    pub ssl_trustfile: Option<PathBuf>,

    /// Server name to send and verify (default: HOST).
    #[arg(long, value_name = "NAME")]
    pub ssl_servername: Option<String>,

    /// ALPN protocols to offer or accept, comma-separated (e.g. h2,http/1.1).
    #[arg(long, value_name = "LIST")]
    pub ssl_alpn: Option<String>,

    /// Connect through a proxy at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy: Option<String>,

    /// Proxy protocol (default: http). With -l and http: serve as an HTTP proxy.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub proxy_type: Option<ProxyTypeArg>,

    /// Proxy credentials USER:PASS (with -l --proxy-type http: the ones clients must give).
    #[arg(long, value_name = "USER:PASS")]
    pub proxy_auth: Option<String>,

    /// More messages on stderr (repeatable).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,

    /// Print the version and exit.
    #[arg(long)]
    pub version: bool,

    /// Host (connect), or address to listen on; with -U a socket path.
    #[arg(value_name = "HOST")]
    pub host: Option<String>,

    /// Port (connect: with -z a list or range such as 20-25,80).
    #[arg(value_name = "PORT")]
    pub port_arg: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyTypeArg {
    Http,
    /// SOCKS4, a name sent for the proxy to resolve (SOCKS4a), as ncat's socks4.
    #[value(alias = "socks4a")]
    Socks4,
    Socks5,
}

/// What the CLI needs besides the engine's configuration.
#[derive(Debug)]
pub struct Extras {
    pub verbose: u8,
    pub output: Option<PathBuf>,
    pub hex_dump: Option<PathBuf>,
    /// -z over more than one port: open ports are listed on stdout.
    pub list_open: bool,
}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError::new(msg)
}

fn parse_port(text: &str) -> Result<u16, UsageError> {
    text.parse::<u16>().map_err(|_| bad_port(text))
}

fn bad_port(text: &str) -> UsageError {
    usage(format!("invalid port {text:?}: expected 0-65535"))
}

fn host_set(
    texts: &[String],
    file: Option<&PathBuf>,
    what: &str,
) -> Result<Option<Excludes>, UsageError> {
    if texts.is_empty() && file.is_none() {
        return Ok(None);
    }
    let mut specs = Vec::new();
    for t in texts {
        specs.extend(parse_exclude_list(t).map_err(|e| usage(format!("--{what}: {e}")))?);
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--{what}file {}: {e}", path.display())))?;
        specs.extend(parse_exclude_list(&text).map_err(|e| usage(format!("--{what}file: {e}")))?);
    }
    let mut items = Vec::new();
    for spec in specs {
        match spec {
            HostSpec::Name(name) => {
                // Names are resolved once, now.
                let addrs = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0))
                    .map_err(|_| usage(format!("--{what}: could not resolve {name}")))?;
                items.extend(addrs.map(|a| ExcludeItem::Addr(a.ip())));
            }
            other => items.extend(ExcludeItem::from_spec(other)),
        }
    }
    Ok(Some(Excludes::new(items)))
}

/// The interpreters `--lua-exec` looks for on PATH, in this order.
const LUA_INTERPRETERS: [&str; 3] = ["lua5.4", "lua5.3", "lua"];

/// `--lua-exec FILE` as the program `-e` would run: the first Lua
/// interpreter on PATH with FILE (sockeye embeds no Lua; see the README).
fn lua_command(file: &std::path::Path) -> Result<ExecCommand, UsageError> {
    let found = LUA_INTERPRETERS.iter().find_map(|name| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|path| is_executable(path))
    });
    let Some(interpreter) = found else {
        return Err(usage(
            "--lua-exec needs a Lua interpreter (lua5.4, lua5.3 or lua) on PATH: install one (Debian: apt-get install lua5.4)",
        ));
    };
    if let Err(e) = std::fs::File::open(file) {
        return Err(usage(format!("--lua-exec {}: {e}", file.display())));
    }
    Ok(ExecCommand::Program(vec![
        interpreter.display().to_string(),
        file.display().to_string(),
    ]))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Turns what was typed into the engine's configuration.
pub fn config(a: &CatArgs) -> Result<(Config, Extras), UsageError> {
    let time =
        |flag: &str, v: &Option<String>| v.as_deref().map(|t| parse_duration(flag, t)).transpose();
    let timing = Timing {
        connect: time("-w", &a.wait)?,
        idle: time("-i", &a.idle_timeout)?,
        quit_after_eof: time("-q", &a.quit_after_eof)?,
        delay: time("-d", &a.delay)?,
    };
    let hub = match (a.broker, a.chat) {
        (_, true) => Some(HubKind::Chat),
        (true, false) => Some(HubKind::Broker),
        _ => None,
    };
    // --broker and --chat are listen-mode servers: they imply -l, as in ncat.
    let listen = a.listen || hub.is_some();
    let family = match (a.ipv4, a.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let exec = match (&a.exec, &a.sh_exec) {
        (Some(p), _) => {
            let argv: Vec<String> = p.split_whitespace().map(str::to_string).collect();
            if argv.is_empty() {
                return Err(usage("-e needs a program"));
            }
            Some(ExecCommand::Program(argv))
        }
        (_, Some(c)) => Some(ExecCommand::Shell(c.clone())),
        _ => match &a.lua_exec {
            Some(file) => Some(lua_command(file)?),
            None => None,
        },
    };
    if (a.pty || a.stderr) && exec.is_none() {
        return Err(usage("--pty and --stderr go with -e or -c"));
    }
    let exec = exec.map(|command| ExecSpec {
        command,
        pty: a.pty,
        stderr: a.stderr,
    });
    if hub.is_some() && exec.is_some() {
        return Err(usage(
            "--broker and --chat cannot be combined with -e or -c",
        ));
    }
    if listen && a.zero_io {
        return Err(usage("-z works in connect mode only"));
    }
    if listen && a.proxy.is_some() {
        return Err(usage("--proxy works in connect mode only"));
    }
    let proxy_server = match (listen, a.proxy_type) {
        (true, Some(ProxyTypeArg::Http)) => Some(ProxyServer {
            auth: a.proxy_auth.as_deref().map(user_pass).transpose()?,
        }),
        (true, Some(_)) => return Err(usage("-l serves --proxy-type http only")),
        _ => None,
    };
    if proxy_server.is_some() && (exec.is_some() || hub.is_some() || a.udp || a.unix) {
        return Err(usage(
            "-l --proxy-type http cannot be combined with -e, -c, --broker, --chat, -u or -U",
        ));
    }
    let any_ssl = a.ssl
        || a.ssl_cert.is_some()
        || a.ssl_key.is_some()
        || a.ssl_verify
        || a.ssl_trustfile.is_some()
        || a.ssl_servername.is_some()
        || a.ssl_alpn.is_some();
    if any_ssl && a.udp {
        return Err(usage("--ssl over UDP (DTLS) is not supported"));
    }
    if a.udp && a.proxy.is_some() {
        return Err(usage("-u cannot be combined with --proxy"));
    }
    if a.udp && a.unix && (a.keep_open || a.zero_io) {
        return Err(usage("-U -u serves one peer: not with -k or -z"));
    }
    if a.ssl_cert.is_some() != a.ssl_key.is_some() {
        return Err(usage("--ssl-cert and --ssl-key go together"));
    }
    if a.unix && (a.proxy.is_some() || a.source.is_some()) {
        return Err(usage("-U cannot be combined with --proxy or -s"));
    }
    if a.nodns {
        for h in [&a.host, &a.source].into_iter().flatten() {
            if !a.unix && h.parse::<IpAddr>().is_err() {
                return Err(usage(format!("-n: {h:?} is not a numeric address")));
            }
        }
    }
    let tls = any_ssl.then(|| TlsOptions {
        cert: a.ssl_cert.clone(),
        key: a.ssl_key.clone(),
        // ncat 7.93 verifies a server against --ssl-trustfile without
        // --ssl-verify too (its manual says otherwise); listen mode asks
        // for client certificates only with --ssl-verify.
        verify: a.ssl_verify || (a.ssl_trustfile.is_some() && !listen),
        trustfile: a.ssl_trustfile.clone(),
        servername: a.ssl_servername.clone(),
        alpn: a
            .ssl_alpn
            .as_deref()
            .map(|l| {
                l.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    });
    let proxy = match &a.proxy {
        Some(p) => {
            let (host, port) = split_host_port(p)?;
            let kind = match a.proxy_type.unwrap_or(ProxyTypeArg::Http) {
                ProxyTypeArg::Http => ProxyKind::Http,
                ProxyTypeArg::Socks4 => ProxyKind::Socks4,
                ProxyTypeArg::Socks5 => ProxyKind::Socks5,
            };
            // SOCKS4 has a user id only: the whole text, as ncat sends it.
            let auth = match (kind, a.proxy_auth.as_deref()) {
                (ProxyKind::Socks4, Some(id)) => Some((id.to_string(), String::new())),
                (_, text) => text.map(user_pass).transpose()?,
            };
            Some(ProxyConfig {
                host,
                port: port.unwrap_or(match kind {
                    ProxyKind::Http => 3128,
                    ProxyKind::Socks4 | ProxyKind::Socks5 => 1080,
                }),
                kind,
                auth,
            })
        }
        None if a.proxy_auth.is_some() && proxy_server.is_none() => {
            return Err(usage(
                "--proxy-auth needs --proxy (or -l --proxy-type http)",
            ));
        }
        None => None,
    };
    let source = a
        .source
        .as_deref()
        .map(|s| {
            s.parse::<IpAddr>()
                .map_err(|_| usage(format!("-s {s:?}: expected an IP address")))
        })
        .transpose()?;
    let mut list_open = false;
    let (mode, unix, source_port) = if a.unix {
        let path = a
            .host
            .clone()
            .ok_or_else(|| usage("-U needs a socket path"))?;
        if a.port_arg.is_some() {
            return Err(usage("-U takes a path, not a port"));
        }
        let mode = if listen {
            Mode::Listen {
                addr: None,
                port: 0,
            }
        } else {
            Mode::Connect {
                host: path.clone(),
                ports: vec![],
            }
        };
        (mode, Some(PathBuf::from(path)), None)
    } else if listen {
        // -l [HOST] [PORT]; -lp PORT; -l PORT.
        let (host, port_text) = match (&a.host, &a.port_arg) {
            (Some(h), Some(p)) => (Some(h.clone()), Some(p.clone())),
            (Some(one), None) if one.parse::<u16>().is_ok() => (None, Some(one.clone())),
            (Some(h), None) => (Some(h.clone()), None),
            _ => (None, None),
        };
        if port_text.is_some() && a.port.is_some() {
            return Err(usage(
                "give the listen port once: -p PORT or a PORT argument",
            ));
        }
        let port = match port_text.as_deref().or(a.port.as_deref()) {
            Some(p) => parse_port(p)?,
            None => DEFAULT_PORT,
        };
        let addr = match host {
            Some(h) => Some(resolve_listen(&h, family)?),
            None => None,
        };
        (Mode::Listen { addr, port }, None, None)
    } else {
        let host = a
            .host
            .clone()
            .ok_or_else(|| usage("no host given: sockeye cat HOST [PORT], or -l to listen"))?;
        let ports = match &a.port_arg {
            Some(p) if a.zero_io => {
                let list =
                    crate::target::ports::parse_ports(p).map_err(|e| usage(e.to_string()))?;
                if list.tcp.is_empty() {
                    return Err(usage(format!("no TCP port in {p:?}")));
                }
                list.tcp
            }
            Some(p) => vec![parse_port(p)?],
            None => vec![DEFAULT_PORT],
        };
        list_open = a.zero_io && ports.len() > 1;
        let source_port = a.port.as_deref().map(parse_port).transpose()?;
        (Mode::Connect { host, ports }, None, source_port)
    };
    let access = Access {
        allow: host_set(&a.allow, a.allowfile.as_ref(), "allow")?,
        deny: host_set(&a.deny, a.denyfile.as_ref(), "deny")?,
    };
    if a.max_conns == Some(0) {
        return Err(usage("-m must be at least 1"));
    }
    if a.max_queue < 1024 {
        return Err(usage("--max-queue must be at least 1024 bytes"));
    }
    let keep_open = a.keep_open || hub.is_some();
    let cfg = Config {
        mode,
        proto: if a.udp { Proto::Udp } else { Proto::Tcp },
        family,
        unix,
        exec,
        hub,
        keep_open,
        max_conns: a.max_conns.unwrap_or(usize::MAX),
        access,
        data: DataOpts {
            send_only: a.send_only,
            recv_only: a.recv_only,
            no_shutdown: a.no_shutdown,
            crlf: a.crlf,
        },
        timing,
        zero_io: a.zero_io,
        source,
        source_port,
        tls,
        proxy,
        proxy_server,
        max_queue: a.max_queue,
    };
    Ok((
        cfg,
        Extras {
            verbose: a.verbose,
            output: a.output.clone(),
            hex_dump: a.hex_dump.clone(),
            list_open,
        },
    ))
}

/// `--proxy-auth USER:PASS`, split at the first colon.
fn user_pass(cred: &str) -> Result<(String, String), UsageError> {
    let (u, pw) = cred
        .split_once(':')
        .ok_or_else(|| usage("--proxy-auth expects USER:PASS"))?;
    Ok((u.to_string(), pw.to_string()))
}

fn split_host_port(text: &str) -> Result<(String, Option<u16>), UsageError> {
    parse_host_opt_port(text).map_err(|e| match e {
        EndpointError::BadPort(p) => bad_port(&p),
        EndpointError::MissingBracket => usage(format!("--proxy {text:?}: missing ]")),
        e => usage(format!("--proxy {text:?}: {e}")),
    })
}

fn resolve_listen(host: &str, family: Family) -> Result<IpAddr, UsageError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
        .ok()
        .and_then(|mut it| it.find(|a| family.allows(a.ip())))
        .map(|a| a.ip())
        .ok_or_else(|| usage(format!("could not resolve {host}")))
}

/// The message prefix: ncat's own when run as `ncat`.
fn prefix(as_ncat: bool) -> &'static str {
    if as_ncat { "Ncat" } else { "sockeye cat" }
}

/// Entry point: `args` are the arguments after `cat` (or after `ncat`);
/// returns the exit status (see the module's documentation).
pub fn main(args: Vec<OsString>, as_ncat: bool) -> u8 {
    let name = if as_ncat { "ncat" } else { "sockeye cat" };
    let pre = prefix(as_ncat);
    let argv = std::iter::once(OsString::from(name)).chain(args);
    let parsed = match CatArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return exit::OK;
        }
        Err(err) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{pre}: {}",
                super::clap_one_line(&err)
            );
            return exit::USAGE;
        }
    };
    if parsed.version {
        let _ = writeln!(
            std::io::stdout().lock(),
            "{name} (sockeye {}, ncat-compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return exit::OK;
    }
    let (mut cfg, extras) = match config(&parsed) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "{pre}: {e}");
            return exit::USAGE;
        }
    };
    init_logging(extras.verbose);
    let limit = crate::sys::raise_nofile_limit();
    if cfg.max_conns == usize::MAX {
        // Each client holds one descriptor (an exec client four, a proxy client two).
        let per = match (&cfg.exec, &cfg.proxy_server) {
            (Some(_), _) => 4,
            (None, Some(_)) => 2,
            (None, None) => 1,
        };
        cfg.max_conns = (limit.saturating_sub(crate::sys::RESERVED_FDS) / per).max(1) as usize;
        if cfg.exec.is_some() {
            cfg.max_conns = cfg.max_conns.min(crate::relay::exec::DEFAULT_MAX_CONNS);
        }
    }
    let tap = match Tap::open(extras.output.as_deref(), extras.hex_dump.as_deref()) {
        Ok(t) => t.map(Arc::new),
        Err(e) => {
            // ncat stops with status 2 here (its bye()), before any socket.
            let _ = writeln!(
                std::io::stderr().lock(),
                "{pre}: cannot open the output file {e}"
            );
            return exit::USAGE;
        }
    };
    let printer = NoticePrinter {
        verbose: extras.verbose,
        list_open: extras.list_open,
        prefix: pre,
    };
    let listening = matches!(cfg.mode, Mode::Listen { .. });
    match relay(cfg, printer, tap) {
        Ok((Ok(()), interrupted)) => {
            if interrupted {
                exit::INTERRUPTED
            } else {
                exit::OK
            }
        }
        Ok((Err(e), _)) => {
            let _ = writeln!(std::io::stderr().lock(), "{pre}: {e}");
            match e {
                // ncat ends a listener's idle timeout with bye(): status 2.
                RelayError::Idle(_) if listening => exit::USAGE,
                _ => exit::FAILURE,
            }
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "{pre}: {e:#}");
            exit::FAILURE
        }
    }
}

/// Notices waiting for the printer thread at most (they are rare: one per
/// connection or port).
const NOTICE_QUEUE: usize = 256;

/// Runs the relay on the run harness: the runtime, the signal policy (the
/// first Ctrl-C or SIGTERM ends the session, the second exits at once) and
/// the notices printed on their own thread. Returns the relay's outcome and
/// whether a signal ended it.
fn relay(
    cfg: Config,
    printer: NoticePrinter,
    tap: Option<Arc<Tap>>,
) -> anyhow::Result<(Result<(), RelayError>, bool)> {
    // Standard input may be blocked in a read on the runtime's thread pool;
    // it cannot be cancelled, and dropping the runtime does not wait for it.
    let runtime = run::runtime(Threads::Many(None))?;
    let shutdown = CancellationToken::new();
    runtime.block_on(async {
        run::cancel_on_signals(shutdown.clone(), run::Notice::Silent);
        // The relay's bytes are the command's output: a notice that cannot
        // be written does not stop it.
        let (notices, printing) =
            run::print_on_thread(Notices(printer), NOTICE_QUEUE, &CancellationToken::new())?;
        let result = crate::relay::run(cfg, notices, tap, shutdown.child_token()).await;
        printing.finish(|_, _| ()).await?;
        Ok((result, shutdown.is_cancelled()))
    })
}

/// [`NoticePrinter`] on the printer thread: stdout for `-z`'s open ports,
/// stderr for the rest.
struct Notices(NoticePrinter);

impl run::Print for Notices {
    type Event = Notice;
    fn event(&mut self, n: Notice) -> std::io::Result<()> {
        self.0.print(
            &n,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0..=1 => "warn",
        2 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("SOCKEYE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(args: &[&str]) -> Result<(Config, Extras), UsageError> {
        let a = CatArgs::try_parse_from(std::iter::once("ncat").chain(args.iter().copied()))
            .map_err(|e| usage(e.to_string()))?;
        config(&a)
    }

    #[test]
    fn ncat_spellings() {
        let (c, _) = parse(&["-lp", "10101"]).unwrap();
        assert_eq!(
            c.mode,
            Mode::Listen {
                addr: None,
                port: 10101
            }
        );
        let (c, _) = parse(&["-l", "10101"]).unwrap();
        assert_eq!(
            c.mode,
            Mode::Listen {
                addr: None,
                port: 10101
            }
        );
        let (c, _) = parse(&["-c", "cat", "-lp", "10101", "-k"]).unwrap();
        assert!(c.keep_open && c.exec.is_some());
        let (c, _) = parse(&["-l"]).unwrap();
        assert_eq!(
            c.mode,
            Mode::Listen {
                addr: None,
                port: DEFAULT_PORT
            }
        );
        let (c, _) = parse(&["localhost"]).unwrap();
        assert_eq!(
            c.mode,
            Mode::Connect {
                host: "localhost".into(),
                ports: vec![DEFAULT_PORT]
            }
        );
        let (c, x) = parse(&["-z", "127.0.0.1", "20-22,80"]).unwrap();
        assert_eq!(
            c.mode,
            Mode::Connect {
                host: "127.0.0.1".into(),
                ports: vec![20, 21, 22, 80]
            }
        );
        assert!(x.list_open);
        let (c, _) = parse(&["-q", "1", "-v", "127.0.0.1", "80"]).unwrap();
        assert_eq!(c.timing.quit_after_eof, Some(Duration::from_secs(1)));
        let (c, _) = parse(&["--chat", "9000"]).unwrap();
        assert_eq!(c.hub, Some(HubKind::Chat));
        assert!(c.keep_open);
    }

    #[test]
    fn proxy_server_flags() {
        let (c, _) = parse(&["-l", "--proxy-type", "http", "3128"]).unwrap();
        assert_eq!(c.proxy_server, Some(ProxyServer { auth: None }));
        assert_eq!(c.proxy, None);
        let (c, _) = parse(&["-l", "--proxy-type", "http", "--proxy-auth", "u:p:q"]).unwrap();
        let auth = Some(("u".to_string(), "p:q".to_string()));
        assert_eq!(c.proxy_server, Some(ProxyServer { auth }));
        let (c, _) = parse(&["-l", "3128"]).unwrap();
        assert_eq!(c.proxy_server, None);
        // Connect mode keeps http as the default client protocol.
        let (c, _) = parse(&["--proxy", "p:1", "h", "80"]).unwrap();
        assert_eq!(c.proxy.map(|p| p.kind), Some(ProxyKind::Http));
        assert_eq!(c.proxy_server, None);
    }

    #[test]
    fn bad_combinations() {
        for bad in [
            &["-l", "-z"][..],
            &["--broker", "-c", "cat"],
            &["--send-only", "--recv-only", "h"],
            &["h", "99999"],
            &["-u", "--ssl", "h"],
            &["--ssl-cert", "c.pem", "h"],
            &["--pty", "h"],
            &[],
            &["-w", "forever", "h"],
            &["-n", "localhost", "80"],
            &["-u", "-U", "-k", "-l", "/tmp/s"],
            &["-u", "--proxy", "p:1080", "h", "53"],
            &["-l", "--proxy-type", "socks5"],
            &["-l", "--proxy-type", "http", "--chat"],
            &["-l", "--proxy-type", "http", "-e", "cat"],
            &["-l", "--proxy-type", "http", "-U", "/tmp/s"],
            &["-l", "--proxy-auth", "u:p"],
            &["--proxy-type", "http", "-l", "--proxy-auth", "nocolon"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
