//! The bodies of the agent protocol's frames (`docs/agent-protocol.md`):
//! JSON objects inside the frames that `sockeye_proto::agent` cuts and
//! builds, and the async reading and writing of whole frames.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use sockeye_proto::agent::{self as frame, FrameError, Kind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The version of this sockeye, as the handshake names it.
pub const SOCKEYE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The actions this agent carries out (the handshake's capabilities).
pub const CAPABILITIES: &[&str] = &["connect", "listen", "send", "stop", "check", "scan"];

/// Controller -> agent, first frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u16,
    pub sockeye: String,
    pub capabilities: Vec<String>,
}

/// Agent -> controller: the handshake accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u16,
    pub sockeye: String,
    pub capabilities: Vec<String>,
    /// The agent's addresses (every interface's but loopback), so that a
    /// plan can name an agent where an address is expected.
    pub addresses: Vec<std::net::IpAddr>,
    /// The address the controller reached this agent at, when the agent
    /// can tell (OpenSSH's `SSH_CONNECTION`): the management path, which a
    /// flow to the agent avoids when it has another address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management: Option<std::net::IpAddr>,
    /// Its limits, as its command line gave them.
    pub limits: Limits,
}

/// Agent -> controller: the handshake refused, both versions named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refuse {
    pub protocol: u16,
    pub sockeye: String,
    pub reason: String,
}

/// What an agent allows, in words (its command line's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `--allow-listen`: ports it may listen on, or `none`.
    pub allow_listen: String,
    /// `--allow-targets`: networks it may send to, or `any`.
    pub allow_targets: String,
    /// `--max-rate`: connections and datagrams a second, at most.
    pub max_rate: u32,
}

/// `22,80,8000-8100` as ranges.
pub fn port_ranges(text: &str) -> Result<Vec<(u16, u16)>, String> {
    text.split(',')
        .map(|part| {
            let part = part.trim();
            let port = |p: &str| {
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("{p:?} is not a port (1-65535)"))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (port(a)?, port(b)?);
                    if a > b {
                        return Err(format!("{part}: the range is backwards"));
                    }
                    Ok((a, b))
                }
                None => port(part).map(|p| (p, p)),
            }
        })
        .collect()
}

impl Limits {
    /// Whether these limits let the agent listen on `port` (`allow_listen`
    /// as the handshake gave it: `none`, or ranges).
    pub fn may_listen(&self, port: u16) -> bool {
        self.allow_listen != "none"
            && port_ranges(&self.allow_listen)
                .is_ok_and(|r| r.iter().any(|&(a, b)| (a..=b).contains(&port)))
    }
}

/// The transport of a listener or a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowProto {
    Tcp,
    Udp,
    /// ICMP echo (IPv4; raw sockets: the agents need CAP_NET_RAW).
    Icmp,
}

impl FlowProto {
    pub fn word(self) -> &'static str {
        match self {
            FlowProto::Tcp => "tcp",
            FlowProto::Udp => "udp",
            FlowProto::Icmp => "icmp",
        }
    }
}

/// Controller -> agent: what to do. Typed actions only: an agent never
/// runs a command it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// A TCP connect, reported and closed.
    Connect { target: SocketAddr, timeout_ms: u64 },
    /// Listen on `port` (all addresses) until stopped: each flow nonce that
    /// arrives is answered (TCP: echoed; UDP: sent back from the port) and
    /// reported as an [`Event::Arrived`]. [`Event::Listening`] first.
    Listen {
        proto: FlowProto,
        port: u16,
        /// Only this address of the agent (default: every address), so that
        /// a listener can share its port with a service bound elsewhere.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<std::net::IpAddr>,
    },
    /// Carry `nonce` to `target` and say what came back.
    Send {
        proto: FlowProto,
        target: SocketAddr,
        nonce: String,
        timeout_ms: u64,
        /// TCP over IPv4: read the TTL the answer (SYN-ACK or reset)
        /// arrived with, on a raw socket (the agent needs CAP_NET_RAW).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ttl: bool,
    },
    /// Ends the running request `request` (a listener); it answers with
    /// its result, and this one with an empty success.
    Stop { request: u32 },
    /// Runs one check of a plan here (a plan's `on: AGENT`): `plan` is a
    /// plan of that one check, in the plan schema (JSON), which the agent
    /// compiles and runs as the controller's machine would; kinds that
    /// would run a program or read a file are refused.
    Check { plan: String },
    /// Runs one shard of a scan here (`sockeye scan --agents`): the agent
    /// builds the scan from these fields, within its own limits, and sends
    /// the shard's `-o json` records as [`Event::Records`].
    Scan(ScanJob),
}

