//! The agent: `sockeye agent --stdio`. It reads frames from its standard
//! input and writes frames to its standard output (any byte pipe: SSH, `ip
//! netns exec`, a container's exec), carries out typed actions within the
//! limits of its own command line, and exits, closing every listener, when
//! the pipe closes: a dead controller leaves nothing behind.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use sockeye_proto::agent::{Kind, VERSION};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::wire::{
    self, Action, CAPABILITIES, Event, FlowProto, FrameReader, Hello, Limits, Outcome, Refuse,
    SOCKEYE_VERSION, SenderSaw, Welcome, WireError,
};

/// How long the controller has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// A flow's payload: this prefix, the nonce, a newline. Longer lines are not
/// flows and are not answered.
pub const FLOW_PREFIX: &str = "sockeye-flow ";
/// Longest flow line a listener reads, newline included.
pub const MAX_FLOW_LINE: usize = 160;
/// How long a listener waits for a connected client's flow line.
const LINE_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames waiting for the pipe at most.
const OUT_QUEUE: usize = 1024;

/// The limits an agent enforces, from its own command line.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Ports it may listen on; `None`: none at all.
    pub allow_listen: Option<Vec<(u16, u16)>>,
    /// Networks it may send to; `None`: any.
    pub allow_targets: Option<Vec<IpNet>>,
    /// Connections and datagrams a second, at most (at least 1).
    pub max_rate: u32,
    /// Runs the checks a plan sends with `on:` (the plan runner is above
    /// this layer, so the command line hands it in); none: refused.
    pub checks: Option<Arc<dyn CheckRunner>>,
}

/// Runs one check sent by a controller (`Action::Check`): compiles the plan
/// of one check, refuses what an agent must not do, runs it, and gives the
/// verdict's JSON record, or why not in one line. `may_send` says whether
/// this agent's `--allow-targets` lets it reach an address.
pub trait CheckRunner: Send + Sync + std::fmt::Debug {
    fn run<'a>(
        &'a self,
        plan: &'a str,
        may_send: &'a (dyn Fn(IpAddr) -> Result<(), String> + Sync),
    ) -> futures::future::BoxFuture<'a, Result<serde_json::Value, String>>;
}

impl AgentConfig {
    fn limits(&self) -> Limits {
        Limits {
            allow_listen: match &self.allow_listen {
                None => "none".into(),
                Some(ranges) => ranges
                    .iter()
                    .map(|&(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            },
            allow_targets: match &self.allow_targets {
                None => "any".into(),
                Some(nets) => nets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            },
            max_rate: self.max_rate,
        }
    }

    fn may_listen(&self, port: u16) -> Result<(), String> {
        let allowed = self
            .allow_listen
            .as_ref()
            .is_some_and(|r| r.iter().any(|&(a, b)| (a..=b).contains(&port)));
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "port {port} is outside this agent's --allow-listen ({})",
                self.limits().allow_listen
            ))
        }
    }

    fn may_send(&self, to: IpAddr) -> Result<(), String> {
        let to = to.to_canonical();
        match &self.allow_targets {
            Some(nets) if !nets.iter().any(|n| n.contains(&to)) => Err(format!(
                "{to} is outside this agent's --allow-targets ({})",
                self.limits().allow_targets
            )),
            _ => Ok(()),
        }
    }
}

