//! nmap's XML output (`-oX`), valid against nmap's `nmap.dtd`, for the tools
//! that already read it. The header is written at `start` and each `<host>`
//! whole when the host is done, so an interrupted file holds whole host
//! elements; `finish` always closes the document.
//!
//! The DTD fixes `scanner` to `nmap`, so sockeye names itself in the comment
//! line nmap writes before `<nmaprun>` instead: a file that says
//! `scanner="sockeye"` would fail validation and some strict readers.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::SystemTime;

use time::UtcOffset;

use super::common::{
    HostBuffer, Routed, ctime, host_reason, host_reason_of_ports, ignored_groups, ignored_states,
    plural, secs2, service, unix_secs,
};
use super::{Event, HostDone, PortResult, RunInfo, ServiceResult, Sink, SinkOptions, Summary};

/// nmap's XML format version this output follows.
const XML_OUTPUT_VERSION: &str = "1.05";

/// Writes nmap XML.
pub struct XmlSink {
    out: Box<dyn Write + Send>,
    all_states: bool,
    version: &'static str,
    offset: UtcOffset,
    started: Option<SystemTime>,
    hosts: HostBuffer,
    /// Hosts nothing of their own came back from: `state="down"`.
    down: u64,
}

impl std::fmt::Debug for XmlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmlSink")
            .field("all_states", &self.all_states)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// Attribute text: quick-xml escapes the five markup characters; characters
/// XML 1.0 forbids even escaped become `\xNN` (nmap's protect_xml), and
/// tab, CR and LF become references so parsers do not normalise them away.
fn attr(s: &str) -> Cow<'_, str> {
    let forbidden = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
    let needs_work = s
        .chars()
        .any(|c| c.is_control() || matches!(c, '<' | '>' | '&' | '"' | '\''));
    if !needs_work {
        return Cow::Borrowed(s);
    }
    let mut clean = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if forbidden(c) {
            let _ = write!(clean, "\\x{:02X}", u32::from(c));
        } else {
            clean.push(c);
        }
    }
    let escaped = quick_xml::escape::escape(clean.as_str())
        .replace('\t', "&#9;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;");
    Cow::Owned(escaped)
}

/// Comment text: a comment cannot hold `--` nor end with `-`, and has no
/// escapes, so dashes that follow a dash get a space (the text stays
/// readable); forbidden characters as in [`attr`].
fn comment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = ' ';
    for c in s.chars() {
        if c == '-' && prev == '-' {
            out.push(' ');
        }
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
            let _ = write!(out, "\\x{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
        prev = c;
    }
    if out.ends_with('-') {
        out.push(' ');
    }
    out
}

