//! The calculator client: one request, or many pipelined on one TCP
//! connection (or one datagram each over UDP, a window of them in flight).
//!
//! Errors read like the spec's: a request the server rejected is named by
//! its ID, operation and count ("request 7 (MIN of 0 numbers) rejected: the
//! server closed the connection without a result"), a silent UDP server by
//! its address and the wait ("no reply from 127.0.0.1:7000 within 1.0 s").

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use sockeye_proto::calc::{self, ByteOrder, Op, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::report::Emit;
use crate::report::calc::{Answer, CalcEvent};

/// UDP requests in flight at once.
const UDP_WINDOW: usize = 32;

/// UDP answers emitted at once, at most.
const UDP_BATCH: usize = 1024;

/// Bytes of responses read at once over TCP (8,192 answers).
const READ_CHUNK: usize = 64 * 1024;

/// One request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: u32,
    pub op: Op,
    pub numbers: Vec<i32>,
}

impl Job {
    fn describe(&self) -> String {
        let n = self.numbers.len();
        format!(
            "request {} ({} of {n} number{})",
            self.id,
            self.op,
            if n == 1 { "" } else { "s" }
        )
    }

    /// Why the server must reject this request, if it must.
    fn invalid(&self) -> Option<calc::Invalid> {
        calc::evaluate(self.op.code(), &self.numbers).err()
    }

    /// The error for a connection that ended before this job's answer.
    fn ended(&self, answered: usize) -> ClientError {
        match self.invalid() {
            Some(invalid) => ClientError::Rejected {
                what: self.describe(),
                reason: invalid.to_string(),
            },
            None => ClientError::Closed {
                what: self.describe(),
                answered,
            },
        }
    }

    fn request(&self) -> Request {
        Request::new(self.id, self.op, self.numbers.clone())
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: SocketAddr,
    pub order: ByteOrder,
    pub connect_timeout: Duration,
    /// How long to wait for each answer.
    pub reply_timeout: Duration,
}

/// What can go wrong, one line each.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("cannot connect to {addr}: no answer within {secs:.1} s")]
    ConnectTimeout { addr: SocketAddr, secs: f64 },
    /// The connection ended before this answer, and the request is one the
    /// spec makes the server reject (the protocol has no error reply).
    #[error("{what} rejected: {reason}; the server closed the connection without a result")]
    Rejected { what: String, reason: String },
    /// The connection ended before this answer for a valid request: the
    /// server stopped, timed the connection out or reset it.
    #[error("the server closed the connection before answering {what} ({answered} answer{s} received)", s = if *answered == 1 { "" } else { "s" })]
    Closed { what: String, answered: usize },
    #[error("no reply from {addr} within {secs:.1} s to {what}")]
    NoReply {
        addr: SocketAddr,
        secs: f64,
        what: String,
    },
    #[error("{what}: the server answered with ID {got}, expected {expected}")]
    WrongId {
        what: String,
        expected: u32,
        got: u32,
    },
    #[error("nothing listens on UDP {addr} (port unreachable)")]
    UdpRefused { addr: SocketAddr },
    #[error("connection to {addr} failed: {source}")]
    Io { addr: SocketAddr, source: io::Error },
}