/// Why an agent stopped other than by its pipe closing.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no hello from the controller within {} s", HELLO_TIMEOUT.as_secs())]
    NoHello,
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Paces connections and datagrams to `max_rate` a second.
#[derive(Debug)]
struct Pace {
    gap: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    fn new(max_rate: u32) -> Self {
        Pace {
            gap: Duration::from_secs(1) / max_rate.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.gap;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// What every request task shares.
struct Shared {
    cfg: AgentConfig,
    out: mpsc::Sender<Vec<u8>>,
    pace: Pace,
}

impl Shared {
    async fn send<T: serde::Serialize>(&self, kind: Kind, id: u32, body: &T) {
        match wire::encode(kind, id, body) {
            Ok(bytes) => {
                let _ = self.out.send(bytes).await;
            }
            Err(e) => tracing::error!(%e, "a frame that cannot be encoded"),
        }
    }
}

/// Runs the agent on `input`/`output` until the controller says bye or the
/// pipe closes. Every listener is closed before it returns.
pub async fn serve<R, W>(input: R, mut output: W, cfg: AgentConfig) -> Result<(), AgentError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut frames = FrameReader::new(input);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, frames.next()).await {
        Err(_) => return Err(AgentError::NoHello),
        Ok(Err(WireError::Closed)) => return Ok(()),
        Ok(r) => r?,
    };
    if hello.kind != Kind::Hello {
        return Err(AgentError::Refused(format!(
            "the controller began with a {:?} frame, not a hello",
            hello.kind
        )));
    }
    let hello: Hello = hello.parse()?;
    if hello.protocol != VERSION {
        let reason = format!(
            "the controller speaks agent protocol {} (sockeye {}), this agent {} (sockeye {})",
            hello.protocol, hello.sockeye, VERSION, SOCKEYE_VERSION
        );
        let refuse = Refuse {
            protocol: VERSION,
            sockeye: SOCKEYE_VERSION.into(),
            reason: reason.clone(),
        };
        wire::send(&mut output, Kind::Refuse, 0, &refuse).await?;
        return Err(AgentError::Refused(reason));
    }
    let management = ssh_server_address();
    let welcome = Welcome {
        protocol: VERSION,
        sockeye: SOCKEYE_VERSION.into(),
        capabilities: CAPABILITIES.iter().map(|c| (*c).to_string()).collect(),
        addresses: addresses(),
        management,
        limits: cfg.limits(),
    };
    wire::send(&mut output, Kind::Welcome, 0, &welcome).await?;

    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            if output.write_all(&bytes).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let shared = Arc::new(Shared {
        pace: Pace::new(cfg.max_rate),
        cfg,
        out: out_tx,
    });
    let all = CancellationToken::new();
    let mut running: HashMap<u32, CancellationToken> = HashMap::new();
    let tasks = tokio_util::task::TaskTracker::new();
    let ended = loop {
        let f = match frames.next().await {
            Ok(f) => f,
            Err(WireError::Closed) => break Ok(()),
            Err(e) => break Err(AgentError::Wire(e)),
        };
        match f.kind {
            Kind::Bye => break Ok(()),
            Kind::Request => {}
            other => {
                break Err(AgentError::Refused(format!(
                    "a {other:?} frame from the controller after the handshake"
                )));
            }
        }
        let action: Action = match f.parse() {
            Ok(a) => a,
            Err(e) => {
                let reason = format!("not an action: {e}");
                shared
                    .send(Kind::Result, f.id, &Outcome::Refused { reason })
                    .await;
                continue;
            }
        };
        if let Action::Stop { request } = action {
            if let Some(t) = running.remove(&request) {
                t.cancel();
            }
            shared.send(Kind::Result, f.id, &Outcome::Done).await;
            continue;
        }
        running.retain(|_, t| !t.is_cancelled());
        let token = all.child_token();
        running.insert(f.id, token.clone());
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            // A listener or a scan ends itself when stopped (with its count,
            // or the records found so far); any other request is abandoned.
            let outcome = if matches!(action, Action::Listen { .. } | Action::Scan(_)) {
                carry_out(&shared, f.id, action, &token).await
            } else {
                tokio::select! {
                    o = carry_out(&shared, f.id, action, &token) => o,
                    () = token.cancelled() => Outcome::Refused { reason: "stopped before it finished".into() },
                }
            };
            token.cancel();
            shared.send(Kind::Result, f.id, &outcome).await;
        });
    };
    // The pipe is gone or the controller is done: every listener closes.
    all.cancel();
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tasks.wait()).await;
    drop(shared);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    ended
}

async fn carry_out(
    shared: &Arc<Shared>,
    id: u32,
    action: Action,
    stop: &CancellationToken,
) -> Outcome {
    let refused = |reason: String| Outcome::Refused { reason };
    match action {
        Action::Connect { target, timeout_ms } => {
            if let Err(r) = shared.cfg.may_send(target.ip()) {
                return refused(r);
            }
            shared.pace.wait().await;
            send_tcp(target, None, Duration::from_millis(timeout_ms), false).await
        }
        Action::Send {
            proto,
            target,
            nonce,
            timeout_ms,
            ttl,
        } => {
            if let Err(r) = shared.cfg.may_send(target.ip()) {
                return refused(r);
            }
            if !valid_nonce(&nonce) {
                return refused("a nonce is 1 to 128 letters, digits, '-' or '_'".into());
            }
            shared.pace.wait().await;
            let timeout = Duration::from_millis(timeout_ms);
            match proto {
                FlowProto::Tcp => send_tcp(target, Some(&nonce), timeout, ttl).await,
                FlowProto::Udp => send_udp(target, &nonce, timeout).await,
                FlowProto::Icmp => send_icmp(target.ip(), &nonce, timeout).await,
            }
        }
        Action::Listen {
            proto,
            port,
            address,
        } => {
            // An ICMP "listener" opens no port: it watches the echo
            // requests that arrive (the kernel answers them).
            if proto != FlowProto::Icmp
                && let Err(r) = shared.cfg.may_listen(port)
            {
                return refused(r);
            }
            match proto {
                FlowProto::Icmp => listen_icmp(shared, id, stop).await,
                FlowProto::Tcp => listen_tcp(shared, id, port, address, stop).await,
                FlowProto::Udp => listen_udp(shared, id, port, address, stop).await,
            }
        }
        Action::Stop { .. } => Outcome::Done,
        Action::Check { plan } => {
            let Some(runner) = &shared.cfg.checks else {
                return refused("this agent does not run checks".into());
            };
            let may_send = |ip: IpAddr| shared.cfg.may_send(ip);
            shared.pace.wait().await;
            match runner.run(&plan, &may_send).await {
                Ok(result) => Outcome::Checked { result },
                Err(reason) => refused(reason),
            }
        }
        Action::Scan(job) => {
            let (tx, mut rx) = mpsc::channel::<String>(16);
            let may_send = |ip: IpAddr| shared.cfg.may_send(ip);
            let allowed = shared.cfg.allow_targets.as_deref();
            let scan = super::scan::run(job, allowed, &may_send, shared.cfg.max_rate, tx, stop);
            let forward = async {
                while let Some(lines) = rx.recv().await {
                    shared
                        .send(Kind::Event, id, &Event::Records { lines })
                        .await;
                }
            };
            match tokio::join!(scan, forward).0 {
                Ok(interrupted) => Outcome::Scanned { interrupted },
                Err(reason) => refused(reason),
            }
        }
    }
}

