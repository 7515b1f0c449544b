//! The compiler: a written plan ([`super::spec`]) into checks ready to run
//! ([`super::Plan`]). Variables and matrices are expanded, every target,
//! conversation and mail session is checked, `after` names are resolved,
//! and each expectation is checked against its kind; the first error
//! refuses the whole plan with its file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::expect::{expect_from_word, settle};
use super::spec::{AddressList, CheckSpec, MailSpec, PlanSpec, Scalar, TalkSpec, TlsWord};
use super::{Check, CheckKind, FlowCheck, FlowTo, MailCheck, Plan};
use crate::probe::Service;
use crate::talk::Endpoint;
use crate::talk::script::{
    Conversation, ScriptSpec, SourceError, SourceFormat, Template, TimeText, Vars, parse_source,
    read_source,
};

/// Checks running at once unless the plan says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// At most this many checks after matrices are expanded: a plan is a
/// test list, not a load generator without bound.
pub const MAX_CHECKS: usize = 100_000;

/// The body of the message a mail check with `quit_after: none` sends.
const MAIL_BODY: &str = "This is a test mailing from sockeye exercise\n";

/// Reads and compiles the plan in `path` (YAML; TOML for `.toml`).
pub fn load(path: &std::path::Path) -> Result<Plan, SourceError> {
    let file = path.display().to_string();
    let text = read_source(path)
        .map_err(|e| SourceError::new(&file, 0, 0, format!("cannot read: {e}")))?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    compile_text(&file, &text, SourceFormat::of(path), base)
}

/// Compiles plan `text`; `base` is where relative script and CA paths start.
pub fn compile_text(
    file: &str,
    text: &str,
    format: SourceFormat,
    base: &std::path::Path,
) -> Result<Plan, SourceError> {
    let spec: PlanSpec = parse_source(file, text, format)?;
    // The checks as written, for those sent to an agent (`on:`).
    let raw: serde_json::Value = parse_source(file, text, format)?;
    let raw_checks = match raw.get("checks") {
        Some(serde_json::Value::Array(c)) => c.clone(),
        _ => Vec::new(),
    };
    let ca_files: Vec<std::path::PathBuf> =
        spec.defaults.ca_file.iter().map(|p| base.join(p)).collect();
    Compiler {
        file,
        base,
        ca_files: &ca_files,
        raw_checks: &raw_checks,
    }
    .plan(spec)
}

/// What a check sent to an agent is made of, besides the check as written.
struct RemoteParts<'a> {
    raw: Option<&'a serde_json::Value>,
    name: &'a str,
    vars: &'a Vars,
    /// The matrix row's `expect`, when it has one.
    row: Option<&'a str>,
    timeout: Duration,
    connect_timeout: Duration,
}

struct Compiler<'a> {
    file: &'a str,
    base: &'a std::path::Path,
    /// `defaults.ca_file`, from `base`.
    ca_files: &'a [std::path::PathBuf],
    /// Each check as written (JSON), in order.
    raw_checks: &'a [serde_json::Value],
}