/// Sends every job on one TCP connection, pipelined, and emits each answer
/// in request order. Stops at the first failure, or when no one reads the
/// answers any more.
pub async fn run_tcp(
    cfg: &ClientConfig,
    jobs: &[Job],
    emit: &Emit<CalcEvent>,
) -> Result<(), ClientError> {
    let addr = cfg.server;
    let stream = match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => {
            return Err(ClientError::ConnectTimeout {
                addr,
                secs: cfg.connect_timeout.as_secs_f64(),
            });
        }
        Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    // Write and read at once: a long pipeline would otherwise fill both
    // sides' buffers and stall.
    let order = cfg.order;
    let requests: Vec<Request> = jobs.iter().map(Job::request).collect();
    let send = tokio::spawn(async move {
        let mut out = Vec::with_capacity(64 * 1024);
        for r in &requests {
            r.encode(order, &mut out);
            if out.len() >= 60 * 1024 {
                writer.write_all(&out).await?;
                out.clear();
            }
        }
        writer.write_all(&out).await?;
        writer.flush().await?;
        // Keep the write side open until the reader is done: some servers
        // treat a half-close as the end of the conversation.
        Ok::<_, io::Error>(writer)
    });
    // Every complete response a read brings is decoded and emitted as one
    // batch: a printer woken per answer would cost more than the exchange.
    let mut buf = vec![0u8; READ_CHUNK];
    let mut filled = 0usize;
    let mut answered = 0usize;
    while answered < jobs.len() {
        let job = &jobs[answered];
        let read = tokio::time::timeout(cfg.reply_timeout, reader.read(&mut buf[filled..])).await;
        let n = match read {
            Err(_) => {
                send.abort();
                return Err(ClientError::NoReply {
                    addr,
                    secs: cfg.reply_timeout.as_secs_f64(),
                    what: job.describe(),
                });
            }
            Ok(Ok(0)) => {
                send.abort();
                return Err(job.ended(answered));
            }
            Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionReset => {
                send.abort();
                return Err(job.ended(answered));
            }
            Ok(Err(source)) => {
                send.abort();
                return Err(ClientError::Io { addr, source });
            }
            Ok(Ok(n)) => n,
        };
        filled += n;
        let whole = filled - filled % calc::RESPONSE_LEN;
        let mut batch = Vec::with_capacity(whole / calc::RESPONSE_LEN);
        let mut wrong = None;
        for chunk in buf[..whole].chunks_exact(calc::RESPONSE_LEN) {
            let Some((response, _)) = Response::decode(chunk, order) else {
                unreachable_response();
                continue;
            };
            let Some(job) = jobs.get(answered) else {
                break;
            };
            if response.id != job.id {
                wrong = Some(ClientError::WrongId {
                    what: job.describe(),
                    expected: job.id,
                    got: response.id,
                });
                break;
            }
            batch.push(Answer {
                id: job.id,
                result: response.result,
            });
            answered += 1;
        }
        buf.copy_within(whole..filled, 0);
        filled -= whole;
        // The answers before a wrong one are still given.
        if !batch.is_empty() && emit.send(CalcEvent::Answers(batch)).await.is_err() {
            send.abort();
            return Ok(());
        }
        if let Some(err) = wrong {
            send.abort();
            return Err(err);
        }
    }
    match send.await {
        Ok(Ok(writer)) => drop(writer),
        Ok(Err(source)) => return Err(ClientError::Io { addr, source }),
        Err(_) => {}
    }
    Ok(())
}

/// Eight bytes always decode; kept out of line so the loop reads plainly.
#[cold]
fn unreachable_response() {
    tracing::error!("an 8-byte response did not decode");
}

/// Sends every job as its own datagram, at most `UDP_WINDOW` (32) in flight,
/// and emits the answers in request order. A request with no answer within
/// the reply timeout is emitted as [`CalcEvent::Unanswered`] and the others
/// go on; the first such error is returned at the end. Stops when no one
/// reads the events any more.
pub async fn run_udp(
    cfg: &ClientConfig,
    jobs: &[Job],
    emit: &Emit<CalcEvent>,
) -> Result<(), ClientError> {
    let addr = cfg.server;
    let any: std::net::IpAddr = if addr.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let local = SocketAddr::new(any, 0);
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|source| ClientError::Io { addr, source })?;
    // A connected socket sees only this server's datagrams, and learns of
    // an ICMP port-unreachable as ECONNREFUSED.
    socket
        .connect(addr)
        .await
        .map_err(|source| ClientError::Connect { addr, source })?;
    let order = cfg.order;
    let mut next = 0usize;
    let mut waiting: VecDeque<(usize, Instant)> = VecDeque::new();
    let mut answers: BTreeMap<usize, i32> = BTreeMap::new();
    let mut by_id: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut emitted = 0usize;
    let mut first_error: Option<ClientError> = None;
    let mut failed: std::collections::HashSet<usize> = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(calc::MAX_REQUEST_LEN);
    let mut buf = vec![0u8; 2048];
    // A fatal error (nothing listens: ICMP port unreachable) ends the run,
    // but the answers already received are still given, in order.
    let mut fatal: Option<ClientError> = None;
    // Answers decided and not yet emitted: sent in batches, as a printer
    // woken per datagram would cost more than the exchange.
    let mut decided = Vec::new();
    'run: while emitted < jobs.len() {
        while next < jobs.len() && waiting.len() < UDP_WINDOW {
            out.clear();
            jobs[next].request().encode(order, &mut out);
            if let Err(source) = socket.send(&out).await {
                fatal = Some(udp_error(addr, source));
                break 'run;
            }
            by_id.insert(jobs[next].id, next);
            waiting.push_back((next, Instant::now() + cfg.reply_timeout));
            next += 1;
        }
        let deadline = waiting.front().map(|(_, d)| *d);
        tokio::select! {
            r = socket.recv(&mut buf) => {
                let len = match r {
                    Ok(len) => len,
                    Err(source) => {
                        fatal = Some(udp_error(addr, source));
                        break 'run;
                    }
                };
                match Response::decode_datagram(&buf[..len], order) {
                    Some(resp) => {
                        if let Some(&i) = by_id.get(&resp.id)
                            && waiting.iter().any(|(w, _)| *w == i)
                        {
                            waiting.retain(|(w, _)| *w != i);
                            answers.insert(i, resp.result);
                        }
                    }
                    None => tracing::warn!(%addr, len, "ignoring a reply that is not 8 bytes"),
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let now = Instant::now();
                while let Some(&(i, d)) = waiting.front() {
                    if d > now {
                        break;
                    }
                    waiting.pop_front();
                    let err = ClientError::NoReply {
                        addr,
                        secs: cfg.reply_timeout.as_secs_f64(),
                        what: jobs[i].describe(),
                    };
                    if emit.send(CalcEvent::Unanswered(err.to_string())).await.is_err() {
                        return Ok(());
                    }
                    first_error.get_or_insert(err);
                    failed.insert(i);
                }
            }
        }
        // Emit in request order what is decided.
        while emitted < jobs.len() {
            if let Some(result) = answers.remove(&emitted) {
                decided.push(Answer {
                    id: jobs[emitted].id,
                    result,
                });
            } else if !failed.remove(&emitted) {
                break;
            }
            emitted += 1;
        }
        if decided.len() >= UDP_BATCH {
            let batch = std::mem::take(&mut decided);
            if emit.send(CalcEvent::Answers(batch)).await.is_err() {
                return Ok(());
            }
        }
    }
    if fatal.is_some() {
        decided.extend(
            jobs.iter()
                .enumerate()
                .skip(emitted)
                .filter_map(|(i, job)| {
                    let result = answers.remove(&i)?;
                    Some(Answer { id: job.id, result })
                }),
        );
    }
    if !decided.is_empty() {
        let _ = emit.send(CalcEvent::Answers(decided)).await;
    }
    if let Some(err) = fatal {
        return Err(err);
    }
    first_error.map_or(Ok(()), Err)
}

