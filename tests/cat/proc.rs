//! A `sockeye cat` process under test: stdio piped and collected by
//! threads (so the child never blocks on a full pipe), every wait bounded,
//! and SIGTERM then SIGKILL on drop so that no test leaves one behind.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sockeye")
}

#[derive(Debug)]
pub(crate) struct Cat {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    /// The child's stdout reached its end (closed, or the child exited).
    stdout_ended: Arc<AtomicBool>,
    stderr: Arc<Mutex<String>>,
}

pub(crate) struct Done {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Done {
    pub(crate) fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Reads `r` into `into` until its end, then sets `ended`.
fn collect<R: Read + Send + 'static>(mut r: R, into: Arc<Mutex<Vec<u8>>>, ended: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        ended.store(true, Ordering::SeqCst);
    });
}

fn collect_lines<R: Read + Send + 'static>(r: R, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = String::new();
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
}

/// Polls `f` until it returns Some or `limit` passes.
pub(crate) fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Cat {
    /// Starts `sockeye cat ARGS` (or, with `exe`, another name for it).
    pub(crate) fn spawn_with(
        exe: &std::path::Path,
        pre: &[&str],
        args: &[&str],
        dir: Option<&std::path::Path>,
    ) -> Cat {
        let mut cmd = Command::new(exe);
        cmd.args(pre)
            .args(args)
            .env_remove("SOCKEYE_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        let mut child = cmd.spawn().expect("start sockeye cat");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout_ended = Arc::new(AtomicBool::new(false));
        collect(
            child.stdout.take().unwrap(),
            stdout.clone(),
            stdout_ended.clone(),
        );
        collect_lines(child.stderr.take().unwrap(), stderr.clone());
        Cat {
            stdin: child.stdin.take(),
            child: Some(child),
            stdout,
            stdout_ended,
            stderr,
        }
    }

    pub(crate) fn spawn(args: &[&str]) -> Cat {
        Cat::spawn_with(std::path::Path::new(bin()), &["cat"], args, None)
    }

    pub(crate) fn spawn_in(dir: &std::path::Path, args: &[&str]) -> Cat {
        Cat::spawn_with(std::path::Path::new(bin()), &["cat"], args, Some(dir))
    }

    /// `sockeye cat -v -l 127.0.0.1 0 ARGS`, and the port it got.
    pub(crate) fn listen(args: &[&str]) -> (Cat, u16) {
        let mut all = vec!["-v", "-l"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["127.0.0.1", "0"]);
        let cat = Cat::spawn(&all);
        let port = cat.port();
        (cat, port)
    }

    /// The port of the "listening on ADDR:PORT" line.
    pub(crate) fn port(&self) -> u16 {
        let line = self
            .wait_stderr("listening on ", WAIT)
            .unwrap_or_else(|| panic!("no listening line; stderr: {}", self.stderr()));
        let addr = line
            .split("listening on ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        addr.rsplit(':').next().unwrap().parse().expect("port")
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    /// The first stderr line containing `pat`, waiting up to `limit`.
    pub(crate) fn wait_stderr(&self, pat: &str, limit: Duration) -> Option<String> {
        wait_for(limit, || {
            self.stderr
                .lock()
                .unwrap()
                .lines()
                .find(|l| l.contains(pat))
                .map(str::to_string)
        })
    }

    /// Waits until stdout holds at least `n` bytes.
    pub(crate) fn wait_stdout(&self, n: usize, limit: Duration) -> Vec<u8> {
        wait_for(limit, || {
            let o = self.stdout.lock().unwrap();
            (o.len() >= n).then(|| o.clone())
        })
        .unwrap_or_else(|| self.stdout())
    }

    /// Whether the child's stdout reached its end within `limit`.
    pub(crate) fn stdout_ends(&self, limit: Duration) -> bool {
        wait_for(limit, || {
            self.stdout_ended.load(Ordering::SeqCst).then_some(())
        })
        .is_some()
    }

    /// Whether the child is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    pub(crate) fn write(&mut self, data: &[u8]) {
        let s = self.stdin.as_mut().expect("stdin open");
        s.write_all(data).expect("write stdin");
        s.flush().expect("flush stdin");
    }

    pub(crate) fn close_stdin(&mut self) {
        self.stdin.take();
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Closes stdin and waits (bounded) for the exit.
    pub(crate) fn finish(mut self, limit: Duration) -> Done {
        self.close_stdin();
        self.wait(limit)
    }

    /// Waits (bounded) for the exit, stdin left as it is.
    pub(crate) fn wait(mut self, limit: Duration) -> Done {
        let mut child = self.child.take().unwrap();
        let end = Instant::now() + limit;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sockeye cat did not exit within {limit:?}; stderr: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Let the collector threads see the last bytes.
        std::thread::sleep(Duration::from_millis(50));
        Done {
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Cat {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// VmRSS of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// A TCP client with timeouts on every read and write.
pub(crate) fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// Reads to EOF (bounded by the socket's read timeout).
pub(crate) fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read to EOF");
    out
}

/// Reads one line (up to and including '\n').
pub(crate) fn read_line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(_) => {
                out.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            Err(e) => panic!("read_line: {e} (got {:?})", String::from_utf8_lossy(&out)),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A UDP socket on 127.0.0.1 with a read timeout.
pub(crate) fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}