/// A nonce the flow line can carry: 1 to 128 of `[A-Za-z0-9_-]`.
pub fn valid_nonce(nonce: &str) -> bool {
    (1..=128).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The line a flow carries.
pub fn flow_line(nonce: &str) -> String {
    format!("{FLOW_PREFIX}{nonce}\n")
}

/// The nonce of a flow line (its newline included), if it is one.
fn nonce_of(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?;
    let nonce = text.strip_prefix(FLOW_PREFIX)?.strip_suffix('\n')?;
    valid_nonce(nonce).then_some(nonce)
}

fn ms_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What a socket error says about the path.
fn saw_error(err: &io::Error) -> SenderSaw {
    use nix::errno::Errno;
    match err.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ECONNREFUSED) => SenderSaw::Reset,
        Some(Errno::ECONNRESET) => SenderSaw::Reset,
        Some(Errno::EHOSTUNREACH) => SenderSaw::IcmpHostUnreachable,
        Some(Errno::ENETUNREACH) => SenderSaw::IcmpNetUnreachable,
        Some(Errno::EACCES | Errno::EPERM) => SenderSaw::IcmpAdminProhibited,
        Some(Errno::ETIMEDOUT) => SenderSaw::Timeout,
        _ if err.kind() == io::ErrorKind::TimedOut => SenderSaw::Timeout,
        _ => SenderSaw::NoRoute,
    }
}

/// A TCP connect to `target`; with a nonce, its line sent and its echo
/// awaited. `watch_ttl`: read the TTL of the SYN-ACK or reset (IPv4, with
/// CAP_NET_RAW; otherwise none is reported).
async fn send_tcp(
    target: SocketAddr,
    nonce: Option<&str>,
    timeout: Duration,
    watch_ttl: bool,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + timeout;
    let sent = |saw, source, icmp_from| Outcome::Sent {
        saw,
        source,
        ms: ms_since(started),
        ttl: None,
        icmp_from,
    };
    let (socket, errors) = match recverr_socket(target, socket2::Type::STREAM) {
        Ok(pair) => pair,
        Err(e) => return sent(saw_error(&e), None, None),
    };
    // Bound first, so that the watch knows the port the answer comes to.
    let watch = watch_ttl
        .then(|| {
            let any: SocketAddr = (std::net::Ipv4Addr::UNSPECIFIED, 0).into();
            socket.bind(&any.into()).ok()?;
            let port = socket.local_addr().ok()?.as_socket()?.port();
            Some((crate::net::raw::tcp_watch_v4(port).ok()?, port))
        })
        .flatten();
    let with_ttl = |mut outcome: Outcome| {
        if let (Outcome::Sent { ttl, .. }, Some((w, port))) = (&mut outcome, &watch) {
            *ttl = crate::net::raw::reply_ttl(w, target, *port);
        }
        outcome
    };
    let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
    let stream = match tokio::time::timeout_at(deadline, socket.connect(target)).await {
        Err(_) => return sent(SenderSaw::Timeout, None, None),
        Ok(Err(e)) => {
            let (saw, from) = saw_icmp(&errors, &e);
            return with_ttl(sent(saw, None, from));
        }
        Ok(Ok(s)) => s,
    };
    let source = stream.local_addr().ok().map(canonical);
    let Some(nonce) = nonce else {
        return with_ttl(sent(SenderSaw::Connected, source, None));
    };
    let line = flow_line(nonce);
    let mut stream = BufReader::new(stream);
    let exchange = async {
        stream.get_mut().write_all(line.as_bytes()).await?;
        let mut echo = Vec::new();
        (&mut stream)
            .take(MAX_FLOW_LINE as u64)
            .read_until(b'\n', &mut echo)
            .await?;
        Ok::<_, io::Error>(echo)
    };
    let saw = match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(echo)) if echo == line.as_bytes() => SenderSaw::Connected,
        Ok(Ok(_)) => SenderSaw::NoEcho,
        Ok(Err(e)) if saw_error(&e) == SenderSaw::Reset => SenderSaw::Reset,
        Ok(Err(_)) | Err(_) => SenderSaw::NoEcho,
    };
    with_ttl(sent(saw, source, None))
}

