//! The table for people: nmap's normal output, one report per host printed
//! when the host is done, columns aligned to their content, optional ANSI
//! colour, and a one-line summary at the end. Only hosts that answered get
//! a report; the others are counted in one line before the summary, as
//! nmap's "N hosts up".

use std::fmt::Write as _;
use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use super::common::{
    HostBuffer, Ignored, Routed, grouped, ignored_groups_where, is_shown, latency, plural,
    printable, secs2, service, table_hidden, total_ports,
};
use super::{
    Event, HostDone, PortResult, PortState, RunInfo, ServiceResult, Sink, SinkOptions, Summary,
};

/// Renders nmap-like per-host tables (see output.md, "table").
pub struct TableSink {
    out: Box<dyn Write + Send>,
    color: bool,
    all_states: bool,
    hosts: HostBuffer,
    /// "scan" or "probe", for the report headings.
    command: &'static str,
    /// Whether a block (host or error) was printed, so the next one is
    /// separated from it by a blank line.
    printed: bool,
    /// Hosts reported as up, and hosts nothing of their own came from.
    up: u64,
    silent: u64,
}

impl std::fmt::Debug for TableSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSink")
            .field("color", &self.color)
            .field("all_states", &self.all_states)
            .finish_non_exhaustive()
    }
}

const HEADER: Style = Style::new().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();