fn udp_error(addr: SocketAddr, source: io::Error) -> ClientError {
    if source.kind() == io::ErrorKind::ConnectionRefused {
        ClientError::UdpRefused { addr }
    } else {
        ClientError::Io { addr, source }
    }
}

/// Parses request lines (`OP n1 n2 ...`), numbering them from `first_id`.
/// Blank lines and `#` comments are skipped. Everything is checked before
/// anything is sent: an unknown operation, a number that is not an i32 and
/// more than 255 numbers are refused here with the line number.
pub fn parse_jobs(text: &str, first_id: u32) -> Result<Vec<Job>, String> {
    let mut jobs = Vec::new();
    let mut id = first_id;
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let op_word = words.next().unwrap_or_default();
        let args: Vec<&str> = words.collect();
        let job = make_job(id, op_word, &args).map_err(|e| format!("line {}: {e}", i + 1))?;
        jobs.push(job);
        id = id.wrapping_add(1);
    }
    Ok(jobs)
}

/// One job from an operation and its numbers as typed.
pub fn make_job(id: u32, op: &str, numbers: &[&str]) -> Result<Job, String> {
    let op: Op = op.parse()?;
    if numbers.len() > calc::MAX_NUMBERS {
        return Err(format!(
            "{} numbers given; a request carries at most {}",
            numbers.len(),
            calc::MAX_NUMBERS
        ));
    }
    let numbers = numbers
        .iter()
        .map(|w| {
            w.parse::<i32>()
                .map_err(|_| format!("{w:?} is not a 32-bit signed integer"))
        })
        .collect::<Result<Vec<i32>, String>>()?;
    Ok(Job { id, op, numbers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let jobs =
            parse_jobs("SUM 1 2 3\n# comment\n\nmin -5 7  # trailing\nPRO\n", 7).expect("valid");
        assert_eq!(
            jobs,
            vec![
                Job {
                    id: 7,
                    op: Op::Sum,
                    numbers: vec![1, 2, 3]
                },
                Job {
                    id: 8,
                    op: Op::Min,
                    numbers: vec![-5, 7]
                },
                Job {
                    id: 9,
                    op: Op::Pro,
                    numbers: vec![]
                },
            ]
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let cases = [
            ("SUM 1\nAVG 2\n", "line 2: unknown operation \"AVG\""),
            ("SUM 1 x\n", "line 1: \"x\" is not a 32-bit signed integer"),
            (
                "SUM 2147483648\n",
                "line 1: \"2147483648\" is not a 32-bit signed integer",
            ),
        ];
        for (text, want) in cases {
            let err = parse_jobs(text, 1).expect_err(text);
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
        let many = format!("SUM {}\n", vec!["1"; 256].join(" "));
        assert!(
            parse_jobs(&many, 1)
                .expect_err("too many")
                .contains("at most 255")
        );
    }

    #[test]
    fn describe_names_id_op_and_count() {
        let job = Job {
            id: 7,
            op: Op::Min,
            numbers: vec![],
        };
        assert_eq!(job.describe(), "request 7 (MIN of 0 numbers)");
        let job = Job {
            id: 1,
            op: Op::Sum,
            numbers: vec![4],
        };
        assert_eq!(job.describe(), "request 1 (SUM of 1 number)");
    }
}
