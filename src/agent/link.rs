//! The controller's side of one agent: how it is reached, the handshake,
//! and requests multiplexed over its pipe (each with its events and its
//! outcome). Dropping a [`Link`] closes the pipe, and the agent exits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye_proto::agent::{Kind, VERSION};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

use super::wire::{
    self, Action, CAPABILITIES, Event, FrameReader, Hello, Outcome, Refuse, SOCKEYE_VERSION,
    Welcome, WireError,
};

/// How an agent is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// This machine: the running sockeye binary.
    Local,
    /// `ip netns exec NAME` with the running binary (labs and tests).
    Netns(String),
    /// Any command that gives a pipe (`kubectl exec -i POD --`); `sockeye
    /// agent --stdio ...` is appended to it.
    Exec(Vec<String>),
    /// The system's OpenSSH client, so that the user's ssh_config, keys,
    /// agent and known_hosts apply; never a prompt (BatchMode).
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
    },
}

impl std::str::FromStr for Via {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "local" {
            return Ok(Via::Local);
        }
        if let Some(name) = text.strip_prefix("netns:") {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!(
                    "netns:{name}: a namespace name is letters, digits, '-', '_' or '.'"
                ));
            }
            return Ok(Via::Netns(name.into()));
        }
        if let Some(cmd) = text.strip_prefix("exec:") {
            let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
            if argv.is_empty() {
                return Err("exec: needs a command (exec:kubectl exec -i POD --)".into());
            }
            return Ok(Via::Exec(argv));
        }
        if let Some(rest) = text.strip_prefix("ssh://") {
            let (user, hostport) = match rest.rsplit_once('@') {
                Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
                Some(_) => return Err(format!("{text}: an empty user name")),
                None => (None, rest),
            };
            let (host, port) = crate::target::endpoint::parse_host_opt_port(hostport)
                .map_err(|e| format!("{text}: {e}"))?;
            if host.starts_with('-') {
                return Err(format!("{text}: a host name cannot start with '-'"));
            }
            return Ok(Via::Ssh { user, host, port });
        }
        Err(format!(
            "{text:?}: an agent is reached by local, netns:NAME, exec:COMMAND ARGS or ssh://[USER@]HOST[:PORT]"
        ))
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Local => f.write_str("local"),
            Via::Netns(n) => write!(f, "netns:{n}"),
            Via::Exec(argv) => write!(f, "exec:{}", argv.join(" ")),
            Via::Ssh { user, host, port } => {
                f.write_str("ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                match port {
                    Some(p) => f.write_str(&crate::target::endpoint::host_port(host, *p)),
                    None if host.contains(':') => write!(f, "[{host}]"),
                    None => f.write_str(host),
                }
            }
        }
    }
}

/// One agent of a plan: its name, how it is reached, the limits its
/// command line gives it.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub name: String,
    pub via: Via,
    /// `--allow-listen` (ports), if any.
    pub allow_listen: Option<String>,
    /// `--allow-targets` (networks), if any.
    pub allow_targets: Option<String>,
    pub max_rate: Option<u32>,
    /// The sockeye binary for `local` and `netns:`: the running one unless
    /// set (tests run from another binary).
    pub program: Option<PathBuf>,
    /// The sockeye command on the far side of `ssh://` and `exec:`
    /// (`sockeye` on its PATH unless set).
    pub remote_command: Option<String>,
    /// An OpenSSH configuration file for `ssh://` (`ssh -F`); the user's
    /// own `~/.ssh/config` otherwise.
    pub ssh_config: Option<PathBuf>,
    /// `ssh://` and `exec:`: send this sockeye binary over the pipe into
    /// the far user's cache folder (kept by its SHA-256, checked before
    /// each run) and run that, whatever sockeye the far side has.
    pub push: bool,
    /// The plan's labels for it (`scan --agents LABEL` picks by them).
    pub labels: Vec<String>,
}

impl AgentSpec {
    pub fn new(name: impl Into<String>, via: Via) -> Self {
        AgentSpec {
            name: name.into(),
            via,
            allow_listen: None,
            allow_targets: None,
            max_rate: None,
            program: None,
            remote_command: None,
            ssh_config: None,
            push: false,
            labels: Vec::new(),
        }
    }

