//! Real servers in a test's target namespace: `tests/lab/services.sh` driven
//! from Rust (OpenSSH, Postfix, Dovecot, vsftpd, nginx, slapd, a TLS 1.0
//! server and the scripted responders of `tests/lab/responders.py`).
//!
//! Each [`ServiceLab`] has its own temporary state directory (certificates,
//! configs, queues, Maildirs, logs, pids), so labs of concurrent tests never
//! share anything; `Drop` runs `services.sh stop`, and the [`Lab`]'s own `Drop`
//! ends whatever is left in its namespaces. Ports, first bytes and accounts are
//! listed in `tests/lab/README.md`. Typical use:
//!
//! ```ignore
//! if !support::netns::require_lab() || !require_services() { return; }
//! let lab = Lab::new();
//! let services = ServiceLab::start(&lab); // declared after `lab`: dropped first
//! let child = lab.spawn(lab.scanner_ns(), bin(), &["probe", TARGET_V4]);
//! ```

use crate::util::show;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::netns::{Lab, TARGET_V4, try_wait_output};

/// The start/stop script and the client-side observer, from the source tree.
const SERVICES_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/services.sh");
const CHECK_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/check.py");
/// `services.sh start` waits at most 20 s for the ports itself; this covers a
/// loaded machine's certificate and key generation on top.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// `services.sh stop`: TERM, 5 s grace, KILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for one `check.py` run (each of its sockets times out in 5 s).
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines of each daemon log shown when the lab fails to start.
const LOG_TAIL_LINES: usize = 20;

/// The second address services.sh gives the target (next to `TARGET_V4`):
/// a responder speaks SSH on its port 110.
pub(crate) const ALIAS_V4: &str = "198.18.0.3";

/// The lab's test accounts (SMTP AUTH, IMAP/POP3, FTP; alice is also in LDAP).
pub(crate) const ALICE: (&str, &str) = ("alice", "wonderland");
pub(crate) const BOB: (&str, &str) = ("bob", "builder");

/// Ports of the lab (see tests/lab/README.md for what each sends first).
pub(crate) mod ports {
    pub(crate) const SSH: u16 = 22;
    pub(crate) const SMTP: u16 = 25;
    pub(crate) const SMTPS: u16 = 465;
    pub(crate) const SUBMISSION: u16 = 587;
    /// Postfix without STARTTLS, AUTH offered in clear text.
    pub(crate) const SMTP_NO_TLS: u16 = 2525;
    pub(crate) const POP3: u16 = 110;
    pub(crate) const IMAP: u16 = 143;
    pub(crate) const IMAPS: u16 = 993;
    pub(crate) const POP3S: u16 = 995;
    pub(crate) const FTP: u16 = 21;
    /// vsftpd without TLS, multi-line greeting.
    pub(crate) const FTP_PLAIN_MULTILINE: u16 = 2121;
    pub(crate) const HTTP: u16 = 80;
    pub(crate) const HTTPS: u16 = 443;
    pub(crate) const IPP: u16 = 631;
    /// nginx answering 403 to everything.
    pub(crate) const HTTP_FORBIDDEN: u16 = 8080;
    pub(crate) const LDAP: u16 = 389;
    pub(crate) const LDAPS: u16 = 636;
    /// `openssl s_server -tls1`: an old printer's web page.
    pub(crate) const TLS10_ONLY: u16 = 7010;
    // Scripted responders (tests/lab/responders.py).
    pub(crate) const TARPIT: u16 = 7001;
    pub(crate) const FLOOD: u16 = 7002;
    pub(crate) const SPLIT_GREETING: u16 = 7003;
    pub(crate) const STARTTLS_GARBAGE: u16 = 7004;
    pub(crate) const HALF_LINE: u16 = 7005;
    pub(crate) const DROP_AFTER_DATA: u16 = 7025;
    /// SSH banner; also on port 110 of `ALIAS_V4`.
    pub(crate) const SSH_ON_ODD_PORT: u16 = 7110;
    pub(crate) const BUSY_421: u16 = 7421;
    pub(crate) const EXPIRED_HTTPS: u16 = 7443;
}

/// Programs services.sh runs (from the Debian packages scripts/test.sh installs).
const REQUIRED_PROGRAMS: &[&str] = &[
    "/usr/sbin/sshd",
    "/usr/sbin/postconf",
    "/usr/sbin/dovecot",
    "/usr/sbin/vsftpd",
    "/usr/sbin/nginx",
    "/usr/sbin/slapd",
    "/usr/sbin/slapadd",
    "/usr/bin/openssl",
    "/usr/bin/ssh-keygen",
    "/usr/bin/unshare",
    "/usr/bin/timeout",
    "/usr/bin/ss",
];

/// What is missing for a [`ServiceLab`]: programs, and the PAM module vsftpd uses.
fn missing_services() -> Vec<String> {
    let mut missing: Vec<String> = REQUIRED_PROGRAMS
        .iter()
        .filter(|p| !Path::new(p).exists())
        .map(|p| (*p).to_owned())
        .collect();
    // pam_pwdfile.so lives in the multiarch directory, e.g. /lib/x86_64-linux-gnu/security.
    let pam_pwdfile = ["/lib", "/usr/lib", "/lib64", "/usr/lib64"]
        .iter()
        .any(|dir| {
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().join("security/pam_pwdfile.so").exists())
            }) || Path::new(dir).join("security/pam_pwdfile.so").exists()
        });
    if !pam_pwdfile {
        missing.push("pam_pwdfile.so (libpam-pwdfile)".to_owned());
    }
    missing
}

