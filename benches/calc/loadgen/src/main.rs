//! Load generator for the calculator protocol (docs/calc-protocol.md), used by
//! benches/calc/run.sh. std only: one OS thread per client, blocking sockets.
//!
//! ```text
//! calc-loadgen tcp  --addr A [--clients 16] [--numbers 10] [--seconds 10] [--depth 64]
//! calc-loadgen udp  --addr A [--clients 16] [--numbers 10] [--seconds 10] [--window 1]
//! calc-loadgen idle --addr A [--connections 10000] [--hold 10] [--server-pid PID]
//! common: [--little-endian] [--timeout SECS] [--seed N]
//! ```
//!
//! Every run prints one JSON object on stdout. Every request is a SUM of `--numbers`
//! random i32 in -1e6..1e6 (the sum always fits), and every response is checked: its
//! ID and its exact result. Latency is measured from just before the write that carried
//! the request to just after the read that returned its response.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const MAX_SECONDS: f64 = 600.0;
const MAX_CLIENTS: usize = 1024;
const MAX_DEPTH: usize = 4096;
const MAX_CONNECTIONS: usize = 19_000;
const TEMPLATES: usize = 256;

// ---------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Opts {
    mode: String,
    addr: SocketAddr,
    clients: usize,
    numbers: usize,
    seconds: f64,
    depth: usize,
    window: usize,
    connections: usize,
    hold: f64,
    connect_seconds: f64,
    connect_threads: usize,
    probe_interval: f64,
    probe_timeout: f64,
    server_pid: Option<u32>,
    timeout: f64,
    little_endian: bool,
    seed: u64,
    /// idle: each held connection first sends one request and reads its
    /// answer, so the server has buffered data on it before it goes idle.
    cold: bool,
}

const USAGE: &str = "\
calc-loadgen: load for a calculator-protocol server (docs/calc-protocol.md)

  calc-loadgen tcp  --addr A [--clients 16] [--numbers 10] [--seconds 10] [--depth 64]
      each client keeps --depth pipelined SUM requests in flight on one connection
  calc-loadgen udp  --addr A [--clients 16] [--numbers 10] [--seconds 10] [--window 1]
      each client keeps --window datagrams outstanding (one request per datagram);
      one not answered within --timeout counts as lost
  calc-loadgen idle --addr A [--connections 10000] [--hold 10] [--server-pid PID]
                    [--connect-seconds 60] [--connect-threads 8]
                    [--probe-interval 0.1] [--probe-timeout 1]
      opens --connections TCP connections, sends one request on each and reads
      its answer (unless --cold), then holds them idle for --hold seconds;
      meanwhile every --probe-interval a request goes on a separate long-lived
      connection and another on a fresh connection, each must be answered within
      --probe-timeout; with --server-pid, samples the server's VmRSS while holding
  common: --little-endian (both directions), --timeout SECS (default 5; response
          timeout for tcp/udp), --seed N

