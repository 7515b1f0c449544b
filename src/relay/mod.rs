//! The netcat engine behind `sockeye cat` (and the `ncat` name): connect,
//! listen, broker, chat, exec, UDP peers, TLS, proxies, hex dumps.
//!
//! [`Config`] is what `cli::cat` validated; [`run`] opens the sockets and
//! relays bytes until the session ends, reporting what happened as
//! [`Notice`]s through a [`crate::report::Emit`] (the engine never prints:
//! the CLI decides what reaches stderr). Every session follows the half-close contract of the README:
//! standard input's EOF sends a FIN (or TLS close_notify), the peer's FIN
//! ends a stdio session, a child's output EOF ends an exec session.

pub mod access;
pub mod broker;
pub mod connect;
pub mod exec;
pub mod hexdump;
pub mod listen;
pub mod listener;
pub mod proxy;
pub mod proxy_server;
pub mod session;
pub mod splice;
pub mod stream;
pub mod tls;
pub mod udp;
pub mod unix_dgram;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::report::Emit;

pub use crate::report::relay::Notice;
pub use access::Access;
pub use exec::ExecSpec;
pub use hexdump::Tap;
pub use listener::Listener;
pub use proxy::{ProxyConfig, ProxyKind};
pub use tls::TlsOptions;

pub use crate::target::Proto;

/// Default port when none is given (ncat's).
pub const DEFAULT_PORT: u16 = 31337;

/// Default bytes a hub client may have waiting before it is disconnected.
pub const DEFAULT_MAX_QUEUE: usize = 1 << 20;

/// How long an exec session keeps reading (and discarding) the peer's bytes
/// after the child's output ended, so that closing does not turn unread
/// bytes into a reset that could cut the response short at the peer.
pub const LINGER: Duration = Duration::from_millis(500);

/// Where the session's network end comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Connect to `host` on `port` (or scan `ports` with `-z`).
    Connect { host: String, ports: Vec<u16> },
    /// Listen on `addr` (None: every address of the chosen family).
    Listen { addr: Option<IpAddr>, port: u16 },
}

/// Address family restriction (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

impl Family {
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// The hubs of listen mode: many clients at once, served by `broker.rs`.
/// Without one, listen mode serves one client (or, with `-k` and exec, one
/// child per client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubKind {
    /// `--broker`: what one client sends goes to every other client.
    Broker,
    /// `--chat`: a broker that names clients and announces arrivals.
    Chat,
    /// `-k` without exec: standard input goes to every client, what
    /// clients send goes to standard output.
    Stdio,
}

/// Timeouts and pacing (`-w`, `-i`, `-q`, `-d`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// Connect (and TLS/proxy handshake) timeout.
    pub connect: Option<Duration>,
    /// End a session with no data in either direction for this long.
    pub idle: Option<Duration>,
    /// After standard input's EOF, quit after this long.
    pub quit_after_eof: Option<Duration>,
    /// Pause between reads from standard input.
    pub delay: Option<Duration>,
}

/// Data-path switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataOpts {
    pub send_only: bool,
    pub recv_only: bool,
    pub no_shutdown: bool,
    /// `-C`: LF becomes CRLF on the way out.
    pub crlf: bool,
}

/// `-l --proxy-type http`: listen mode serves as an HTTP proxy (`proxy_server.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyServer {
    /// `--proxy-auth USER:PASS`: clients must authenticate (Basic or Digest).
    pub auth: Option<(String, String)>,
}

/// Validated configuration of one `sockeye cat` run.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub proto: Proto,
    pub family: Family,
    /// `-U`: a Unix-domain socket path instead of host and port.
    pub unix: Option<PathBuf>,
    pub exec: Option<ExecSpec>,
    /// `--broker` or `--chat` (see [`Config::listen_hub`] for the rest).
    pub hub: Option<HubKind>,
    pub keep_open: bool,
    pub max_conns: usize,
    pub access: Access,
    pub data: DataOpts,
    pub timing: Timing,
    /// `-z`: connect and report, send nothing.
    pub zero_io: bool,
    pub source: Option<IpAddr>,
    pub source_port: Option<u16>,
    pub tls: Option<TlsOptions>,
    pub proxy: Option<ProxyConfig>,
    /// Listen mode as an HTTP proxy server.
    pub proxy_server: Option<ProxyServer>,
    /// Bytes a hub client may have queued before it is disconnected.
    pub max_queue: usize,
}

impl Config {
    /// The hub listen mode serves: the one asked for, or the standard
    /// input/output hub of `-k` without a child.
    pub fn listen_hub(&self) -> Option<HubKind> {
        self.hub
            .or((self.keep_open && self.exec.is_none()).then_some(HubKind::Stdio))
    }
}

/// Why a run failed; each maps to one line on stderr and exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("could not resolve {0}")]
    Resolve(String),
    #[error("connection to {0} refused")]
    Refused(String),
    #[error("connection to {0} timed out")]
    ConnectTimeout(String),
    #[error("{0} is unreachable")]
    Unreachable(String),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {peer} failed: {why}")]
    Tls { peer: String, why: String },
    #[error("TLS setup: {0}")]
    TlsConfig(String),
    #[error("proxy {proxy}: {why}")]
    Proxy { proxy: String, why: String },
    #[error("connection reset by peer")]
    Reset,
    #[error("idle timeout expired ({0} ms)")]
    Idle(u128),
    #[error("cannot run {cmd}: {source}")]
    Exec { cmd: String, source: std::io::Error },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("no port open")]
    NothingOpen,
}

impl RelayError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> RelayError {
        move |source| {
            if source.kind() == std::io::ErrorKind::ConnectionReset {
                RelayError::Reset
            } else {
                RelayError::Io { what, source }
            }
        }
    }
}

