//! One self-contained HTML report (`-o html=FILE`, `sockeye report html`):
//! the CSS is inlined and nothing is fetched, so the file can be mailed,
//! attached to a ticket or opened offline.
//!
//! A plan's results get the expected-versus-observed matrix (sources by
//! destination:port/proto, every cell coloured and worded pass, fail or
//! inconclusive), the NAT, redirect and proxy findings, and every check
//! with its evidence. Scan and probe results get a table per host. The
//! input is records ([`super::records`]) so that a file written by any
//! command renders; each record's kind decides where it goes.

use std::collections::BTreeMap;
use std::io::{self, Write};

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;
use serde_json::Value;

use super::check::{CheckResult, PlanSummary};
use super::records::{
    CheckRecord, ErrorRecord, HostRecord, PlanSummaryRecord, PortRecord, Record, ScanSummary,
};

const CSS: &str = include_str!("html.css");

/// How a check came out, for the matrix and the check list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// The verdict could not be decided (a flow neither proved allowed nor
    /// blocked) and the plan expected a decision.
    Inconclusive,
}

impl Status {
    /// The word shown, which is also the CSS class.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Inconclusive => "inconclusive",
        }
    }

    /// The status of a check.
    pub fn of(check: &CheckRecord) -> Status {
        let inconclusive = check
            .flow
            .as_ref()
            .is_some_and(|f| f.verdict == "inconclusive");
        match (check.passed, inconclusive) {
            (true, _) => Status::Pass,
            (false, true) => Status::Inconclusive,
            (false, false) => Status::Fail,
        }
    }
}

/// Writes the report of a plan's run straight from its verdicts.
pub fn write_checks<T: Serialize>(
    out: &mut dyn Write,
    results: &[CheckResult<T>],
    summary: &PlanSummary,
) -> io::Result<()> {
    let mut records = Vec::with_capacity(results.len() + 1);
    for r in results {
        let mut value = serde_json::to_value(r).map_err(io::Error::other)?;
        if let Value::Object(map) = &mut value {
            map.insert("type".into(), Value::from("check"));
        }
        records.push(Record::from_value(value).map_err(io::Error::other)?);
    }
    let value = serde_json::to_value(summary).map_err(io::Error::other)?;
    records.push(Record::from_value(value).map_err(io::Error::other)?);
    out.write_all(render(&records).as_bytes())?;
    out.flush()
}

/// The whole page for `records`.
pub fn render(records: &[Record]) -> String {
    let mut checks: Vec<&CheckRecord> = Vec::new();
    let mut plan: Option<&PlanSummaryRecord> = None;
    let mut log: Option<&PlanSummaryRecord> = None;
    let mut scan = ScanPart::default();
    for r in records {
        match r {
            Record::Check(c) => checks.push(c),
            Record::PlanSummary(s) => plan = Some(s),
            Record::RunLog(s) => log = Some(s),
            Record::Run(_) => {}
            Record::Port(p) => scan.port(p),
            Record::Host(h) => scan.host(h),
            Record::Service(v) => scan.service(v),
            Record::Error(e) => scan.errors.push(e),
            Record::Summary(s) => scan.summaries.push(s),
        }
    }
    // Plan order, whatever order they were written in (a run log's is the
    // order the checks finished).
    checks.sort_by_key(|c| c.index);
    let title = match (plan.or(log), checks.is_empty(), scan.summaries.first()) {
        (Some(p), _, _) if !p.plan.is_empty() => format!("sockeye: plan {}", p.plan),
        (_, false, _) => "sockeye: plan results".to_owned(),
        (_, true, Some(s)) => format!("sockeye {} report", s.command),
        _ => "sockeye report".to_owned(),
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { (title) }
                @if !checks.is_empty() || plan.is_some() {
                    (plan_part(&checks, plan))
                }
                @if !scan.is_empty() {
                    (scan.markup())
                }
                @if checks.is_empty() && plan.is_none() && scan.is_empty() {
                    p.muted { "No results in this file." }
                }
            }
        }
    };
    page.into_string()
}

