//! sockeye's integration tests: one binary, a module per area.
//!
//! - `agent`: agents started as a controller starts them; flows between
//!   agents in namespaces across an nftables firewall.
//! - `calc`: the calculator server and client, end to end on 127.0.0.1:0.
//! - `fuzz_peer`: `sockeye fuzz` against a deliberately fragile server and a
//!   test HTTP client, on 127.0.0.1.
//! - `cat`: `sockeye cat` (and `ncat`), end to end on 127.0.0.1.
//! - `cli`: help, completions, man page, and bad input (exit 2, one line).
//! - `probe_lab`: `sockeye probe` against the real daemons and scripted
//!   responders of tests/lab/.
//! - `probe_local`: `sockeye probe` and `scan --probe` on 127.0.0.1 against
//!   listeners the test binds.
//! - `scan_local`: scans of listeners this test binds on 127.0.0.1 (only
//!   ports we own: never ranges in the machine's own namespace).
//! - `scan_lab`: scans across network namespaces made by the test
//!   (198.18.0.0/15), with nftables for filtered and ICMP verdicts.
//! - `scan_agents`: `scan --agents LABEL --plan PLAN`: a scan split across
//!   three agents in the lab's scanner namespace equals the whole scan; a
//!   missing label and a target outside an agent's limits are one line;
//!   Ctrl-C and a lost agent leave the partial scan printed.
//! - `scan_syn`: the SYN scan (raw sockets) in the same kind of lab, its verdicts
//!   against the connect scan's, and the connect scan without CAP_NET_RAW.
//! - `scan_discover`: host discovery (`-sn`, `-P*`, `-Pn`): ARP and NDP on the link,
//!   ICMP, TCP and UDP pings behind a router namespace, connect pings without CAP_NET_RAW.
//! - `scan_acc`: scan accuracy where the target or network misbehaves: a
//!   host that answers on every port (tarpit, SYN proxy).
//! - `scan_udp`: `scan -sU` against socat, dnsmasq and snmpd in a namespace,
//!   nftables drops and rejects, and the target's ICMP rate limit.
//! - `scan_mixed`: TCP and UDP in one run, one report per host.
//! - `scan_udp_sources`: `-sU --source A,B,C`, the probes spread over
//!   several addresses, each with its own share of the ICMP rate limit.
//! - `scan_udp_resume`: `scan -sU --resume` stopped by SIGINT, SIGTERM and
//!   SIGKILL under the ICMP rate limit and resumed: the same port states;
//!   a TCP+UDP run resumed from its one file; fewer `--source` addresses on
//!   resume.
//! - `mail_lab`: `sockeye mail` against the lab's Postfix (587, 465, 2525), Dovecot SASL
//!   and the scripted SMTP responders, delivered messages read back from the Maildir.
//! - `talk`: `sockeye talk` and `exercise run` on 127.0.0.1 against scripted
//!   responders the test binds, and `--spawn` with a local program on a pty.
//! - `exercise_lab`: plans and conversations against the real-server lab
//!   (the seed's FTP login matrix on vsftpd, POP3 on Dovecot).
//! - `report`: `report merge` of a scan's shards against the whole scan
//!   (namespace lab), and the HTML page of a flow plan in headless Chromium.
//! - `layers`: the layer rule of docs/architecture.md over every `crate::` path in src/.
//! - `hostile`: hostile peers and files (issue 17): a dribbling SMTP
//!   server, plan and script files without end.
//! - `pinned_certs`: a self-signed CA certificate the user names with
//!   `--ca-file` is trusted by probe, mail, talk, cat and plans.
//! - `lab_smoke`: the real-server lab of tests/lab/ (OpenSSH, Postfix,
//!   Dovecot, vsftpd, nginx, slapd, scripted responders) answers as documented.

mod support;
mod util;

mod agent;
mod agent_zones;
mod calc;
mod cat;
mod cli;
mod exercise_lab;
mod fuzz_peer;
mod hostile;
mod lab_smoke;
mod layers;
mod mail_lab;
mod pinned_certs;
mod probe_lab;
mod probe_local;
mod report;
mod scan_acc;
mod scan_agents;
mod scan_discover;
mod scan_lab;
mod scan_local;
mod scan_mixed;
mod scan_syn;
mod scan_udp;
mod scan_udp_resume;
mod scan_udp_sources;
mod talk;