Prints one JSON object on stdout; exit 0 when the run had no error, 1 when it had
errors (the JSON says which), 2 on bad usage.
";

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut it = args.iter();
    let mode = it.next().ok_or("missing mode (tcp, udp or idle)")?.clone();
    if mode == "-h" || mode == "--help" {
        return Err(String::new());
    }
    if !matches!(mode.as_str(), "tcp" | "udp" | "idle") {
        return Err(format!("unknown mode {mode:?} (tcp, udp or idle)"));
    }
    let mut o = Opts {
        mode,
        addr: "127.0.0.1:7000".parse().map_err(|_| "addr")?,
        clients: 16,
        numbers: 10,
        seconds: 10.0,
        depth: 64,
        window: 1,
        connections: 10_000,
        hold: 10.0,
        connect_seconds: 60.0,
        connect_threads: 8,
        probe_interval: 0.1,
        probe_timeout: 1.0,
        server_pid: None,
        timeout: 5.0,
        little_endian: false,
        seed: 0x5eed_ca1c,
        cold: false,
    };
    let mut have_addr = false;
    while let Some(a) = it.next() {
        if a == "--cold" {
            o.cold = true;
            continue;
        }
        if a == "--little-endian" {
            o.little_endian = true;
            continue;
        }
        if a == "-h" || a == "--help" {
            return Err(String::new());
        }
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        let num = |lo: f64, hi: f64| -> Result<f64, String> {
            let x: f64 = v.parse().map_err(|_| format!("{a}: not a number: {v}"))?;
            if !(lo..=hi).contains(&x) {
                return Err(format!("{a}: {v} is outside {lo}..={hi}"));
            }
            Ok(x)
        };
        match a.as_str() {
            "--addr" => {
                o.addr = v.parse().map_err(|_| format!("--addr: not IP:PORT: {v}"))?;
                have_addr = true;
            }
            "--clients" => o.clients = num(1.0, MAX_CLIENTS as f64)? as usize,
            "--numbers" => o.numbers = num(0.0, 255.0)? as usize,
            "--seconds" => o.seconds = num(0.1, MAX_SECONDS)?,
            "--depth" => o.depth = num(1.0, MAX_DEPTH as f64)? as usize,
            "--window" => o.window = num(1.0, 256.0)? as usize,
            "--connections" => o.connections = num(0.0, MAX_CONNECTIONS as f64)? as usize,
            "--hold" => o.hold = num(0.0, MAX_SECONDS)?,
            "--connect-seconds" => o.connect_seconds = num(1.0, MAX_SECONDS)?,
            "--connect-threads" => o.connect_threads = num(1.0, 64.0)? as usize,
            "--probe-interval" => o.probe_interval = num(0.01, 10.0)?,
            "--probe-timeout" => o.probe_timeout = num(0.01, 60.0)?,
            "--server-pid" => o.server_pid = Some(num(1.0, 4_194_304.0)? as u32),
            "--timeout" => o.timeout = num(0.01, 60.0)?,
            "--seed" => o.seed = v.parse().map_err(|_| format!("--seed: not a number: {v}"))?,
            _ => return Err(format!("unknown option {a}")),
        }
    }
    if !have_addr {
        return Err("--addr IP:PORT is required".into());
    }
    Ok(o)
}

// ---------------------------------------------------------------------------
// protocol
// ---------------------------------------------------------------------------

fn put_u32(buf: &mut Vec<u8>, x: u32, le: bool) {
    buf.extend_from_slice(&if le { x.to_le_bytes() } else { x.to_be_bytes() });
}

fn get_u32(b: &[u8], le: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if le { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) }
}

fn set_id(req: &mut [u8], id: u32, le: bool) {
    req[..4].copy_from_slice(&if le { id.to_le_bytes() } else { id.to_be_bytes() });
}

/// xorshift64*: reproducible numbers without a dependency.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn number(&mut self) -> i32 {
        (self.next() % 2_000_001) as i32 - 1_000_000
    }
}

/// A SUM request with ID 0 (patched per send) and its expected result.
#[derive(Clone)]
struct Template {
    bytes: Vec<u8>,
    expect: i32,
}

fn templates(rng: &mut Rng, numbers: usize, le: bool) -> Vec<Template> {
    (0..TEMPLATES)
        .map(|_| {
            let mut bytes = Vec::with_capacity(8 + 4 * numbers);
            put_u32(&mut bytes, 0, le);
            bytes.extend_from_slice(b"SUM");
            bytes.push(numbers as u8);
            let mut sum: i64 = 0;
            for _ in 0..numbers {
                let z = rng.number();
                sum += i64::from(z);
                put_u32(&mut bytes, z as u32, le);
            }
            Template { bytes, expect: sum as i32 }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// latency histogram (log-linear, 32 sub-buckets per power of two: ~3 % resolution)
// ---------------------------------------------------------------------------

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = 64 * SUB;

#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    n: u64,
    max_ns: u64,
}

impl Hist {
    fn new() -> Self {
        Hist { counts: vec![0; BUCKETS], n: 0, max_ns: 0 }
    }
    fn index(v: u64) -> usize {
        if v < 2 * SUB as u64 {
            return v as usize;
        }
        let m = 63 - v.leading_zeros(); // >= SUB_BITS + 1
        let shift = m - SUB_BITS;
        (shift as usize + 1) * SUB + ((v >> shift) as usize & (SUB - 1))
    }
    /// Middle of the bucket.
    fn value(i: usize) -> u64 {
        if i < 2 * SUB {
            return i as u64;
        }
        let shift = (i / SUB - 1) as u32;
        let low = ((SUB + i % SUB) as u64) << shift;
        low + (1u64 << shift) / 2
    }
    fn record(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u128::from(u64::MAX >> 2)) as u64;
        self.counts[Self::index(ns)] += 1;
        self.n += 1;
        self.max_ns = self.max_ns.max(ns);
    }
    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
        self.max_ns = self.max_ns.max(o.max_ns);
    }
    fn quantile_us(&self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (Self::value(i).min(self.max_ns)) as f64 / 1000.0;
            }
        }
        self.max_ns as f64 / 1000.0
    }
    fn json(&self) -> String {
        format!(
            "{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"p999\":{:.1},\"max\":{:.1}}}",
            self.quantile_us(0.5),
            self.quantile_us(0.9),
            self.quantile_us(0.99),
            self.quantile_us(0.999),
            self.max_ns as f64 / 1000.0
        )
    }
}

