//! nmap's grepable output (`-oG`), for grep and awk habits: a `#` header,
//! two lines per host written when the host is done (`Status: Up`, then the
//! shown ports in nmap's seven slash-separated fields), and a `#` footer.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;

use time::UtcOffset;

use super::common::{
    HostBuffer, Routed, ctime, ignored_groups, ignored_states, plural, printable, secs2, service,
};
use super::{Event, HostDone, PortResult, RunInfo, Sink, SinkOptions, Summary};

/// Writes nmap's grepable format.
pub struct GrepSink {
    out: Box<dyn Write + Send>,
    all_states: bool,
    version: &'static str,
    offset: UtcOffset,
    hosts: HostBuffer,
    /// Hosts nothing of their own came back from: `Status: Down`.
    down: u64,
}

impl std::fmt::Debug for GrepSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrepSink")
            .field("all_states", &self.all_states)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// A field of a grepable line: `/` separates fields and `,` ports, so nmap
/// swaps `/` for `|`; control characters would break the line.
fn field(s: &str) -> String {
    printable(s).replace('/', "|")
}

impl GrepSink {
    /// A grepable printer whose human-readable times use `offset`.
    pub fn with_offset(out: Box<dyn Write + Send>, opts: SinkOptions, offset: UtcOffset) -> Self {
        GrepSink {
            out,
            all_states: opts.all_states,
            version: opts.version,
            offset,
            hosts: HostBuffer::default(),
            down: 0,
        }
    }

    /// "Host: 198.18.0.2 (lab.test)" and the ports list, without the
    /// ignored state or the newline.
    fn host_lines(
        buf: &HostBuffer,
        addr: IpAddr,
        host: Option<&str>,
        ports: &[PortResult],
    ) -> String {
        let prefix = format!("Host: {addr} ({})", host.map(printable).unwrap_or_default());
        let list: Vec<String> = ports
            .iter()
            .map(|p| {
                // port/state/protocol/owner/service/rpc info/version
                match buf.service_of(p) {
                    Some(s) => format!(
                        "{}/{}/{}//{}//{}/",
                        p.port,
                        p.state,
                        p.proto,
                        field(&s.service),
                        field(&s.summary())
                    ),
                    None => format!(
                        "{}/{}/{}//{}///",
                        p.port,
                        p.state,
                        p.proto,
                        field(service(p.port, p.proto))
                    ),
                }
            })
            .collect();
        format!("{prefix}\tStatus: Up\n{prefix}\tPorts: {}", list.join(", "))
    }

