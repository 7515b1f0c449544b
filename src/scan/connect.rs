//! One TCP connect probe: a non-blocking `connect()` and what came of it.
//!
//! The kernel does the handshake; the probe only waits for the socket to
//! become writable within its timeout and reads `SO_ERROR`. ICMP errors are
//! told apart through `IP_RECVERR`: the kernel maps host-unreachable and
//! administratively-prohibited to the same errno, but queues the ICMP type
//! and code on the socket's error queue, which nmap's `-sT` never looks at.
//!
//! Errors that describe this machine rather than the target (no file
//! descriptors, no buffers, no ephemeral ports) come back as
//! [`Outcome::Local`] so that the engine backs off and tries again: they
//! are never a port state.
//!
//! An answer carries who sent it: the target itself (a SYN-ACK, an RST, an
//! ICMP error whose source is the target), or someone else (a router's or
//! this machine's own ICMP error, read from the error queue's offender
//! address). Only the first kind says the host is up.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

use crate::report::{PortState, Reason};

/// What one connect attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A definite answer from the network.
    Answer {
        state: PortState,
        reason: Reason,
        rtt: Duration,
        /// Who sent the answer, when known: the target for a SYN-ACK or an
        /// RST, an ICMP error's source otherwise. `None` when this machine
        /// decided without a packet (an errno with nothing queued).
        from: Option<IpAddr>,
    },
    /// Nothing came back within the timeout.
    NoResponse,
    /// This machine could not send the probe; try it again later.
    Local(LocalError),
}

/// A local resource ran out or a local error happened while probing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalError {
    /// EMFILE/ENFILE: out of file descriptors.
    NoFiles,
    /// ENOBUFS/ENOMEM/EAGAIN: the kernel is short of buffers.
    NoBuffers,
    /// EADDRNOTAVAIL: no free ephemeral port for this destination.
    NoPorts,
    /// The connect met itself: on loopback, the kernel picked the probed
    /// port as the source port and TCP's simultaneous open connected the
    /// socket to itself. Nothing listens there; a new source port tells.
    SelfConnect,
    /// Anything else that is about us, not the target (carries the errno).
    Other(i32),
}

impl LocalError {
    fn from_io(err: &io::Error) -> LocalError {
        match err.raw_os_error().map(Errno::from_raw) {
            Some(Errno::EMFILE | Errno::ENFILE) => LocalError::NoFiles,
            Some(Errno::ENOBUFS | Errno::ENOMEM | Errno::EAGAIN) => LocalError::NoBuffers,
            Some(Errno::EADDRNOTAVAIL) => LocalError::NoPorts,
            Some(e) => LocalError::Other(e as i32),
            None => LocalError::Other(0),
        }
    }

    /// True when the machine ran out of something that frees up as probes
    /// finish (descriptors, buffers, ephemeral ports): back off and re-send.
    /// Anything else will fail again the same way.
    pub fn is_exhaustion(self) -> bool {
        matches!(
            self,
            LocalError::NoFiles | LocalError::NoBuffers | LocalError::NoPorts
        )
    }

    /// True when sending the probe again can give an answer: the machine
    /// ran short of something, or the probe met itself.
    pub fn is_transient(self) -> bool {
        self.is_exhaustion() || self == LocalError::SelfConnect
    }

    /// A short name for logs.
    pub fn describe(self) -> String {
        match self {
            LocalError::NoFiles => "out of file descriptors".into(),
            LocalError::NoBuffers => "out of kernel buffers".into(),
            LocalError::NoPorts => "out of ephemeral ports".into(),
            LocalError::SelfConnect => "the probe connected to itself".into(),
            LocalError::Other(errno) => Errno::from_raw(errno).desc().into(),
        }
    }
}

/// Runs one connect probe to `addr`, waiting at most `timeout` for an answer.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Outcome {
    match SocketPool::default().start(addr) {
        Started::Done(outcome) => outcome,
        Started::Pending(pending) => pending.finish(timeout).await,
    }
}