impl TableSink {
    pub fn new(out: Box<dyn Write + Send>, opts: SinkOptions) -> Self {
        TableSink {
            out,
            color: opts.color,
            all_states: opts.all_states,
            hosts: HostBuffer::default(),
            command: "scan",
            printed: false,
            up: 0,
            silent: 0,
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }

    fn state_style(state: PortState) -> Style {
        match state {
            PortState::Open => AnsiColor::Green.on_default().bold(),
            PortState::Closed => AnsiColor::Red.on_default(),
            PortState::Filtered | PortState::OpenFiltered => AnsiColor::Yellow.on_default(),
        }
    }

    /// Starts a block, after a blank line if one came before.
    fn block(&mut self) -> String {
        let text = if self.printed {
            "\n".to_owned()
        } else {
            String::new()
        };
        self.printed = true;
        text
    }

    fn host(&mut self, done: &HostDone) -> io::Result<()> {
        let mut ports = self.hosts.take(done);
        if !done.up {
            self.silent += 1;
            self.hosts.forget_services(done.host_index);
            return Ok(());
        }
        self.up += 1;
        let mut text = self.block();
        let label = label(done.addr, done.host.as_deref());
        let _ = writeln!(
            text,
            "{}",
            self.paint(
                HEADER,
                &format!("sockeye {} report for {label}", self.command)
            )
        );
        let received = done
            .discovery
            .map(|d| format!(", received {}", d.reason))
            .unwrap_or_default();
        match done.srtt {
            Some(srtt) => {
                let _ = writeln!(text, "Host is up{received} ({}s latency).", latency(srtt));
            }
            None => {
                let _ = writeln!(text, "Host is up{received}.");
            }
        }
        if let Some(mac) = done.discovery.and_then(|d| d.mac_text()) {
            let _ = writeln!(text, "MAC Address: {mac}");
        }
        if done.counts.is_empty() && done.discovery.is_some() {
            // Host discovery alone (-sn): nothing about ports to say.
            self.hosts.forget_services(done.host_index);
            self.out.write_all(text.as_bytes())?;
            return self.out.flush();
        }
        let hidden = table_hidden(done, self.all_states);
        ports.retain(|p| !hidden.hides(p.proto, p.state));
        let ignored = ignored_groups_where(done, |proto, state| hidden.hides(proto, state));
        if let Some(note) = done.unreliable_note() {
            let _ = writeln!(
                text,
                "{}",
                self.paint(
                    WARNING,
                    &format!("Host {note} (a SYN proxy or tarpit answers for it).")
                )
            );
        } else if ports.is_empty() {
            let total = total_ports(done);
            if total == 0 {
                let _ = writeln!(text, "0 ports scanned on {label}.");
            } else {
                let _ = writeln!(
                    text,
                    "{} {total} scanned {} on {label} {} in ignored states.",
                    if total == 1 { "The" } else { "All" },
                    if total == 1 { "port" } else { "ports" },
                    if total == 1 { "is" } else { "are" },
                );
            }
        }
        if !ignored.is_empty() {
            let _ = writeln!(text, "Not shown: {}", self.not_shown(&ignored));
        }
        self.table(&mut text, &ports);
        self.hosts.forget_services(done.host_index);
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// A host the run was interrupted on: the ports shown so far, no counts.
    fn unfinished(&mut self, label: &str, ports: &[PortResult]) -> io::Result<()> {
        let mut text = self.block();
        let _ = writeln!(
            text,
            "{}",
            self.paint(
                HEADER,
                &format!("sockeye {} report for {label}", self.command)
            )
        );
        text.push_str("Scan interrupted before all ports of this host were decided.\n");
        self.table(&mut text, ports);
        self.out.write_all(text.as_bytes())
    }

    fn not_shown(&self, ignored: &[Ignored]) -> String {
        let parts: Vec<String> = ignored
            .iter()
            .map(|g| {
                format!(
                    "{} {} {} {} ({})",
                    g.count,
                    g.state,
                    g.proto,
                    if g.count == 1 { "port" } else { "ports" },
                    g.reason
                )
            })
            .collect();
        parts.join(", ")
    }

    fn table(&self, text: &mut String, ports: &[PortResult]) {
        if ports.is_empty() {
            return;
        }
        let services: Vec<Option<std::sync::Arc<ServiceResult>>> =
            ports.iter().map(|p| self.hosts.service_of(p)).collect();
        let probed = services.iter().any(Option::is_some);
        let mut header = vec!["PORT", "STATE", "SERVICE", "REASON"];
        if probed {
            header.push("DETAILS");
        }
        let header: Vec<String> = header.into_iter().map(str::to_owned).collect();
        let rows: Vec<(Option<PortState>, Vec<String>)> = std::iter::once((None, header))
            .chain(ports.iter().zip(&services).map(|(p, sv)| {
                let mut cells = vec![
                    format!("{}/{}", p.port, p.proto),
                    p.state.to_string(),
                    match sv {
                        Some(s) => s.service.clone(),
                        None => service(p.port, p.proto).to_owned(),
                    },
                    p.reason.to_string(),
                ];
                if probed {
                    cells.push(
                        sv.as_ref()
                            .map(|s| printable(&s.summary()).into_owned())
                            .unwrap_or_default(),
                    );
                }
                (Some(p.state), cells)
            }))
            .collect();
        let columns = rows[0].1.len();
        let mut widths = vec![0usize; columns];
        for (_, cells) in &rows {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut seen = std::collections::HashMap::new();
        for (row, (state, cells)) in rows.iter().enumerate() {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let style = match (state, i) {
                    (None, _) => HEADER,
                    (Some(state), 1) => Self::state_style(*state),
                    _ => Style::new(),
                };
                line.push_str(&self.paint(style, cell));
                if i + 1 < cells.len() {
                    let pad = widths[i] - cell.chars().count() + 1;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
            if row > 0
                && let Some(sv) = &services[row - 1]
            {
                for detail in super::service::details_seen(sv, &mut seen) {
                    let _ = writeln!(text, "| {}", printable(&detail));
                }
            }
        }
    }
}

/// "lab.test (198.18.0.2)", or the address alone when no name was typed.
fn label(addr: std::net::IpAddr, host: Option<&str>) -> String {
    match host {
        Some(name) => format!("{} ({addr})", printable(name)),
        None => addr.to_string(),
    }
}

impl Sink for TableSink {
    fn start(&mut self, info: &RunInfo) -> io::Result<()> {
        self.all_states |= info.all_states;
        self.command = info.command;
        Ok(())
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        // Every port the engine sent is kept: which states are only
        // counted is known when the host is done (see `table_hidden`).
        match self.hosts.route(event, true) {
            Routed::Held => Ok(()),
            Routed::HostDone(done) => self.host(done),
            Routed::TargetError(err) => {
                let mut text = self.block();
                let _ = writeln!(text, "{}.", printable(&err.headline()));
                self.out.write_all(text.as_bytes())?;
                self.out.flush()
            }
        }
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        for ((_, addr, host), mut ports) in self.hosts.drain_unfinished() {
            // Without the host's counts, only what is always listed is.
            ports.retain(|p| is_shown(p.state, self.all_states));
            if !ports.is_empty() {
                self.unfinished(&label(addr, host.as_deref()), &ports)?;
            }
        }
        let mut text = if self.printed {
            "\n".to_owned()
        } else {
            String::new()
        };
        if self.silent > 0 {
            let _ = writeln!(
                text,
                "{} up; {} not shown: nothing came back from {} (down, or every probe dropped or refused on the way).",
                plural(self.up, "host", "hosts"),
                grouped(self.silent),
                if self.silent == 1 { "it" } else { "them" },
            );
        }
        if summary.interrupted {
            text.push_str("Interrupted: ");
        }
        if let Some(up) = summary.hosts_up {
            // Host discovery alone (-sn), in nmap's words.
            let _ = writeln!(
                text,
                "Discovered {} up of {} in {} s",
                plural(up, "host", "hosts"),
                plural(summary.hosts, "address", "addresses"),
                secs2(summary.elapsed),
            );
            if let Some(note) = &summary.note {
                let _ = writeln!(text, "Note: {}", printable(note));
            }
            self.out.write_all(text.as_bytes())?;
            return self.out.flush();
        }
        let _ = write!(
            text,
            "Scanned {} ({} {}) in {} s: {} open, {} closed, {} filtered",
            plural(summary.hosts, "host", "hosts"),
            grouped(summary.ports),
            if summary.ports == 1 { "port" } else { "ports" },
            secs2(summary.elapsed),
            grouped(summary.open),
            grouped(summary.closed),
            grouped(summary.filtered),
        );
        if summary.open_filtered > 0 {
            let _ = write!(text, ", {} open|filtered", grouped(summary.open_filtered));
        }
        text.push('\n');
        if let Some(note) = &summary.note {
            let _ = writeln!(text, "Note: {}", printable(note));
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, Captured, replay};

    fn table(all_states: bool, color: bool) -> String {
        replay(
            |out| {
                TableSink::new(
                    out,
                    SinkOptions {
                        color,
                        ..fixture::opts(all_states)
                    },
                )
            },
            &fixture::events("lab.test"),
            &fixture::summary(),
        )
    }

    #[test]
    fn shows_open_ports_per_host_and_counts_the_rest() {
        // The most common closed or filtered state is counted; the others
        // are listed, as nmap does.
        assert_eq!(
            table(false, false),
            "\
sockeye scan report for lab.test (198.18.0.2)
Host is up (0.00021s latency).
Not shown: 2 closed tcp ports (conn-refused)
PORT      STATE    SERVICE  REASON
22/tcp    open     ssh      syn-ack
80/tcp    open     http     syn-ack
8080/tcp  filtered http-alt no-response
40000/tcp filtered unknown  host-unreach

Failed to resolve \"nope.invalid\": Name or service not known.

sockeye scan report for 198.18.0.3
Host is up.
Not shown: 3 closed tcp ports (conn-refused)
PORT    STATE         SERVICE REASON
25/tcp  filtered      smtp    no-response
80/tcp  filtered      http    admin-prohibited
443/tcp open          https   syn-ack
53/udp  open|filtered domain  no-response

Scanned 2 hosts (13 ports) in 0.41 s: 3 open, 5 closed, 4 filtered, 1 open|filtered
"
        );
    }

    #[test]
    fn all_states_lists_every_port_and_nothing_is_hidden() {
        assert_eq!(
            table(true, false),
            "\
sockeye scan report for lab.test (198.18.0.2)
Host is up (0.00021s latency).
PORT      STATE    SERVICE  REASON
22/tcp    open     ssh      syn-ack
25/tcp    closed   smtp     conn-refused
80/tcp    open     http     syn-ack
443/tcp   closed   https    conn-refused
8080/tcp  filtered http-alt no-response
40000/tcp filtered unknown  host-unreach

Failed to resolve \"nope.invalid\": Name or service not known.

sockeye scan report for 198.18.0.3
Host is up.
PORT      STATE         SERVICE  REASON
22/tcp    closed        ssh      conn-refused
25/tcp    filtered      smtp     no-response
80/tcp    filtered      http     admin-prohibited
443/tcp   open          https    syn-ack
8080/tcp  closed        http-alt conn-refused
40000/tcp closed        unknown  conn-refused
53/udp    open|filtered domain   no-response

Scanned 2 hosts (13 ports) in 0.41 s: 3 open, 5 closed, 4 filtered, 1 open|filtered
"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = table(false, false);
        assert!(!plain.contains('\x1b'));
        let coloured = table(false, true);
        let open = AnsiColor::Green.on_default().bold();
        assert!(coloured.contains(&format!("{}open{}", open.render(), open.render_reset())));
        assert!(coloured.contains(&format!("{}PORT{}", HEADER.render(), HEADER.render_reset())));
        // Padding stays outside the escapes, so columns still line up.
        let stripped: String = strip_ansi(&coloured);
        assert_eq!(stripped, plain);
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn host_with_nothing_shown_says_so() {
        let mut events = fixture::events("lab.test");
        events.retain(|e| match e {
            Event::Port(p) => p.state == PortState::Closed,
            Event::HostDone(d) => d.host.is_some(),
            Event::TargetError(_) | Event::Service(_) => false,
        });
        for event in &mut events {
            if let Event::HostDone(done) = event {
                done.counts.retain(|c| c.state == PortState::Closed);
                crate::report::add_count(
                    &mut done.counts,
                    crate::report::Proto::Tcp,
                    PortState::Closed,
                    crate::report::Reason::ConnRefused,
                    2,
                );
            }
        }
        let out = replay(
            |out| TableSink::new(out, fixture::opts(false)),
            &events,
            &fixture::summary(),
        );
        assert!(
            out.starts_with(
                "\
sockeye scan report for lab.test (198.18.0.2)
Host is up (0.00021s latency).
All 4 scanned ports on lab.test (198.18.0.2) are in ignored states.
Not shown: 4 closed tcp ports (conn-refused)

Scanned"
            ),
            "{out}"
        );
    }

    #[test]
    fn interrupted_right_after_start() {
        let out = replay(
            |out| TableSink::new(out, fixture::opts(false)),
            &[],
            &fixture::interrupted_summary(),
        );
        assert_eq!(
            out,
            "Interrupted: Scanned 0 hosts (0 ports) in 0.05 s: 0 open, 0 closed, 0 filtered\n"
        );
    }

    #[test]
    fn interrupted_mid_host_keeps_the_open_ports_found() {
        let events = fixture::events("lab.test");
        let out = replay(
            |out| TableSink::new(out, fixture::opts(false)),
            &events[..4],
            &fixture::interrupted_summary(),
        );
        assert_eq!(
            out,
            "\
sockeye scan report for lab.test (198.18.0.2)
Scan interrupted before all ports of this host were decided.
PORT   STATE SERVICE REASON
22/tcp open  ssh     syn-ack

sockeye scan report for 198.18.0.3
Scan interrupted before all ports of this host were decided.
PORT    STATE SERVICE REASON
443/tcp open  https   syn-ack

Interrupted: Scanned 0 hosts (0 ports) in 0.05 s: 0 open, 0 closed, 0 filtered
"
        );
    }

    #[test]
    fn host_discovery_alone_gives_the_reason_and_the_mac() {
        let (events, summary) = fixture::discovery();
        let text = replay(
            |out| TableSink::new(out, fixture::opts(false)),
            &events,
            &summary,
        );
        assert_eq!(
            text,
            "sockeye scan report for 198.18.0.2
Host is up, received arp-response (0.00021s latency).
MAC Address: 02:5E:C0:00:00:0A

Discovered 1 host up of 256 addresses in 0.41 s
"
        );
    }

    #[test]
    fn thousands_are_grouped_in_the_summary() {
        let out = Captured::default();
        let mut sink = TableSink::new(Box::new(out.clone()), fixture::opts(false));
        sink.start(&fixture::run_info()).expect("start");
        let summary = Summary {
            hosts: 1,
            ports: 65_535,
            open: 12,
            closed: 65_521,
            filtered: 2,
            open_filtered: 0,
            ..fixture::summary()
        };
        sink.finish(&summary).expect("finish");
        assert_eq!(
            out.text(),
            "Scanned 1 host (65,535 ports) in 0.41 s: 12 open, 65,521 closed, 2 filtered\n"
        );
    }
}