/// A datagram with the nonce's line to `target`, and its answer awaited.
async fn send_udp(target: SocketAddr, nonce: &str, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let sent = |saw, source, icmp_from| Outcome::Sent {
        saw,
        source,
        ms: ms_since(started),
        ttl: None,
        icmp_from,
    };
    let any: IpAddr = if target.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let (socket, errors) = match recverr_socket(target, socket2::Type::DGRAM).and_then(|(s, e)| {
        s.bind(&SocketAddr::new(any, 0).into())?;
        Ok((UdpSocket::from_std(s.into())?, e))
    }) {
        Ok(pair) => pair,
        Err(e) => return sent(saw_error(&e), None, None),
    };
    // Connected: only the target's answer is taken, and an ICMP error
    // comes back as the next call's error.
    if let Err(e) = socket.connect(target).await {
        return sent(saw_error(&e), None, None);
    }
    let source = socket.local_addr().ok().map(canonical);
    let line = flow_line(nonce);
    if let Err(e) = socket.send(line.as_bytes()).await {
        return sent(saw_error(&e), source, None);
    }
    let mut buf = [0u8; MAX_FLOW_LINE];
    let (saw, from) = match tokio::time::timeout(timeout, socket.recv(&mut buf)).await {
        Err(_) => (SenderSaw::Timeout, None),
        Ok(Ok(n)) if &buf[..n] == line.as_bytes() => (SenderSaw::Reply, None),
        Ok(Ok(_)) => (SenderSaw::NoEcho, None),
        Ok(Err(e)) => match saw_icmp(&errors, &e) {
            (SenderSaw::Reset, from) => (SenderSaw::IcmpPortUnreachable, from),
            other => other,
        },
    };
    sent(saw, source, from)
}

/// A raw ICMPv4 socket (root or CAP_NET_RAW), nonblocking, on the reactor.
/// Tokio's datagram socket type drives it: `recv` and `send_to` are the
/// same calls on a raw socket, and this needs no `unsafe` registration.
fn raw_icmp() -> io::Result<UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW.cloexec(),
        Some(socket2::Protocol::ICMPV4),
    )?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// The next IPv4 packet a raw socket reads: its source, and where its ICMP