fn addrtype(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

impl XmlSink {
    /// An XML printer whose human-readable times use `offset`.
    pub fn with_offset(out: Box<dyn Write + Send>, opts: SinkOptions, offset: UtcOffset) -> Self {
        XmlSink {
            out,
            all_states: opts.all_states,
            version: opts.version,
            offset,
            started: None,
            hosts: HostBuffer::default(),
            down: 0,
        }
    }

    /// `<host>`'s opening, status, address and names, shared by finished
    /// and interrupted hosts.
    fn host_head(
        text: &mut String,
        (addr, host): (IpAddr, Option<&str>),
        (start, end): (SystemTime, SystemTime),
        (up, reason): (bool, &str),
        comment: Option<&str>,
        mac: Option<&str>,
    ) {
        let _ = write!(
            text,
            "<host starttime=\"{}\" endtime=\"{}\"",
            unix_secs(start),
            unix_secs(end)
        );
        if let Some(comment) = comment {
            let _ = write!(text, " comment=\"{}\"", attr(comment));
        }
        let _ = writeln!(
            text,
            "><status state=\"{}\" reason=\"{}\" reason_ttl=\"0\"/>",
            if up { "up" } else { "down" },
            attr(reason)
        );
        let _ = writeln!(
            text,
            "<address addr=\"{addr}\" addrtype=\"{}\"/>",
            addrtype(addr)
        );
        if let Some(mac) = mac {
            let _ = writeln!(text, "<address addr=\"{}\" addrtype=\"mac\"/>", attr(mac));
        }
        text.push_str("<hostnames>\n");
        if let Some(name) = host {
            let _ = writeln!(text, "<hostname name=\"{}\" type=\"user\"/>", attr(name));
        }
        text.push_str("</hostnames>\n");
    }

    fn port_elements(text: &mut String, ports: &[PortResult], buf: &HostBuffer) {
        for p in ports {
            let _ = write!(
                text,
                "<port protocol=\"{}\" portid=\"{}\"><state state=\"{}\" reason=\"{}\" \
                 reason_ttl=\"0\"/>",
                p.proto,
                p.port,
                p.state,
                attr(&p.reason.name()),
            );
            match buf.service_of(p) {
                Some(sv) => Self::service_elements(text, &sv),
                None => {
                    let _ = write!(
                        text,
                        "<service name=\"{}\" method=\"table\" conf=\"3\"/>",
                        attr(service(p.port, p.proto)),
                    );
                }
            }
            text.push_str("</port>\n");
        }
    }

    /// A service check as nmap writes -sV and NSE results: the service
    /// element (probed, conf 10; tunnel="ssl" for implicit TLS), then one
    /// script element per fact group.
    fn service_elements(text: &mut String, sv: &ServiceResult) {
        let (method, conf) = match sv.method {
            super::Method::Probed => ("probed", 10),
            super::Method::Table => ("table", 3),
        };
        let tunnel = match &sv.tls {
            Some(super::TlsOutcome::Ok(_)) => " tunnel=\"ssl\"",
            _ => "",
        };
        let product = match &sv.product {
            Some(p) => format!(" product=\"{}\"", attr(p)),
            None => String::new(),
        };
        let _ = write!(
            text,
            "<service name=\"{}\"{product}{tunnel} method=\"{method}\" conf=\"{conf}\"/>",
            attr(&sv.service)
        );
        let mut script = |id: &str, output: &str| {
            let _ = write!(
                text,
                "<script id=\"{}\" output=\"{}\"/>",
                attr(id),
                attr(output)
            );
        };
        if let Some(banner) = &sv.banner {
            script("banner", banner);
        }
        if let Some(http) = &sv.http
            && let Some(server) = &http.server
        {
            script("http-server-header", server);
        }
        let details = super::service::details(sv);
        if !details.is_empty() {
            script("sockeye-probe", &details.join("\n"));
        }
    }

    fn host(&mut self, done: &HostDone) -> io::Result<()> {
        let ports = self.hosts.take(done);
        let mut text = String::new();
        if !done.up {
            self.down += 1;
        }
        Self::host_head(
            &mut text,
            (done.addr, done.host.as_deref()),
            (done.started, done.ended),
            (done.up, &host_reason(done)),
            done.unreliable_note().as_deref(),
            done.discovery.and_then(|d| d.mac_text()).as_deref(),
        );
        // Host discovery alone (-sn): no port was scanned, and nmap writes
        // no <ports> element.
        let ports_scanned = !(done.counts.is_empty() && done.discovery.is_some());
        if ports_scanned {
            text.push_str("<ports>");
        }
        let groups = ignored_groups(done, self.all_states);
        for (state, count, reasons) in ignored_states(&groups) {
            let _ = writeln!(text, "<extraports state=\"{state}\" count=\"{count}\">");
            for g in reasons {
                let _ = writeln!(
                    text,
                    "<extrareasons reason=\"{}\" count=\"{}\" proto=\"{}\"/>",
                    attr(&g.reason.name()),
                    g.count,
                    g.proto
                );
            }
            text.push_str("</extraports>\n");
        }
        Self::port_elements(&mut text, &ports, &self.hosts);
        self.hosts.forget_services(done.host_index);
        if ports_scanned {
            text.push_str("</ports>\n");
        }
        // nmap leaves out <times> when nothing was timed.
        if let Some(srtt) = done.srtt {
            let rttvar = done
                .rttvar
                .map_or_else(|| "-1".to_owned(), |v| v.as_micros().to_string());
            let _ = writeln!(
                text,
                "<times srtt=\"{}\" rttvar=\"{rttvar}\" to=\"{}\"/>",
                srtt.as_micros(),
                done.timeout.as_micros()
            );
        }
        text.push_str("</host>\n");
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// A host the run was interrupted on: its shown ports so far, no counts
    /// (so no `<extraports>`) and no times.
    fn unfinished(
        &mut self,
        (addr, host): (IpAddr, Option<&str>),
        ports: &[PortResult],
        end: SystemTime,
    ) -> io::Result<()> {
        let mut text = String::new();
        Self::host_head(
            &mut text,
            (addr, host),
            (self.started.unwrap_or(end), end),
            (true, &host_reason_of_ports(ports)),
            Some("scan interrupted before all ports of this host were decided"),
            None,
        );
        text.push_str("<ports>");
        Self::port_elements(&mut text, ports, &self.hosts);
        text.push_str("</ports>\n</host>\n");
        self.out.write_all(text.as_bytes())
    }
}

impl Sink for XmlSink {
    fn start(&mut self, info: &RunInfo) -> io::Result<()> {
        self.all_states |= info.all_states;
        self.started = Some(info.started);
        let startstr = ctime(info.started, self.offset);
        let mut text = String::new();
        text.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>\n");
        let _ = writeln!(
            text,
            "<!-- {} -->",
            comment(&format!(
                "sockeye {} scan initiated {startstr} as: {}",
                self.version, info.args
            ))
        );
        let _ = writeln!(
            text,
            "<nmaprun scanner=\"nmap\" args=\"{}\" start=\"{}\" startstr=\"{}\" version=\"{}\" \
             xmloutputversion=\"{XML_OUTPUT_VERSION}\">",
            attr(&info.args),
            unix_secs(info.started),
            attr(&startstr),
            attr(self.version),
        );
        // nmap writes no <scaninfo> for host discovery alone (-sn).
        for scan in &info.scans {
            let _ = writeln!(
                text,
                "<scaninfo type=\"{}\" protocol=\"{}\" numservices=\"{}\" services=\"{}\"/>",
                attr(scan.scan_type),
                scan.proto,
                scan.num_ports,
                attr(&scan.ports_spec)
            );
        }
        text.push_str("<verbose level=\"0\"/>\n<debugging level=\"0\"/>\n");
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        match self.hosts.route(event, self.all_states) {
            Routed::Held => Ok(()),
            Routed::HostDone(done) => self.host(done),
            Routed::TargetError(err) => {
                // nmap only tells stderr; a comment keeps the file valid.
                let line = format!("<!-- {} -->\n", comment(&err.headline()));
                self.out.write_all(line.as_bytes())?;
                self.out.flush()
            }
        }
    }

    fn finish(&mut self, s: &Summary) -> io::Result<()> {
        for ((_, addr, host), ports) in self.hosts.drain_unfinished() {
            self.unfinished((addr, host.as_deref()), &ports, s.ended)?;
        }
        // Under -sn only up hosts are reported: the down ones are counted.
        let down = s
            .hosts_up
            .map_or(self.down, |up| s.hosts.saturating_sub(up));
        let timestr = ctime(s.ended, self.offset);
        let mut summary = format!(
            "sockeye done at {timestr}; {} ({} up) scanned in {} seconds",
            plural(s.hosts, "IP address", "IP addresses"),
            plural(s.hosts.saturating_sub(down), "host", "hosts"),
            secs2(s.elapsed)
        );
        if let Some(note) = &s.note {
            summary.push_str("; ");
            summary.push_str(note);
        }
        let exit = if s.interrupted {
            "exit=\"error\" errormsg=\"Interrupted: not every port was scanned\""
        } else {
            "exit=\"success\""
        };
        let text = format!(
            "<runstats><finished time=\"{}\" timestr=\"{}\" summary=\"{}\" elapsed=\"{}\" \
             {exit}/><hosts up=\"{}\" down=\"{}\" total=\"{}\"/>\n</runstats>\n</nmaprun>\n",
            unix_secs(s.ended),
            attr(&timestr),
            attr(&summary),
            secs2(s.elapsed),
            s.hosts.saturating_sub(down),
            down,
            s.hosts,
        );
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::report::fixture::{self, replay};

    const DTD: &str = "/usr/share/nmap/nmap.dtd";

    fn xml(all_states: bool, events: &[Event], summary: &Summary) -> String {
        replay(
            |out| XmlSink::with_offset(out, fixture::opts(all_states), UtcOffset::UTC),
            events,
            summary,
        )
    }

    /// Validates with xmllint against nmap's DTD; never passes silently.
    fn assert_valid(doc: &str) {
        assert!(
            Path::new(DTD).exists(),
            "nmap's DTD is missing at {DTD}: install nmap (apt-get install -y nmap) to run the XML tests"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("scan.xml");
        std::fs::write(&file, doc).expect("write xml");
        let output = Command::new("xmllint")
            .args(["--noout", "--dtdvalid", DTD])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "xmllint could not run ({e}): install it (apt-get install -y libxml2-utils) \
                     to validate the XML output"
                )
            });
        assert!(
            output.status.success(),
            "xmllint rejected the document: {}\n{doc}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn host_discovery_alone_is_valid_nmap_xml() {
        let (events, summary) = fixture::discovery();
        let doc = replay(
            |out| XmlSink::with_offset(out, fixture::opts(false), UtcOffset::UTC),
            &events,
            &summary,
        );
        assert_valid(&doc);
        assert!(
            doc.contains(
                "<status state=\"up\" reason=\"arp-response\" reason_ttl=\"0\"/>\n\
                 <address addr=\"198.18.0.2\" addrtype=\"ipv4\"/>\n\
                 <address addr=\"02:5E:C0:00:00:0A\" addrtype=\"mac\"/>\n"
            ),
            "{doc}"
        );
        assert!(!doc.contains("<ports>"), "{doc}");
        assert!(
            doc.contains("<hosts up=\"1\" down=\"255\" total=\"256\"/>"),
            "{doc}"
        );
    }

    #[test]
    fn full_run_is_valid_and_reads_like_nmap() {
        let doc = xml(false, &fixture::events("lab.test"), &fixture::summary());
        assert_valid(&doc);
        assert_eq!(
            doc,
            "\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<!DOCTYPE nmaprun>
<!-- sockeye 0.1.0 scan initiated Tue Nov  3 18:01:25 2026 as: sockeye scan -p 22,25,80,443,8080,40000,U:53 lab.test 198.18.0.3 nope.invalid -->
<nmaprun scanner=\"nmap\" args=\"sockeye scan -p 22,25,80,443,8080,40000,U:53 lab.test 198.18.0.3 nope.invalid\" start=\"1793728885\" startstr=\"Tue Nov  3 18:01:25 2026\" version=\"0.1.0\" xmloutputversion=\"1.05\">
<scaninfo type=\"connect\" protocol=\"tcp\" numservices=\"6\" services=\"22,25,80,443,8080,40000\"/>
<scaninfo type=\"udp\" protocol=\"udp\" numservices=\"1\" services=\"53\"/>
<verbose level=\"0\"/>
<debugging level=\"0\"/>
<host starttime=\"1793728885\" endtime=\"1793728885\"><status state=\"up\" reason=\"syn-ack\" reason_ttl=\"0\"/>
<address addr=\"198.18.0.2\" addrtype=\"ipv4\"/>
<hostnames>
<hostname name=\"lab.test\" type=\"user\"/>
</hostnames>
<ports><extraports state=\"closed\" count=\"2\">
<extrareasons reason=\"conn-refused\" count=\"2\" proto=\"tcp\"/>
</extraports>
<extraports state=\"filtered\" count=\"2\">
<extrareasons reason=\"no-response\" count=\"1\" proto=\"tcp\"/>
<extrareasons reason=\"host-unreach\" count=\"1\" proto=\"tcp\"/>
</extraports>
<port protocol=\"tcp\" portid=\"22\"><state state=\"open\" reason=\"syn-ack\" reason_ttl=\"0\"/><service name=\"ssh\" method=\"table\" conf=\"3\"/></port>
<port protocol=\"tcp\" portid=\"80\"><state state=\"open\" reason=\"syn-ack\" reason_ttl=\"0\"/><service name=\"http\" method=\"table\" conf=\"3\"/></port>
</ports>
<times srtt=\"210\" rttvar=\"50\" to=\"100000\"/>
</host>
<!-- Failed to resolve \"nope.invalid\": Name or service not known -->
<host starttime=\"1793728885\" endtime=\"1793728885\"><status state=\"up\" reason=\"syn-ack\" reason_ttl=\"0\"/>
<address addr=\"198.18.0.3\" addrtype=\"ipv4\"/>
<hostnames>
</hostnames>
<ports><extraports state=\"closed\" count=\"3\">
<extrareasons reason=\"conn-refused\" count=\"3\" proto=\"tcp\"/>
</extraports>
<extraports state=\"filtered\" count=\"2\">
<extrareasons reason=\"no-response\" count=\"1\" proto=\"tcp\"/>
<extrareasons reason=\"admin-prohibited\" count=\"1\" proto=\"tcp\"/>
</extraports>
<port protocol=\"tcp\" portid=\"443\"><state state=\"open\" reason=\"syn-ack\" reason_ttl=\"0\"/><service name=\"https\" method=\"table\" conf=\"3\"/></port>
<port protocol=\"udp\" portid=\"53\"><state state=\"open|filtered\" reason=\"no-response\" reason_ttl=\"0\"/><service name=\"domain\" method=\"table\" conf=\"3\"/></port>
</ports>
</host>
<runstats><finished time=\"1793728885\" timestr=\"Tue Nov  3 18:01:25 2026\" summary=\"sockeye done at Tue Nov  3 18:01:25 2026; 2 IP addresses (2 hosts up) scanned in 0.41 seconds\" elapsed=\"0.41\" exit=\"success\"/><hosts up=\"2\" down=\"0\" total=\"2\"/>
</runstats>
</nmaprun>
"
        );
    }

    #[test]
    fn all_states_lists_every_port_and_no_extraports() {
        let doc = xml(true, &fixture::events("lab.test"), &fixture::summary());
        assert_valid(&doc);
        assert!(!doc.contains("<extraports"));
        assert_eq!(doc.matches("<port ").count(), 13);
        assert!(doc.contains(
            "<port protocol=\"tcp\" portid=\"40000\"><state state=\"filtered\" \
             reason=\"host-unreach\" reason_ttl=\"0\"/><service name=\"unknown\" \
             method=\"table\" conf=\"3\"/></port>"
        ));
    }

    #[test]
    fn hostile_text_is_escaped() {
        let name = "la\"b<&>'--x\x01-";
        let mut events = fixture::events(name);
        events.push(Event::TargetError(super::super::TargetError {
            kind: crate::report::TargetErrorKind::Resolve,
            target: "bad--name-".to_owned(),
            message: "a --> b <!-- c".to_owned(),
        }));
        let doc = xml(false, &events, &fixture::summary());
        assert_valid(&doc);
        assert!(
            doc.contains(
                "<hostname name=\"la&quot;b&lt;&amp;&gt;&apos;--x\\x01-\" type=\"user\"/>"
            ),
            "{doc}"
        );
        assert!(
            doc.contains("<!-- Failed to resolve \"bad- -name-\": a - -> b <!- - c -->"),
            "{doc}"
        );
    }

    #[test]
    fn args_with_markup_and_newlines_stay_one_attribute() {
        let out = crate::report::fixture::Captured::default();
        let mut sink =
            XmlSink::with_offset(Box::new(out.clone()), fixture::opts(false), UtcOffset::UTC);
        let info = RunInfo {
            args: "sockeye scan \"a&b\" <c>\n--x".to_owned(),
            ..fixture::run_info()
        };
        sink.start(&info).expect("start");
        sink.finish(&fixture::summary()).expect("finish");
        let doc = out.text();
        assert_valid(&doc);
        assert!(doc.contains("args=\"sockeye scan &quot;a&amp;b&quot; &lt;c&gt;&#10;--x\""));
    }

    #[test]
    fn interrupted_right_after_start_is_a_whole_document() {
        let doc = xml(false, &[], &fixture::interrupted_summary());
        assert_valid(&doc);
        assert!(doc.ends_with(
            "<runstats><finished time=\"1793728885\" timestr=\"Tue Nov  3 18:01:25 2026\" \
             summary=\"sockeye done at Tue Nov  3 18:01:25 2026; 0 IP addresses (0 hosts up) \
             scanned in 0.05 seconds\" elapsed=\"0.05\" exit=\"error\" \
             errormsg=\"Interrupted: not every port was scanned\"/><hosts up=\"0\" down=\"0\" \
             total=\"0\"/>\n</runstats>\n</nmaprun>\n"
        ));
    }

    #[test]
    fn interrupted_mid_scan_keeps_whole_hosts_and_found_ports() {
        let events = fixture::events("la\"b<&.test");
        let doc = xml(false, &events[..13], &fixture::interrupted_summary());
        assert_valid(&doc);
        assert_eq!(doc.matches("<host ").count(), 2);
        assert!(doc.contains(
            "<host starttime=\"1793728885\" endtime=\"1793728885\" comment=\"scan interrupted \
             before all ports of this host were decided\"><status state=\"up\" reason=\"syn-ack\" \
             reason_ttl=\"0\"/>\n<address addr=\"198.18.0.3\" addrtype=\"ipv4\"/>\n<hostnames>\n\
             </hostnames>\n<ports><port protocol=\"tcp\" portid=\"443\">"
        ));
    }

    #[test]
    fn ipv6_hosts_say_so() {
        let mut events = fixture::events("lab.test");
        for e in &mut events {
            match e {
                Event::Port(p) if p.host.is_none() => p.addr = "2001:db8::3".parse().expect("v6"),
                Event::HostDone(d) if d.host.is_none() => {
                    d.addr = "2001:db8::3".parse().expect("v6")
                }
                _ => {}
            }
        }
        let doc = xml(false, &events, &fixture::summary());
        assert_valid(&doc);
        assert!(doc.contains("<address addr=\"2001:db8::3\" addrtype=\"ipv6\"/>"));
        assert_eq!(doc.matches("portid=\"443\"").count(), 1);
    }
}
