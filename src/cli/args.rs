//! The clap structures: exactly what the user typed, nothing interpreted.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Find out what is listening on a network, and talk to it.";

const MAIN_AFTER: &str = "\
Examples:
  sockeye scan 127.0.0.1                    top 1000 TCP ports of this machine
  sockeye scan -p 22,80,443 198.18.0.0/24   three ports on 256 hosts
  sockeye scan -p- -o json lab.test          every port, JSON Lines on stdout
  sockeye scan -sL 198.18.0-3.1-254          list the targets, send nothing
  sockeye report merge shard-*.jsonl        one scan from its shards (scan --shard)
  sockeye cat -lp 10101                     a netcat (ncat options; also runs as `ncat`)
  sockeye completions bash > /etc/bash_completion.d/sockeye

Exit status:
  0    the command did its job (a scan finished, whatever it found)
  1    it could not: nothing could be scanned, an output file failed
  2    bad usage: a bad flag, target, port or value; nothing was sent
  130  interrupted (Ctrl-C); everything found so far was written

Logs go to stderr: -v for more, -q for errors only, or SOCKEYE_LOG=debug.";

#[derive(Debug, Parser)]
#[command(name = "sockeye", version, about = ABOUT, after_help = MAIN_AFTER)]
#[command(propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr; no progress bar.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// When to colour the table.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, value_name = "WHEN")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan TCP ports: which are open, closed or filtered.
    #[command(after_help = SCAN_AFTER)]
    Scan(Box<ScanArgs>),
    /// Check services: what answers, what it says, whether it speaks TLS.
    #[command(after_help = super::probe::PROBE_AFTER)]
    Probe(Box<super::probe::ProbeArgs>),
    /// Fuzz a server or a client over the network, reproducibly.
    #[command(after_help = super::fuzz::FUZZ_AFTER)]
    Fuzz(Box<super::fuzz::FuzzArgs>),
    /// Send a test message over SMTP (STARTTLS or implicit TLS, AUTH), as swaks does.
    #[command(after_help = super::mail::MAIL_AFTER)]
    Mail(Box<super::mail::MailArgs>),
    /// Hold a conversation: wait for patterns, send responses (TCP, TLS, a child on a pty).
    #[command(after_help = super::talk::TALK_AFTER)]
    Talk(Box<super::talk::TalkArgs>),
    /// Run a test plan: connect, probe, talk, calc and mail checks with expectations.
    #[command(after_help = super::exercise::EXERCISE_AFTER)]
    Exercise(Box<super::exercise::ExerciseArgs>),
    /// Render results again: merge a scan's shards, or make an HTML page.
    #[command(after_help = super::report::REPORT_AFTER)]
    Report(Box<super::report::ReportArgs>),
    /// An agent for plans run from many hosts: typed actions over a pipe (ssh, netns, exec).
    #[command(after_help = super::agent::AGENT_AFTER)]
    Agent(Box<super::agent::AgentArgs>),
    /// The calculator protocol: a server (`calc serve`) and a client.
    #[command(after_help = CALC_AFTER, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Calc(Box<CalcArgs>),
    /// A netcat in ncat's language: connect, listen, exec, broker, chat, TLS.
    ///
    /// `sockeye cat --help` lists its options; a link named `ncat` runs it too.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Cat(CatRaw),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  sockeye completions bash > ~/.local/share/bash-completion/completions/sockeye\n  sockeye completions zsh > ~/.zfunc/_sockeye"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: sockeye's and every
    /// command's, or one command's page.
    #[command(
        after_help = "Examples:\n  sockeye man > sockeye.1 && man ./sockeye.1\n  sockeye man scan > sockeye-scan.1"
    )]
    Man {
        /// Only this command's page (scan, probe, exercise, ...).
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
}

/// `sockeye cat`'s arguments, untouched: the cat parses them itself.
#[derive(Debug, Args)]
pub struct CatRaw {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<std::ffi::OsString>,
}

const SCAN_AFTER: &str = "\
Targets (nmap syntax): 198.18.0.2, fd00::2, lab.test, 198.18.0.0/24,
198.18.0-3.1-254, 198.18.*.1; -iL FILE (- for stdin); --exclude a,b.
Ports (nmap syntax): 22,80,1000-2000, -p- for all, ssh, http*, T:22,U:53.
nmap's spellings work too: -sS, -sT, -sU, -sL, -sn, -iL, -Pn, -PE, -PP, -PS, -PA, -PU, -PR,
-n, -oX/-oG/-oJ FILE, -T0..-T5,
--max-retries, --max-rate, --min-rtt-timeout.