fn plan_part(checks: &[&CheckRecord], plan: Option<&PlanSummaryRecord>) -> Markup {
    let count = |s: Status| checks.iter().filter(|c| Status::of(c) == s).count();
    let flows: Vec<&CheckRecord> = checks
        .iter()
        .copied()
        .filter(|c| matrix_place(c).is_some())
        .collect();
    html! {
        @if let Some(p) = plan {
            p.meta { (p.checks) " checks in " (format!("{:.1}", p.elapsed_ms as f64 / 1000.0)) " s" }
        }
        div.totals {
            div.total { b { (checks.len()) } "checks" }
            div.total.pass { b { (count(Status::Pass)) } "pass" }
            div.total.fail { b { (count(Status::Fail)) } "fail" }
            div.total.inconclusive { b { (count(Status::Inconclusive)) } "inconclusive" }
        }
        @if !flows.is_empty() {
            h2 { "Expected versus observed" }
            p.muted { "Rows are the sending agents, columns the destinations (destination:port/proto). Each cell gives the verdict the plan expected and the one observed." }
            (matrix(&flows))
            h2 { "NAT, redirect and proxy findings" }
            (findings(&flows))
        }
        h2 { "Checks" }
        (check_list(checks))
    }
}

/// A check's place in the matrix: (source, destination/proto), from its
/// flow findings, or from its target (`a -> b:22/tcp`) when the flow could
/// not run.
fn matrix_place(c: &CheckRecord) -> Option<(String, String)> {
    if let Some(f) = &c.flow
        && !f.from.is_empty()
    {
        let proto = if f.proto.is_empty() { "tcp" } else { &f.proto };
        return Some((f.from.clone(), format!("{}/{proto}", f.to)));
    }
    if c.kind != "flow" {
        return None;
    }
    let (from, to) = c.target.split_once(" -> ")?;
    Some((from.trim().to_owned(), to.trim().to_owned()))
}

