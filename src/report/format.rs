//! Choosing a printer: the format names `-o` accepts, the options every
//! printer takes, and [`new_sink`], the one constructor the command line
//! needs.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use super::Sink;
use super::common::local_offset;
use super::grep::GrepSink;
use super::json::JsonSink;
use super::table::TableSink;
use super::xml::XmlSink;

/// An output format (output.md's table of formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Aligned, optionally coloured, nmap-like report for people.
    Table,
    /// JSON Lines.
    Json,
    /// nmap's XML, valid against nmap.dtd.
    Xml,
    /// nmap's grepable format.
    Grep,
    /// One self-contained HTML page, written when the run ends.
    Html,
}

impl Format {
    /// Every name [`FromStr`] accepts, in the order `--help` lists them.
    pub const NAMES: [&'static str; 6] = ["table", "json", "jsonl", "xml", "grep", "html"];

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Xml => "xml",
            Format::Grep => "grep",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is not one of [`Format::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format {0:?} (valid: table, json, jsonl, xml, grep, html)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "json" | "jsonl" => Ok(Format::Json),
            "xml" => Ok(Format::Xml),
            "grep" => Ok(Format::Grep),
            "html" => Ok(Format::Html),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

/// What every printer is told besides where to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkOptions {
    /// ANSI colour in the table (the caller decides from the terminal and
    /// `--color`); the other formats ignore it.
    pub color: bool,
    /// List every port, not only open and open|filtered ones.
    pub all_states: bool,
    /// sockeye's version, `env!("CARGO_PKG_VERSION")`, for XML and grepable
    /// headers.
    pub version: &'static str,
}

/// A printer for `format` writing to `out`.
///
/// Human-readable times (nmap's `startstr`) use the local time zone when it
/// can be read here, else UTC: the `time` crate cannot read it once the
/// process has several threads, so call this before starting the runtime.
pub fn new_sink(format: Format, out: Box<dyn Write + Send>, opts: SinkOptions) -> Box<dyn Sink> {
    let offset = local_offset();
    match format {
        Format::Table => Box::new(TableSink::new(out, opts)),
        Format::Json => Box::new(JsonSink::new(out, opts)),
        Format::Xml => Box::new(XmlSink::with_offset(out, opts, offset)),
        Format::Grep => Box::new(GrepSink::with_offset(out, opts, offset)),
        Format::Html => Box::new(super::html::HtmlSink::new(out, opts)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_others_are_refused() {
        for name in Format::NAMES {
            let format: Format = name.parse().expect("valid name");
            assert_eq!(format.as_str(), if name == "jsonl" { "json" } else { name });
        }
        let err = "yaml".parse::<Format>().expect_err("unknown name");
        let msg = err.to_string();
        assert!(msg.contains("\"yaml\""), "{msg}");
        for name in Format::NAMES {
            assert!(msg.contains(name), "{msg} lacks {name}");
        }
    }
}