/// Runs the configured relay until it ends (or `shutdown` is cancelled).
pub async fn run(
    cfg: Config,
    notices: Emit<Notice>,
    tap: Option<Arc<Tap>>,
    shutdown: CancellationToken,
) -> Result<(), RelayError> {
    if let (Mode::Listen { .. }, Proto::Tcp) = (&cfg.mode, cfg.proto) {
        let listener = Listener::bind(&cfg)?;
        return serve(cfg, listener, notices, tap, shutdown).await;
    }
    let ctx = Ctx::new(cfg, notices, tap, shutdown);
    let cfg = &ctx.cfg;
    match (&cfg.mode, cfg.proto) {
        (Mode::Connect { .. }, _) if cfg.zero_io => connect::zero_io(&ctx).await,
        (Mode::Connect { .. }, Proto::Tcp) => connect::run(&ctx).await,
        (Mode::Connect { .. }, Proto::Udp) => udp::connect(&ctx).await,
        // TCP was served above.
        (Mode::Listen { .. }, _) => udp::listen(&ctx).await,
    }
}

/// Listen mode (TCP or a Unix socket) on a listener the caller bound:
/// `cfg`'s address, port and `-U` path are not used. Serves one client,
/// one child per client, a hub or HTTP proxy clients, as `cfg` says, until the session ends
/// or `shutdown` is cancelled.
pub async fn serve(
    cfg: Config,
    listener: Listener,
    notices: Emit<Notice>,
    tap: Option<Arc<Tap>>,
    shutdown: CancellationToken,
) -> Result<(), RelayError> {
    let ctx = Ctx::new(cfg, notices, tap, shutdown);
    ctx.notice(Notice::Listening(listener.label().to_string()))
        .await;
    let tls = listener::tls_config(&ctx).await?;
    if ctx.cfg.proxy_server.is_some() {
        return proxy_server::serve(&ctx, listener, tls).await;
    }
    match ctx.cfg.listen_hub() {
        Some(kind) => broker::serve(&ctx, listener, tls, kind).await,
        None => listen::serve(&ctx, listener, tls).await,
    }
}

/// What every part of a run shares.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) cfg: Arc<Config>,
    pub(crate) notices: Emit<Notice>,
    pub(crate) tap: Option<Arc<Tap>>,
    pub(crate) shutdown: CancellationToken,
}

impl Ctx {
    fn new(
        cfg: Config,
        notices: Emit<Notice>,
        tap: Option<Arc<Tap>>,
        shutdown: CancellationToken,
    ) -> Ctx {
        Ctx {
            cfg: Arc::new(cfg),
            notices,
            tap,
            shutdown,
        }
    }

    /// Tells the reader of the notices; one that went away (its output is
    /// gone) does not stop the relay: the bytes are the command's work.
    pub(crate) async fn notice(&self, n: Notice) {
        let _ = self.notices.send(n).await;
    }

    /// [`Ctx::notice`] from code that cannot wait (a broker's fan-out):
    /// sent by a task of its own, after the notices already queued.
    pub(crate) fn notice_later(&self, n: Notice) {
        let notices = self.notices.clone();
        tokio::spawn(async move {
            let _ = notices.send(n).await;
        });
    }
}

/// Formats a socket address the way notices and NCAT_* variables show it
/// (an IPv4-mapped one as IPv4, `stream::canonical`).
pub(crate) fn show(addr: &SocketAddr) -> String {
    stream::canonical(*addr).to_string()
}

#[cfg(test)]
mod tests {

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    use super::*;

    /// A listen-mode chat configuration; other files' tests start from it.
    pub(super) fn chat_config() -> Config {
        Config {
            mode: Mode::Listen {
                addr: None,
                port: 0,
            },
            proto: Proto::Tcp,
            family: Family::Any,
            unix: None,
            exec: None,
            hub: Some(HubKind::Chat),
            keep_open: true,
            max_conns: 8,
            access: Access::default(),
            data: DataOpts::default(),
            timing: Timing::default(),
            zero_io: false,
            source: None,
            source_port: None,
            tls: None,
            proxy: None,
            proxy_server: None,
            max_queue: DEFAULT_MAX_QUEUE,
        }
    }

    async fn line(r: &mut BufReader<TcpStream>) -> String {
        let mut s = String::new();
        tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut s))
            .await
            .expect("a line in time")
            .expect("read");
        s
    }

    /// `serve` runs on a socket the caller bound (port 0), and a cancelled
    /// token ends it cleanly.
    #[tokio::test]
    async fn serve_takes_a_bound_listener() {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_listener.local_addr().expect("local address");
        let listener = Listener::try_from(std_listener).expect("listener");
        let (notices, mut seen) = Emit::channel(64);
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(
            chat_config(),
            listener,
            notices,
            None,
            shutdown.clone(),
        ));
        let mut a = BufReader::new(TcpStream::connect(addr).await.expect("connect a"));
        assert_eq!(
            line(&mut a).await,
            "<announce> already connected: nobody.\n"
        );
        let mut b = BufReader::new(TcpStream::connect(addr).await.expect("connect b"));
        assert!(
            line(&mut b)
                .await
                .starts_with("<announce> already connected: ")
        );
        assert_eq!(
            line(&mut a).await,
            "<announce> 127.0.0.1 is connected as <user2>.\n"
        );
        a.get_mut().write_all(b"hi\n").await.expect("write");
        assert_eq!(line(&mut b).await, "<user1> hi\n");
        shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(10), server).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
        assert_eq!(seen.recv().await, Some(Notice::Listening(addr.to_string())));
    }
}