impl Compiler<'_> {
    fn at<T>(&self, s: &Spanned<T>, message: impl Into<String>) -> SourceError {
        SourceError::new(
            self.file,
            s.referenced.line(),
            s.referenced.column(),
            message,
        )
    }

    fn plan(&self, spec: PlanSpec) -> Result<Plan, SourceError> {
        let concurrency = spec.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 || concurrency > 65_536 {
            return Err(SourceError::new(
                self.file,
                0,
                0,
                "concurrency: expected 1 to 65536",
            ));
        }
        let concurrency = if spec.sequential { 1 } else { concurrency };
        if spec.checks.is_empty() && spec.agents.is_empty() {
            return Err(SourceError::new(
                self.file,
                0,
                0,
                "checks: expected at least one check",
            ));
        }
        let timeout = spec
            .defaults
            .timeout
            .map_or(Duration::from_secs(5), |t| t.0);
        let connect_timeout = spec
            .defaults
            .connect_timeout
            .map_or(Duration::from_secs(3), |t| t.0);
        let agents = self.agents(&spec.agents)?;
        let mut checks: Vec<Check> = Vec::new();
        // Names (of a check, or of a matrix) -> the indices they cover.
        let mut names: HashMap<String, Vec<usize>> = HashMap::new();
        let mut pending_after: Vec<(usize, Vec<Spanned<String>>)> = Vec::new();
        for (ci, c) in spec.checks.iter().enumerate() {
            let first = checks.len();
            let rows: Vec<BTreeMap<String, Scalar>> = match &c.matrix {
                None => vec![BTreeMap::new()],
                Some(rows) if rows.is_empty() => {
                    return Err(self.at(&c.name, "matrix: expected at least one row"));
                }
                Some(rows) => rows.clone(),
            };
            // A talk check's conversation is compiled once, whatever the
            // number of rows: variables only fill responses at send time.
            let conversation = match &c.talk {
                Some(t) => Some(self.conversation(c, t, timeout)?),
                None => None,
            };
            for (i, row) in rows.iter().enumerate() {
                let mut vars: Vars = spec.vars.clone();
                let mut row_expect = None;
                for (k, v) in row {
                    if k == "expect" {
                        row_expect =
                            Some(expect_from_word(&v.0).map_err(|e| {
                                self.at(&c.name, format!("matrix row {}: {e}", i + 1))
                            })?);
                    } else {
                        vars.insert(k.clone(), v.0.clone());
                    }
                }
                let name = self.render(&c.name, &c.name.value, &vars)?;
                let name = if c.matrix.is_some() && !c.name.value.contains("{{") {
                    format!("{name} [{}]", i + 1)
                } else {
                    name
                };
                let kind = self.kind(c, &vars, conversation.as_ref(), &spec.agents)?;
                let expect = row_expect
                    .or_else(|| c.expect.clone().map(|e| e.0))
                    .unwrap_or_default();
                let expect = settle(&kind, expect)
                    .map_err(|e| self.at(&c.name, format!("check {:?}: {e}", c.name.value)))?;
                if checks.len() >= MAX_CHECKS {
                    return Err(self.at(
                        &c.name,
                        format!("more than {MAX_CHECKS} checks after expanding matrices"),
                    ));
                }
                let remote = match &c.on {
                    None => None,
                    Some(on) => Some(self.remote(
                        c,
                        on,
                        RemoteParts {
                            raw: self.raw_checks.get(ci),
                            name: &name,
                            vars: &vars,
                            row: row.get("expect").map(|v| v.0.as_str()),
                            timeout,
                            connect_timeout,
                        },
                        &spec.agents,
                    )?),
                };
                let index = checks.len();
                names.entry(name.clone()).or_default().push(index);
                pending_after.push((index, c.after.clone()));
                checks.push(Check {
                    index,
                    name,
                    kind,
                    expect,
                    after: Vec::new(),
                    remote,
                });
            }
            if c.matrix.is_some() {
                names
                    .entry(c.name.value.clone())
                    .or_default()
                    .extend(first..checks.len());
            }
        }
        for (index, after) in pending_after {
            for a in after {
                let Some(targets) = names.get(&a.value) else {
                    return Err(self.at(
                        &a,
                        format!("after: no check named {:?} (names are exact)", a.value),
                    ));
                };
                for &t in targets {
                    if t >= index {
                        return Err(self.at(
                            &a,
                            format!(
                                "after: {:?} must be written before the check that waits for it",
                                a.value
                            ),
                        ));
                    }
                    checks[index].after.push(t);
                }
            }
        }
        learn_from_allowed(&mut checks);
        let ca_files = self.ca_files.to_vec();
        Ok(Plan {
            name: spec.name.unwrap_or_else(|| self.file.to_string()),
            concurrency,
            connect_timeout,
            timeout,
            ca_files,
            agents,
            checks,
        })
    }

    /// The plan's agents, each reachable by a known transport.
    fn agents(
        &self,
        entries: &BTreeMap<String, super::spec::AgentEntry>,
    ) -> Result<Vec<crate::agent::link::AgentSpec>, SourceError> {
        entries
            .iter()
            .map(|(name, e)| {
                let bad = |why: String| {
                    SourceError::new(self.file, 0, 0, format!("agents.{name}: {why}"))
                };
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
                {
                    return Err(bad("an agent's name is letters, digits, '-' or '_'".into()));
                }
                let via = e.via.parse().map_err(bad)?;
                let mut spec = crate::agent::link::AgentSpec::new(name.clone(), via);
                spec.allow_listen.clone_from(&e.allow_listen);
                spec.allow_targets.clone_from(&e.allow_targets);
                spec.max_rate = e.max_rate;
                spec.remote_command.clone_from(&e.command);
                spec.ssh_config = e.ssh_config.as_ref().map(|f| self.base.join(f));
                spec.push = e.push;
                spec.labels.clone_from(&e.labels);
                Ok(spec)
            })
            .collect()
    }

    /// A check to run on agent `on`: the agent known, the kind one an agent
    /// runs (no flow, no spawned program, no file to read), and the plan of
    /// one check it is sent.
    fn remote(
        &self,
        c: &CheckSpec,
        on: &str,
        parts: RemoteParts<'_>,
        agents: &BTreeMap<String, super::spec::AgentEntry>,
    ) -> Result<super::Remote, SourceError> {
        let at = &c.name;
        let fail = |why: String| self.at(at, format!("check {:?}: on: {why}", at.value));
        let agent = self.render(at, on, parts.vars)?;
        if !agents.contains_key(&agent) {
            return Err(fail(format!(
                "no agent named {agent:?} (agents: {})",
                agents.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if c.flow.is_some() {
            return Err(fail(
                "a flow runs between its own agents (from, to): drop on".into(),
            ));
        }
        if let Some(t) = &c.talk {
            if t.spawn.is_some() {
                return Err(fail(
                    "an agent never runs a program: spawn is for this machine".into(),
                ));
            }
            if t.script.is_some() {
                return Err(fail(
                    "a script file is not sent to an agent: write the steps inline".into(),
                ));
            }
        }
        if c.mail.as_ref().is_some_and(|m| !m.ca_file.is_empty()) {
            return Err(fail(
                "a CA file is not sent to an agent: it trusts its system's roots".into(),
            ));
        }
        let mut entry = parts
            .raw
            .cloned()
            .ok_or_else(|| fail("the check as written is not found".into()))?;
        if let serde_json::Value::Object(map) = &mut entry {
            for key in ["on", "matrix", "after"] {
                map.remove(key);
            }
            map.insert("name".into(), parts.name.into());
            if let Some(word) = parts.row {
                map.insert("expect".into(), word.into());
            }
        }
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let plan = serde_json::json!({
            "name": parts.name,
            "defaults": {
                "connect_timeout": ms(parts.connect_timeout),
                "timeout": ms(parts.timeout),
            },
            "vars": parts.vars,
            "checks": [entry],
        });
        Ok(super::Remote {
            agent,
            plan: plan.to_string(),
        })
    }

    /// A flow check: agents known, the port given once, the transport named.
    fn flow(
        &self,
        at: &Spanned<String>,
        f: &super::spec::FlowSpec,
        vars: &Vars,
        agents: &BTreeMap<String, super::spec::AgentEntry>,
    ) -> Result<CheckKind, SourceError> {
        use crate::agent::wire::FlowProto;
        let fail = |why: String| self.at(at, format!("check {:?}: flow: {why}", at.value));
        let agent = |text: &str| -> Result<String, SourceError> {
            let name = self.render(at, text, vars)?;
            if agents.contains_key(&name) {
                Ok(name)
            } else {
                Err(fail(format!(
                    "no agent named {name:?} (agents: {})",
                    agents.keys().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
        };
        let from = agent(&f.from)?;
        let proto = match f
            .proto
            .as_deref()
            .map(|p| self.render(at, p, vars))
            .transpose()?
            .as_deref()
        {
            None | Some("tcp") => FlowProto::Tcp,
            Some("udp") => FlowProto::Udp,
            Some("icmp") => FlowProto::Icmp,
            Some(other) => {
                return Err(fail(format!("proto {other:?}: expected tcp, udp or icmp")));
            }
        };
        if proto == FlowProto::Icmp {
            // An echo has no port: `to` is an agent or an address.
            if f.port.is_some() {
                return Err(fail("proto icmp (echo) has no port".into()));
            }
            let to_text = self.render(at, &f.to, vars)?;
            let to = if agents.contains_key(&to_text) {
                FlowTo::Agent(to_text)
            } else {
                FlowTo::Address(to_text.parse::<std::net::IpAddr>().map_err(|_| {
                    fail(format!(
                        "to {to_text:?}: an agent's name or an address (icmp has no port)"
                    ))
                })?)
            };
            if !f.listen_on.is_empty() {
                return Err(fail("listen_on is for tcp and udp flows".into()));
            }
            return Ok(CheckKind::Flow(Arc::new(FlowCheck {
                from,
                to,
                port: 0,
                proto,
                listen_on: Vec::new(),
                reference_ports: Vec::new(),
                control_from: Vec::new(),
            })));
        }
        let port = match &f.port {
            None => None,
            Some(p) => {
                let text = self.render(at, &p.0, vars)?;
                Some(
                    text.parse::<u16>()
                        .ok()
                        .filter(|&p| p > 0)
                        .ok_or_else(|| fail(format!("port {text:?}: expected 1-65535")))?,
                )
            }
        };
        let to_text = self.render(at, &f.to, vars)?;
        let (to, port) = if agents.contains_key(&to_text) {
            let port =
                port.ok_or_else(|| fail(format!("to {to_text:?} is an agent: give the port")))?;
            (FlowTo::Agent(to_text), port)
        } else {
            let (host, p) = crate::target::endpoint::parse_host_port(&to_text).map_err(|_| {
                fail(format!(
                    "to {to_text:?}: expected an agent's name or ADDRESS:PORT"
                ))
            })?;
            let ip = host
                .parse::<std::net::IpAddr>()
                .map_err(|_| fail(format!("to {to_text:?}: an address, not a name")))?;
            if port.is_some_and(|q| q != p) {
                return Err(fail(format!(
                    "to {to_text:?} has a port: port contradicts it"
                )));
            }
            (FlowTo::Address(ip), p)
        };
        let listen_on = f
            .listen_on
            .iter()
            .map(|l| {
                let l = self.render(at, l, vars)?;
                let (name, p) = l
                    .rsplit_once(':')
                    .and_then(|(n, p)| Some((n, p.parse::<u16>().ok().filter(|&p| p > 0)?)))
                    .ok_or_else(|| fail(format!("listen_on {l:?}: expected AGENT:PORT")))?;
                Ok((agent(name)?, p))
            })
            .collect::<Result<Vec<_>, SourceError>>()?;
        Ok(CheckKind::Flow(Arc::new(FlowCheck {
            from,
            to,
            port,
            proto,
            listen_on,
            reference_ports: Vec::new(),
            control_from: Vec::new(),
        })))
    }

    /// Renders a template field, naming the check on an unknown variable.
    fn render(&self, at: &Spanned<String>, text: &str, vars: &Vars) -> Result<String, SourceError> {
        let t = Template::parse(text).map_err(|e| self.at(at, format!("{text:?}: {e}")))?;
        t.render_string(vars).map_err(|e| {
            self.at(
                at,
                format!(
                    "check {:?}: {e} (define it in vars or in the matrix)",
                    at.value
                ),
            )
        })
    }

    fn target(
        &self,
        at: &Spanned<String>,
        text: &str,
        vars: &Vars,
    ) -> Result<(String, u16), SourceError> {
        let t = self.render(at, text, vars)?;
        crate::target::endpoint::parse_host_port(&t).map_err(|_| {
            self.at(
                at,
                format!(
                    "check {:?}: target {t:?}: expected HOST:PORT (port 1-65535)",
                    at.value
                ),
            )
        })
    }

    fn kind(
        &self,
        c: &CheckSpec,
        vars: &Vars,
        conversation: Option<&Arc<Conversation>>,
        agents: &BTreeMap<String, super::spec::AgentEntry>,
    ) -> Result<CheckKind, SourceError> {
        let at = &c.name;
        let count = [
            c.connect.is_some(),
            c.probe.is_some(),
            c.talk.is_some(),
            c.calc.is_some(),
            c.mail.is_some(),
            c.flow.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            return Err(self.at(
                at,
                format!(
                    "check {:?}: expected exactly one of connect, probe, talk, calc, mail, flow (found {count})",
                    at.value
                ),
            ));
        }
        if let Some(t) = &c.connect {
            let (host, port) = self.target(at, t, vars)?;
            return Ok(CheckKind::Connect { host, port });
        }
        if let Some(p) = &c.probe {
            let (host, port) = self.target(at, &p.target, vars)?;
            let service = match &p.service {
                None => Service::for_port(port),
                Some(name) => Some(
                    crate::probe::CLASSIC
                        .iter()
                        .copied()
                        .find(|s| s.name() == name)
                        .ok_or_else(|| {
                            self.at(
                                at,
                                format!(
                                    "check {:?}: probe.service {name:?}: expected one of {}",
                                    at.value,
                                    crate::probe::CLASSIC
                                        .iter()
                                        .map(|s| s.name())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                        })?,
                ),
            };
            let sni = match &p.sni {
                Some(s) => Some(self.render(at, s, vars)?),
                None => None,
            };
            return Ok(CheckKind::Probe {
                host,
                port,
                service,
                sni,
            });
        }
        if let Some(k) = &c.calc {
            let (host, port) = self.target(at, &k.server, vars)?;
            let args: Vec<String> = k.args.iter().map(i64::to_string).collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::calc::client::make_job(1, &k.op, &refs)
                .map_err(|e| self.at(at, format!("check {:?}: calc: {e}", at.value)))?;
            return Ok(CheckKind::Calc {
                host,
                port,
                op: k.op.clone(),
                args,
                little_endian: k.little_endian,
            });
        }
        if let Some(m) = &c.mail {
            return self.mail(at, m, vars);
        }
        if let Some(f) = &c.flow {
            return self.flow(at, f, vars, agents);
        }
        let Some(t) = &c.talk else {
            return Err(self.at(at, "no check kind"));
        };
        let endpoint = match (&t.target, &t.spawn) {
            (Some(target), None) => {
                let (host, port) = self.target(at, target, vars)?;
                Endpoint::Tcp {
                    host,
                    port,
                    tls: t.tls,
                    sni: match &t.sni {
                        Some(s) => Some(self.render(at, s, vars)?),
                        None => None,
                    },
                }
            }
            (None, Some(cmd)) => {
                let cmd = self.render(at, cmd, vars)?;
                let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
                if argv.is_empty() {
                    return Err(self.at(at, "talk.spawn: an empty command"));
                }
                Endpoint::Spawn { argv }
            }
            _ => {
                return Err(self.at(
                    at,
                    format!(
                        "check {:?}: talk needs exactly one of target and spawn",
                        at.value
                    ),
                ));
            }
        };
        let Some(conversation) = conversation else {
            return Err(self.at(at, "no conversation"));
        };
        for v in conversation.vars() {
            if !vars.contains_key(v) {
                return Err(self.at(
                    at,
                    format!(
                        "check {:?}: {{{{{v}}}}} is used but not defined in vars or the matrix",
                        at.value
                    ),
                ));
            }
        }
        Ok(CheckKind::Talk {
            endpoint,
            conversation: Arc::clone(conversation),
            vars: Arc::new(vars.clone()),
        })
    }

    /// A mail check: templates rendered, the session checked as `sockeye mail`
    /// checks it (the same constructor), the CA files read.
    fn mail(
        &self,
        at: &Spanned<String>,
        m: &MailSpec,
        vars: &Vars,
    ) -> Result<CheckKind, SourceError> {
        use crate::mail::QuitAfter;
        use sockeye_proto::smtp::{Credentials, TlsMode};
        let bad = |what: String| self.at(at, format!("check {:?}: mail: {what}", at.value));
        let (host, port) = self.target(at, &m.server, vars)?;
        let from = self.render(at, &m.from, vars)?;
        let to: Vec<String> = match &m.to {
            AddressList::One(text) => self
                .render(at, text, vars)?
                .split(',')
                .map(|a| a.trim().to_owned())
                .collect(),
            AddressList::Many(list) => list
                .iter()
                .map(|a| self.render(at, a, vars).map(|a| a.trim().to_owned()))
                .collect::<Result<_, _>>()?,
        };
        if to.is_empty() || to.iter().any(String::is_empty) {
            return Err(bad("to: an empty address".into()));
        }
        let auth = match (&m.auth_user, &m.auth_password) {
            (None, None) => None,
            (Some(user), Some(pass)) => Some(Credentials {
                user: self.render(at, user, vars)?,
                pass: self.render(at, pass, vars)?,
            }),
            _ => return Err(bad("auth_user and auth_password go together".into())),
        };
        let tls = match m.tls.unwrap_or(TlsWord::Optional) {
            TlsWord::Starttls => TlsMode::Required,
            TlsWord::OnConnect => TlsMode::Implicit,
            TlsWord::Optional => TlsMode::IfOffered,
            TlsWord::None => TlsMode::Never,
        };
        let quit_after = m.quit_after.unwrap_or(Some(QuitAfter::Rcpt));
        // The message is only built when it is to be sent.
        let body = match quit_after {
            Some(_) => Vec::new(),
            None => crate::mail::message::MessageSpec {
                envelope_from: from.clone(),
                to: to.clone(),
                header_from: None,
                subject: format!("sockeye exercise: {}", at.value),
                body: MAIL_BODY.to_owned(),
                headers: Vec::new(),
                attachments: Vec::new(),
            }
            .build(),
        };
        let dialogue = crate::mail::dialogue(tls, auth, from, to, body);
        sockeye_proto::smtp::Client::new(dialogue.clone()).map_err(|e| bad(e.to_string()))?;
        let mut ca_files = self.ca_files.to_vec();
        ca_files.extend(m.ca_file.iter().map(|p| self.base.join(p)));
        crate::tls::client::check_ca_files(&ca_files).map_err(|e| bad(e.to_string()))?;
        Ok(CheckKind::Mail {
            host,
            port,
            mail: Arc::new(MailCheck {
                dialogue,
                quit_after,
                insecure: m.insecure,
                ca_files,
            }),
        })
    }

    /// A talk check's steps (inline or from its script file), compiled.
    fn conversation(
        &self,
        c: &CheckSpec,
        t: &TalkSpec,
        timeout: Duration,
    ) -> Result<Arc<Conversation>, SourceError> {
        let at = &c.name;
        let script = match (&t.steps, &t.script) {
            (Some(steps), None) => ScriptSpec {
                eol: t.eol,
                timeout: t.timeout.or(Some(TimeText(timeout))),
                max_buffer: t.max_buffer,
                steps: steps.clone(),
            },
            (None, Some(file)) => {
                let path = self.base.join(file);
                let shown = path.display().to_string();
                let text = read_source(&path)
                    .map_err(|e| self.at(at, format!("talk.script {shown}: {e}")))?;
                let mut s: ScriptSpec = parse_source(&shown, &text, SourceFormat::of(&path))?;
                s.eol = t.eol.or(s.eol);
                s.timeout = t.timeout.or(s.timeout).or(Some(TimeText(timeout)));
                s.max_buffer = t.max_buffer.or(s.max_buffer);
                s
            }
            _ => {
                return Err(self.at(
                    at,
                    format!(
                        "check {:?}: talk needs exactly one of steps and script",
                        at.value
                    ),
                ));
            }
        };
        script
            .compile()
            .map(Arc::new)
            .map_err(|e| self.at(at, format!("check {:?}: {e}", at.value)))
    }
}

/// A flow of the plan expected to be allowed, to an agent.
struct AllowedFlow {
    from: String,
    to: String,
    port: u16,
    proto: crate::agent::wire::FlowProto,
    /// Whether it may arrive elsewhere too (`listen_on`, DNAT).
    elsewhere: bool,
}

/// The plan's flows to agents that expect `allowed`.
fn allowed_flows(checks: &[Check]) -> Vec<AllowedFlow> {
    checks
        .iter()
        .filter_map(|c| match (&c.kind, c.expect.verdict) {
            (CheckKind::Flow(f), Some(super::FlowVerdict::Allowed)) => match &f.to {
                FlowTo::Agent(to) => Some(AllowedFlow {
                    from: f.from.clone(),
                    to: to.clone(),
                    port: f.port,
                    proto: f.proto,
                    elsewhere: !f.listen_on.is_empty(),
                }),
                FlowTo::Address(_) => None,
            },
            _ => None,
        })
        .collect()
}

/// Fills each flow to an agent with what the plan's allowed flows tell
/// about its destination: [`FlowCheck::control_from`] (the senders of
/// other flows to the same destination, port and transport) and, for TCP,
/// [`FlowCheck::reference_ports`] (the other ports of the destination that
/// flows from the same sender reach, straight).
fn learn_from_allowed(checks: &mut [Check]) {
    use crate::agent::wire::FlowProto;
    let allowed = allowed_flows(checks);
    for c in checks.iter_mut() {
        let CheckKind::Flow(f) = &mut c.kind else {
            continue;
        };
        let FlowTo::Agent(to) = &f.to else {
            continue;
        };
        let mut from: Vec<String> = allowed
            .iter()
            .filter(|a| a.from != f.from && a.to == *to && a.port == f.port && a.proto == f.proto)
            .map(|a| a.from.clone())
            .collect();
        from.sort();
        from.dedup();
        let mut ports: Vec<u16> = if f.proto == FlowProto::Tcp {
            allowed
                .iter()
                .filter(|a| {
                    a.proto == FlowProto::Tcp
                        && !a.elsewhere
                        && a.from == f.from
                        && a.to == *to
                        && a.port != f.port
                })
                .map(|a| a.port)
                .collect()
        } else {
            Vec::new()
        };
        ports.sort_unstable();
        ports.dedup();
        if !from.is_empty() || !ports.is_empty() {
            let f = Arc::make_mut(f);
            f.control_from = from;
            f.reference_ports = ports;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FlowVerdict, Outcome, PortWord};
    use super::*;

    fn compile(text: &str) -> Result<Plan, SourceError> {
        compile_text(
            "plan.yaml",
            text,
            SourceFormat::Yaml,
            std::path::Path::new("."),
        )
    }

    fn err(text: &str) -> SourceError {
        compile(text).expect_err("a bad plan")
    }

    const FTP: &str = r#"
name: ftp logins
vars: {lab: 198.18.0.2}
checks:
  - name: ftp is open
    connect: "{{lab}}:21"
  - name: "ftp login: {{case}}"
    after: [ftp is open]
    talk:
      target: "{{host}}:21"
      steps:
        - {name: Name prompt, expect: "^220 ", send: "USER {{user}}"}
        - {name: Password prompt, expect: "^331 ", send: "PASS {{pass}}"}
        - {name: FTP application prompt, expect: "^230 ", fail: ["^530 "]}
    matrix:
      - {case: bad address, host: 198.18.0.99, user: badIP, pass: x, expect: fail}
      - {case: good user, host: "{{lab}}", user: alice, pass: wonderland}
    expect: success
"#;

    #[test]
    fn a_matrix_expands_into_one_check_per_row() {
        let plan = compile(FTP).expect("valid");
        assert_eq!(plan.checks.len(), 3);
        assert_eq!(plan.checks[1].name, "ftp login: bad address");
        assert_eq!(plan.checks[1].expect.outcome, Some(Outcome::Fail));
        assert_eq!(plan.checks[2].expect.outcome, Some(Outcome::Success));
        assert_eq!(plan.checks[1].after, [0]);
        assert_eq!(plan.checks[0].expect.state, Some(PortWord::Open));
        match &plan.checks[1].kind {
            CheckKind::Talk { endpoint, vars, .. } => {
                assert_eq!(endpoint.describe(), "198.18.0.99:21");
                assert_eq!(vars["user"], "badIP");
            }
            other => panic!("{other:?}"),
        }
        // A variable inside a matrix cell is not expanded again: the host
        // of the second row is the text as written.
        assert_eq!(plan.checks[2].kind.target(), "{{lab}}:21");
    }

    #[test]
    fn a_flow_gets_its_second_control_from_the_plans_allowed_senders() {
        let plan = compile(
            "agents: {a: {via: local}, b: {via: local}, c: {via: local}, d: {via: local}}
checks:
  - {name: a, flow: {from: a, to: b, port: 25}, expect: blocked}
  - {name: c, flow: {from: c, to: b, port: 25}, expect: allowed}
  - {name: d udp, flow: {from: d, to: b, port: 25, proto: udp}, expect: allowed}
  - {name: d other port, flow: {from: d, to: b, port: 26}, expect: allowed}
",
        )
        .expect("valid");
        let controls: Vec<Vec<String>> = plan
            .checks
            .iter()
            .map(|c| match &c.kind {
                CheckKind::Flow(f) => f.control_from.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        // Same destination, port and transport, expected allowed, another
        // sender: only c, for a.
        assert_eq!(controls, [vec!["c".to_string()], vec![], vec![], vec![]]);
    }

    #[test]
    fn a_plan_may_name_only_agents_but_not_be_empty() {
        let plan = compile("agents: {a: {via: local, labels: [scanners]}}\n").expect("valid");
        assert!(plan.checks.is_empty());
        assert_eq!(plan.agents.len(), 1);
        assert!(compile("name: nothing\n").is_err());
    }

    #[test]
    fn a_zone_matrix_expands_flows_over_agents_and_on() {
        let plan = compile(
            "agents: {a: {via: local}, b: {via: local}, c: {via: local}}
checks:
  - name: \"{{src}} to {{dst}} port {{port}}\"
    flow: {from: \"{{src}}\", to: \"{{dst}}\", port: \"{{port}}\"}
    matrix:
      - {src: a, dst: b, port: 22, expect: allowed}
      - {src: a, dst: c, port: 23, expect: blocked}
      - {src: b, dst: a, port: 443, expect: allowed}
  - name: \"banner from {{zone}}\"
    on: \"{{zone}}\"
    connect: 198.18.102.2:21
    matrix: [{zone: a}, {zone: c}]
",
        )
        .expect("valid");
        let flows: Vec<(String, String, u16, Option<FlowVerdict>)> = plan.checks[..3]
            .iter()
            .map(|c| match &c.kind {
                CheckKind::Flow(f) => match &f.to {
                    FlowTo::Agent(to) => (f.from.clone(), to.clone(), f.port, c.expect.verdict),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            flows,
            [
                ("a".into(), "b".into(), 22, Some(FlowVerdict::Allowed)),
                ("a".into(), "c".into(), 23, Some(FlowVerdict::Blocked)),
                ("b".into(), "a".into(), 443, Some(FlowVerdict::Allowed)),
            ]
        );
        assert_eq!(plan.checks[0].name, "a to b port 22");
        let on: Vec<Option<String>> = plan.checks[3..]
            .iter()
            .map(|c| c.remote.as_ref().map(|r| r.agent.clone()))
            .collect();
        assert_eq!(on, [Some("a".into()), Some("c".into())]);
        // What the agent is sent: the check as written, final name, no on.
        let sent: serde_json::Value =
            serde_json::from_str(&plan.checks[4].remote.as_ref().expect("remote").plan)
                .expect("json");
        assert_eq!(sent["checks"][0]["name"], "banner from c");
        assert_eq!(sent["checks"][0]["connect"], "198.18.102.2:21");
        assert!(sent["checks"][0].get("on").is_none(), "{sent}");
        assert!(sent["checks"][0].get("matrix").is_none(), "{sent}");
        assert_eq!(sent["vars"]["zone"], "c");
    }

    #[test]
    fn a_flow_learns_its_destinations_allowed_ports_for_reference() {
        let plan = compile(
            "agents: {a: {via: local}, b: {via: local}, c: {via: local}}
checks:
  - {name: ssh, flow: {from: a, to: b, port: 22}, expect: allowed}
  - {name: web, flow: {from: a, to: b, port: 80}}
  - {name: smtp, flow: {from: a, to: b, port: 25}, expect: blocked}
  - {name: dns, flow: {from: a, to: b, port: 53, proto: udp}, expect: allowed}
  - {name: other sender, flow: {from: c, to: b, port: 443}, expect: allowed}
  - {name: back, flow: {from: b, to: a, port: 25}, expect: blocked}
",
        )
        .expect("valid");
        let refs: Vec<Vec<u16>> = plan
            .checks
            .iter()
            .map(|c| match &c.kind {
                CheckKind::Flow(f) => f.reference_ports.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        // Same sender, same destination, TCP, expected allowed (the default),
        // another port; never a UDP flow (a reset is TCP), never another
        // sender's.
        assert_eq!(
            refs,
            [vec![80], vec![22], vec![22, 80], vec![], vec![], vec![]]
        );
    }

    #[test]
    fn bad_plans_are_refused_with_line_and_column() {
        let cases: &[(&str, u64, &str)] = &[
            // YAML syntax.
            ("checks:\n  - name: a\n    connect: [\n", 3, "expected"),
            // A misspelt key.
            (
                "checks:\n  - name: a\n    conect: h:1\n",
                3,
                "unknown field",
            ),
            // A bad regex in a step.
            (
                "checks:\n  - name: a\n    talk:\n      target: h:1\n      steps:\n        - expect: \"(\"\n",
                6,
                "bad regex",
            ),
            // An unknown expectation word.
            (
                "checks:\n  - name: a\n    connect: h:1\n    expect: opened\n",
                4,
                "expected open, closed",
            ),
            // A bad time.
            (
                "defaults:\n  timeout: 5 parsecs\nchecks:\n  - {name: a, connect: h:1}\n",
                2,
                "bad time",
            ),
            // An undefined variable, at the check's name.
            (
                "checks:\n  - name: a\n    connect: \"{{nope}}:21\"\n",
                2,
                "nope",
            ),
            // `after` naming nothing.
            (
                "checks:\n  - name: a\n    connect: h:1\n    after: [b]\n",
                4,
                "no check named",
            ),
            // Two kinds in one check.
            (
                "checks:\n  - name: a\n    connect: h:1\n    calc: {server: h:2, op: SUM}\n",
                2,
                "exactly one",
            ),
            // An expectation the kind cannot test.
            (
                "checks:\n  - name: a\n    connect: h:1\n    expect: {service: ftp}\n",
                2,
                "does not apply",
            ),
            // A misspelt mail field.
            (
                "checks:\n  - name: a\n    mail:\n      server: h:587\n      to: b@x\n      pasword: x\n",
                6,
                "unknown field",
            ),
            // A step mail cannot stop after.
            (
                "checks:\n  - name: a\n    mail:\n      server: h:587\n      to: b@x\n      quit_after: data\n",
                6,
                "unknown variant",
            ),
            // A step mail cannot fail at.
            (
                "checks:\n  - name: a\n    mail: {server: h:587, to: b@x}\n    expect: {fail_at: login}\n",
                2,
                "expected one of connect, banner",
            ),
            // An expectation a mail check cannot test.
            (
                "checks:\n  - name: a\n    mail: {server: h:587, to: b@x}\n    expect: {result: 3}\n",
                2,
                "does not apply",
            ),
            // An address with a line break in it.
            (
                "checks:\n  - name: a\n    mail: {server: h:587, to: \"b@x\\r\\nDATA\"}\n",
                2,
                "mail:",
            ),
        ];
        for (text, line, needle) in cases {
            let e = err(text);
            assert_eq!(e.file, "plan.yaml", "{text}");
            assert_eq!(e.line, *line, "{text}: {e}");
            assert!(e.column > 0, "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("plan.yaml:{line}:")), "{shown}");
        }
    }

    #[test]
    fn a_mail_matrix_fills_the_password_and_defaults_to_no_message() {
        let plan = compile(
            r#"
checks:
  - name: "login {{password}}"
    mail:
      server: 198.18.0.2:587
      from: alice@lab.test
      to: "bob@lab.test, carol@lab.test"
      tls: starttls
      quit_after: auth
      auth_user: alice
      auth_password: "{{password}}"
    matrix:
      - {password: wonderland, expect: success}
      - {password: wrong}
    expect: {fail_at: auth}
  - name: send one
    mail: {server: "h:25", to: [a@x], tls: none, quit_after: none}
"#,
        )
        .expect("valid");
        assert_eq!(plan.checks.len(), 3);
        let CheckKind::Mail { host, port, mail } = &plan.checks[1].kind else {
            panic!("{:?}", plan.checks[1].kind);
        };
        assert_eq!((host.as_str(), *port), ("198.18.0.2", 587));
        assert_eq!(mail.quit_after, Some(crate::mail::QuitAfter::Auth));
        assert_eq!(mail.dialogue.tls, sockeye_proto::smtp::TlsMode::Required);
        let creds = mail.dialogue.auth.as_ref().expect("auth");
        assert_eq!(
            (creds.user.as_str(), creds.pass.as_str()),
            ("alice", "wrong")
        );
        let env = mail.dialogue.envelope.as_ref().expect("envelope");
        assert_eq!(env.to, ["bob@lab.test", "carol@lab.test"]);
        assert!(env.body.is_empty(), "no message unless quit_after: none");
        assert_eq!(plan.checks[0].expect.outcome, Some(Outcome::Success));
        assert_eq!(plan.checks[0].expect.fail_at, None);
        assert_eq!(plan.checks[1].expect.outcome, Some(Outcome::Fail));
        assert_eq!(plan.checks[1].expect.fail_at.as_deref(), Some("auth"));
        assert_eq!(plan.checks[1].kind.target(), "198.18.0.2:587");
        let CheckKind::Mail { mail, .. } = &plan.checks[2].kind else {
            panic!("{:?}", plan.checks[2].kind);
        };
        assert_eq!(mail.quit_after, None);
        assert_eq!(mail.dialogue.tls, sockeye_proto::smtp::TlsMode::Never);
        let body = &mail.dialogue.envelope.as_ref().expect("envelope").body;
        assert!(
            String::from_utf8_lossy(body).contains("Subject: sockeye exercise: send one"),
            "{}",
            String::from_utf8_lossy(body)
        );
        // The default: STARTTLS when offered, stop after RCPT.
        let plan =
            compile("checks:\n  - {name: a, mail: {server: h:25, to: b@x}}\n").expect("valid");
        let CheckKind::Mail { mail, .. } = &plan.checks[0].kind else {
            panic!("not mail");
        };
        assert_eq!(mail.quit_after, Some(crate::mail::QuitAfter::Rcpt));
        assert_eq!(mail.dialogue.tls, sockeye_proto::smtp::TlsMode::IfOffered);
    }

    #[test]
    fn toml_plans_compile_and_report_errors_with_positions() {
        let good = r#"
name = "t"
[[checks]]
name = "a"
connect = "h:1"
expect = "closed"
"#;
        let plan = compile_text(
            "p.toml",
            good,
            SourceFormat::Toml,
            std::path::Path::new("."),
        )
        .expect("valid");
        assert_eq!(plan.checks[0].expect.state, Some(PortWord::Closed));
        let bad = "[[checks]]\nname = \"a\"\nconnect = \"h:1\"\nexpect = \"opened\"\n";
        let e = compile_text("p.toml", bad, SourceFormat::Toml, std::path::Path::new("."))
            .expect_err("bad");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("expected open, closed"), "{e}");
        // A mail check in TOML: the same struct, `to` as one text.
        let mail = r#"
[[checks]]
name = "a"
mail = { server = "h:465", to = "a@x, b@y", tls = "on-connect", quit_after = "ehlo" }
expect = { fail_at = "tls" }
"#;
        let plan = compile_text(
            "p.toml",
            mail,
            SourceFormat::Toml,
            std::path::Path::new("."),
        )
        .expect("valid");
        let CheckKind::Mail { mail, .. } = &plan.checks[0].kind else {
            panic!("not mail");
        };
        assert_eq!(mail.dialogue.tls, sockeye_proto::smtp::TlsMode::Implicit);
        assert_eq!(mail.quit_after, Some(crate::mail::QuitAfter::Ehlo));
        let to = &mail.dialogue.envelope.as_ref().expect("envelope").to;
        assert_eq!(to, &["a@x", "b@y"]);
        assert_eq!(plan.checks[0].expect.fail_at.as_deref(), Some("tls"));
        let bad = "[[checks]]\nname = \"a\"\nmail = { server = \"h:1\", to = \"a@x\", tls = \"always\" }\n";
        let e = compile_text("p.toml", bad, SourceFormat::Toml, std::path::Path::new("."))
            .expect_err("bad");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("unknown variant"), "{e}");
    }
}
