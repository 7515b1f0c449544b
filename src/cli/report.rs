//! `sockeye report`: results written earlier, rendered again. `merge` puts
//! the shards of a split scan back together; `html` renders any results
//! file (scan, probe, a plan's checks) as one self-contained page.
//!
//! Every input is read and checked before any output is opened: a bad line
//! or a shard that does not belong is one line naming the file (and line),
//! exit status 2, and no output file is created or truncated.

use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::args::ColorChoice;
use super::output::{open_file, parse_outputs};
use super::{UsageError, exit};
use crate::report::MultiSink;
use crate::report::Sink as _;
use crate::report::merge::{Merged, ShardFile, merge};
use crate::report::records::{self, Record};

pub const REPORT_AFTER: &str = "\
Examples:
  sockeye report merge shard-*.jsonl                    the merged scan as a table
  sockeye report merge shard-*.jsonl -o xml=scan.xml -o json=scan.jsonl
  sockeye report merge shard-*.jsonl -o html=scan.html
  sockeye report html results.jsonl -o report.html      scan, probe or plan results

Exit status: 0 done, 1 an output could not be written, 2 a bad or missing
input (nothing written).";

const MERGE_AFTER: &str = "\
Each FILE is the JSON Lines of one shard, written by
  sockeye scan --shard I/N --seed S ... -o json=FILE
on any machine and by any scheduler (a Kubernetes Indexed Job, a batch
system, ssh in a loop). The shards must share the seed, the shard count,
the targets, ports and scan type, and every I from 0 to N-1 must be there
once; what does not fit is named, and nothing is written. The merged result
equals one unsharded run's: hosts in target order, ports sorted, the same
counts (times differ).

Examples:
  sockeye report merge shard-0.jsonl shard-1.jsonl shard-2.jsonl
  sockeye report merge out/shard-*.jsonl -o xml=scan.xml -o html=scan.html
  sockeye report merge out/*.jsonl -o json | jq 'select(.state==\"open\")'

Exit status: 0 merged, 1 an output could not be written, 2 a bad line or
shards that do not belong together (nothing written).";

const HTML_AFTER: &str = "\
RESULTS is JSON Lines from `sockeye scan -o json`, `probe -o json` or
`exercise run -o json` (- for stdin). A plan's flows get the matrix of
expected against observed verdicts (sources by destination:port), with the
NAT, redirect and proxy findings and every check's evidence; scans and probes
get a table per host. The page needs nothing but itself: no scripts, fonts
or style sheets from elsewhere.

Examples:
  sockeye report html results.jsonl -o report.html
  sockeye exercise run zones.yaml -o json | sockeye report html - > report.html";

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the JSON Lines of a scan's shards into one result.
    #[command(after_help = MERGE_AFTER)]
    Merge(MergeArgs),
    /// Render results (scan, probe, plan) as one self-contained HTML page.
    #[command(after_help = HTML_AFTER)]
    Html(HtmlArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' JSON Lines files.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Output FORMAT (table, json, xml, grep, html) on stdout, or FORMAT=PATH to a file; repeatable.
    #[arg(short, long = "output", value_name = "FORMAT[=PATH]", action = clap::ArgAction::Append)]
    pub output: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HtmlArgs {
    /// The results file (JSON Lines); - for stdin.
    #[arg(value_name = "RESULTS")]
    pub input: PathBuf,

    /// Write the page to FILE instead of stdout.
    #[arg(short, long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: ReportArgs, color: ColorChoice) -> anyhow::Result<u8> {
    match args.command {
        ReportCommand::Merge(a) => run_merge(a, color),
        ReportCommand::Html(a) => run_html(a),
    }
}

/// Every record of `path` (`-` is stdin); a bad line names the file and line.
fn read_records(path: &Path) -> Result<Vec<Record>, UsageError> {
    let name = path.display();
    let result = if path.as_os_str() == "-" {
        records::read(BufReader::new(io::stdin().lock()))
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| UsageError::new(format!("cannot read {name}: {e}")))?;
        records::read(BufReader::new(file))
    };
    result.map_err(|e| UsageError::new(format!("{name}: {e}")))
}

fn run_merge(args: MergeArgs, color: ColorChoice) -> anyhow::Result<u8> {
    let outputs = parse_outputs(&args.output, false)?;
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        files.push(ShardFile {
            name: path.display().to_string(),
            records: read_records(path)?,
        });
    }
    let merged =
        merge(&files, super::run::command_line()).map_err(|e| UsageError::new(e.to_string()))?;
    for file in &merged.interrupted {
        tracing::warn!("{file}: that shard was interrupted; the merged result is partial");
    }
    // Only now, with every input good, are output files created.
    let sink = super::scan::make_sinks(&outputs, merged.info.all_states, color, None)?;
    write_merged(sink, &merged)?;
    Ok(exit::OK)
}

/// Writes a merged scan to `sink` as the scan itself would have (`scan
/// --agents` too); a reader that went away is not an error.
pub(crate) fn write_merged(mut sink: MultiSink, merged: &Merged) -> anyhow::Result<()> {
    let written = (|| -> io::Result<()> {
        sink.start(&merged.info)?;
        for event in &merged.events {
            sink.event(event)?;
        }
        Ok(())
    })();
    let finished = sink.finish(&merged.summary);
    match written.and(finished) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write the merged result"))
        }
        _ => Ok(()),
    }
}

fn run_html(args: HtmlArgs) -> anyhow::Result<u8> {
    let records = read_records(&args.input)?;
    let page = crate::report::html::render(&records);
    let written = match &args.output {
        Some(path) => {
            let mut out = open_file(path)?;
            out.write_all(page.as_bytes()).and_then(|()| out.flush())
        }
        None => {
            let mut out = io::stdout().lock();
            out.write_all(page.as_bytes()).and_then(|()| out.flush())
        }
    };
    match written {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write the page"))
        }
        _ => Ok(exit::OK),
    }
}