    /// `agent --stdio` and the limits, as arguments. Every value is checked
    /// to hold only characters that mean the same to a remote shell.
    fn agent_args(&self) -> Result<Vec<String>, LinkError> {
        let mut args = vec!["agent".to_string(), "--stdio".to_string()];
        let plain = |v: &str| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".,:/-".contains(&b))
        };
        for (flag, value) in [
            ("--allow-listen", self.allow_listen.clone()),
            ("--allow-targets", self.allow_targets.clone()),
            ("--max-rate", self.max_rate.map(|r| r.to_string())),
        ] {
            if let Some(v) = value {
                if !plain(&v) {
                    return Err(
                        self.error(format!("{flag} {v:?}: only ports, addresses and networks"))
                    );
                }
                args.push(flag.into());
                args.push(v);
            }
        }
        Ok(args)
    }

    /// The far side's sockeye command, checked to mean the same to its shell.
    fn remote(&self) -> Result<String, LinkError> {
        let command = self.remote_command.as_deref().unwrap_or("sockeye");
        if command.is_empty()
            || !command
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"./_-".contains(&b))
        {
            return Err(self.error(format!(
                "command {command:?}: a path of letters, digits, '.', '/', '_' or '-'"
            )));
        }
        Ok(command.to_string())
    }

    fn program(&self) -> Result<PathBuf, LinkError> {
        match &self.program {
            Some(p) => Ok(p.clone()),
            None => std::env::current_exe()
                .map_err(|e| self.error(format!("cannot find the sockeye binary: {e}"))),
        }
    }

    /// Whether the binary is pushed: asked for, and a transport that
    /// reaches another filesystem.
    fn pushes(&self) -> bool {
        self.push && matches!(self.via, Via::Ssh { .. } | Via::Exec(_))
    }

    /// The far side's command line: the agent, or with `push` a POSIX sh
    /// script that keeps the pushed binary and runs it.
    fn far_command(&self, args: &[String], push: Option<&Push>) -> Result<Vec<String>, LinkError> {
        match push {
            None => {
                let mut argv = vec![self.remote()?];
                argv.extend(args.iter().cloned());
                Ok(argv)
            }
            Some(p) => Ok(vec!["sh".into(), "-c".into(), p.script(args)]),
        }
    }

    /// The command that starts the agent.
    fn command(&self, push: Option<&Push>) -> Result<Command, LinkError> {
        let args = self.agent_args()?;
        let cmd = match &self.via {
            Via::Local => {
                let mut c = Command::new(self.program()?);
                c.args(&args);
                c
            }
            Via::Netns(name) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", name])
                    .arg(self.program()?)
                    .args(&args);
                c
            }
            Via::Exec(argv) => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]).args(self.far_command(&args, push)?);
                c
            }
            Via::Ssh { user, host, port } => {
                let mut c = Command::new("ssh");
                c.args(["-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
                if let Some(f) = &self.ssh_config {
                    c.arg("-F").arg(f);
                }
                if let Some(p) = port {
                    c.arg("-p").arg(p.to_string());
                }
                let dest = match user {
                    Some(u) => format!("{u}@{host}"),
                    None => host.clone(),
                };
                // One line for the far user's shell; the push script is
                // single-quoted whole (it holds no single quote).
                let far = match push {
                    None => self.far_command(&args, None)?.join(" "),
                    Some(p) => format!("sh -c '{}'", p.script(&args)),
                };
                c.arg("--").arg(dest).arg(far);
                c
            }
        };
        Ok(cmd)
    }

    fn error(&self, why: String) -> LinkError {
        LinkError {
            agent: self.name.clone(),
            via: self.via.to_string(),
            why,
        }
    }
}

/// An agent that could not be started or reached, or that stopped
/// answering, in one line naming it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("agent {agent} ({via}): {why}")]
pub struct LinkError {
    pub agent: String,
    pub via: String,
    pub why: String,
}

/// A request on its way: its events as they come, then its outcome.
#[derive(Debug)]
pub struct Running {
    pub id: u32,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub outcome: oneshot::Receiver<Outcome>,
}

#[derive(Debug)]
struct Pending {
    events: mpsc::UnboundedSender<Event>,
    outcome: oneshot::Sender<Outcome>,
}

type PendingMap = Arc<Mutex<HashMap<u32, Pending>>>;