/// A probe just sent: decided already, or waiting for the network.
#[derive(Debug)]
pub enum Started {
    Done(Outcome),
    Pending(Pending),
}

/// A connect in progress.
#[derive(Debug)]
pub struct Pending {
    socket: Socket,
    start: Instant,
    addr: SocketAddr,
}

/// Most sockets a pool keeps for reuse, per address family.
const POOL_MAX: usize = 8;

/// Sockets whose connect was refused, kept to send the next probe with.
///
/// Creating and closing a socket is a third of the kernel's cost of a
/// closed port. Linux lets a TCP socket whose connect failed connect again:
/// the call that reports the failure also resets it to unconnected (the
/// same path as `connect(AF_UNSPEC)`), so a refused socket is as good as a
/// new one, minus the `socket()` and `close()`.
#[derive(Debug, Default)]
pub struct SocketPool {
    v4: Vec<Socket>,
    v6: Vec<Socket>,
}

impl SocketPool {
    fn take(&mut self, addr: SocketAddr) -> io::Result<Socket> {
        let spare = match addr {
            SocketAddr::V4(_) => self.v4.pop(),
            SocketAddr::V6(_) => self.v6.pop(),
        };
        match spare {
            Some(s) => Ok(s),
            None => open_socket(addr),
        }
    }

    fn give(&mut self, addr: SocketAddr, socket: Socket) {
        let pool = match addr {
            SocketAddr::V4(_) => &mut self.v4,
            SocketAddr::V6(_) => &mut self.v6,
        };
        if pool.len() < POOL_MAX {
            pool.push(socket);
        }
    }

    /// Sends a probe without waiting for the network.
    ///
    /// When the target is close (loopback, a veth pair, the same host), the
    /// kernel often runs the whole exchange, SYN out and RST back, inside
    /// the `connect()` call. A second `connect()` then says where things
    /// stand without registering the socket with the reactor: `EALREADY`
    /// (still waiting), success (open), or the error that decides the port.
    pub fn start(&mut self, addr: SocketAddr) -> Started {
        let socket = match self.take(addr) {
            Ok(s) => s,
            Err(err) => return Started::Done(Outcome::Local(LocalError::from_io(&err))),
        };
        let target = SockAddr::from(addr);
        let start = Instant::now();
        match socket.connect(&target) {
            Ok(()) => return Started::Done(open_now(socket, start, addr)),
            Err(err) if err.raw_os_error() == Some(Errno::EINPROGRESS as i32) => {}
            Err(err) => {
                return Started::Done(classify_error(socket.as_fd(), &err, start.elapsed(), addr));
            }
        }
        match socket.connect(&target) {
            Err(err) if err.raw_os_error() == Some(Errno::EALREADY as i32) => {
                Started::Pending(Pending {
                    socket,
                    start,
                    addr,
                })
            }
            Ok(()) => Started::Done(open_now(socket, start, addr)),
            Err(err) if err.raw_os_error() == Some(Errno::EISCONN as i32) => {
                Started::Done(open_now(socket, start, addr))
            }
            Err(err) => {
                let outcome = classify_error(socket.as_fd(), &err, start.elapsed(), addr);
                // A refusal by RST leaves nothing behind: classify_error found
                // no ICMP error queued, and the failed connect reset the socket
                // to unconnected, so it can carry the next probe. (A refusal
                // by ICMP port-unreachable is filtered, and its socket is not
                // reused: a queued error would wake the next probe's wait.)
                if matches!(
                    outcome,
                    Outcome::Answer {
                        reason: Reason::ConnRefused,
                        ..
                    }
                ) {
                    self.give(addr, socket);
                }
                Started::Done(outcome)
            }
        }
    }
}

fn open_now(socket: Socket, start: Instant, addr: SocketAddr) -> Outcome {
    let rtt = start.elapsed();
    let itself = self_connected(&SockRef::from(&socket));
    let _ = socket.set_linger(Some(Duration::ZERO));
    drop(socket);
    if itself {
        return Outcome::Local(LocalError::SelfConnect);
    }
    open(rtt, addr)
}