/// message lies in `buf`.
async fn next_icmp(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(std::net::Ipv4Addr, usize, usize)> {
    loop {
        let n = socket.recv(buf).await?;
        let Ok((ip, payload)) = sockeye_proto::packet::parse_ipv4(&buf[..n]) else {
            continue;
        };
        let start = ip.header_len;
        return Ok((ip.src, start, start + payload.len()));
    }
}

/// An ICMP echo request carrying the flow line to `target` (IPv4), and
/// its echo reply awaited; an ICMP error quoting it says who stopped it.
async fn send_icmp(target: IpAddr, nonce: &str, timeout: Duration) -> Outcome {
    use sockeye_proto::ping::{echo_data, icmp4, write_icmp_echo_data};
    let started = Instant::now();
    let sent = |saw, icmp_from| Outcome::Sent {
        saw,
        source: None,
        ms: ms_since(started),
        ttl: None,
        icmp_from,
    };
    let IpAddr::V4(dst) = target.to_canonical() else {
        return Outcome::Refused {
            reason: "ICMP flows are IPv4 only".into(),
        };
    };
    let socket = match raw_icmp() {
        Ok(s) => s,
        Err(e) => {
            return Outcome::Refused {
                reason: format!("an ICMP flow needs root or CAP_NET_RAW on the agent: {e}"),
            };
        }
    };
    let id: u16 = rand::random();
    let line = flow_line(nonce);
    let mut packet = [0u8; MAX_FLOW_LINE + 16];
    let n = write_icmp_echo_data(&mut packet, id, 1, line.as_bytes());
    if let Err(e) = socket
        .send_to(&packet[..n], SocketAddr::new(target, 0))
        .await
    {
        return sent(saw_error(&e), None);
    }
    let mut buf = vec![0u8; 2048];
    let deadline = started + timeout;
    loop {
        let (src, start, end) =
            match tokio::time::timeout_at(deadline, next_icmp(&socket, &mut buf)).await {
                Err(_) => return sent(SenderSaw::Timeout, None),
                Ok(Err(e)) => return sent(saw_error(&e), None),
                Ok(Ok(got)) => got,
            };
        let msg = &buf[start..end];
        if let Some((kind, got_id, _, data)) = echo_data(msg) {
            if kind == icmp4::ECHO_REPLY && got_id == id && src == dst && data == line.as_bytes() {
                return sent(SenderSaw::Reply, None);
            }
            continue;
        }
        if let Ok(Some(err)) = sockeye_proto::packet::parse_icmpv4_error(msg)
            && err.quoted.protocol == 1
            && err.quoted.dst == IpAddr::V4(dst)
            && (err.quoted.seq >> 16) as u16 == id
        {
            use crate::report::Reason;
            let saw = match crate::scan::connect::reason_from_icmp4(err.kind, err.code) {
                Reason::AdminProhibited => SenderSaw::IcmpAdminProhibited,
                Reason::HostUnreach => SenderSaw::IcmpHostUnreachable,
                Reason::NetUnreach => SenderSaw::IcmpNetUnreachable,
                Reason::PortUnreach => SenderSaw::IcmpPortUnreachable,
                _ => continue,
            };
            return sent(saw, Some(IpAddr::V4(src)));
        }
    }
}

/// Watches the ICMP echo requests that reach this host (the kernel answers
/// them) and reports each that carries a flow nonce.
async fn listen_icmp(shared: &Shared, id: u32, stop: &CancellationToken) -> Outcome {
    use sockeye_proto::ping::{echo_data, icmp4};
    let bound = raw_icmp().map(|s| (SocketAddr::from(([0, 0, 0, 0], 0)), s));
    let (socket, _) = match announce(shared, id, FlowProto::Icmp, 0, bound).await {
        Ok(pair) => pair,
        Err(refused) => return refused,
    };
    let mut arrivals = 0;
    let mut buf = vec![0u8; 2048];
    loop {
        let (src, start, end) = tokio::select! {
            () = stop.cancelled() => break,
            r = next_icmp(&socket, &mut buf) => match r {
                Ok(got) => got,
                Err(_) => continue,
            },
        };
        let Some((icmp4::ECHO_REQUEST, _, _, data)) = echo_data(&buf[start..end]) else {
            continue;
        };
        let Some(nonce) = nonce_of(data) else {
            continue;
        };
        arrivals += 1;
        let event = Event::Arrived {
            proto: FlowProto::Icmp,
            port: 0,
            nonce: nonce.to_string(),
            source: SocketAddr::new(IpAddr::V4(src), 0),
        };
        shared.send(Kind::Event, id, &event).await;
    }
    Outcome::Stopped { arrivals }
}

/// A non-blocking socket for `target` that queues the ICMP errors it gets
/// (`IP_RECVERR`), and a second descriptor of it to read them from after
/// the first was used up by a failed connect.
fn recverr_socket(
    target: SocketAddr,
    ty: socket2::Type,
) -> io::Result<(socket2::Socket, socket2::Socket)> {
    use nix::sys::socket::{setsockopt, sockopt};
    let socket = socket2::Socket::new(socket2::Domain::for_address(target), ty, None)?;
    match target {
        SocketAddr::V4(_) => setsockopt(&socket, sockopt::Ipv4RecvErr, &true),
        SocketAddr::V6(_) => setsockopt(&socket, sockopt::Ipv6RecvErr, &true),
    }
    .map_err(io::Error::from)?;
    socket.set_nonblocking(true)?;
    let errors = socket.try_clone()?;
    Ok((socket, errors))
}

/// What a failed connect or receive says, the ICMP message named when the
/// kernel queued one (Linux reports admin-prohibited as "no route to host"),
/// with the address that sent it.
fn saw_icmp(errors: &socket2::Socket, err: &io::Error) -> (SenderSaw, Option<IpAddr>) {
    use crate::report::Reason;
    use std::os::fd::AsFd;
    let (reason, from) = match crate::scan::connect::icmp_reason(errors.as_fd()) {
        Some((reason, from)) => (Some(reason), from.map(|a| a.to_canonical())),
        None => (None, None),
    };
    let saw = match reason {
        Some(Reason::AdminProhibited) => SenderSaw::IcmpAdminProhibited,
        Some(Reason::HostUnreach) => SenderSaw::IcmpHostUnreachable,
        Some(Reason::NetUnreach) => SenderSaw::IcmpNetUnreachable,
        Some(Reason::PortUnreach) => SenderSaw::IcmpPortUnreachable,
        _ => return (saw_error(err), None),
    };
    (saw, from)
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// A socket on every address (IPv6 and IPv4 where the host has IPv6).
fn any_port(port: u16) -> [SocketAddr; 2] {
    [
        SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port),
        SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port),
    ]
}

/// Tells the controller a listener is open (or why it is not): the socket
/// and the port it got.
async fn announce<T>(
    shared: &Shared,
    id: u32,
    proto: FlowProto,
    port: u16,
    bound: io::Result<(SocketAddr, T)>,
) -> Result<(T, u16), Outcome> {
    match bound {
        Ok((local, socket)) => {
            let port = local.port();
            shared
                .send(Kind::Event, id, &Event::Listening { proto, port })
                .await;
            Ok((socket, port))
        }
        Err(e) => Err(Outcome::Refused {
            reason: format!(
                "cannot listen on {} port {port}: {e}",
                proto.word().to_uppercase()
            ),
        }),
    }
}

