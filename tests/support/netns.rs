//! A two-namespace network lab for integration tests (std only).
//!
//! ```text
//!   scanner ns  sk-<pid>-<n>-s            target ns  sk-<pid>-<n>-t
//!   veth-s 198.18.0.1/24  <-- veth -->  veth-t 198.18.0.2/24
//!          fd00:5ec::1/64                      fd00:5ec::2/64
//! ```
//!
//! Every lab has its own pair of namespaces, so concurrent tests reuse the same
//! addresses and interface names without clashing, and nothing is ever created
//! in the machine's own (root) namespace: the veth ends are created directly
//! inside the lab's namespaces. Traffic stays between the two namespaces, on
//! addresses from 198.18.0.0/15 and ULA fd00::/8 only.
//!
//! `Drop` (which also runs when a test panics) kills every process still in
//! the lab's namespaces and deletes them. Typical use:
//!
//! ```ignore
//! if !support::netns::require_lab() { return; }
//! let lab = Lab::new();
//! let _l = lab.listen(lab.target_ns(), TARGET_V4, &[22, 80]);
//! lab.nft(lab.target_ns(), "table inet f { chain in { type filter hook input priority 0; tcp dport 81 drop; } }");
//! let child = lab.spawn(lab.scanner_ns(), env!("CARGO_BIN_EXE_sockeye"), &["scan", "-p", "22,80,81", TARGET_V4]);
//! let out = wait_output(child, Duration::from_secs(30));
//! ```

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Scanner side of the veth pair.
pub(crate) const SCANNER_V4: &str = "198.18.0.1";
/// Target side of the veth pair.
pub(crate) const TARGET_V4: &str = "198.18.0.2";
pub(crate) const SCANNER_V6: &str = "fd00:5ec::1";
pub(crate) const TARGET_V6: &str = "fd00:5ec::2";
/// Interface names (the same in every lab: each lives in its own namespace).
pub(crate) const SCANNER_IF: &str = "veth-s";
pub(crate) const TARGET_IF: &str = "veth-t";

/// The listener script, embedded so the helper works from any working directory.
const LISTEN_PY: &str = include_str!("listen.py");
/// Lifetime cap handed to every listener (it exits by itself after this).
const LISTENER_SECONDS: u32 = 300;
/// How long `listen` waits for the listener's "ready" line.
const LISTENER_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `Lab::new` waits for the veth link to come up.
const LINK_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// SIGTERM grace before SIGKILL when cleaning up.
const KILL_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for a finished child's pipes to reach EOF.
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Prefix of every namespace this helper creates (benches use `skb-`).
pub(crate) const NS_PREFIX: &str = "sk-";

pub(crate) static COUNTER: AtomicU32 = AtomicU32::new(0);
pub(crate) static STALE_CLEANUP: Once = Once::new();

// ---------------------------------------------------------------------------
// Availability
// ---------------------------------------------------------------------------

fn is_root() -> bool {
    // std has no getuid(); /proc/self/status has "Uid:\treal\teffective\t...".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn tool_runs(prog: &str, args: &[&str]) -> bool {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// True when running as root with `ip`, `nft` and `python3` present and
/// `ip netns add` works (checked once, with a throw-away namespace).
pub(crate) fn lab_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if !is_root()
            || !tool_runs("ip", &["-V"])
            || !tool_runs("nft", &["--version"])
            || !tool_runs(python(), &["-c", "pass"])
        {
            return false;
        }
        let name = format!("{NS_PREFIX}{}-probe", std::process::id());
        let ok = tool_runs("ip", &["netns", "add", &name]);
        if ok {
            let _ = tool_runs("ip", &["netns", "del", &name]);
        }
        ok
    })
}

