//! A conversation as written (a script file, a plan's `talk` check, or
//! `--expect/--send` flags) and as compiled: steps with a name, a pattern
//! compiled once, `fail` patterns, a response template (escapes and
//! `{{variables}}`), a per-step timeout and an optional STARTTLS upgrade.
//!
//! The written form deserializes with serde from YAML or TOML. Values that
//! can be wrong on their own (a regex, a time, an end-of-line name) are
//! checked while deserializing, so a bad one is reported by the format's
//! parser with its line and column; what needs the whole plan (which
//! variables exist) is checked when the plan is compiled.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::engine::{DEFAULT_MAX_BUFFER, Pattern};
use crate::tls::starttls::Protocol as StartTls;

/// Variables a template may name: the plan's `vars`, a matrix row, `--var`.
pub type Vars = BTreeMap<String, String>;

/// The default wait of one step.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// What ends each `send` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Eol {
    /// `\r\n`: the network protocols (SMTP, POP3, IMAP, FTP, HTTP).
    Crlf,
    /// `\n`.
    Lf,
    /// `\r`: the Enter key on a terminal (`--spawn`), as Tcl expect sends.
    Cr,
    /// Nothing: the text is sent exactly as written.
    None,
}

impl Eol {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Eol::Crlf => b"\r\n",
            Eol::Lf => b"\n",
            Eol::Cr => b"\r",
            Eol::None => b"",
        }
    }

    /// Parses the command line's spelling.
    pub fn parse(text: &str) -> Option<Eol> {
        Some(match text {
            "crlf" => Eol::Crlf,
            "lf" => Eol::Lf,
            "cr" => Eol::Cr,
            "none" => Eol::None,
            _ => return None,
        })
    }
}

/// The protocols whose STARTTLS a `starttls` step can run: the line-based
/// ones (LDAP's is a binary exchange, no conversation's business).
pub const STARTTLS_PROTOCOLS: [StartTls; 4] = [
    StartTls::Smtp,
    StartTls::Pop3,
    StartTls::Imap,
    StartTls::Ftp,
];

/// One of [`STARTTLS_PROTOCOLS`], by its name (`--starttls`).
pub fn starttls_protocol(name: &str) -> Option<StartTls> {
    StartTls::parse(name).filter(|p| STARTTLS_PROTOCOLS.contains(p))
}

/// A response: literal bytes and `{{name}}` holes, escapes already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Bytes(Vec<u8>),
    Var(String),
}

impl Template {
    /// Parses `text`: `\r \n \t \0 \\ \e \xHH` escapes and `{{name}}`
    /// variables (names of letters, digits, `_`, `-`, `.`).
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut bytes = Vec::new();
        let src = text.as_bytes();
        let mut i = 0;
        while i < src.len() {
            match src[i] {
                b'\\' => {
                    let Some(&c) = src.get(i + 1) else {
                        return Err("a lone \\ at the end (write \\\\ for a backslash)".into());
                    };
                    i += 2;
                    bytes.push(match c {
                        b'r' => b'\r',
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'0' => 0,
                        b'e' => 0x1b,
                        b'\\' => b'\\',
                        b'{' => b'{',
                        b'x' => {
                            let hex = src
                                .get(i..i + 2)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u8::from_str_radix(h, 16).ok())
                                .ok_or("\\x needs two hex digits")?;
                            i += 2;
                            hex
                        }
                        other => {
                            return Err(format!(
                                "unknown escape \\{} (known: \\r \\n \\t \\0 \\e \\\\ \\{{ \\xHH)",
                                other as char
                            ));
                        }
                    });
                }
                b'{' if src.get(i + 1) == Some(&b'{') => {
                    let rest = &text[i + 2..];
                    let end = rest.find("}}").ok_or("{{ without a closing }}")?;
                    let name = rest[..end].trim();
                    if name.is_empty()
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
                    {
                        return Err(format!("bad variable name {{{{{name}}}}}"));
                    }
                    if !bytes.is_empty() {
                        parts.push(Part::Bytes(std::mem::take(&mut bytes)));
                    }
                    parts.push(Part::Var(name.to_string()));
                    i += 2 + end + 2;
                }
                b => {
                    bytes.push(b);
                    i += 1;
                }
            }
        }
        if !bytes.is_empty() {
            parts.push(Part::Bytes(bytes));
        }
        Ok(Template { parts })
    }

    /// The variables it names.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Bytes(_) => None,
        })
    }

    /// Appends the rendered bytes to `out`; an unknown variable is an error
    /// (plans check this before running, so it only happens from the API).
    pub fn render(&self, vars: &Vars, out: &mut Vec<u8>) -> Result<(), String> {
        for p in &self.parts {
            match p {
                Part::Bytes(b) => out.extend_from_slice(b),
                Part::Var(v) => match vars.get(v) {
                    Some(val) => out.extend_from_slice(val.as_bytes()),
                    None => return Err(format!("no variable {{{{{v}}}}}")),
                },
            }
        }
        Ok(())
    }

    /// Renders to a string (for addresses and names built from variables).
    pub fn render_string(&self, vars: &Vars) -> Result<String, String> {
        let mut out = Vec::new();
        self.render(vars, &mut out)?;
        String::from_utf8(out).map_err(|_| "not UTF-8 after substitution".into())
    }
}