    fn host(&mut self, done: &HostDone) -> io::Result<()> {
        let ports = self.hosts.take(done);
        if !done.up {
            // As nmap: one line, no ports, for a host that did not answer.
            self.down += 1;
            self.hosts.forget_services(done.host_index);
            let host = done.host.as_deref().map(printable).unwrap_or_default();
            let line = format!("Host: {} ({host})\tStatus: Down\n", done.addr);
            self.out.write_all(line.as_bytes())?;
            return self.out.flush();
        }
        if done.counts.is_empty() && done.discovery.is_some() {
            // Host discovery alone (-sn): the status line only, as nmap.
            let host = done.host.as_deref().map(printable).unwrap_or_default();
            let line = format!("Host: {} ({host})\tStatus: Up\n", done.addr);
            self.out.write_all(line.as_bytes())?;
            return self.out.flush();
        }
        let mut text = match done.unreliable_note() {
            Some(note) => format!("# Host {}: {note}\n", done.addr),
            None => String::new(),
        };
        text += &Self::host_lines(&self.hosts, done.addr, done.host.as_deref(), &ports);
        self.hosts.forget_services(done.host_index);
        let groups = ignored_groups(done, self.all_states);
        // Grepable output has room for one ignored state only, as in nmap.
        if let [(state, count, _)] = ignored_states(&groups)[..] {
            let _ = write!(text, "\tIgnored State: {state} ({count})");
        }
        text.push('\n');
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

impl Sink for GrepSink {
    fn start(&mut self, info: &RunInfo) -> io::Result<()> {
        self.all_states |= info.all_states;
        let line = format!(
            "# sockeye {} scan initiated {} as: {}\n",
            self.version,
            ctime(info.started, self.offset),
            printable(&info.args)
        );
        self.out.write_all(line.as_bytes())?;
        self.out.flush()
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        match self.hosts.route(event, self.all_states) {
            Routed::Held => Ok(()),
            Routed::HostDone(done) => self.host(done),
            Routed::TargetError(err) => {
                // nmap only tells stderr; a comment line is skipped by readers.
                let line = format!("# {}\n", printable(&err.headline()));
                self.out.write_all(line.as_bytes())?;
                self.out.flush()
            }
        }
    }

    fn finish(&mut self, s: &Summary) -> io::Result<()> {
        let mut text = String::new();
        for ((_, addr, host), ports) in self.hosts.drain_unfinished() {
            text.push_str(&Self::host_lines(
                &self.hosts,
                addr,
                host.as_deref(),
                &ports,
            ));
            text.push('\n');
        }
        if s.interrupted {
            text.push_str("# Interrupted: not every port was scanned\n");
        }
        if let Some(note) = &s.note {
            let _ = writeln!(text, "# Note: {}", printable(note));
        }
        let _ = writeln!(
            text,
            "# sockeye done at {} -- {} ({} up) scanned in {} seconds",
            ctime(s.ended, self.offset),
            plural(s.hosts, "IP address", "IP addresses"),
            plural(
                s.hosts_up
                    .unwrap_or_else(|| s.hosts.saturating_sub(self.down)),
                "host",
                "hosts"
            ),
            secs2(s.elapsed)
        );
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, replay};
    use crate::report::{PortState, Reason};

    fn grep(all_states: bool, events: &[Event], summary: &Summary) -> String {
        replay(
            |out| GrepSink::with_offset(out, fixture::opts(all_states), UtcOffset::UTC),
            events,
            summary,
        )
    }

    const HEADER: &str = "# sockeye 0.1.0 scan initiated Tue Nov  3 18:01:25 2026 as: \
        sockeye scan -p 22,25,80,443,8080,40000,U:53 lab.test 198.18.0.3 nope.invalid\n";

    #[test]
    fn host_discovery_alone() {
        let (events, summary) = fixture::discovery();
        let out = grep(false, &events, &summary);
        assert_eq!(
            out,
            format!(
                "{HEADER}Host: 198.18.0.2 ()\tStatus: Up\n\
                 # sockeye done at Tue Nov  3 18:01:25 2026 -- 256 IP addresses (1 host up) scanned in 0.41 seconds\n"
            )
        );
    }

    #[test]
    fn full_run() {
        let out = grep(false, &fixture::events("lab.test"), &fixture::summary());
        assert_eq!(
            out,
            format!(
                "{HEADER}\
Host: 198.18.0.2 (lab.test)\tStatus: Up
Host: 198.18.0.2 (lab.test)\tPorts: 22/open/tcp//ssh///, 80/open/tcp//http///
# Failed to resolve \"nope.invalid\": Name or service not known
Host: 198.18.0.3 ()\tStatus: Up
Host: 198.18.0.3 ()\tPorts: 443/open/tcp//https///, 53/open|filtered/udp//domain///
# sockeye done at Tue Nov  3 18:01:25 2026 -- 2 IP addresses (2 hosts up) scanned in 0.41 seconds
"
            )
        );
    }

    #[test]
    fn one_ignored_state_is_named() {
        let mut events = fixture::events("lab.test");
        for e in &mut events {
            match e {
                Event::Port(p) if p.state == PortState::Filtered => {
                    p.state = PortState::Closed;
                    p.reason = Reason::ConnRefused;
                }
                Event::HostDone(d) => {
                    for c in &mut d.counts {
                        if c.state == PortState::Filtered {
                            c.state = PortState::Closed;
                            c.reason = Reason::ConnRefused;
                        }
                    }
                }
                _ => {}
            }
        }
        let out = grep(false, &events[..12], &fixture::summary());
        assert!(
            out.contains(
                "Host: 198.18.0.2 (lab.test)\tPorts: 22/open/tcp//ssh///, 80/open/tcp//http///\
                 \tIgnored State: closed (4)\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn all_states_lists_every_port() {
        let out = grep(true, &fixture::events("lab.test"), &fixture::summary());
        assert!(out.contains(
            "Host: 198.18.0.2 (lab.test)\tPorts: 22/open/tcp//ssh///, 25/closed/tcp//smtp///, \
             80/open/tcp//http///, 443/closed/tcp//https///, 8080/filtered/tcp//http-alt///, \
             40000/filtered/tcp//unknown///\n"
        ));
        assert!(!out.contains("Ignored State"));
    }

    #[test]
    fn interrupted_right_after_start() {
        let out = grep(false, &[], &fixture::interrupted_summary());
        assert_eq!(
            out,
            format!(
                "{HEADER}\
# Interrupted: not every port was scanned
# sockeye done at Tue Nov  3 18:01:25 2026 -- 0 IP addresses (0 hosts up) scanned in 0.05 seconds
"
            )
        );
    }

    #[test]
    fn interrupted_mid_scan_keeps_found_ports() {
        let events = fixture::events("lab\tx.test");
        let out = grep(false, &events[..2], &fixture::interrupted_summary());
        assert_eq!(
            out,
            format!(
                "{HEADER}\
Host: 198.18.0.2 (lab\\x09x.test)\tStatus: Up
Host: 198.18.0.2 (lab\\x09x.test)\tPorts: 22/open/tcp//ssh///
Host: 198.18.0.3 ()\tStatus: Up
Host: 198.18.0.3 ()\tPorts: 443/open/tcp//https///
# Interrupted: not every port was scanned
# sockeye done at Tue Nov  3 18:01:25 2026 -- 0 IP addresses (0 hosts up) scanned in 0.05 seconds
"
            )
        );
    }
}