Examples:
  sockeye scan 127.0.0.1
  sockeye scan -p 1-1024,8080 --all-states 198.18.0.2
  sockeye scan -p- -T5 -o xml=scan.xml -o json=scan.jsonl 198.18.0.2
  sockeye scan --top-ports 100 --exclude 198.18.16.1 198.18.16.0/20
  sockeye scan --shard 1/3 --seed 42 -p- 198.18.0.0/24   (run 0/3, 1/3, 2/3 anywhere)
  sockeye scan --agents scanners --plan agents.yaml -p- 198.18.0.0/24
                              (one shard on each agent labelled scanners, merged)
  sockeye scan -sL 198.18.0-3.1-254 | wc -l
  sockeye scan -sn 198.18.0.0/24                          which hosts are up
  sockeye scan -sn -PS22,80 -PE 198.18.8.0/24             up by SYN to 22 or 80, or echo
  sockeye scan -Pn -p- --resume scan.resume 198.18.0.0/24   (again after Ctrl-C: goes on)
  sockeye scan -sU -p 53,123,161 198.18.0.2                 UDP
  sockeye scan -sS -sU -p T:22,80,U:53,161 198.18.0.2       TCP and UDP, one report per host

As root (or with CAP_NET_RAW) the scan is a SYN scan on raw sockets (-sS);
otherwise, or with -sT, a connect scan. -sU (or U: ports) scans UDP: with
-sS, -sT or T: ports too, both at once. Ports before any T:/U: prefix go to
every protocol scanned; a prefix holds until the next (as nmap).

Host discovery (as nmap): -sn finds the hosts that are up and scans no port;
a port scan of more than one host first finds which are up (-Pn skips that; for
one host it runs only when a -P flag is typed). On a directly connected network
ARP (IPv6: neighbor solicitation) asks; elsewhere -PE (ICMP echo), -PP (timestamp),
-PS[PORTS] (TCP SYN), -PA[PORTS] (TCP ACK), -PU[PORTS] (UDP); by default echo,
SYN to 443, ACK to 80 and timestamp. Without root or CAP_NET_RAW: a connect to
ports 80 and 443 (a refusal counts too). A host is up only when it answered
itself; its reason: arp-response, nd-response, echo-reply, timestamp-reply,
syn-ack, reset, port-unreach, conn-refused.

States: open (syn-ack), closed (reset; conn-refused under -sT), filtered
(no-response, host-unreach, net-unreach, admin-prohibited). By default the table counts the
most common closed or filtered state (and any with more than 25 ports) and
lists the other ports; --all-states shows every port. A host gets a block only
when it answered itself; the others are counted in one line.