/// One step, compiled: wait for `expect` (unless absent), then send.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub expect: Option<Pattern>,
    /// Patterns that end the step as failed when they match first
    /// (`^530 ` after a password).
    pub fail: Vec<Pattern>,
    pub send: Option<Template>,
    /// Overrides the conversation's step timeout.
    pub timeout: Option<Duration>,
    /// Runs this protocol's STARTTLS and a TLS handshake before sending.
    pub starttls: Option<StartTls>,
}

/// A compiled conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub steps: Vec<Step>,
    /// `None`: the endpoint's default (CRLF over the network, CR on a pty).
    pub eol: Option<Eol>,
    pub timeout: Duration,
    pub max_buffer: usize,
}

impl Conversation {
    /// Every variable a step's response names.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.steps
            .iter()
            .filter_map(|s| s.send.as_ref())
            .flat_map(Template::vars)
    }
}

// ---- the written form ----------------------------------------------------

/// A regex checked while deserializing (its error carries a location).
#[derive(Debug, Clone)]
pub struct RegexText(pub Pattern);

impl<'de> Deserialize<'de> for RegexText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Pattern::regex(&text).map(RegexText).map_err(|e| {
            serde::de::Error::custom(format!("bad regex {text:?}: {}", regex_error_text(&e)))
        })
    }
}

/// A time like `500ms`, `5s`, `1m` (or a bare number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeText(pub Duration);

impl<'de> Deserialize<'de> for TimeText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TimeText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time like 500ms, 5s or 1m")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TimeText, E> {
                parse_time(s).map(TimeText).ok_or_else(|| {
                    E::custom(format!(
                        "bad time {s:?}: expected a time like 500ms, 5s or 1m"
                    ))
                })
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<TimeText, E> {
                if n > 86_400 {
                    return Err(E::custom("a time of more than a day"));
                }
                Ok(TimeText(Duration::from_secs(n)))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<TimeText, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom("a negative time"))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<TimeText, E> {
                if !(0.0..=86_400.0).contains(&n) {
                    return Err(E::custom("a time out of range"));
                }
                Ok(TimeText(Duration::from_secs_f64(n)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A response template checked while deserializing.
#[derive(Debug, Clone)]
pub struct TemplateText(pub Template);

impl<'de> Deserialize<'de> for TemplateText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Template::parse(&text)
            .map(TemplateText)
            .map_err(|e| serde::de::Error::custom(format!("bad text {text:?}: {e}")))
    }
}

/// `500ms`, `5s`, `1.5s`, `1m`, `1h` or seconds; at most a day.
pub fn parse_time(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = num.trim().parse().ok()?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let secs = value * scale;
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// A step as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Named in failures ("Timeout at Password prompt"); default "step N".
    pub name: Option<String>,
    /// A regex to wait for.
    pub expect: Option<RegexText>,
    /// A literal to wait for (instead of `expect`).
    pub expect_literal: Option<String>,
    /// Regexes that fail the step when they match first.
    #[serde(default)]
    pub fail: Vec<RegexText>,
    /// What to send once the pattern matched (escapes, `{{vars}}`).
    pub send: Option<TemplateText>,
    pub timeout: Option<TimeText>,
    /// STARTTLS for this protocol, then a TLS handshake, before `send`.
    pub starttls: Option<StartTls>,
}

/// A conversation as written (a script file, or a plan's `talk.script`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptSpec {
    pub eol: Option<Eol>,
    /// Each step's wait, unless the step says otherwise.
    pub timeout: Option<TimeText>,
    /// Bound of the match buffer in bytes (default 65536).
    pub max_buffer: Option<usize>,
    pub steps: Vec<StepSpec>,
}