/// A connected agent.
#[derive(Debug)]
pub struct Link {
    pub name: String,
    /// How it was reached, for errors (`ssh://host`).
    via: String,
    pub welcome: Welcome,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: PendingMap,
    next_id: AtomicU32,
    child: Child,
    /// The agent's last words on stderr (why an SSH login failed).
    stderr: Arc<Mutex<Vec<String>>>,
    /// Set when its pipe has ended (the agent exited, the SSH session died).
    closed: Arc<AtomicBool>,
}

/// How long pushing the binary may take (`push`).
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(600);

/// The binary a `push` sends: its bytes' path, size and SHA-256.
#[derive(Debug)]
struct Push {
    path: PathBuf,
    size: u64,
    sha256: String,
}

impl Push {
    /// Reads `path` once for its size and SHA-256.
    fn of(path: &std::path::Path) -> Result<Push, String> {
        use std::io::Read as _;
        let mut file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read {} to push it: {e}", path.display()))?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| format!("cannot read {} to push it: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            ctx.update(&buf[..n]);
            size += n as u64;
        }
        let sha256 = ctx
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Push {
            path: path.to_path_buf(),
            size,
            sha256,
        })
    }

    /// The far side's script: refuse another OS or machine, keep the
    /// binary in `${XDG_CACHE_HOME:-$HOME/.cache}/sockeye/sockeye-SHA256`
    /// (asking for it when missing or not matching its SHA-256, reading
    /// exactly its size from the pipe, checking it), then run the agent.
    /// No single quote in it: ssh sends it single-quoted.
    fn script(&self, args: &[String]) -> String {
        let (os, arch, sha, size) = (
            std::env::consts::OS,
            std::env::consts::ARCH,
            &self.sha256,
            self.size,
        );
        format!(
            "set -e; os=$(uname -s | tr A-Z a-z); arch=$(uname -m); \
if [ \"$os\" != {os} ] || [ \"$arch\" != {arch} ]; then echo \"sockeye-push: the far host is $os $arch, this sockeye is built for {os} {arch}\" >&2; exit 3; fi; \
d=\"${{XDG_CACHE_HOME:-$HOME/.cache}}/sockeye\"; f=\"$d/sockeye-{sha}\"; mkdir -p \"$d\"; chmod 700 \"$d\"; \
if [ -x \"$f\" ] && [ \"$(sha256sum < \"$f\" | cut -c1-64)\" = {sha} ]; then echo sockeye-push have; else \
echo sockeye-push need; t=\"$f.part.$$\"; head -c {size} > \"$t\"; got=$(sha256sum < \"$t\" | cut -c1-64); \
if [ \"$got\" != {sha} ]; then rm -f \"$t\"; echo \"sockeye-push: the copy has SHA-256 $got, not {sha}\" >&2; exit 4; fi; \
chmod 700 \"$t\"; mv -f \"$t\" \"$f\"; echo sockeye-push ok; fi; \
exec \"$f\" {}",
            args.join(" ")
        )
    }

    /// Follows the script's lines on the agent's stdout (other lines, from
    /// a chatty login, are skipped), sending the binary when it asks.
    async fn send(
        &self,
        stdin: &mut ChildStdin,
        stdout: &mut tokio::process::ChildStdout,
    ) -> Result<(), String> {
        use tokio::io::AsyncReadExt as _;
        for _ in 0..200 {
            let mut line = Vec::new();
            loop {
                let b = stdout.read_u8().await.map_err(|_| {
                    "the far side ended before running sockeye (is sh there, with uname, head and sha256sum?)".to_string()
                })?;
                if b == b'\n' || line.len() == 4096 {
                    break;
                }
                line.push(b);
            }
            match line.as_slice() {
                b"sockeye-push have" | b"sockeye-push ok" => return Ok(()),
                b"sockeye-push need" => {
                    let mut file = tokio::fs::File::open(&self.path)
                        .await
                        .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
                    tokio::io::copy(&mut file, stdin)
                        .await
                        .map_err(|e| format!("pushing the binary: {e}"))?;
                    stdin
                        .flush()
                        .await
                        .map_err(|e| format!("pushing the binary: {e}"))?;
                }
                _ => {}
            }
        }
        Err("the far side said too much before running sockeye".into())
    }
}

/// How long an agent has to answer the hello (an SSH login included).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