// ---------------------------------------------------------------------------
// counters shared by the modes
// ---------------------------------------------------------------------------

#[derive(Default, Clone, Debug)]
struct Errors {
    wrong_id: u64,
    wrong_result: u64,
    closed: u64,      // connection closed/reset with requests outstanding (each counts)
    timeout: u64,     // requests not answered within --timeout
    io: u64,          // other socket errors
    connect: u64,     // failed connects
    bad_length: u64,  // UDP reply not 8 bytes
    unexpected: u64,  // UDP reply whose ID is not outstanding (late after a timeout)
}

impl Errors {
    fn add(&mut self, o: &Errors) {
        self.wrong_id += o.wrong_id;
        self.wrong_result += o.wrong_result;
        self.closed += o.closed;
        self.timeout += o.timeout;
        self.io += o.io;
        self.connect += o.connect;
        self.bad_length += o.bad_length;
        self.unexpected += o.unexpected;
    }
    fn total(&self) -> u64 {
        self.wrong_id + self.wrong_result + self.closed + self.timeout + self.io + self.connect + self.bad_length
    }
    fn json(&self) -> String {
        format!(
            "{{\"wrong_id\":{},\"wrong_result\":{},\"closed\":{},\"timeout\":{},\"io\":{},\"connect\":{},\"bad_length\":{},\"late_or_unknown\":{}}}",
            self.wrong_id, self.wrong_result, self.closed, self.timeout, self.io, self.connect, self.bad_length, self.unexpected
        )
    }
}

#[derive(Clone)]
struct ClientResult {
    answered: u64,     // correct answers received before the deadline
    drained: u64,      // correct answers received after it (in flight at the deadline)
    sent: u64,
    reconnects: u64,
    hist: Hist,
    errors: Errors,
    first_error: Option<String>,
}