impl StepSpec {
    /// Compiles the step; `index` names an unnamed one.
    pub fn compile(&self, index: usize) -> Result<Step, String> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("step {}", index + 1));
        let expect = match (&self.expect, &self.expect_literal) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "step {name:?}: give expect or expect_literal, not both"
                ));
            }
            (Some(re), None) => Some(re.0.clone()),
            (None, Some(lit)) => Some(Pattern::literal(lit.as_bytes())),
            (None, None) => None,
        };
        if expect.is_none() && self.send.is_none() && self.starttls.is_none() {
            return Err(format!(
                "step {name:?}: nothing to do (give expect, send or starttls)"
            ));
        }
        if expect.is_none() && !self.fail.is_empty() {
            return Err(format!("step {name:?}: fail patterns need an expect"));
        }
        Ok(Step {
            name,
            expect,
            fail: self.fail.iter().map(|r| r.0.clone()).collect(),
            send: self.send.as_ref().map(|t| t.0.clone()),
            timeout: self.timeout.map(|t| t.0),
            starttls: self.starttls,
        })
    }
}

impl ScriptSpec {
    pub fn compile(&self) -> Result<Conversation, String> {
        if self.steps.is_empty() {
            return Err("a conversation needs at least one step".into());
        }
        let max_buffer = self.max_buffer.unwrap_or(DEFAULT_MAX_BUFFER);
        if !(16..=16 * 1024 * 1024).contains(&max_buffer) {
            return Err("max_buffer: between 16 bytes and 16 MiB".into());
        }
        let steps = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| s.compile(i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Conversation {
            steps,
            eol: self.eol,
            timeout: self.timeout.map_or(DEFAULT_STEP_TIMEOUT, |t| t.0),
            max_buffer,
        })
    }
}

/// A file that could not be read as what it should be: where, and what
/// was expected there. Line and column are 1-based; 0 when unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct SourceError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl SourceError {
    pub fn new(file: &str, line: u64, column: u64, message: impl Into<String>) -> Self {
        SourceError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    /// `plan.yaml:12:7: message` (the compilers' convention, which editors follow).
    fn render(&self) -> String {
        match (self.line, self.column) {
            (0, _) => format!("{}: {}", self.file, self.message),
            (l, 0) => format!("{}:{l}: {}", self.file, self.message),
            (l, c) => format!("{}:{l}:{c}: {}", self.file, self.message),
        }
    }
}

/// The formats a script or plan may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Yaml,
    Toml,
}

impl SourceFormat {
    /// By extension: `.toml` is TOML, anything else YAML.
    pub fn of(path: &std::path::Path) -> SourceFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => SourceFormat::Toml,
            _ => SourceFormat::Yaml,
        }
    }
}

/// Largest plan or script file read: a plan of 100,000 checks fits in far
/// less, and a file without end (`/dev/zero`) must not be read until the
/// kernel steps in.
pub const MAX_SOURCE_BYTES: u64 = 1024 * 1024;

/// Reads a plan or script file whole: a regular file of at most
/// [`MAX_SOURCE_BYTES`], UTF-8. The error is in words, without the path
/// (callers name the file their own way).
pub fn read_source(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file (a plan or script must be one)".into());
    }
    let too_big = |len: u64| format!("{len} bytes, larger than the {MAX_SOURCE_BYTES}-byte limit");
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(too_big(meta.len()));
    }
    // The file may grow after the check: read one byte past the cap at most.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SOURCE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into())
}