impl Link {
    /// Starts the agent and shakes hands.
    pub async fn start(spec: &AgentSpec) -> Result<Link, LinkError> {
        let push = if spec.pushes() {
            Some(Push::of(&spec.program()?).map_err(|e| spec.error(e))?)
        } else {
            None
        };
        let mut command = spec.command(push.as_ref())?;
        tracing::debug!(agent = %spec.name, command = ?command.as_std(), "starting an agent");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spec.error(format!("cannot start it: {e}")))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(spec.error("no pipe to it".into()));
        };
        let said = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&said);
        let listening = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut kept = keep
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if kept.len() == 20 {
                    kept.remove(0);
                }
                kept.push(line);
            }
        });
        let last_words = || {
            let kept = said
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            kept.last().cloned()
        };
        let hello = Hello {
            protocol: VERSION,
            sockeye: SOCKEYE_VERSION.into(),
            capabilities: CAPABILITIES.iter().map(|c| (*c).to_string()).collect(),
        };
        let mut stdout = stdout;
        if let Some(p) = &push {
            let pushed = tokio::time::timeout(PUSH_TIMEOUT, p.send(&mut stdin, &mut stdout)).await;
            let failed = match pushed {
                Ok(Ok(())) => None,
                Ok(Err(why)) => Some(why),
                Err(_) => Some(format!(
                    "pushing the binary took longer than {} s",
                    PUSH_TIMEOUT.as_secs()
                )),
            };
            if let Some(why) = failed {
                let _ = tokio::time::timeout(Duration::from_secs(2), listening).await;
                return Err(spec.error(last_words().unwrap_or(why)));
            }
        }
        let mut frames = FrameReader::new(stdout);
        let shake = async {
            wire::send(&mut stdin, Kind::Hello, 0, &hello).await?;
            frames.next().await
        };
        let first = match tokio::time::timeout(HANDSHAKE_TIMEOUT, shake).await {
            Err(_) => {
                return Err(spec.error(format!(
                    "no answer to the handshake within {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(e)) => {
                // Its stderr says why: read it to its end (bounded).
                let _ = tokio::time::timeout(Duration::from_secs(2), listening).await;
                let why = match last_words() {
                    Some(words) => words,
                    None => e.to_string(),
                };
                return Err(spec.error(why));
            }
            Ok(Ok(f)) => f,
        };
        let welcome: Welcome = match first.kind {
            Kind::Welcome => first.parse().map_err(|e| spec.error(e.to_string()))?,
            Kind::Refuse => {
                let refuse: Refuse = first.parse().map_err(|e| spec.error(e.to_string()))?;
                return Err(spec.error(refuse.reason));
            }
            other => return Err(spec.error(format!("answered the hello with a {other:?} frame"))),
        };
        let pending: PendingMap = Arc::new(Mutex::new(HashMap::new()));
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(dispatch(frames, Arc::clone(&pending), Arc::clone(&closed)));
        Ok(Link {
            name: spec.name.clone(),
            via: spec.via.to_string(),
            welcome,
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            next_id: AtomicU32::new(1),
            child,
            stderr: said,
            closed,
        })
    }

    /// Whether the agent's pipe has ended: no request can reach it now.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Sends `action`; its events and outcome arrive on the returned
    /// channels. An agent that is gone gives an error here, or closes the
    /// channels without an outcome.
    pub async fn request(&self, action: &Action) -> Result<Running, LinkError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (etx, erx) = mpsc::unbounded_channel();
        let (otx, orx) = oneshot::channel();
        self.lock_pending().insert(
            id,
            Pending {
                events: etx,
                outcome: otx,
            },
        );
        let bytes =
            wire::encode(Kind::Request, id, action).map_err(|e| self.error(e.to_string()))?;
        let mut stdin = self.stdin.lock().await;
        let sent = async {
            stdin.write_all(&bytes).await?;
            stdin.flush().await
        }
        .await;
        if let Err(e) = sent {
            self.lock_pending().remove(&id);
            return Err(self.error(format!("the pipe to it broke: {e}")));
        }
        Ok(Running {
            id,
            events: erx,
            outcome: orx,
        })
    }

    /// Sends `action` and waits for its outcome.
    pub async fn call(&self, action: &Action) -> Result<Outcome, LinkError> {
        let running = self.request(action).await?;
        running.outcome.await.map_err(|_| self.gone())
    }

    /// The error of an agent that went away mid-request.
    pub fn gone(&self) -> LinkError {
        let words = self
            .stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .last()
            .cloned();
        self.error(match words {
            Some(w) => format!("it went away: {w}"),
            None => "it went away".into(),
        })
    }

    /// Says bye and waits (briefly) for the agent to exit.
    pub async fn close(mut self) {
        if let Ok(bytes) = wire::encode(Kind::Bye, 0, &serde_json::json!({})) {
            let mut stdin = self.stdin.lock().await;
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn error(&self, why: String) -> LinkError {
        LinkError {
            agent: self.name.clone(),
            via: self.via.clone(),
            why,
        }
    }
}

/// Hands each frame from the agent to the request it belongs to. When the
/// pipe ends, every request still waiting is dropped (its channels close).
async fn dispatch<R: tokio::io::AsyncRead + Unpin>(
    mut frames: FrameReader<R>,
    pending: PendingMap,
    closed: Arc<AtomicBool>,
) {
    loop {
        let f = match frames.next().await {
            Ok(f) => f,
            Err(WireError::Closed) => break,
            Err(e) => {
                tracing::warn!(%e, "an agent's frames cannot be read");
                break;
            }
        };
        let mut map = pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match f.kind {
            Kind::Event => {
                if let (Some(p), Ok(event)) = (map.get(&f.id), f.parse::<Event>()) {
                    let _ = p.events.send(event);
                }
            }
            Kind::Result => {
                if let (Some(p), Ok(outcome)) = (map.remove(&f.id), f.parse::<Outcome>()) {
                    let _ = p.outcome.send(outcome);
                }
            }
            Kind::Bye => break,
            _ => {}
        }
    }
    // Closed before the waiting requests learn it, so that whoever sees
    // their channels close finds the link closed.
    closed.store(true, Ordering::Release);
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
}

/// Delays before each attempt to start a lost agent again.
const RESTART_BACKOFF: [Duration; 5] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// At most this many restarts of one agent in a run: an agent that keeps
/// dying is reported, not restarted forever.
pub const MAX_RESTARTS: u32 = 10;

/// An agent the controller keeps: when its pipe breaks (the agent killed,
/// the SSH session dropped) it is started again, with backoff, by whoever
/// needs it next.
#[derive(Debug)]
pub struct Supervised {
    pub spec: AgentSpec,
    link: std::sync::RwLock<Arc<Link>>,
    /// Restarts so far, and why the agent is given up (a restart that
    /// failed through all its backoff); held while one is under way.
    restarts: tokio::sync::Mutex<(u32, Option<LinkError>)>,
}

impl Supervised {
    /// Starts the agent and shakes hands.
    pub async fn start(spec: AgentSpec) -> Result<Supervised, LinkError> {
        let link = Link::start(&spec).await?;
        Ok(Supervised {
            spec,
            link: std::sync::RwLock::new(Arc::new(link)),
            restarts: tokio::sync::Mutex::new((0, None)),
        })
    }

    /// The current link.
    pub fn link(&self) -> Arc<Link> {
        Arc::clone(
            &self
                .link
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Starts the agent again if its pipe has ended (if another caller did
    /// already, nothing to do), trying after each delay of the backoff;
    /// returns the number of restarts so far, or the last failure. An agent
    /// that could not be started through the whole backoff is given up:
    /// later calls fail at once with the same error.
    pub async fn restart(&self) -> Result<u32, LinkError> {
        let mut guard = self.restarts.lock().await;
        let (restarts, given_up) = &mut *guard;
        if let Some(e) = given_up {
            return Err(e.clone());
        }
        if !self.link().is_closed() {
            return Ok(*restarts);
        }
        if *restarts >= MAX_RESTARTS {
            let e = self.spec.error(format!(
                "it went away again after {MAX_RESTARTS} restarts: not started again"
            ));
            *given_up = Some(e.clone());
            return Err(e);
        }
        let mut last = None;
        for delay in RESTART_BACKOFF {
            tokio::time::sleep(delay).await;
            match Link::start(&self.spec).await {
                Ok(link) => {
                    *self
                        .link
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(link);
                    *restarts += 1;
                    tracing::warn!(agent = %self.spec.name, restarts = *restarts, "an agent went away and was started again");
                    return Ok(*restarts);
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| self.spec.error("cannot start it again".into()));
        *given_up = Some(e.clone());
        Err(e)
    }

    /// Says bye to the agent (when no request holds its link).
    pub async fn close(self) {
        let link = self
            .link
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Ok(link) = Arc::try_unwrap(link) {
            link.close().await;
        }
    }
}