fn matrix(flows: &[&CheckRecord]) -> Markup {
    let mut sources: Vec<String> = Vec::new();
    let mut dests: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(String, String), Vec<&CheckRecord>> = BTreeMap::new();
    for c in flows {
        let Some((src, dst)) = matrix_place(c) else {
            continue;
        };
        if !sources.contains(&src) {
            sources.push(src.clone());
        }
        if !dests.contains(&dst) {
            dests.push(dst.clone());
        }
        cells.entry((src, dst)).or_default().push(c);
    }
    html! {
        table.matrix {
            thead {
                tr {
                    th { "from \\ to" }
                    @for d in &dests { th.mono { (d) } }
                }
            }
            tbody {
                @for s in &sources {
                    tr {
                        th.src.mono { (s) }
                        @for d in &dests {
                            @match cells.get(&(s.clone(), d.clone())) {
                                None => td.empty { "—" },
                                Some(list) => {
                                    @let worst = list.iter().map(|c| Status::of(c)).max_by_key(|s| match s {
                                        Status::Pass => 0, Status::Inconclusive => 1, Status::Fail => 2,
                                    }).unwrap_or(Status::Pass);
                                    td class={"cell " (worst.word())} data-status=(worst.word()) {
                                        @for c in list {
                                            @let st = Status::of(c);
                                            span.check title=(c.name) {
                                                span.word { (st.word()) }
                                                span.detail {
                                                    "expected " (c.expected)
                                                    ", observed " (observed(c))
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What happened, in the matrix's words: the flow's verdict and what the
/// sender saw, or the check's own words when there was no flow.
fn observed(c: &CheckRecord) -> String {
    match &c.flow {
        Some(f) if !f.verdict.is_empty() => {
            if f.sender_saw.is_empty() {
                f.verdict.clone()
            } else {
                format!("{} ({})", f.verdict, f.sender_saw)
            }
        }
        _ if !c.actual.is_empty() => c.actual.clone(),
        _ => c.result.clone(),
    }
}

fn findings(flows: &[&CheckRecord]) -> Markup {
    let mut nat = Vec::new();
    let mut redirect = Vec::new();
    let mut proxy = Vec::new();
    for c in flows {
        let Some(f) = &c.flow else { continue };
        if f.nat {
            nat.push((
                *c,
                format!(
                    "{} sent to {}; the listener saw the source {}",
                    f.from,
                    f.to,
                    f.source_seen.as_deref().unwrap_or("(unknown)")
                ),
            ));
        }
        if f.redirect {
            redirect.push((
                *c,
                format!(
                    "{} sent to {}; the nonce arrived at {}",
                    f.from,
                    f.to,
                    f.arrived_at.as_deref().unwrap_or("(nowhere)")
                ),
            ));
        }
        if f.proxy {
            proxy.push((
                *c,
                format!(
                    "{} connected to {} but the nonce arrived at no listener: something else answered",
                    f.from, f.to
                ),
            ));
        }
    }
    let group = |title: &str, items: &[(&CheckRecord, String)]| {
        html! {
            h3 { (title) " (" (items.len()) ")" }
            @if items.is_empty() {
                p.muted { "None found." }
            } @else {
                ul {
                    @for (c, text) in items {
                        li { b { (c.name) } ": " (text) }
                    }
                }
            }
        }
    };
    html! {
        (group("Address translation (NAT)", &nat))
        (group("Redirected", &redirect))
        (group("Proxy suspected", &proxy))
    }
}

fn check_list(checks: &[&CheckRecord]) -> Markup {
    html! {
        table.checks {
            thead {
                tr {
                    th { "#" } th { "result" } th { "check" } th { "what" }
                    th { "expected" } th { "observed" } th { "time" }
                }
            }
            tbody {
                @for c in checks {
                    @let st = Status::of(c);
                    tr.check data-status=(st.word()) {
                        td { (c.index + 1) }
                        td class=(st.word()) { span.word { (st.word()) } }
                        td {
                            b { (c.name) }
                            (evidence(c))
                        }
                        td.mono { (c.kind) " " (c.target) }
                        td { (c.expected) }
                        td { (c.actual) @if !c.passed && !c.result.is_empty() { br; span.muted { "RESULT: " (c.result) } } }
                        td { (c.elapsed_ms) " ms" }
                    }
                }
            }
        }
    }
}

fn evidence(c: &CheckRecord) -> Markup {
    let other: Vec<(&String, &Value)> = c
        .other
        .iter()
        .filter(|(k, v)| k.as_str() != "type" && !v.is_null())
        .collect();
    html! {
        details {
            summary { "evidence" }
            @if let Some(f) = &c.flow {
                table {
                    tr { th { "flow" } td.mono { (f.from) " → " (f.to) " (" (f.address) ") " (f.proto) } }
                    tr { th { "verdict" } td { (f.verdict) } }
                    tr { th { "sender saw" } td { (f.sender_saw) } }
                    tr { th { "arrived at" } td { (f.arrived_at.as_deref().unwrap_or("nowhere")) } }
                    tr { th { "source seen" } td { (f.source_seen.as_deref().unwrap_or("—")) } }
                    tr { th { "NAT" } td { (yes_no(f.nat)) } }
                    tr { th { "redirect" } td { (yes_no(f.redirect)) } }
                    tr { th { "unconfirmed" } td { (yes_no(f.unconfirmed)) } }
                    @if !f.blocked_by.is_empty() {
                        tr { th { "blocked by" } td { (f.blocked_by) } }
                    }
                    @for (k, v) in &f.other {
                        tr { th { (k) } td.mono { (compact(v)) } }
                    }
                }
                @if !f.evidence.is_empty() {
                    ol.evidence {
                        @for step in &f.evidence { li { (step) } }
                    }
                }
            }
            @if !c.result.is_empty() {
                p { "RESULT: " span.mono { (c.result) } }
            }
            @for (k, v) in &other {
                p { b { (k) } }
                pre { (serde_json::to_string_pretty(v).unwrap_or_default()) }
            }
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Scan and probe results, gathered per host in order of appearance.
#[derive(Debug, Default)]
struct ScanPart<'a> {
    hosts: Vec<HostPart<'a>>,
    errors: Vec<&'a ErrorRecord>,
    summaries: Vec<&'a ScanSummary>,
}

#[derive(Debug)]
struct HostPart<'a> {
    addr: String,
    name: Option<String>,
    index: Option<u64>,
    ports: Vec<&'a PortRecord>,
    services: Vec<&'a Value>,
    done: Option<&'a HostRecord>,
}

impl<'a> ScanPart<'a> {
    fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.errors.is_empty() && self.summaries.is_empty()
    }

    fn entry(
        &mut self,
        addr: String,
        name: Option<String>,
        index: Option<u64>,
    ) -> &mut HostPart<'a> {
        let pos = self.hosts.iter().position(|h| {
            h.addr == addr
                && h.name == name
                && (h.index == index || index.is_none() || h.index.is_none())
        });
        let pos = match pos {
            Some(p) => p,
            None => {
                self.hosts.push(HostPart {
                    addr,
                    name,
                    index,
                    ports: Vec::new(),
                    services: Vec::new(),
                    done: None,
                });
                self.hosts.len() - 1
            }
        };
        &mut self.hosts[pos]
    }

    fn port(&mut self, p: &'a PortRecord) {
        self.entry(p.addr.to_string(), p.host.clone(), p.host_index)
            .ports
            .push(p);
    }

    fn host(&mut self, h: &'a HostRecord) {
        self.entry(h.addr.to_string(), h.host.clone(), h.host_index)
            .done = Some(h);
    }

    fn service(&mut self, v: &'a Value) {
        let addr = v.get("addr").map(compact).unwrap_or_default();
        let name = v.get("host").and_then(Value::as_str).map(str::to_owned);
        self.entry(addr, name, None).services.push(v);
    }

    fn markup(&self) -> Markup {
        html! {
            @for s in &self.summaries {
                div.totals {
                    div.total { b { (s.hosts) } "hosts" }
                    div.total { b { (s.ports) } "ports" }
                    div.total.pass { b { (s.states.open) } "open" }
                    div.total.fail { b { (s.states.closed) } "closed" }
                    div.total.inconclusive { b { (s.states.filtered + s.states.open_filtered) } "filtered" }
                }
                p.meta {
                    (s.command) " took " (format!("{:.1}", s.elapsed_ms / 1000.0)) " s"
                    @if s.interrupted { " and was interrupted: the results are partial" }
                    @if let Some(n) = &s.note { ". " (n) }
                }
            }
            @if !self.errors.is_empty() {
                h2 { "Targets not scanned" }
                ul {
                    @for e in &self.errors {
                        li { span.mono { (e.target) } " (" (e.kind) "): " (e.message) }
                    }
                }
            }
            @for h in &self.hosts {
                (host_markup(h))
            }
        }
    }
}

fn host_markup(h: &HostPart<'_>) -> Markup {
    let label = match &h.name {
        Some(n) => format!("{n} ({})", h.addr),
        None => h.addr.clone(),
    };
    let mut ports: Vec<&PortRecord> = h.ports.clone();
    ports.sort_by(|a, b| (&a.proto, a.port).cmp(&(&b.proto, b.port)));
    let service_of = |port: u16| {
        h.services
            .iter()
            .copied()
            .find(|v| v.get("port").and_then(Value::as_u64) == Some(u64::from(port)))
    };
    // Services checked on ports the scan did not list (a probe's own results).
    let lone: Vec<&Value> = h
        .services
        .iter()
        .copied()
        .filter(|v| {
            let port = v.get("port").and_then(Value::as_u64);
            !ports.iter().any(|p| Some(u64::from(p.port)) == port)
        })
        .collect();
    html! {
        h2 { "Host " span.mono { (label) } }
        @if let Some(d) = h.done {
            p.meta {
                @if d.up { "Up" } @else { "No answer of its own" }
                @if let Some(ms) = d.srtt_ms { " (" (format!("{ms:.2}")) " ms round trip)" }
                ". " (d.states.open) " open, " (d.states.closed) " closed, "
                (d.states.filtered + d.states.open_filtered) " filtered."
            }
        }
        @if ports.is_empty() && lone.is_empty() {
            p.muted { "No open ports listed." }
        } @else {
            table.ports {
                thead { tr { th { "port" } th { "state" } th { "reason" } th { "service" } th { "details" } } }
                tbody {
                    @for p in &ports {
                        @let sv = service_of(p.port);
                        tr class={"state-" (p.state.replace('|', "-"))} {
                            td.mono { (p.port) "/" (p.proto) }
                            td.state { (p.state) }
                            td { (p.reason) }
                            td { (sv.and_then(|v| v.get("service")).map(compact).unwrap_or_else(|| usual_service(p))) }
                            td { @if let Some(v) = sv { (service_details(v)) } }
                        }
                    }
                    @for v in &lone {
                        @let state = v.get("state").map(compact).unwrap_or_default();
                        tr class={"state-" (state.replace('|', "-"))} {
                            td.mono { (v.get("port").map(compact).unwrap_or_default()) "/tcp" }
                            td.state { (state) }
                            td { (v.get("reason").map(compact).unwrap_or_default()) }
                            td { (v.get("service").map(compact).unwrap_or_default()) }
                            td { (service_details(v)) }
                        }
                    }
                }
            }
        }
    }
}

/// The port's usual service, as the table names it when nothing was probed.
fn usual_service(p: &PortRecord) -> String {
    let proto = if p.proto == "udp" {
        super::Proto::Udp
    } else {
        super::Proto::Tcp
    };
    super::common::service(p.port, proto).to_owned()
}

/// A service record's facts in a line, and the whole record on demand.
fn service_details(v: &Value) -> Markup {
    let mut facts = Vec::new();
    if let Some(b) = v.get("banner").and_then(Value::as_str) {
        facts.push(b.to_owned());
    }
    if let Some(http) = v.get("http") {
        facts.push(format!(
            "HTTP {} {}",
            http.get("status").map(compact).unwrap_or_default(),
            http.get("server").map(compact).unwrap_or_default()
        ));
    }
    for key in ["tls", "starttls"] {
        if let Some(t) = v.get(key) {
            let inner = t.get("tls").unwrap_or(t);
            if let Some(version) = inner.get("version").and_then(Value::as_str) {
                facts.push(format!("{key}: {version}"));
            } else if let Some(failed) = inner.get("failed").and_then(Value::as_str) {
                facts.push(format!("{key} failed: {failed}"));
            }
        }
    }
    if let Some(e) = v.get("error") {
        facts.push(format!(
            "{} failed: {}",
            e.get("step").map(compact).unwrap_or_default(),
            e.get("message").map(compact).unwrap_or_default()
        ));
    }
    html! {
        (facts.join("; "))
        details {
            summary { "record" }
            pre { (serde_json::to_string_pretty(v).unwrap_or_default()) }
        }
    }
}

/// A shared buffer: the JSON printer writes into it, the HTML printer
/// reads it back at the end.
#[derive(Debug, Clone, Default)]
struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("buffer poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `scan -o html=FILE`, `probe -o html=FILE`: the run's JSON Lines kept in
/// memory (open ports and hosts, not every closed port unless asked), and
/// the page written from them when the run ends. A page is whole or not
/// there: nothing is written before the end.
pub struct HtmlSink {
    out: Box<dyn Write + Send>,
    json: super::JsonSink,
    buffer: Buffer,
}

impl std::fmt::Debug for HtmlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtmlSink").finish_non_exhaustive()
    }
}

impl HtmlSink {
    pub fn new(out: Box<dyn Write + Send>, opts: super::SinkOptions) -> Self {
        let buffer = Buffer::default();
        HtmlSink {
            out,
            json: super::JsonSink::new(Box::new(buffer.clone()), opts),
            buffer,
        }
    }
}

impl super::Sink for HtmlSink {
    fn start(&mut self, info: &super::RunInfo) -> io::Result<()> {
        self.json.start(info)
    }

    fn event(&mut self, event: &super::Event) -> io::Result<()> {
        self.json.event(event)
    }

    fn finish(&mut self, summary: &super::Summary) -> io::Result<()> {
        self.json.finish(summary)?;
        let bytes = std::mem::take(
            &mut *self
                .buffer
                .0
                .lock()
                .map_err(|_| io::Error::other("buffer poisoned"))?,
        );
        let records = super::records::read(bytes.as_slice()).map_err(io::Error::other)?;
        self.out.write_all(render(&records).as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::records::read;

    fn page(text: &str) -> String {
        render(&read(text.as_bytes()).expect("records"))
    }

    #[test]
    fn the_matrix_has_words_and_colours_and_nothing_is_fetched() {
        let text = concat!(
            "{\"type\":\"check\",\"index\":0,\"name\":\"ssh <a>\",\"kind\":\"flow\",\"target\":\"a -> b:22/tcp\",\"passed\":true,\"expected\":\"allowed\",\"actual\":\"allowed\",\"result\":\"Success\",",
            "\"flow\":{\"from\":\"a\",\"to\":\"b:22\",\"proto\":\"tcp\",\"port\":22,\"verdict\":\"allowed\",\"sender_saw\":\"connected\",\"arrived_at\":\"c:80\",\"source_seen\":\"198.18.9.9\",\"nat\":true,\"redirect\":true,\"evidence\":[\"a sent tcp\"]}}\n",
            "{\"type\":\"check\",\"index\":1,\"name\":\"telnet\",\"kind\":\"flow\",\"target\":\"a -> b:23/tcp\",\"passed\":false,\"expected\":\"blocked\",\"actual\":\"inconclusive\",",
            "\"flow\":{\"from\":\"a\",\"to\":\"b:23\",\"proto\":\"tcp\",\"verdict\":\"inconclusive\",\"sender_saw\":\"timeout\"}}\n",
            "{\"type\":\"check\",\"index\":2,\"name\":\"no listener\",\"kind\":\"flow\",\"target\":\"b -> a:80/tcp\",\"passed\":false,\"expected\":\"blocked\",\"actual\":\"error\",\"result\":\"Fail agent b: port 80 is outside\"}\n",
            "{\"type\":\"summary\",\"plan\":\"zones\",\"checks\":3,\"passed\":1,\"failed\":2,\"elapsed_ms\":1500}\n",
        );
        let html = page(text);
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("sockeye: plan zones"));
        assert!(html.contains("ssh &lt;a&gt;"), "names are escaped");
        for cell in [
            "data-status=\"pass\"",
            "data-status=\"inconclusive\"",
            "data-status=\"fail\"",
        ] {
            assert!(html.contains(cell), "{cell} missing");
        }
        assert!(html.contains("b:22/tcp") && html.contains("a:80/tcp"));
        assert!(html.contains("the listener saw the source 198.18.9.9"));
        assert!(html.contains("the nonce arrived at c:80"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script") && !html.contains("<link"));
    }

    #[test]
    fn the_sink_renders_a_scan_at_its_end() {
        use crate::report::fixture;
        let text = fixture::replay(
            |o| HtmlSink::new(o, fixture::opts(false)),
            &fixture::events("lab.test"),
            &fixture::summary(),
        );
        assert!(text.starts_with("<!DOCTYPE html>"), "{text}");
        assert!(text.contains("lab.test (198.18.0.2)"), "{text}");
        assert!(text.contains("nope.invalid"), "{text}");
    }

    #[test]
    fn scan_results_get_a_table_per_host() {
        let text = concat!(
            "{\"type\":\"port\",\"addr\":\"198.18.0.2\",\"port\":80,\"proto\":\"tcp\",\"state\":\"open\",\"reason\":\"syn-ack\"}\n",
            "{\"type\":\"port\",\"addr\":\"198.18.0.2\",\"port\":22,\"proto\":\"tcp\",\"state\":\"open\",\"reason\":\"syn-ack\"}\n",
            "{\"type\":\"service\",\"addr\":\"198.18.0.2\",\"port\":22,\"proto\":\"tcp\",\"state\":\"open\",\"reason\":\"syn-ack\",\"service\":\"ssh\",\"banner\":\"SSH-2.0-x\"}\n",
            "{\"type\":\"host\",\"addr\":\"198.18.0.2\",\"up\":true,\"open\":2,\"closed\":998,\"filtered\":0}\n",
            "{\"type\":\"summary\",\"command\":\"scan\",\"hosts\":1,\"ports\":1000,\"open\":2,\"closed\":998,\"filtered\":0,\"elapsed_ms\":10.0,\"interrupted\":false}\n",
        );
        let html = page(text);
        assert!(html.contains("sockeye scan report"));
        let at22 = html.find("22/tcp").expect("22");
        let at80 = html.find("80/tcp").expect("80");
        assert!(at22 < at80, "ports sorted");
        assert!(html.contains("SSH-2.0-x"));
        assert!(html.contains("<td>http</td>"), "the usual name of port 80");
        assert!(html.contains("998 closed"));
    }
}