async fn listen_tcp(
    shared: &Arc<Shared>,
    id: u32,
    port: u16,
    address: Option<IpAddr>,
    stop: &CancellationToken,
) -> Outcome {
    let bound = bind_tcp(port, address).and_then(|l| Ok((l.local_addr()?, l)));
    let (listener, port) = match announce(shared, id, FlowProto::Tcp, port, bound).await {
        Ok(pair) => pair,
        Err(refused) => return refused,
    };
    let arrivals = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // Each client is answered on its own task, within LINE_TIMEOUT; none
    // outlives the listener.
    let clients = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(%e, "accept failed");
                    continue;
                }
            },
        };
        let (shared, arrivals, stop) = (Arc::clone(shared), Arc::clone(&arrivals), stop.clone());
        clients.spawn(async move {
            tokio::select! {
                () = answer_tcp(&shared, id, port, stream, peer, &arrivals) => {}
                () = stop.cancelled() => {}
            }
        });
    }
    clients.close();
    clients.wait().await;
    Outcome::Stopped {
        arrivals: arrivals.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// Reads a TCP client's flow line; a nonce is echoed and reported.
async fn answer_tcp(
    shared: &Shared,
    id: u32,
    port: u16,
    stream: TcpStream,
    peer: SocketAddr,
    arrivals: &std::sync::atomic::AtomicU64,
) {
    let mut stream = BufReader::new(stream);
    let mut line = Vec::new();
    let mut limited = (&mut stream).take(MAX_FLOW_LINE as u64);
    let read = limited.read_until(b'\n', &mut line);
    if tokio::time::timeout(LINE_TIMEOUT, read).await.is_err() {
        return;
    }
    let Some(nonce) = nonce_of(&line) else { return };
    let _ = stream.get_mut().write_all(&line).await;
    arrivals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let event = Event::Arrived {
        proto: FlowProto::Tcp,
        port,
        nonce: nonce.to_string(),
        source: canonical(peer),
    };
    shared.send(Kind::Event, id, &event).await;
}

async fn listen_udp(
    shared: &Shared,
    id: u32,
    port: u16,
    address: Option<IpAddr>,
    stop: &CancellationToken,
) -> Outcome {
    let bound = bind_udp(port, address).and_then(|s| Ok((s.local_addr()?, s)));
    let (socket, port) = match announce(shared, id, FlowProto::Udp, port, bound).await {
        Ok(pair) => pair,
        Err(refused) => return refused,
    };
    let mut arrivals = 0;
    let mut buf = [0u8; MAX_FLOW_LINE];
    loop {
        let (n, peer) = tokio::select! {
            () = stop.cancelled() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(pair) => pair,
                Err(_) => continue,
            },
        };
        let Some(nonce) = nonce_of(&buf[..n]) else {
            continue;
        };
        // Answered from the port it arrived at: the sender's connected
        // socket takes only that.
        let _ = socket.send_to(&buf[..n], peer).await;
        arrivals += 1;
        let event = Event::Arrived {
            proto: FlowProto::Udp,
            port,
            nonce: nonce.to_string(),
            source: canonical(peer),
        };
        shared.send(Kind::Event, id, &event).await;
    }
    Outcome::Stopped { arrivals }
}

fn bind_tcp(port: u16, address: Option<IpAddr>) -> io::Result<TcpListener> {
    TcpListener::from_std(bind_any(port, address, socket2::Type::STREAM)?.into())
}

fn bind_udp(port: u16, address: Option<IpAddr>) -> io::Result<UdpSocket> {
    UdpSocket::from_std(bind_any(port, address, socket2::Type::DGRAM)?.into())
}

/// A non-blocking socket bound to `port` on `address`, or on every address
/// (IPv6 and IPv4 where the host has IPv6, else IPv4), listening if it is a
/// stream.
fn bind_any(port: u16, address: Option<IpAddr>, ty: socket2::Type) -> io::Result<socket2::Socket> {
    let mut last = None;
    let candidates: Vec<SocketAddr> = match address {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => any_port(port).to_vec(),
    };
    for addr in candidates {
        let socket = socket2::Socket::new(socket2::Domain::for_address(addr), ty, None)?;
        if addr.is_ipv6() {
            let _ = socket.set_only_v6(false);
        }
        if ty == socket2::Type::STREAM {
            socket.set_reuse_address(true)?;
        }
        socket.set_nonblocking(true)?;
        let bound = socket.bind(&addr.into()).and_then(|()| {
            if ty == socket2::Type::STREAM {
                socket.listen(1024)
            } else {
                Ok(())
            }
        });
        match bound {
            Ok(()) => return Ok(socket),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::AddrNotAvailable.into()))
}

/// The server address of the SSH session this agent runs in, if any
/// (`SSH_CONNECTION` is "client port server port").
fn ssh_server_address() -> Option<IpAddr> {
    let v = std::env::var("SSH_CONNECTION").ok()?;
    v.split_whitespace().nth(2)?.parse().ok()
}