/// A connected socket whose peer is itself (see [`LocalError::SelfConnect`]).
fn self_connected(socket: &SockRef<'_>) -> bool {
    match (socket.local_addr(), socket.peer_addr()) {
        (Ok(local), Ok(peer)) => local.as_socket() == peer.as_socket(),
        _ => false,
    }
}

impl Pending {
    /// Waits at most `timeout` (from now) for the handshake to finish or fail.
    pub async fn finish(self, timeout: Duration) -> Outcome {
        let Pending {
            socket,
            start,
            addr,
        } = self;
        // Registering with the runtime as a TcpStream is the safe way to
        // wait on a socket we created ourselves.
        let stream = match tokio::net::TcpStream::from_std(std::net::TcpStream::from(socket)) {
            Ok(s) => s,
            Err(err) => return Outcome::Local(LocalError::from_io(&err)),
        };
        match tokio::time::timeout(timeout, stream.writable()).await {
            Err(_elapsed) => Outcome::NoResponse,
            Ok(Err(err)) => Outcome::Local(LocalError::from_io(&err)),
            Ok(Ok(())) => {
                let rtt = start.elapsed();
                let sock = SockRef::from(&stream);
                match sock.take_error() {
                    // Writable with no error: connected, unless the wake-up
                    // came from something else queued on the socket; a
                    // connected socket has a peer.
                    Ok(None) if stream.peer_addr().is_err() => match icmp_reason(stream.as_fd()) {
                        Some((reason, from)) => Outcome::Answer {
                            state: PortState::Filtered,
                            reason,
                            rtt,
                            from,
                        },
                        None => Outcome::NoResponse,
                    },
                    Ok(None) => {
                        let itself = self_connected(&sock);
                        let _ = sock.set_linger(Some(Duration::ZERO));
                        drop(stream);
                        if itself {
                            return Outcome::Local(LocalError::SelfConnect);
                        }
                        open(rtt, addr)
                    }
                    Ok(Some(err)) => classify_error(stream.as_fd(), &err, rtt, addr),
                    Err(err) => Outcome::Local(LocalError::from_io(&err)),
                }
            }
        }
    }
}

fn open_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    // Ask for ICMP details on the error queue; failing that we still get errno.
    let _ = match addr {
        SocketAddr::V4(_) => setsockopt(&socket, sockopt::Ipv4RecvErr, &true),
        SocketAddr::V6(_) => setsockopt(&socket, sockopt::Ipv6RecvErr, &true),
    };
    Ok(socket)
}

/// The handshake completed. The caller closes the socket with an RST
/// (linger 0) so that scanning many open ports leaves no TIME_WAIT sockets
/// behind on this machine.
fn open(rtt: Duration, addr: SocketAddr) -> Outcome {
    Outcome::Answer {
        state: PortState::Open,
        reason: Reason::SynAck,
        rtt,
        from: Some(addr.ip()),
    }
}

fn classify_error(
    socket: BorrowedFd<'_>,
    err: &io::Error,
    rtt: Duration,
    addr: SocketAddr,
) -> Outcome {
    let errno = err.raw_os_error().map(Errno::from_raw);
    let filtered = |(reason, from)| Outcome::Answer {
        state: PortState::Filtered,
        reason,
        rtt,
        from,
    };
    match errno {
        // An RST, or an ICMP port-unreachable (which the kernel reports the
        // same way): a TCP port refused by ICMP is a firewall's doing, and
        // nmap's SYN scan calls it filtered. The error queue tells them apart.
        Some(Errno::ECONNREFUSED) => match icmp_reason(socket) {
            Some(found) => filtered(found),
            None => Outcome::Answer {
                state: PortState::Closed,
                reason: Reason::ConnRefused,
                rtt,
                from: Some(addr.ip()),
            },
        },
        // The handshake completed and the port then reset the connection
        // (a listener that accepts and aborts at once): open.
        Some(Errno::ECONNRESET | Errno::ECONNABORTED | Errno::EPIPE) => open(rtt, addr),
        Some(Errno::ETIMEDOUT) => Outcome::NoResponse,
        // nmap's reading of EACCES (an ICMP admin-prohibited on some
        // stacks); EPERM is this machine's own firewall dropping the SYN.
        Some(Errno::EACCES | Errno::EPERM) => filtered((Reason::AdminProhibited, None)),
        Some(Errno::ENETDOWN) => filtered((Reason::NetUnreach, None)),
        Some(Errno::EHOSTUNREACH | Errno::ENETUNREACH | Errno::EHOSTDOWN | Errno::ENONET) => {
            let fallback = if errno == Some(Errno::ENETUNREACH) {
                Reason::NetUnreach
            } else {
                Reason::HostUnreach
            };
            filtered(icmp_reason(socket).unwrap_or((fallback, None)))
        }
        Some(Errno::ENOPROTOOPT | Errno::EPROTO) => {
            filtered(icmp_reason(socket).unwrap_or((Reason::ProtoUnreach, None)))
        }
        _ => Outcome::Local(LocalError::from_io(err)),
    }
}