/// Deserializes `text` (named `file` in errors) as `format`, with the
/// parser's line and column on any error.
pub fn parse_source<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    format: SourceFormat,
) -> Result<T, SourceError> {
    match format {
        SourceFormat::Yaml => serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            // The message without the snippet saphyr draws under it.
            let message = e.without_snippet().to_string();
            let message = message
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .trim()
                .to_string();
            SourceError::new(file, line, column, strip_location(&message))
        }),
        SourceFormat::Toml => toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_column(text, s.start));
            SourceError::new(file, line, column, e.message().trim().to_string())
        }),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    (line, col)
}

/// saphyr ends some messages with " at line L column C"; we print that first.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A regex error on one line (the crate draws a caret diagram over several).
pub fn regex_error_text(err: &regex::Error) -> String {
    match err {
        regex::Error::CompiledTooBig(n) => format!("compiles to more than {n} bytes"),
        other => {
            let text = other.to_string();
            let last = text.lines().last().unwrap_or("invalid").trim();
            last.strip_prefix("error: ").unwrap_or(last).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn templates_decode_escapes_and_fill_variables() {
        let t = Template::parse(r"USER {{user}}\r\n\x41\\{{ pass }}").expect("parse");
        assert_eq!(t.vars().collect::<Vec<_>>(), ["user", "pass"]);
        let mut out = Vec::new();
        t.render(&vars(&[("user", "alice"), ("pass", "w")]), &mut out)
            .expect("render");
        assert_eq!(out, b"USER alice\r\nA\\w");
        let mut out = Vec::new();
        assert!(t.render(&vars(&[("user", "a")]), &mut out).is_err());
    }

    #[test]
    fn bad_templates_say_why() {
        for (text, why) in [
            (r"end\", "lone"),
            (r"\q", "unknown escape"),
            (r"\x4", "two hex"),
            ("{{user", "closing"),
            ("{{a b}}", "bad variable"),
        ] {
            let err = Template::parse(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
        // A single brace is just a brace.
        assert!(Template::parse("{ok}").is_ok());
    }

    #[test]
    fn times_in_the_plan_syntax() {
        assert_eq!(parse_time("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_time("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_time("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_time("-1"), None);
        assert_eq!(parse_time("5 parsecs"), None);
    }

    #[test]
    fn a_script_compiles_from_yaml_and_toml_alike() {
        let yaml = r#"
eol: crlf
timeout: 3s
steps:
  - name: greeting
    expect: "^220 "
  - name: user
    send: "USER {{user}}"
    expect_literal: "331 "
    fail: ["^530 "]
"#;
        let toml_text = r#"
eol = "crlf"
timeout = "3s"
[[steps]]
name = "greeting"
expect = "^220 "
[[steps]]
name = "user"
send = "USER {{user}}"
expect_literal = "331 "
fail = ["^530 "]
"#;
        let a: ScriptSpec = serde_saphyr::from_str(yaml).expect("yaml");
        let b: ScriptSpec = toml::from_str(toml_text).expect("toml");
        for spec in [a, b] {
            let c = spec.compile().expect("compile");
            assert_eq!(c.timeout, Duration::from_secs(3));
            assert_eq!(c.eol, Some(Eol::Crlf));
            assert_eq!(c.steps.len(), 2);
            assert_eq!(c.steps[1].fail.len(), 1);
            assert_eq!(c.vars().collect::<Vec<_>>(), ["user"]);
        }
    }

    #[test]
    fn a_bad_regex_is_reported_at_its_line_and_column() {
        let yaml = "steps:\n  - name: x\n    expect: \"(unclosed\"\n";
        let err = serde_saphyr::from_str::<ScriptSpec>(yaml).expect_err("bad regex");
        let loc = err.location().expect("location");
        assert_eq!(loc.line(), 3, "{err}");
        assert!(err.to_string().contains("bad regex"), "{err}");
    }
}