/// How a scan shard probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanKind {
    /// A TCP connect scan.
    Connect,
    /// A SYN scan on raw sockets (the agent needs CAP_NET_RAW).
    Syn,
}

impl ScanKind {
    pub fn word(self) -> &'static str {
        match self {
            ScanKind::Connect => "connect",
            ScanKind::Syn => "syn",
        }
    }
}

/// One shard of a scan, in typed fields: what `sockeye scan --shard I/N
/// --seed S` would scan, with the timing the controller's command line
/// chose. Every shard of one scan gets the same fields but `shard`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanJob {
    /// Targets as typed (addresses, networks, octet ranges, names).
    pub targets: Vec<String>,
    /// Hosts not to scan, same syntax.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// Only the first address a name resolves to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_address: bool,
    /// TCP ports, in the `-p` syntax (`22,80,8000-8100`).
    pub ports: String,
    pub scan_type: ScanKind,
    /// The probe order's seed: every shard's is the same.
    pub seed: u64,
    /// This shard, from 0.
    pub shard: u32,
    /// How many shards the scan has.
    pub shards: u32,
    /// Carry closed and filtered ports in the summary's counts by reason
    /// (the shard's records carry every port anyway).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_states: bool,
    /// Extra probes for a port that did not answer.
    pub retries: u8,
    /// The per-host timeout's bounds and start, in milliseconds.
    pub min_rtt_ms: u64,
    pub max_rtt_ms: u64,
    pub initial_rtt_ms: u64,
    /// Probes a second asked for; the agent's `--max-rate` caps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Probes in flight at most; the agent's open-file limit caps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_inflight: Option<u32>,
}

impl Action {
    pub fn word(&self) -> &'static str {
        match self {
            Action::Connect { .. } => "connect",
            Action::Listen { .. } => "listen",
            Action::Send { .. } => "send",
            Action::Stop { .. } => "stop",
            Action::Check { .. } => "check",
            Action::Scan(_) => "scan",
        }
    }
}

/// Agent -> controller, while a request runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The listener is open.
    Listening { proto: FlowProto, port: u16 },
    /// A flow nonce arrived at the listener, from `source`.
    Arrived {
        proto: FlowProto,
        port: u16,
        nonce: String,
        source: SocketAddr,
    },
    /// Records of a scan shard, as `sockeye scan --shard I/N -o json`
    /// writes them: whole JSON Lines, at most [`MAX_RECORDS_BYTES`] of them
    /// in one event.
    Records { lines: String },
}

/// The most text one [`Event::Records`] carries, well under a frame's
/// 1 MiB: a shard's records are sent as they come, in events this big.
pub const MAX_RECORDS_BYTES: usize = 256 * 1024;

/// What the sending side of a connect or a flow saw (the words of the
/// plan reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SenderSaw {
    /// TCP: the handshake completed (and, for a flow, the nonce came back).
    Connected,
    /// A UDP answer from the port sent to.
    Reply,
    /// Nothing within the timeout.
    Timeout,
    /// A TCP reset.
    Reset,
    IcmpAdminProhibited,
    IcmpHostUnreachable,
    IcmpNetUnreachable,
    IcmpPortUnreachable,
    /// This host has no route to the target.
    NoRoute,
    /// Connected, but the nonce did not come back (something else answered).
    NoEcho,
}

impl SenderSaw {
    pub fn word(self) -> &'static str {
        match self {
            SenderSaw::Connected => "connected",
            SenderSaw::Reply => "reply",
            SenderSaw::Timeout => "timeout",
            SenderSaw::Reset => "reset",
            SenderSaw::IcmpAdminProhibited => "icmp-admin-prohibited",
            SenderSaw::IcmpHostUnreachable => "icmp-host-unreachable",
            SenderSaw::IcmpNetUnreachable => "icmp-net-unreachable",
            SenderSaw::IcmpPortUnreachable => "icmp-port-unreachable",
            SenderSaw::NoRoute => "no-route",
            SenderSaw::NoEcho => "no-echo",
        }
    }
}