/// Reads the ICMP type and code the kernel queued for this socket, if any,
/// and the address that sent it (the offender: the target, a router, or
/// this machine for its own host- and net-unreachable).
pub fn icmp_reason(fd: BorrowedFd<'_>) -> Option<(Reason, Option<IpAddr>)> {
    let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
    let mut data = [0u8; 64];
    let mut iov = [io::IoSliceMut::new(&mut data)];
    let msg = recvmsg::<()>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .ok()?;
    for c in msg.cmsgs().ok()? {
        let (err, v6, from) = match c {
            ControlMessageOwned::Ipv4RecvErr(err, from) => (
                err,
                false,
                from.filter(|a| i32::from(a.sin_family) == nix::libc::AF_INET)
                    .map(|a| IpAddr::from(a.sin_addr.s_addr.to_ne_bytes())),
            ),
            ControlMessageOwned::Ipv6RecvErr(err, from) => (
                err,
                true,
                from.filter(|a| i32::from(a.sin6_family) == nix::libc::AF_INET6)
                    .map(|a| IpAddr::from(a.sin6_addr.s6_addr)),
            ),
            _ => continue,
        };
        if err.ee_origin == nix::libc::SO_EE_ORIGIN_ICMP {
            return Some((reason_from_icmp4(err.ee_type, err.ee_code), from));
        }
        if v6 && err.ee_origin == nix::libc::SO_EE_ORIGIN_ICMP6 {
            return Some((reason_from_icmp6(err.ee_type, err.ee_code), from));
        }
    }
    None
}

/// ICMPv4 destination unreachable (type 3) codes as nmap names them.
pub fn reason_from_icmp4(kind: u8, code: u8) -> Reason {
    match (kind, code) {
        (3, 0 | 6 | 11) => Reason::NetUnreach,
        (3, 1 | 7 | 12) => Reason::HostUnreach,
        (3, 2) => Reason::ProtoUnreach,
        (3, 3) => Reason::PortUnreach,
        (3, 9 | 10 | 13) => Reason::AdminProhibited,
        (kind, code) => Reason::Icmp { kind, code },
    }
}