/// Every address of this host's interfaces but loopback's.
fn addresses() -> Vec<IpAddr> {
    let Ok(ifaddrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = ifaddrs
        .filter_map(|i| {
            let a = i.address?;
            let ip: IpAddr = if let Some(v4) = a.as_sockaddr_in() {
                v4.ip().into()
            } else {
                a.as_sockaddr_in6()?.ip().into()
            };
            (!ip.is_loopback()).then_some(ip)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::wire::Owned;
    use tokio::io::DuplexStream;

    /// The controller's ends of two one-way pipes, as a process's stdin
    /// and stdout: dropping `to` is the agent's end of input.
    struct Controller {
        to: DuplexStream,
        from: FrameReader<DuplexStream>,
        agent: tokio::task::JoinHandle<Result<(), AgentError>>,
    }

    fn open_config() -> AgentConfig {
        AgentConfig {
            allow_listen: Some(vec![(1, 65535)]),
            allow_targets: Some(vec!["127.0.0.0/8".parse().expect("net")]),
            max_rate: 1000,
            checks: None,
        }
    }

    async fn start(cfg: AgentConfig, protocol: u16) -> (Controller, Owned) {
        let (mut to, their_in) = tokio::io::duplex(1 << 16);
        let (their_out, from) = tokio::io::duplex(1 << 16);
        let agent = tokio::spawn(serve(their_in, their_out, cfg));
        let hello = Hello {
            protocol,
            sockeye: "9.9.9".into(),
            capabilities: vec![],
        };
        wire::send(&mut to, Kind::Hello, 0, &hello)
            .await
            .expect("hello");
        let mut from = FrameReader::new(from);
        let first = from.next().await.expect("an answer");
        (Controller { to, from, agent }, first)
    }

    impl Controller {
        async fn request(&mut self, id: u32, action: &Action) {
            wire::send(&mut self.to, Kind::Request, id, action)
                .await
                .expect("request");
        }

        async fn next(&mut self) -> Owned {
            tokio::time::timeout(Duration::from_secs(10), self.from.next())
                .await
                .expect("in time")
                .expect("a frame")
        }
    }

    /// A scan shard of one loopback port this test owns: its records (run
    /// first, the open port, the summary last) come as events before
    /// `scanned`; a target outside `--allow-targets` is refused before
    /// anything is sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scan_shard_sends_its_records_and_keeps_to_its_targets() {
        use crate::agent::wire::{ScanJob, ScanKind};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (mut c, _) = start(open_config(), VERSION).await;
        let mut job = ScanJob {
            targets: vec!["127.0.0.1".into()],
            excludes: Vec::new(),
            first_address: false,
            ports: port.to_string(),
            scan_type: ScanKind::Connect,
            seed: 5,
            shard: 0,
            shards: 1,
            all_states: false,
            retries: 0,
            min_rtt_ms: 100,
            max_rtt_ms: 500,
            initial_rtt_ms: 500,
            rate: None,
            max_inflight: None,
        };
        c.request(1, &Action::Scan(job.clone())).await;
        let mut text = String::new();
        let outcome = loop {
            let f = c.next().await;
            assert_eq!(f.id, 1);
            match f.kind {
                Kind::Event => match f.parse::<Event>().expect("event") {
                    Event::Records { lines } => text.push_str(&lines),
                    other => panic!("{other:?}"),
                },
                _ => break f.parse::<Outcome>().expect("outcome"),
            }
        };
        assert_eq!(outcome, Outcome::Scanned { interrupted: false });
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(records[0]["type"], "run", "{text}");
        assert_eq!(
            records[0]["shard"],
            serde_json::json!({"index": 0, "count": 1})
        );
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "port" && r["port"] == port && r["state"] == "open"),
            "{text}"
        );
        assert_eq!(records.last().expect("records")["type"], "summary");

        job.targets = vec!["127.0.0.1".into(), "198.18.0.0/31".into()];
        c.request(2, &Action::Scan(job)).await;
        let f = c.next().await;
        assert_eq!((f.kind, f.id), (Kind::Result, 2));
        assert_eq!(
            f.parse::<Outcome>().expect("outcome"),
            Outcome::Refused {
                reason: "198.18.0.0 is outside this agent's --allow-targets (127.0.0.0/8)".into()
            }
        );
        drop(c.to);
        assert!(c.agent.await.expect("joined").is_ok());
    }

    #[tokio::test]
    async fn a_version_mismatch_is_refused_naming_both() {
        let (c, first) = start(open_config(), VERSION + 1).await;
        assert_eq!(first.kind, Kind::Refuse);
        let refuse: Refuse = first.parse().expect("refuse");
        assert_eq!(
            refuse.reason,
            format!(
                "the controller speaks agent protocol {} (sockeye 9.9.9), this agent {VERSION} (sockeye {SOCKEYE_VERSION})",
                VERSION + 1
            )
        );
        assert!(matches!(
            c.agent.await.expect("joined"),
            Err(AgentError::Refused(_))
        ));
    }

    #[tokio::test]
    async fn limits_and_bad_actions_are_refused_in_one_line() {
        let cfg = AgentConfig {
            allow_listen: Some(vec![(8000, 8100)]),
            ..open_config()
        };
        let (mut c, first) = start(cfg, VERSION).await;
        let welcome: Welcome = first.parse().expect("welcome");
        assert_eq!(welcome.limits.allow_listen, "8000-8100");
        assert_eq!(welcome.limits.allow_targets, "127.0.0.0/8");
        c.request(
            1,
            &Action::Listen {
                proto: FlowProto::Tcp,
                port: 22,
                address: None,
            },
        )
        .await;
        let r = c.next().await;
        assert_eq!(
            (r.kind, r.id, r.parse::<Outcome>().expect("outcome")),
            (
                Kind::Result,
                1,
                Outcome::Refused {
                    reason: "port 22 is outside this agent's --allow-listen (8000-8100)".into()
                }
            )
        );
        let far = Action::Connect {
            target: "198.18.0.1:22".parse().expect("addr"),
            timeout_ms: 100,
        };
        c.request(2, &far).await;
        let r: Outcome = c.next().await.parse().expect("outcome");
        assert_eq!(
            r,
            Outcome::Refused {
                reason: "198.18.0.1 is outside this agent's --allow-targets (127.0.0.0/8)".into()
            }
        );
        // Not an action: a command is never run.
        let mut raw = Vec::new();
        sockeye_proto::agent::encode(
            Kind::Request,
            3,
            br#"{"action":"shell","cmd":"id"}"#,
            &mut raw,
        )
        .expect("frame");
        c.to.write_all(&raw).await.expect("write");
        let r = c.next().await;
        assert_eq!(r.id, 3);
        assert!(matches!(r.parse::<Outcome>(), Ok(Outcome::Refused { .. })));
        drop(c.to);
        assert!(c.agent.await.expect("joined").is_ok());
    }

    /// A listener answers nonces over TCP and UDP and reports each; a send
    /// sees the echo; `stop` ends the listener with its count; the pipe's
    /// end closes every listener (its port is free again).
    #[tokio::test]
    async fn flows_arrive_are_answered_and_listeners_close_with_the_pipe() {
        let (mut c, _) = start(open_config(), VERSION).await;
        let free = |udp: bool| {
            if udp {
                std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
            } else {
                std::net::TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr())
            }
            .expect("a free port")
            .port()
        };
        for (n, proto) in [(0u32, FlowProto::Tcp), (10, FlowProto::Udp)] {
            let port = free(proto == FlowProto::Udp);
            c.request(
                n + 1,
                &Action::Listen {
                    proto,
                    port,
                    address: None,
                },
            )
            .await;
            let ready = c.next().await;
            assert_eq!(ready.id, n + 1);
            assert_eq!(
                ready.parse::<Event>().expect("event"),
                Event::Listening { proto, port }
            );
            let send = Action::Send {
                proto,
                target: SocketAddr::from(([127, 0, 0, 1], port)),
                nonce: format!("n{n}"),
                timeout_ms: 2000,
                ttl: false,
            };
            c.request(n + 2, &send).await;
            let (mut arrived, mut sent) = (None, None);
            while arrived.is_none() || sent.is_none() {
                let f = c.next().await;
                match (f.kind, f.id) {
                    (Kind::Event, id) if id == n + 1 => {
                        arrived = Some(f.parse::<Event>().expect("event"))
                    }
                    (Kind::Result, id) if id == n + 2 => {
                        sent = Some(f.parse::<Outcome>().expect("outcome"))
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            let Some(Outcome::Sent {
                saw,
                source: Some(source),
                ..
            }) = sent
            else {
                panic!("{sent:?}")
            };
            let want = if proto == FlowProto::Tcp {
                SenderSaw::Connected
            } else {
                SenderSaw::Reply
            };
            assert_eq!(saw, want);
            assert_eq!(
                arrived,
                Some(Event::Arrived {
                    proto,
                    port,
                    nonce: format!("n{n}"),
                    source
                })
            );
        }
        // A closed port: TCP is reset, UDP port-unreachable.
        for (proto, saw) in [
            (FlowProto::Tcp, SenderSaw::Reset),
            (FlowProto::Udp, SenderSaw::IcmpPortUnreachable),
        ] {
            let port = free(proto == FlowProto::Udp);
            let send = Action::Send {
                proto,
                target: SocketAddr::from(([127, 0, 0, 1], port)),
                nonce: "closed".into(),
                timeout_ms: 2000,
                ttl: false,
            };
            c.request(30, &send).await;
            let got: Outcome = c.next().await.parse().expect("outcome");
            assert!(
                matches!(got, Outcome::Sent { saw: s, .. } if s == saw),
                "{proto:?}: {got:?}"
            );
        }
        c.request(40, &Action::Stop { request: 1 }).await;
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let f = c.next().await;
            outcomes.push((f.id, f.parse::<Outcome>().expect("outcome")));
        }
        outcomes.sort_by_key(|(id, _)| *id);
        assert_eq!(
            outcomes,
            vec![(1, Outcome::Stopped { arrivals: 1 }), (40, Outcome::Done)]
        );
        // The UDP listener (request 11) still runs: the pipe's end closes it.
        let udp_port = {
            let port = free(true);
            c.request(
                50,
                &Action::Listen {
                    proto: FlowProto::Udp,
                    port,
                    address: None,
                },
            )
            .await;
            match c.next().await.parse::<Event>().expect("event") {
                Event::Listening { port, .. } => port,
                other => panic!("{other:?}"),
            }
        };
        drop(c.to);
        assert!(c.agent.await.expect("joined").is_ok());
        std::net::UdpSocket::bind(("0.0.0.0", udp_port)).expect("the port is free again");
    }
}