/// Call first in every test that needs a lab:
/// `if !require_lab() { return; }`.
///
/// Under `CI=true` a missing lab is a failure (a test that cannot run must
/// never pass silently there); elsewhere it prints a loud SKIPPED line.
#[allow(clippy::print_stderr)]
pub(crate) fn require_lab() -> bool {
    if lab_available() {
        return true;
    }
    let ci = std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false);
    if ci {
        panic!(
            "network lab unavailable under CI=true: this test needs root + iproute2 + nftables + \
             python3 and a working `ip netns add`; install them (the README's test command does)"
        );
    }
    eprintln!(
        "\n********************************************************************\n\
         SKIPPED: needs root + iproute2 + nftables (+ python3, `ip netns add`)\n\
         ********************************************************************"
    );
    false
}

fn python() -> &'static str {
    // The system interpreter starts faster than a pyenv shim.
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

// ---------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(cmd)))
}

fn check(cmd: &Command, out: Output) -> Output {
    if !out.status.success() {
        panic!(
            "`{}` failed ({}):\nstdout: {}\nstderr: {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Waits for `child` at most `timeout`, collecting its piped stdout/stderr.
/// On timeout kills it and panics with what it printed so far.
pub(crate) fn wait_output(child: Child, timeout: Duration) -> Output {
    match try_wait_output(child, timeout) {
        Ok(out) => out,
        Err(out) => panic!(
            "process still running after {timeout:?}; killed.\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Like [`wait_output`] but returns `Err(partial output)` on timeout (the child
/// has been killed and reaped by then).
pub(crate) fn try_wait_output(mut child: Child, timeout: Duration) -> Result<Output, Output> {
    fn drain<R: Read + Send + 'static>(r: Option<R>) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    }
    let out_t = drain(child.stdout.take());
    let err_t = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut status: Option<ExitStatus> = None;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                break;
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(_) => break,
        }
    }
    let timed_out = status.is_none();
    if timed_out {
        terminate(&mut child, Duration::ZERO);
    }
    let status = match status {
        Some(s) => s,
        None => child.wait().expect("wait for killed child"),
    };
    // A grandchild that inherited the pipes could keep them open: wait for the
    // readers a bounded time only (the lab's Drop kills such leftovers).
    let out = Output {
        status,
        stdout: out_t.recv_timeout(PIPE_DRAIN_TIMEOUT).unwrap_or_default(),
        stderr: err_t.recv_timeout(PIPE_DRAIN_TIMEOUT).unwrap_or_default(),
    };
    if timed_out { Err(out) } else { Ok(out) }
}

/// SIGTERM, up to `grace` to exit, then SIGKILL; always reaps. Never panics.
fn terminate(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if !grace.is_zero() {
        // The child is ours and not yet reaped, so its PID cannot have been reused.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------
// Namespace housekeeping
// ---------------------------------------------------------------------------

/// Inode of a named namespace, to recognise its processes in /proc.
pub(crate) fn ns_inode(ns: &str) -> Option<u64> {
    std::fs::metadata(format!("/run/netns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// PIDs of processes whose network namespace is `ns` (double-checked against
/// the namespace's inode so a recycled PID is never hit).
fn ns_pids(ns: &str) -> Vec<u32> {
    let Some(ino) = ns_inode(ns) else {
        return Vec::new();
    };
    let want = format!("net:[{ino}]");
    let Ok(out) = Command::new("ip")
        .args(["netns", "pids", ns])
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter(|&p| p != std::process::id())
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/ns/net"))
                .map(|l| l.to_string_lossy() == want)
                .unwrap_or(false)
        })
        .collect()
}

fn signal_pids(pids: &[u32], sig: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(sig)
        .args(pids.iter().map(|p| p.to_string()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Kills whatever still runs in `ns` (TERM, grace, KILL) and deletes it. Never panics.
pub(crate) fn destroy_ns(ns: &str) {
    if ns_inode(ns).is_none() {
        return;
    }
    let pids = ns_pids(ns);
    if !pids.is_empty() {
        signal_pids(&pids, "-TERM");
        let deadline = Instant::now() + KILL_GRACE;
        while Instant::now() < deadline && !ns_pids(ns).is_empty() {
            thread::sleep(Duration::from_millis(20));
        }
        for _ in 0..5 {
            let left = ns_pids(ns);
            if left.is_empty() {
                break;
            }
            signal_pids(&left, "-KILL");
            thread::sleep(Duration::from_millis(20));
        }
    }
    for _ in 0..5 {
        let ok = Command::new("ip")
            .args(["netns", "del", ns])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok || ns_inode(ns).is_none() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Deletes `sk-<pid>-...` namespaces left behind by test processes that died
/// without unwinding (SIGKILL, abort). Only namespaces of dead PIDs are touched.
pub(crate) fn cleanup_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let mut parts = rest.split('-');
        let (Some(pid), Some(_n), Some(side), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        // s, t: a Lab's; r, a, b, c, m: a zones lab's (support/zones.rs).
        if ["s", "t", "r", "a", "b", "c", "m"].contains(&side)
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            destroy_ns(&name);
        }
    }
}

// ---------------------------------------------------------------------------
// The lab
// ---------------------------------------------------------------------------

/// Two namespaces, scanner and target, joined by one veth pair.
#[derive(Debug)]
pub(crate) struct Lab {
    scanner: String,
    target: String,
}

impl Lab {
    /// Creates the namespaces and the link. Panics (after cleaning up) if any step fails.
    /// Call [`require_lab`] first.
    pub(crate) fn new() -> Lab {
        STALE_CLEANUP.call_once(cleanup_stale);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{NS_PREFIX}{}-{n}", std::process::id());
        let lab = Lab {
            scanner: format!("{tag}-s"),
            target: format!("{tag}-t"),
        };
        // From here on Drop cleans up, even if a step below panics.
        for ns in [&lab.scanner, &lab.target] {
            if ns_inode(ns).is_some() {
                // Left by an earlier process with our (recycled) PID: it is dead.
                destroy_ns(ns);
            }
            check_ip(&["netns", "add", ns]);
        }
        check_ip(&[
            "link",
            "add",
            SCANNER_IF,
            "netns",
            &lab.scanner,
            "type",
            "veth",
            "peer",
            "name",
            TARGET_IF,
            "netns",
            &lab.target,
        ]);
        for (ns, ifname, v4, v6) in [
            (&lab.scanner, SCANNER_IF, SCANNER_V4, SCANNER_V6),
            (&lab.target, TARGET_IF, TARGET_V4, TARGET_V6),
        ] {
            // No duplicate-address detection on the link-local address either:
            // the link is usable as soon as the carrier is up.
            check_ip_exec(
                ns,
                &[
                    "sysctl",
                    "-q",
                    "-w",
                    &format!("net.ipv6.conf.{ifname}.accept_dad=0"),
                ],
            );
            check_ip(&["-n", ns, "link", "set", "lo", "up"]);
            check_ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", ifname]);
            check_ip(&[
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifname,
                "nodad",
            ]);
            check_ip(&["-n", ns, "link", "set", ifname, "up"]);
        }
        lab.wait_link_ready();
        lab
    }

    /// Waits (bounded) until both veth ends have carrier and the IPv6 routes are
    /// back: a SYN sent in the first milliseconds after `link set up` would be
    /// dropped and retransmitted a second later, skewing timings.
    fn wait_link_ready(&self) {
        let deadline = Instant::now() + LINK_READY_TIMEOUT;
        let ready = |ns: &str, ifname: &str| {
            let link = check_ip(&["-n", ns, "-o", "link", "show", "dev", ifname]);
            let route = check_ip(&["-n", ns, "-6", "route", "show", "fd00:5ec::/64"]);
            let tentative = check_ip(&["-n", ns, "-6", "addr", "show", "dev", ifname, "tentative"]);
            String::from_utf8_lossy(&link.stdout).contains("state UP")
                && !route.stdout.is_empty()
                && tentative.stdout.is_empty()
        };
        while Instant::now() < deadline {
            if ready(&self.scanner, SCANNER_IF) && ready(&self.target, TARGET_IF) {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "veth link between {} and {} not up after {LINK_READY_TIMEOUT:?}",
            self.scanner, self.target
        );
    }

    pub(crate) fn scanner_ns(&self) -> &str {
        &self.scanner
    }

    pub(crate) fn target_ns(&self) -> &str {
        &self.target
    }

    fn other_ns(&self, ns: &str) -> &str {
        if ns == self.scanner {
            &self.target
        } else if ns == self.target {
            &self.scanner
        } else {
            panic!(
                "{ns} is not a namespace of this lab ({}, {})",
                self.scanner, self.target
            )
        }
    }

    fn own<'a>(&self, ns: &'a str) -> &'a str {
        let _ = self.other_ns(ns); // panics on a foreign namespace
        ns
    }

    /// A `Command` for `ip netns exec NS program`: add args, env, stdio and
    /// run it as usual (works with `assert_cmd::Command::from_std` too).
    pub(crate) fn command(&self, ns: &str, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.own(ns)]).arg(program);
        c
    }

    /// Runs `args[0] args[1..]` in `ns`, stdin null; panics with its output on failure.
    pub(crate) fn exec<S: AsRef<OsStr>>(&self, ns: &str, args: &[S]) -> Output {
        let mut c = self.exec_command(ns, args);
        let out = run(&mut c);
        check(&c, out)
    }

    /// Like [`Lab::exec`] but returns the output whatever the exit status.
    pub(crate) fn try_exec<S: AsRef<OsStr>>(&self, ns: &str, args: &[S]) -> Output {
        run(&mut self.exec_command(ns, args))
    }

    fn exec_command<S: AsRef<OsStr>>(&self, ns: &str, args: &[S]) -> Command {
        let (prog, rest) = args.split_first().expect("exec needs a program");
        let mut c = self.command(ns, prog);
        c.args(rest);
        c
    }

    /// Starts `program args` in `ns` with stdin null and stdout/stderr piped;
    /// collect them with [`wait_output`]. Whatever is still running in the
    /// namespace when the lab drops is killed.
    pub(crate) fn spawn<S: AsRef<OsStr>>(
        &self,
        ns: &str,
        program: impl AsRef<OsStr>,
        args: &[S],
    ) -> Child {
        let mut c = self.command(ns, program);
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn()
            .unwrap_or_else(|e| panic!("cannot spawn `{}`: {e}", describe(&c)))
    }

    /// Loads an nftables ruleset (`nft -f -`) inside `ns`; panics with nft's error.
    pub(crate) fn nft(&self, ns: &str, ruleset: &str) {
        let out = self.try_nft(ns, ruleset);
        if !out.status.success() {
            panic!(
                "nft -f - in {ns} failed ({}):\n{}\nruleset:\n{ruleset}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Like [`Lab::nft`] but returns nft's output whatever the exit status.
    pub(crate) fn try_nft(&self, ns: &str, ruleset: &str) -> Output {
        let mut c = self.command(ns, "nft");
        c.args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot run nft: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(ruleset.as_bytes());
        } // stdin closed here: nft reads to EOF
        wait_output(child, Duration::from_secs(10))
    }

    /// `sysctl -w k=v ...` inside `ns` (net.* sysctls are per namespace).
    pub(crate) fn sysctl(&self, ns: &str, settings: &[&str]) {
        let mut args = vec!["sysctl", "-q", "-w"];
        args.extend_from_slice(settings);
        self.exec(ns, &args);
    }

    /// Lifts Linux's per-destination ICMP error rate limit in `ns`, for tests
    /// that need every port-unreachable / admin-prohibited answer.
    pub(crate) fn unlimit_icmp(&self, ns: &str) {
        self.sysctl(
            ns,
            &[
                "net.ipv4.icmp_ratelimit=0",
                "net.ipv4.icmp_msgs_per_sec=100000",
            ],
        );
        // The IPv6 knob exists on every kernel we run; ignore it where it does not.
        let _ = self.try_exec(ns, &["sysctl", "-q", "-w", "net.ipv6.icmp.ratelimit=0"]);
    }

    /// Makes `ns` answer for every address of `cidr` (`ip route add local CIDR dev lo`)
    /// and routes `cidr` to it from the other namespace, over the veth.
    pub(crate) fn add_local_range(&self, ns: &str, cidr: &str) {
        let other = self.other_ns(ns);
        let v6 = cidr.contains(':');
        let via = match (ns == self.target, v6) {
            (true, false) => TARGET_V4,
            (true, true) => TARGET_V6,
            (false, false) => SCANNER_V4,
            (false, true) => SCANNER_V6,
        };
        let fam = if v6 { "-6" } else { "-4" };
        check_ip(&["-n", ns, fam, "route", "add", "local", cidr, "dev", "lo"]);
        check_ip(&["-n", other, fam, "route", "add", cidr, "via", via]);
    }

    /// Starts the accept-and-close listener (`listen.py`) on `addr` (e.g.
    /// `TARGET_V4`, `"0.0.0.0"`, `"::"`) and `ports` in `ns`, and returns once
    /// every port is listening (at most 5 s, else panics). Dropping the guard
    /// stops it; the listener also exits by itself after 300 s.
    pub(crate) fn listen(&self, ns: &str, addr: &str, ports: &[u16]) -> ListenerGuard {
        self.listen_with(ns, addr, ports, &[])
    }

    /// [`Lab::listen`] with extra `listen.py` options (`--rst`: abort each
    /// accepted connection with an RST).
    pub(crate) fn listen_with(
        &self,
        ns: &str,
        addr: &str,
        ports: &[u16],
        extra: &[&str],
    ) -> ListenerGuard {
        assert!(!ports.is_empty(), "listen needs at least one port");
        let list = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut c = self.command(ns, python());
        c.args(["-c", LISTEN_PY, "--addr", addr, "--ports", &list])
            .args(["--seconds", &LISTENER_SECONDS.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start listen.py: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let ready = matches!(rx.recv_timeout(LISTENER_READY_TIMEOUT), Ok(l) if l.trim() == "ready");
        if !ready {
            terminate(&mut child, Duration::ZERO);
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("listen.py on {addr} ports {list} in {ns} did not become ready:\n{err}");
        }
        ListenerGuard {
            child: Some(child),
            ns: ns.to_owned(),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Never panics: every step ignores its errors.
        destroy_ns(&self.scanner);
        destroy_ns(&self.target);
    }
}

pub(crate) fn check_ip_exec(ns: &str, args: &[&str]) -> Output {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    let out = run(&mut c);
    check(&c, out)
}

pub(crate) fn check_ip(args: &[&str]) -> Output {
    let mut c = Command::new("ip");
    c.args(args);
    let out = run(&mut c);
    check(&c, out)
}

/// A running `listen.py`; dropping it stops the listener (SIGTERM, then SIGKILL).
#[derive(Debug)]
pub(crate) struct ListenerGuard {
    child: Option<Child>,
    ns: String,
}

impl ListenerGuard {
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Stops the listener now and returns how many connections it accepted
    /// (from its "accepted N" line), if it said.
    pub(crate) fn stop(mut self) -> Option<u64> {
        let mut child = self.child.take()?;
        terminate(&mut child, KILL_GRACE);
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err.lines()
            .find_map(|l| l.strip_prefix("listen.py: accepted "))
            .and_then(|n| n.trim().parse().ok())
    }
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, KILL_GRACE);
        }
    }
}