/// Agent -> controller: a request's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A connect or a send: what came back, and the source address the
    /// agent sent from.
    Sent {
        saw: SenderSaw,
        source: Option<SocketAddr>,
        ms: u64,
        /// The TTL the answer arrived with, when asked for and readable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<u8>,
        /// Who sent the ICMP error the sender got (the kernel's offender).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        icmp_from: Option<std::net::IpAddr>,
    },
    /// A listener stopped, after this many arrivals.
    Stopped { arrivals: u64 },
    /// A `stop` done.
    Done,
    /// A `check` run: its verdict, as `sockeye exercise run -o json`
    /// writes a check record.
    Checked { result: serde_json::Value },
    /// A scan shard ended (its summary record is the last of its
    /// records), stopped early when `interrupted`.
    Scanned { interrupted: bool },
    /// The agent refused or could not carry out the request (a limit, a
    /// port in use, bad JSON), in one line.
    Refused { reason: String },
}

/// A frame that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the pipe closed")]
    Closed,
    #[error("reading the pipe: {0}")]
    Io(#[from] std::io::Error),
    #[error("not the agent protocol: {0}")]
    Frame(#[from] FrameError),
    #[error("a {kind:?} frame with a body that is not what it should be: {why}")]
    Body { kind: Kind, why: String },
}

/// One whole frame, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub kind: Kind,
    pub id: u32,
    pub body: Vec<u8>,
}

impl Owned {
    /// The body as `T`.
    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, WireError> {
        serde_json::from_slice(&self.body).map_err(|e| WireError::Body {
            kind: self.kind,
            why: e.to_string(),
        })
    }
}

/// Reads frames from a byte pipe, keeping what came after the last one.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: Vec::with_capacity(8192),
        }
    }

    /// The next frame; [`WireError::Closed`] at a clean end between frames.
    pub async fn next(&mut self) -> Result<Owned, WireError> {
        loop {
            if let Some((f, used)) = frame::decode(&self.buf)? {
                let owned = Owned {
                    kind: f.kind,
                    id: f.id,
                    body: f.body.to_vec(),
                };
                self.buf.drain(..used);
                return Ok(owned);
            }
            let mut chunk = [0u8; 8192];
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    WireError::Closed
                } else {
                    WireError::Io(std::io::ErrorKind::UnexpectedEof.into())
                });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Encodes `body` as JSON in a frame.
