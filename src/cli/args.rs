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
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  sockeye completions bash > ~/.local/share/bash-completion/completions/sockeye\n  sockeye completions zsh > ~/.zfunc/_sockeye"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout.
    #[command(after_help = "Example:\n  sockeye man > sockeye.1 && man ./sockeye.1")]
    Man,
}

const SCAN_AFTER: &str = "\
Targets (nmap syntax): 198.18.0.2, fd00::2, lab.test, 198.18.0.0/24,
198.18.0-3.1-254, 198.18.*.1; -iL FILE (- for stdin); --exclude a,b.
Ports (nmap syntax): 22,80,1000-2000, -p- for all, ssh, http*, T:22,U:53.
nmap's spellings work too: -sT, -sL, -iL, -Pn, -n, -oX/-oG/-oJ FILE, -T0..-T5,
--max-retries, --max-rate, --min-rtt-timeout.

Examples:
  sockeye scan 127.0.0.1
  sockeye scan -p 1-1024,8080 --all-states 198.18.0.2
  sockeye scan -p- -T5 -o xml=scan.xml -o json=scan.jsonl 198.18.0.2
  sockeye scan --top-ports 100 --exclude 198.18.16.1 198.18.16.0/20
  sockeye scan --shard 1/3 --seed 42 -p- 198.18.0.0/24   (run 0/3, 1/3, 2/3 anywhere)
  sockeye scan -sL 198.18.0-3.1-254 | wc -l

States: open (syn-ack), closed (conn-refused), filtered (no-response,
host-unreach, net-unreach, admin-prohibited). By default only open ports are
shown; --all-states shows every port.

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

    /// Scan the N most commonly open ports.
    #[arg(long, value_name = "N", conflicts_with = "ports")]
    pub top_ports: Option<usize>,

    /// Ports not to scan.
    #[arg(long, value_name = "PORTS")]
    pub exclude_ports: Option<String>,

    /// List the targets and exit: no packets, no DNS. (nmap: -sL)
    #[arg(long)]
    pub list: bool,

    /// TCP connect scan, the default. (nmap: -sT)
    #[arg(long)]
    pub connect: bool,

    /// Output FORMAT (table, json, xml, grep) on stdout, or FORMAT=PATH to a file; repeatable.
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
}