Exit status: 0 done, 1 nothing could be scanned or output failed, 2 bad usage,
130 interrupted (results so far are written).";

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Hosts to scan: addresses, names, CIDR, octet ranges.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Read targets from FILE (- for stdin), one or more per line, # comments. (nmap: -iL)
    #[arg(long = "input-list", value_name = "FILE")]
    pub input_list: Option<PathBuf>,

    /// Hosts not to scan (comma-separated, same syntax as targets).
    #[arg(long, value_name = "LIST", action = clap::ArgAction::Append)]
    pub exclude: Vec<String>,

    /// Read hosts not to scan from FILE.
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Option<PathBuf>,

    /// Scan only the first address a host name resolves to (default: every address).
    #[arg(long)]
    pub first_address: bool,

    /// Ports to scan (nmap syntax; -p- is 1-65535). Default: the top 1000.
    #[arg(short, long, value_name = "PORTS", allow_hyphen_values = true)]
    pub ports: Option<String>,

    /// Scan the N most commonly open ports (the table has 1000; a larger N
    /// scans all of them, with a note on stderr).
    #[arg(long, value_name = "N", conflicts_with = "ports")]
    pub top_ports: Option<usize>,

    /// Ports not to scan.
    #[arg(long, value_name = "PORTS")]
    pub exclude_ports: Option<String>,

    /// List the targets and exit: no packets, no DNS. (nmap: -sL)
    #[arg(long)]
    pub list: bool,

    /// TCP connect scan: the default without root or CAP_NET_RAW. (nmap: -sT)
    #[arg(long)]
    pub connect: bool,

    /// SYN scan on raw sockets: the default with root or CAP_NET_RAW; without
    /// them a connect scan, with a note. (nmap: -sS)
    #[arg(long, conflicts_with = "connect")]
    pub syn: bool,

    /// Send UDP probes from these local addresses (comma-separated), each port
    /// from one, in turn: a target limits the ICMP errors it sends to each
    /// address, so N addresses learn closed UDP ports N times faster. (nmap: -S, one address)
    #[arg(short = 'S', long, value_name = "ADDRS", value_delimiter = ',')]
    pub source: Vec<std::net::IpAddr>,

    /// UDP scan: a service's request to the well-known ports, an empty datagram elsewhere; with -sS or -sT (or T: ports) TCP too, one report per host. (nmap: -sU)
    #[arg(long)]
    pub udp: bool,

    /// Host discovery only, no port scan: print the hosts that are up and
    /// why (ARP on the local network, else the -P probes). (nmap: -sn)
    #[arg(long, conflicts_with_all = ["ports", "top_ports", "exclude_ports", "connect", "syn", "udp", "probe", "list", "no_ping", "shard"])]
    pub no_port_scan: bool,

    /// Skip host discovery: scan every target as if it were up. (nmap: -Pn)
    #[arg(long)]
    pub no_ping: bool,

    /// Discovery: ICMP echo request. (nmap: -PE)
    #[arg(long)]
    pub ping_echo: bool,

    /// Discovery: ICMP timestamp request. (nmap: -PP)
    #[arg(long)]
    pub ping_timestamp: bool,

    /// Discovery: TCP SYN to PORTS (default 80). (nmap: -PS PORTS, or -PSPORTS)
    #[arg(long, value_name = "PORTS", num_args = 0..=1, require_equals = true, default_missing_value = "80")]
    pub ping_syn: Option<String>,

    /// Discovery: TCP ACK to PORTS (default 80). (nmap: -PA PORTS, or -PAPORTS)
    #[arg(long, value_name = "PORTS", num_args = 0..=1, require_equals = true, default_missing_value = "80")]
    pub ping_ack: Option<String>,

    /// Discovery: an empty UDP datagram to PORTS (default 40125). (nmap: -PU PORTS, or -PUPORTS)
    #[arg(long, value_name = "PORTS", num_args = 0..=1, require_equals = true, default_missing_value = "40125")]
    pub ping_udp: Option<String>,

    /// Discovery: ARP (IPv4) / neighbor solicitation (IPv6) on directly
    /// connected networks; the default for them. (nmap: -PR)
    #[arg(long, conflicts_with = "no_arp")]
    pub ping_arp: bool,

    /// Discovery: no ARP or NDP, IP probes even on the local network.
    /// (nmap: --disable-arp-ping, --send-ip)
    #[arg(long)]
    pub no_arp: bool,

    /// Output FORMAT (table, json, xml, grep, html) on stdout, or FORMAT=PATH to a file; repeatable.
    #[arg(short, long = "output", value_name = "FORMAT[=PATH]", action = clap::ArgAction::Append)]
    pub output: Vec<String>,

    /// Same as -o json.
    #[arg(long)]
    pub json: bool,

    /// Show closed and filtered ports too (table), or carry them (json, xml, grep).
    #[arg(long)]
    pub all_states: bool,

    /// Timing template 0-5 as nmap's -T (paranoid .. insane); explicit flags win.
    #[arg(long, value_name = "0-5", value_parser = clap::value_parser!(u8).range(0..=5))]
    pub timing: Option<u8>,

    /// Probes in flight at once (default: from the open-file limit).
    #[arg(long, value_name = "N")]
    pub max_inflight: Option<usize>,

    /// Extra probes for a port that did not answer (default 2). (nmap: --max-retries)
    #[arg(long, value_name = "N")]
    pub retries: Option<u8>,

    /// Lower bound of the per-host timeout, e.g. 100ms. (default 100ms)
    #[arg(long, value_name = "TIME")]
    pub min_rtt_timeout: Option<String>,

    /// Upper bound of the per-host timeout, e.g. 2s. (default 3s)
    #[arg(long, value_name = "TIME")]
    pub max_rtt_timeout: Option<String>,

    /// Timeout before a host has answered anything. (default 1s)
    #[arg(long, value_name = "TIME")]
    pub initial_rtt_timeout: Option<String>,

    /// At most N connects per second. (nmap: --max-rate)
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,

    /// Seed of the probe order (default: random; printed with -v).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,

    /// Run shard I of N (0-based): N runs with one --seed cover every (host, port) once.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Checkpoint the scan to FILE every few seconds and when stopped; with
    /// FILE from an interrupted run of the same command line, go on from it
    /// (finished work is not probed again; its results are printed again).
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,

    /// Split the scan across the agents of --plan labelled LABEL: agent I of
    /// N runs shard I/N (one seed) and their results print as one scan.
    #[arg(long, value_name = "LABEL", requires = "plan", conflicts_with_all = ["shard", "list", "udp", "probe", "no_port_scan", "resume"])]
    pub agents: Option<String>,

    /// The plan (YAML or TOML) whose agents --agents picks from.
    #[arg(long, value_name = "PLAN", requires = "agents")]
    pub plan: Option<PathBuf>,

    /// Check every open port by content, as `sockeye probe` does: what answers,
    /// its banner, TLS and STARTTLS. (nmap: -sV)
    #[arg(long)]
    pub probe: bool,

    /// With --probe: trust the CA certificates in FILE (PEM) too; repeatable.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append, requires = "probe")]
    pub ca_file: Vec<std::path::PathBuf>,
}