impl ClientResult {
    fn new() -> Self {
        ClientResult {
            answered: 0,
            drained: 0,
            sent: 0,
            reconnects: 0,
            hist: Hist::new(),
            errors: Errors::default(),
            first_error: None,
        }
    }
    fn note(&mut self, what: String) {
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn secs(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

// ---------------------------------------------------------------------------
// tcp: pipelined, --depth in flight per connection
// ---------------------------------------------------------------------------

struct Pending {
    id: u32,
    expect: i32,
    sent: Instant,
}

fn tcp_client(o: &Opts, k: usize, start_gate: Instant, deadline: Instant) -> ClientResult {
    let mut r = ClientResult::new();
    let le = o.little_endian;
    let mut rng = Rng::new(o.seed ^ ((k as u64 + 1) * 0x1000_0001));
    let tpl = templates(&mut rng, o.numbers, le);
    let timeout = secs(o.timeout);
    let drain_until = deadline + timeout;
    let mut next_id: u32 = (k as u32) << 24;
    let mut wbuf: Vec<u8> = Vec::with_capacity(o.depth * (8 + 4 * o.numbers));
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut t = 0usize;
    while Instant::now() < start_gate {
        thread::sleep(Duration::from_millis(1));
    }
    'connection: loop {
        if Instant::now() >= deadline || r.reconnects > 1000 {
            break;
        }
        let mut s = match TcpStream::connect_timeout(&o.addr, Duration::from_secs(2)) {
            Ok(s) => s,
            Err(e) => {
                r.errors.connect += 1;
                r.note(format!("connect: {e}"));
                r.reconnects += 1;
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
        let _ = s.set_write_timeout(Some(timeout));
        let mut ring: VecDeque<Pending> = VecDeque::with_capacity(o.depth);
        let mut have = 0usize;
        loop {
            let now = Instant::now();
            if now < deadline && ring.len() < o.depth {
                wbuf.clear();
                while ring.len() < o.depth {
                    let tp = &tpl[t];
                    t = (t + 1) % TEMPLATES;
                    let at = wbuf.len();
                    wbuf.extend_from_slice(&tp.bytes);
                    set_id(&mut wbuf[at..], next_id, le);
                    ring.push_back(Pending { id: next_id, expect: tp.expect, sent: now });
                    next_id = next_id.wrapping_add(1);
                }
                r.sent += (wbuf.len() / (8 + 4 * o.numbers)) as u64;
                if let Err(e) = s.write_all(&wbuf) {
                    // part of the batch may be lost: the stream cannot be trusted any more
                    if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) {
                        r.errors.closed += ring.len() as u64;
                    } else {
                        r.errors.io += ring.len() as u64;
                    }
                    r.note(format!("write: {e}"));
                    r.reconnects += 1;
                    continue 'connection;
                }
            } else if now >= deadline && ring.is_empty() {
                break 'connection;
            } else if now >= drain_until {
                r.errors.timeout += ring.len() as u64;
                r.note("requests still unanswered after the run".into());
                break 'connection;
            }
            if let Some(p) = ring.front()
                && now.duration_since(p.sent) > timeout
            {
                r.errors.timeout += ring.len() as u64;
                r.note(format!("request {} not answered within {:?}", p.id, timeout));
                r.reconnects += 1;
                continue 'connection;
            }
            let n = match s.read(&mut rbuf[have..]) {
                Ok(0) => {
                    r.errors.closed += ring.len() as u64;
                    r.note(format!("server closed the connection with {} requests in flight", ring.len()));
                    r.reconnects += 1;
                    continue 'connection;
                }
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue;
                }
                Err(e) => {
                    if e.kind() == ErrorKind::ConnectionReset {
                        r.errors.closed += ring.len() as u64;
                    } else {
                        r.errors.io += ring.len().max(1) as u64;
                    }
                    r.note(format!("read: {e}"));
                    r.reconnects += 1;
                    continue 'connection;
                }
            };
            let got = Instant::now();
            have += n;
            let mut off = 0;
            while have - off >= 8 {
                let id = get_u32(&rbuf[off..], le);
                let result = get_u32(&rbuf[off + 4..], le) as i32;
                off += 8;
                let Some(p) = ring.pop_front() else {
                    r.errors.wrong_id += 1;
                    r.note(format!("response {id} for nothing in flight"));
                    r.reconnects += 1;
                    continue 'connection;
                };
                if id != p.id {
                    r.errors.wrong_id += 1;
                    r.note(format!("expected response {} got {id}", p.id));
                    r.reconnects += 1;
                    continue 'connection;
                }
                if result != p.expect {
                    r.errors.wrong_result += 1;
                    r.note(format!("request {id}: expected {} got {result}", p.expect));
                    continue;
                }
                r.hist.record(got.duration_since(p.sent));
                if got <= deadline {
                    r.answered += 1;
                } else {
                    r.drained += 1;
                }
            }
            rbuf.copy_within(off..have, 0);
            have -= off;
        }
    }
    r
}

// ---------------------------------------------------------------------------
// udp: one request per datagram, --window outstanding per client
// ---------------------------------------------------------------------------

fn udp_client(o: &Opts, k: usize, start_gate: Instant, deadline: Instant) -> ClientResult {
    let mut r = ClientResult::new();
    let le = o.little_endian;
    let mut rng = Rng::new(o.seed ^ ((k as u64 + 1) * 0x2000_0003));
    let tpl = templates(&mut rng, o.numbers, le);
    let timeout = secs(o.timeout);
    let bind: SocketAddr = if o.addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
    let s = match UdpSocket::bind(bind).and_then(|s| s.connect(o.addr).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            r.errors.io += 1;
            r.note(format!("udp socket: {e}"));
            return r;
        }
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
    let mut out: Vec<(u32, i32, Instant)> = Vec::with_capacity(o.window);
    let mut next_id: u32 = (k as u32) << 24;
    let mut t = 0usize;
    let mut req = tpl[0].bytes.clone();
    let mut buf = [0u8; 64];
    let mut last_scan = Instant::now();
    while Instant::now() < start_gate {
        thread::sleep(Duration::from_millis(1));
    }
    loop {
        let now = Instant::now();
        if now < deadline {
            while out.len() < o.window {
                let tp = &tpl[t];
                t = (t + 1) % TEMPLATES;
                req.clear();
                req.extend_from_slice(&tp.bytes);
                set_id(&mut req, next_id, le);
                match s.send(&req) {
                    Ok(_) => {
                        out.push((next_id, tp.expect, Instant::now()));
                        r.sent += 1;
                    }
                    Err(e) => {
                        // ECONNREFUSED from an earlier ICMP port unreachable, ENOBUFS...
                        r.errors.io += 1;
                        r.note(format!("send: {e}"));
                        thread::sleep(Duration::from_millis(10));
                        break;
                    }
                }
                next_id = next_id.wrapping_add(1);
            }
        } else if out.is_empty() || now >= deadline + timeout {
            r.errors.timeout += out.len() as u64;
            break;
        }
        match s.recv(&mut buf) {
            Ok(n) => {
                let got = Instant::now();
                if n != 8 {
                    r.errors.bad_length += 1;
                    r.note(format!("reply of {n} bytes"));
                    continue;
                }
                let id = get_u32(&buf, le);
                let result = get_u32(&buf[4..], le) as i32;
                match out.iter().position(|p| p.0 == id) {
                    None => {
                        r.errors.unexpected += 1;
                    }
                    Some(i) => {
                        let (_, expect, sent) = out.swap_remove(i);
                        if result != expect {
                            r.errors.wrong_result += 1;
                            r.note(format!("request {id}: expected {expect} got {result}"));
                        } else {
                            r.hist.record(got.duration_since(sent));
                            if got <= deadline {
                                r.answered += 1;
                            } else {
                                r.drained += 1;
                            }
                        }
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(e) => {
                r.errors.io += 1;
                r.note(format!("recv: {e}"));
                thread::sleep(Duration::from_millis(10));
            }
        }
        let now = Instant::now();
        if now.duration_since(last_scan) >= Duration::from_millis(10) {
            last_scan = now;
            let before = out.len();
            out.retain(|p| now.duration_since(p.2) <= timeout);
            if out.len() < before {
                r.errors.timeout += (before - out.len()) as u64;
                r.note(format!("{} datagrams not answered within {:?}", before - out.len(), timeout));
            }
        }
    }
    r
}

fn run_load(o: &Opts) -> (String, bool) {
    let start_gate = Instant::now() + Duration::from_millis(50);
    let deadline = start_gate + secs(o.seconds);
    let opts = Arc::new(o.clone());
    let handles: Vec<_> = (0..o.clients)
        .map(|k| {
            let o = Arc::clone(&opts);
            thread::spawn(move || {
                if o.mode == "tcp" {
                    tcp_client(&o, k, start_gate, deadline)
                } else {
                    udp_client(&o, k, start_gate, deadline)
                }
            })
        })
        .collect();
    let mut total = ClientResult::new();
    let mut per_client = Vec::new();
    for h in handles {
        let c = h.join().unwrap_or_else(|_| {
            let mut c = ClientResult::new();
            c.errors.io += 1;
            c.note("client thread panicked".into());
            c
        });
        per_client.push(c.answered);
        total.answered += c.answered;
        total.drained += c.drained;
        total.sent += c.sent;
        total.reconnects += c.reconnects;
        total.hist.merge(&c.hist);
        total.errors.add(&c.errors);
        if total.first_error.is_none() {
            total.first_error = c.first_error.clone();
        }
    }
    let elapsed = o.seconds;
    let mut j = format!(
        "{{\"mode\":\"{}\",\"addr\":\"{}\",\"clients\":{},\"numbers\":{},\"seconds\":{},",
        o.mode, o.addr, o.clients, o.numbers, o.seconds
    );
    if o.mode == "tcp" {
        let _ = write!(j, "\"depth\":{},", o.depth);
    } else {
        let _ = write!(j, "\"window\":{},", o.window);
    }
    let (mn, mx) = (per_client.iter().min().copied().unwrap_or(0), per_client.iter().max().copied().unwrap_or(0));
    let _ = write!(
        j,
        "\"little_endian\":{},\"sent\":{},\"answered\":{},\"drained\":{},\"req_per_s\":{:.1},\"latency_us\":{},\"errors\":{},\"error_kinds\":{},\"reconnects\":{},\"per_client_min\":{},\"per_client_max\":{},\"loadgen_cpu_s\":{},\"first_error\":{}}}",
        o.little_endian,
        total.sent,
        total.answered,
        total.drained,
        total.answered as f64 / elapsed,
        total.hist.json(),
        total.errors.total(),
        total.errors.json(),
        total.reconnects,
        mn,
        mx,
        self_cpu_seconds().map_or("null".into(), |c| format!("{c:.2}")),
        total.first_error.as_deref().map_or("null".into(), json_str),
    );
    let ok = total.errors.total() == 0 && total.answered > 0;
    (j, ok)
}

// ---------------------------------------------------------------------------
// idle: hold many idle connections, probe on other connections meanwhile
// ---------------------------------------------------------------------------

const PHASE_BEFORE: u8 = 0;
const PHASE_RAMP: u8 = 1;
const PHASE_HOLD: u8 = 2;
const PHASE_AFTER: u8 = 3;

#[derive(Clone)]
struct ProbeStats {
    sent: [u64; 4],
    ok: [u64; 4],
    hist: [Hist; 4],
    skipped: u64,
    first_error: Option<String>,
}

impl ProbeStats {
    fn new() -> Self {
        ProbeStats { sent: [0; 4], ok: [0; 4], hist: [Hist::new(), Hist::new(), Hist::new(), Hist::new()], skipped: 0, first_error: None }
    }
    fn json(&self, phase: usize) -> String {
        let rate = if self.sent[phase] == 0 { 0.0 } else { self.ok[phase] as f64 / self.sent[phase] as f64 };
        format!(
            "{{\"sent\":{},\"ok\":{},\"success_rate\":{:.4},\"latency_us\":{}}}",
            self.sent[phase],
            self.ok[phase],
            rate,
            self.hist[phase].json()
        )
    }
}

/// One request on `s`, answered within `limit`? Err(reason) if not.
fn probe_once(s: &mut TcpStream, req: &[u8], id: u32, expect: i32, le: bool, limit: Duration) -> Result<(), String> {
    let t0 = Instant::now();
    s.set_write_timeout(Some(limit)).map_err(|e| e.to_string())?;
    s.write_all(req).map_err(|e| format!("write: {e}"))?;
    let mut buf = [0u8; 8];
    let mut have = 0;
    while have < 8 {
        let left = limit.checked_sub(t0.elapsed()).ok_or("no answer in time")?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
        match s.read(&mut buf[have..]) {
            Ok(0) => return Err("closed".into()),
            Ok(n) => have += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err("no answer in time".into());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let (gid, res) = (get_u32(&buf, le), get_u32(&buf[4..], le) as i32);
    if gid != id || res != expect {
        return Err(format!("wrong answer: id {gid} result {res}, expected id {id} result {expect}"));
    }
    Ok(())
}

fn record_probe(stats: &Mutex<ProbeStats>, ph: usize, took: Duration, res: Result<(), String>, what: &str) {
    let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
    st.sent[ph] += 1;
    match res {
        Ok(()) => {
            st.ok[ph] += 1;
            st.hist[ph].record(took);
        }
        Err(e) => {
            if st.first_error.is_none() {
                st.first_error = Some(format!("{what} probe: {e}"));
            }
        }
    }
}

/// `fresh`: every tick, a new connection in a thread of its own (connect time counts
/// in the probe's latency and its timeout), so a slow accept does not delay the next
/// probe. Otherwise one long-lived connection, one request at a time: a tick that
/// comes while the previous probe still waits is skipped (counted in `skipped`).
fn prober(o: Arc<Opts>, fresh: bool, phase: Arc<AtomicU8>, done: Arc<AtomicBool>, stats: Arc<Mutex<ProbeStats>>) {
    let le = o.little_endian;
    let mut rng = Rng::new(o.seed ^ if fresh { 0xf7e5 } else { 0x7e7 });
    let tpl = templates(&mut rng, o.numbers, le);
    let limit = secs(o.probe_timeout);
    let interval = secs(o.probe_interval);
    let mut conn: Option<TcpStream> = None;
    let mut id: u32 = if fresh { 0xF000_0000 } else { 0xE000_0000 };
    let mut next = Instant::now();
    let mut k = 0usize;
    let mut running: Vec<thread::JoinHandle<()>> = Vec::new();
    while !done.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            thread::sleep((next - now).min(Duration::from_millis(20)));
            continue;
        }
        while next + interval <= now {
            next += interval;
            stats.lock().unwrap_or_else(|p| p.into_inner()).skipped += 1;
        }
        next += interval;
        let ph = phase.load(Ordering::Relaxed) as usize;
        let tp = &tpl[k % TEMPLATES];
        k += 1;
        id = id.wrapping_add(1);
        let mut req = tp.bytes.clone();
        set_id(&mut req, id, le);
        let expect = tp.expect;
        if fresh {
            running.retain(|h| !h.is_finished());
            let (addr, st) = (o.addr, Arc::clone(&stats));
            let spawned = thread::Builder::new().stack_size(64 * 1024).spawn(move || {
                let t0 = Instant::now();
                let res = TcpStream::connect_timeout(&addr, limit)
                    .map_err(|e| format!("connect: {e}"))
                    .and_then(|mut s| {
                        let _ = s.set_nodelay(true);
                        let left = limit.checked_sub(t0.elapsed()).ok_or("connect took the whole probe timeout")?;
                        probe_once(&mut s, &req, id, expect, le, left)
                    });
                record_probe(&st, ph, t0.elapsed(), res, "fresh");
            });
            match spawned {
                Ok(h) => running.push(h),
                Err(e) => record_probe(&stats, ph, Duration::ZERO, Err(format!("spawn: {e}")), "fresh"),
            }
            continue;
        }
        let t0 = Instant::now();
        let res = (|| {
            if conn.is_none() {
                let s = TcpStream::connect_timeout(&o.addr, limit).map_err(|e| format!("connect: {e}"))?;
                let _ = s.set_nodelay(true);
                conn = Some(s);
            }
            let left = limit.checked_sub(t0.elapsed()).ok_or("connect took the whole probe timeout")?;
            let s = conn.as_mut().ok_or("no connection")?;
            probe_once(s, &req, id, expect, le, left)
        })();
        if res.is_err() {
            conn = None; // a late answer would desynchronise the stream
        }
        record_probe(&stats, ph, t0.elapsed(), res, "held");
    }
    for h in running {
        let _ = h.join();
    }
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat.
fn self_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields 14 and 15 of stat(5); rest starts at field 3. USER_HZ is 100 on Linux.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn threads_of(pid: Option<u32>) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = s.lines().find(|l| l.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn opt_json(x: Option<u64>) -> String {
    x.map_or("null".into(), |v| v.to_string())
}

fn run_idle(o: &Opts) -> (String, bool) {
    let opts = Arc::new(o.clone());
    let phase = Arc::new(AtomicU8::new(PHASE_BEFORE));
    let done = Arc::new(AtomicBool::new(false));
    let stats_held = Arc::new(Mutex::new(ProbeStats::new()));
    let stats_fresh = Arc::new(Mutex::new(ProbeStats::new()));
    let rss_before = rss_kib(o.server_pid);
    let probes: Vec<_> = [(false, &stats_held), (true, &stats_fresh)]
        .into_iter()
        .map(|(fresh, st)| {
            let (o, ph, d, st) = (Arc::clone(&opts), Arc::clone(&phase), Arc::clone(&done), Arc::clone(st));
            thread::spawn(move || prober(o, fresh, ph, d, st))
        })
        .collect();
    thread::sleep(Duration::from_millis(500)); // a few probes with nothing held
    phase.store(PHASE_RAMP, Ordering::Relaxed);

    // Ramp: --connect-threads threads share the connects, within --connect-seconds.
    let t_ramp = Instant::now();
    let ramp_deadline = t_ramp + secs(o.connect_seconds);
    let per = o.connections.div_ceil(o.connect_threads.max(1));
    let openers: Vec<_> = (0..o.connect_threads)
        .map(|i| {
            let o = Arc::clone(&opts);
            let n = per.min(o.connections.saturating_sub(i * per));
            thread::spawn(move || {
                let mut held = Vec::with_capacity(n);
                let mut errs: Vec<String> = Vec::new();
                let mut failed = 0u64;
                for _ in 0..n {
                    let left = ramp_deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let warm = |mut s: TcpStream| -> std::io::Result<TcpStream> {
                        if !o.cold {
                            s.set_read_timeout(Some(Duration::from_secs(5)))?;
                            let mut req = Vec::with_capacity(12);
                            put_u32(&mut req, held.len() as u32, o.little_endian);
                            req.extend_from_slice(b"SUM");
                            req.push(1);
                            put_u32(&mut req, 7, o.little_endian);
                            s.write_all(&req)?;
                            let mut answer = [0u8; 8];
                            s.read_exact(&mut answer)?;
                        }
                        Ok(s)
                    };
                    match TcpStream::connect_timeout(&o.addr, left.min(Duration::from_secs(5))).and_then(warm) {
                        Ok(s) => held.push(s),
                        Err(e) => {
                            failed += 1;
                            if errs.len() < 3 {
                                errs.push(e.to_string());
                            }
                            if e.raw_os_error() == Some(24) {
                                break; // EMFILE: no point going on
                            }
                        }
                    }
                }
                (held, failed, errs)
            })
        })
        .collect();
    let mut held: Vec<TcpStream> = Vec::with_capacity(o.connections);
    let mut connect_failed = 0u64;
    let mut connect_errors: Vec<String> = Vec::new();
    for h in openers {
        if let Ok((mut v, f, e)) = h.join() {
            held.append(&mut v);
            connect_failed += f;
            for x in e {
                if !connect_errors.contains(&x) {
                    connect_errors.push(x);
                }
            }
        }
    }
    let ramp_s = t_ramp.elapsed().as_secs_f64();
    let established = held.len();
    let rss_after_ramp = rss_kib(o.server_pid);

    // Hold: sample the server's RSS every 250 ms.
    phase.store(PHASE_HOLD, Ordering::Relaxed);
    let t_hold = Instant::now();
    let mut rss_max = rss_after_ramp;
    let mut threads_max = threads_of(o.server_pid);
    while t_hold.elapsed() < secs(o.hold) {
        thread::sleep(Duration::from_millis(250).min(secs(o.hold).saturating_sub(t_hold.elapsed())));
        if let Some(v) = rss_kib(o.server_pid) {
            rss_max = Some(rss_max.map_or(v, |m| m.max(v)));
        }
        if let Some(v) = threads_of(o.server_pid) {
            threads_max = Some(threads_max.map_or(v, |m| m.max(v)));
        }
    }
    let rss_end = rss_kib(o.server_pid);
    // Still open? A read must find nothing to read (not EOF, not a reset).
    let (mut alive, mut closed, mut reset, mut data) = (0u64, 0u64, 0u64, 0u64);
    for s in &mut held {
        let _ = s.set_nonblocking(true);
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => alive += 1,
            Ok(0) => closed += 1,
            Ok(_) => data += 1,
            Err(_) => reset += 1,
        }
    }
    phase.store(PHASE_AFTER, Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    for p in probes {
        let _ = p.join();
    }
    drop(held);
    let sh = stats_held.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let sf = stats_fresh.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let probe_ok_hold = sh.sent[2] > 0 && sh.ok[2] == sh.sent[2] && sf.ok[2] == sf.sent[2];
    let j = format!(
        "{{\"mode\":\"idle\",\"warm\":{},\"addr\":\"{}\",\"connections\":{},\"established\":{},\"connect_failed\":{},\"connect_errors\":[{}],\"ramp_seconds\":{:.3},\"hold_seconds\":{},\"held_alive_at_end\":{},\"closed_by_server\":{},\"reset\":{},\"unexpected_data\":{},\"server_pid\":{},\"server_rss_kib_before\":{},\"server_rss_kib_after_ramp\":{},\"server_rss_kib_max\":{},\"server_rss_kib_end\":{},\"server_threads_max\":{},\"probe_held_connection\":{{\"before\":{},\"ramp\":{},\"hold\":{},\"skipped_ticks\":{}}},\"probe_fresh_connection\":{{\"before\":{},\"ramp\":{},\"hold\":{}}},\"probe_first_error\":{}}}",
        !o.cold,
        o.addr,
        o.connections,
        established,
        connect_failed,
        connect_errors.iter().map(|e| json_str(e)).collect::<Vec<_>>().join(","),
        ramp_s,
        o.hold,
        alive,
        closed,
        reset,
        data,
        opt_json(o.server_pid.map(u64::from)),
        opt_json(rss_before),
        opt_json(rss_after_ramp),
        opt_json(rss_max),
        opt_json(rss_end),
        opt_json(threads_max),
        sh.json(0),
        sh.json(1),
        sh.json(2),
        sh.skipped,
        sf.json(0),
        sf.json(1),
        sf.json(2),
        sh.first_error.or(sf.first_error).as_deref().map_or("null".into(), json_str),
    );
    let ok = established == o.connections && alive == established as u64 && probe_ok_hold;
    (j, ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse_opts(&args) {
        Ok(o) => o,
        Err(e) => {
            if e.is_empty() {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("calc-loadgen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (json, ok) = if o.mode == "idle" { run_idle(&o) } else { run_load(&o) };
    println!("{json}");
    if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