/// Call after `require_lab()` in every test that starts a [`ServiceLab`]:
/// `if !require_lab() || !require_services() { return; }`.
///
/// Same policy as `require_lab`: under `CI=true` missing daemons are a
/// failure; elsewhere a loud SKIPPED line.
#[allow(clippy::print_stderr)]
pub(crate) fn require_services() -> bool {
    let missing = missing_services();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false);
    let what = format!(
        "the real-server lab needs {}: install the packages listed in scripts/test.sh (it does)",
        missing.join(", ")
    );
    if ci {
        panic!("{what}");
    }
    eprintln!(
        "\n********************************************************************\n\
         SKIPPED: {what}\n\
         ********************************************************************"
    );
    false
}

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The real servers of one [`Lab`], running in its target namespace on
/// [`TARGET_V4`]. Dropping it stops them.
#[derive(Debug)]
pub(crate) struct ServiceLab {
    state: tempfile::TempDir,
}

impl ServiceLab {
    /// Runs `services.sh start` in `lab.target_ns()` with a fresh state
    /// directory and returns once every port listens. Panics with the
    /// script's output and the daemons' log tails if it does not.
    pub(crate) fn start(lab: &Lab) -> ServiceLab {
        let state = tempfile::Builder::new()
            .prefix("sockeye-lab-")
            .tempdir()
            .expect("create the lab's state directory");
        let mut cmd = lab.command(lab.target_ns(), "bash");
        cmd.arg(SERVICES_SH)
            .arg("start")
            .arg(state.path())
            .arg(TARGET_V4)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SERVICES_SH}: {e}"));
        let (out, timed_out) = match try_wait_output(child, START_TIMEOUT) {
            Ok(out) => (out, false),
            Err(out) => (out, true),
        };
        let ready = String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == "ready");
        if !timed_out && out.status.success() && ready {
            return ServiceLab { state };
        }
        let tails = log_tails(state.path());
        stop(state.path());
        panic!(
            "services.sh start in {} failed ({}{}):\nstdout: {}\nstderr: {}\n{tails}",
            lab.target_ns(),
            out.status,
            if timed_out { ", timed out" } else { "" },
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }

    /// Where every config, key, queue, Maildir, log and pid file of this lab lives.
    pub(crate) fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The test CA (PEM) that signed every lab certificate except the expired one.
    pub(crate) fn ca_cert_path(&self) -> PathBuf {
        self.state.path().join("tls/ca.crt")
    }

    /// `user`'s Maildir (`cur/`, `new/`, `tmp/` appear with the first delivery).
    pub(crate) fn maildir(&self, user: &str) -> PathBuf {
        self.state.path().join("mail").join(user)
    }

    /// Waits up to `timeout` for a message in `user`'s Maildir `new/` whose
    /// text contains `needle`, and returns that text.
    pub(crate) fn wait_for_mail(
        &self,
        user: &str,
        needle: &str,
        timeout: Duration,
    ) -> Option<String> {
        let new = self.maildir(user).join("new");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(entries) = std::fs::read_dir(&new) {
                for e in entries.flatten() {
                    if let Ok(text) = std::fs::read_to_string(e.path())
                        && text.contains(needle)
                    {
                        return Some(text);
                    }
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log of one daemon (`postfix`, `dovecot`, `sshd`, `vsftpd`, `nginx-error`,
    /// `slapd`, `responders`, ...), empty if it wrote none.
    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.state.path().join("logs").join(format!("{name}.log")))
            .unwrap_or_default()
    }

    /// Runs `tests/lab/check.py` in the scanner namespace against this lab and
    /// returns its JSON objects, one per check (see check.py for the checks).
    pub(crate) fn observe(&self, lab: &Lab, checks: &[&str]) -> Vec<Value> {
        let mut args: Vec<OsString> = vec![
            CHECK_PY.into(),
            "--addr".into(),
            TARGET_V4.into(),
            "--ca".into(),
            self.ca_cert_path().into(),
        ];
        args.extend(checks.iter().map(OsString::from));
        let child = lab.spawn(lab.scanner_ns(), python(), &args);
        let out = match try_wait_output(child, CHECK_TIMEOUT) {
            Ok(out) => out,
            Err(out) => panic!("check.py timed out:\n{}", show(&out)),
        };
        assert!(out.status.success(), "check.py failed:\n{}", show(&out));
        let values: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad check.py line {l:?}: {e}"))
            })
            .collect();
        assert_eq!(
            values.len(),
            checks.len(),
            "one result per check:\n{}",
            show(&out)
        );
        values
    }
}

impl Drop for ServiceLab {
    fn drop(&mut self) {
        stop(self.state.path());
    }
}

/// `services.sh stop STATE`: kills by pid file, so it needs no namespace. Never panics.
fn stop(state: &Path) {
    let child = std::process::Command::new("bash")
        .arg(SERVICES_SH)
        .arg("stop")
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    if let Ok(child) = child {
        let _ = try_wait_output(child, STOP_TIMEOUT);
    }
}

/// The last lines of every log in STATE/logs, for a failure message.
fn log_tails(state: &Path) -> String {
    let mut s = String::new();
    let Ok(entries) = std::fs::read_dir(state.join("logs")) else {
        return s;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        if text.trim().is_empty() {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        s.push_str(&format!(
            "---- {}\n{}\n",
            p.display(),
            lines[from..].join("\n")
        ));
    }
    s
}