const CALC_AFTER: &str = "\
The protocol (docs/calc-protocol.md): a request is ID (u32), OP (SUM,
PRO, MIN or MAX), N (u8) and N numbers (i32); the answer is ID and RESULT (i32),
big-endian unless --little-endian. Results are exact: a sum or product that
does not fit in 32 bits, and MIN/MAX of nothing, are rejected (TCP: the server
answers everything before and closes; UDP: no answer).

Examples:
  sockeye calc serve                                 TCP and UDP on 127.0.0.1:7000
  sockeye calc serve --listen 0.0.0.0:7000 --udp-only
  sockeye calc -s 127.0.0.1:7000 SUM 1 2 3           prints 6
  sockeye calc -s 127.0.0.1:7000 --udp MIN -5 7      prints -5
  printf 'SUM 1 2\\nMAX 4 9\\n' | sockeye calc -s 127.0.0.1:7000   prints \"1 3\" and \"2 9\"
  sockeye calc -s 127.0.0.1:7000 --file requests.txt --id 100

Exit status (client): 0 every request answered, 1 a request was rejected or
unanswered or the server unreachable, 2 bad usage (nothing sent).
Exit status (server): 0 after Ctrl-C or SIGTERM (requests in flight finished),
1 when it cannot listen, 2 bad usage.";

#[derive(Debug, Args)]
pub struct CalcArgs {
    #[command(subcommand)]
    pub command: Option<CalcCommand>,

    #[command(flatten)]
    pub client: CalcClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum CalcCommand {
    /// Serve the calculator protocol over TCP and UDP on one port.
    #[command(after_help = CALC_SERVE_AFTER)]
    Serve(CalcServeArgs),
}

const CALC_SERVE_AFTER: &str = "\
Logs each rejected request (peer, ID, reason) on stderr. Ctrl-C or SIGTERM:
stop accepting, answer what already arrived, exit 0.

Examples:
  sockeye calc serve
  sockeye calc serve --listen 0.0.0.0:7000 --little-endian
  sockeye calc serve --listen [::1]:7000 --tcp-only --max-connections 100";

#[derive(Debug, Args)]
pub struct CalcServeArgs {
    /// Address and port to serve on (TCP and UDP share the port; port 0 picks
    /// one); a bare PORT means 0.0.0.0:PORT.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7000")]
    pub listen: String,

    /// Serve TCP only.
    #[arg(long, conflicts_with = "udp_only")]
    pub tcp_only: bool,

    /// Serve UDP only.
    #[arg(long)]
    pub udp_only: bool,

    /// Little-endian integers (peers using Python's native struct.pack on x86).
    #[arg(long)]
    pub little_endian: bool,

    /// TCP connections served at once; more wait in the backlog, and when full a newcomer takes the slot of the longest-idle connection of the address holding the most. [default: 16384, at most the open-file limit]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// TCP connections one peer address may hold; more are refused (closed at once).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_per_address: usize,

    /// Close a connection with no request in progress after this long.
    #[arg(long, value_name = "TIME", default_value = "5m")]
    pub idle_timeout: String,

    /// A request that started arriving must be complete within this long.
    #[arg(long, value_name = "TIME", default_value = "10s")]
    pub request_timeout: String,

    /// Drop a client that has not read its answers for this long.
    #[arg(long, value_name = "TIME", default_value = "30s")]
    pub write_timeout: String,
}

#[derive(Debug, Args)]
pub struct CalcClientArgs {
    /// The server, HOST:PORT.
    #[arg(short, long, value_name = "HOST:PORT", required = true)]
    pub server: Option<String>,

    /// Use UDP: one datagram per request.
    #[arg(long)]
    pub udp: bool,

    /// Little-endian integers.
    #[arg(long)]
    pub little_endian: bool,

    /// ID of the (first) request; the next ones count up.
    #[arg(long, value_name = "ID", default_value_t = 1)]
    pub id: u32,

    /// Send the requests in FILE (`OP n1 n2 ...` per line; - for stdin), pipelined.
    #[arg(long, value_name = "FILE", conflicts_with = "op")]
    pub file: Option<PathBuf>,

    /// How long to wait for each answer.
    #[arg(long, value_name = "TIME", default_value = "2s")]
    pub timeout: String,

    /// How long to wait for the TCP connection.
    #[arg(long, value_name = "TIME", default_value = "5s")]
    pub connect_timeout: String,

    /// SUM, PRO, MIN or MAX. Without it, requests are read from stdin.
    #[arg(value_name = "OP")]
    pub op: Option<String>,

    /// The numbers (32-bit signed integers).
    #[arg(value_name = "N", allow_negative_numbers = true)]
    pub numbers: Vec<String>,
}