/// ICMPv6 destination unreachable (type 1) codes.
pub fn reason_from_icmp6(kind: u8, code: u8) -> Reason {
    match (kind, code) {
        (1, 0) => Reason::NetUnreach,
        (1, 1 | 5 | 6) => Reason::AdminProhibited,
        (1, 3) => Reason::HostUnreach,
        (1, 4) => Reason::PortUnreach,
        (kind, code) => Reason::Icmp { kind, code },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp4_codes_map_to_nmap_reasons() {
        let table = [
            (3, 0, Reason::NetUnreach),
            (3, 1, Reason::HostUnreach),
            (3, 2, Reason::ProtoUnreach),
            (3, 3, Reason::PortUnreach),
            (3, 9, Reason::AdminProhibited),
            (3, 10, Reason::AdminProhibited),
            (3, 13, Reason::AdminProhibited),
            (11, 0, Reason::Icmp { kind: 11, code: 0 }),
        ];
        for (kind, code, want) in table {
            assert_eq!(
                reason_from_icmp4(kind, code),
                want,
                "type {kind} code {code}"
            );
        }
    }

    #[test]
    fn icmp6_codes_map_to_nmap_reasons() {
        assert_eq!(reason_from_icmp6(1, 1), Reason::AdminProhibited);
        assert_eq!(reason_from_icmp6(1, 3), Reason::HostUnreach);
        assert_eq!(reason_from_icmp6(1, 4), Reason::PortUnreach);
    }

    /// A socket refused once is reused, and still tells open from closed.
    #[tokio::test]
    async fn refused_sockets_are_reused_correctly() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let open = listener.local_addr().expect("addr");
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let mut pool = SocketPool::default();
        let verdict = |s: Started| match s {
            Started::Done(Outcome::Answer { state, .. }) => Some(state),
            Started::Done(other) => panic!("unexpected {other:?}"),
            Started::Pending(_) => None,
        };
        let mut refused = 0;
        for _ in 0..50 {
            // None: the RST had not arrived yet; that socket is not reusable.
            if let Some(state) = verdict(pool.start(closed)) {
                assert_eq!(state, PortState::Closed);
                refused += 1;
            }
        }
        assert!(
            refused > 0,
            "loopback refusals should arrive inside connect()"
        );
        assert!(!pool.v4.is_empty(), "refused sockets are kept");
        let before = pool.v4.len();
        // The next probe goes out on a reused socket and finds the listener.
        match pool.start(open) {
            Started::Done(Outcome::Answer { state, .. }) => assert_eq!(state, PortState::Open),
            Started::Pending(p) => {
                let outcome = p.finish(Duration::from_secs(2)).await;
                assert!(
                    matches!(
                        outcome,
                        Outcome::Answer {
                            state: PortState::Open,
                            ..
                        }
                    ),
                    "{outcome:?}"
                );
            }
            Started::Done(other) => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            pool.v4.len(),
            before - 1,
            "the open probe used a pooled socket"
        );
    }

    #[test]
    fn a_probe_that_meets_itself_is_sent_again_not_open() {
        // What a scan of 127.0.0.1 meets when the kernel picks the probed
        // port as the source port: a socket connected to itself.
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let socket = open_socket(any).expect("socket");
        socket.bind(&SockAddr::from(any)).expect("bind");
        let me = SockAddr::from(socket.local_addr().unwrap().as_socket().unwrap());
        let mut connected = false;
        for _ in 0..200 {
            match socket.connect(&me) {
                Ok(()) => connected = true,
                Err(e) if e.raw_os_error() == Some(Errno::EISCONN as i32) => connected = true,
                Err(e)
                    if matches!(
                        e.raw_os_error().map(Errno::from_raw),
                        Some(Errno::EINPROGRESS | Errno::EALREADY)
                    ) =>
                {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("self-connect failed: {e}"),
            }
            if connected {
                break;
            }
        }
        assert!(connected, "loopback's simultaneous open did not complete");
        assert!(self_connected(&SockRef::from(&socket)));
        assert_eq!(
            open_now(socket, Instant::now(), any),
            Outcome::Local(LocalError::SelfConnect)
        );
        assert!(LocalError::SelfConnect.is_transient());
        assert!(!LocalError::SelfConnect.is_exhaustion());
    }

    #[tokio::test]
    async fn open_and_closed_on_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let open = listener.local_addr().expect("addr");
        // A port that was just free: bind, read the number, close.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let t = Duration::from_secs(2);
        assert!(matches!(
            probe(open, t).await,
            Outcome::Answer {
                state: PortState::Open,
                reason: Reason::SynAck,
                ..
            }
        ));
        assert!(matches!(
            probe(closed, t).await,
            Outcome::Answer {
                state: PortState::Closed,
                reason: Reason::ConnRefused,
                ..
            }
        ));
    }
}