pub fn encode<T: Serialize>(kind: Kind, id: u32, body: &T) -> Result<Vec<u8>, WireError> {
    let json = serde_json::to_vec(body).map_err(|e| WireError::Body {
        kind,
        why: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(json.len() + frame::LEN_BYTES + frame::HEADER);
    frame::encode(kind, id, &json, &mut out)?;
    Ok(out)
}

/// Writes one frame and flushes it.
pub async fn send<W: AsyncWrite + Unpin, T: Serialize>(
    out: &mut W,
    kind: Kind,
    id: u32,
    body: &T,
) -> Result<(), WireError> {
    let bytes = encode(kind, id, body)?;
    out.write_all(&bytes).await?;
    out.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON of each body, as docs/agent-protocol.md shows it.
    #[test]
    fn bodies_as_documented() {
        let table: Vec<(serde_json::Value, &str)> = vec![
            (
                serde_json::to_value(Action::Listen {
                    proto: FlowProto::Tcp,
                    port: 80,
                    address: None,
                })
                .expect("serializes"),
                r#"{"action":"listen","port":80,"proto":"tcp"}"#,
            ),
            (
                serde_json::to_value(Action::Send {
                    proto: FlowProto::Udp,
                    target: "198.18.2.2:53".parse().expect("address"),
                    nonce: "n1".into(),
                    timeout_ms: 1000,
                    ttl: false,
                })
                .expect("serializes"),
                r#"{"action":"send","nonce":"n1","proto":"udp","target":"198.18.2.2:53","timeout_ms":1000}"#,
            ),
            (
                serde_json::to_value(Outcome::Sent {
                    saw: SenderSaw::IcmpAdminProhibited,
                    source: None,
                    ms: 3,
                    ttl: None,
                    icmp_from: Some("198.18.1.1".parse().expect("address")),
                })
                .expect("serializes"),
                r#"{"icmp_from":"198.18.1.1","ms":3,"outcome":"sent","saw":"icmp-admin-prohibited","source":null}"#,
            ),
            (
                serde_json::to_value(Event::Arrived {
                    proto: FlowProto::Tcp,
                    port: 22,
                    nonce: "n2".into(),
                    source: "198.18.1.2:40000".parse().expect("address"),
                })
                .expect("serializes"),
                r#"{"event":"arrived","nonce":"n2","port":22,"proto":"tcp","source":"198.18.1.2:40000"}"#,
            ),
        ];
        for (value, text) in table {
            assert_eq!(value.to_string(), text);
        }
    }

    /// A scan shard's body, as docs/agent-protocol.md shows it; a field
    /// nobody defined (a command line) is refused.
    #[test]
    fn a_scan_is_typed_fields_only() {
        let text = r#"{"action":"scan","targets":["198.18.0.2","198.18.1.0/30"],"ports":"1-120,443","scan_type":"connect","seed":7,"shard":1,"shards":3,"retries":1,"min_rtt_ms":100,"max_rtt_ms":300,"initial_rtt_ms":300}"#;
        let action: Action = serde_json::from_str(text).expect("a scan");
        let Action::Scan(job) = &action else {
            panic!("{action:?}")
        };
        assert_eq!(
            (job.shard, job.shards, job.scan_type, job.rate),
            (1, 3, ScanKind::Connect, None)
        );
        let back: Action =
            serde_json::from_value(serde_json::to_value(&action).expect("serializes"))
                .expect("reads back");
        assert_eq!(back, action);
        let with_argv = text.replace(r#""seed":7"#, r#""seed":7,"argv":["sh","-c","id"]"#);
        assert!(serde_json::from_str::<Action>(&with_argv).is_err());
        assert!(
            serde_json::from_str::<Action>(&text.replace("connect", "ping")).is_err(),
            "only connect and syn"
        );
        assert_eq!(
            serde_json::to_string(&Event::Records {
                lines: "{}\n".into()
            })
            .expect("serializes"),
            r#"{"event":"records","lines":"{}\n"}"#
        );
    }

    #[test]
    fn port_lists_and_their_errors() {
        assert_eq!(
            port_ranges("22,80,8000-8100"),
            Ok(vec![(22, 22), (80, 80), (8000, 8100)])
        );
        for bad in ["0", "70000", "x", "90-80", "", "1,,2"] {
            assert!(port_ranges(bad).is_err(), "{bad}");
        }
        let limits = |allow: &str| Limits {
            allow_listen: allow.into(),
            allow_targets: "any".into(),
            max_rate: 1,
        };
        assert!(limits("22,8000-8100").may_listen(8050));
        assert!(!limits("22,8000-8100").may_listen(80));
        assert!(!limits("none").may_listen(22));
    }

    #[test]
    fn unknown_actions_and_fields_are_refused() {
        for bad in [
            r#"{"action":"shell","command":"rm -rf /"}"#,
            r#"{"action":"connect","target":"198.18.0.1:22","timeout_ms":1,"exec":"x"}"#,
            r#"{"action":"listen","proto":"sctp","port":1}"#,
            r#"{"target":"198.18.0.1:22"}"#,
        ] {
            assert!(serde_json::from_str::<Action>(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn frames_cross_a_pipe_whole_and_a_clean_end_is_closed() {
        let (a, b) = tokio::io::duplex(64);
        let (_, mut w) = tokio::io::split(a);
        let writer = tokio::spawn(async move {
            for id in 1..=50u32 {
                send(&mut w, Kind::Request, id, &Action::Stop { request: id })
                    .await
                    .expect("send");
            }
        });
        let mut r = FrameReader::new(b);
        for id in 1..=50u32 {
            let f = r.next().await.expect("frame");
            assert_eq!((f.kind, f.id), (Kind::Request, id));
            assert_eq!(
                f.parse::<Action>().expect("action"),
                Action::Stop { request: id }
            );
        }
        writer.await.expect("writer");
        assert!(matches!(r.next().await, Err(WireError::Closed)));
    }
}
