//! Typed results and the printers that render them.
//!
//! Engines never print: they emit [`Event`]s (each through an [`Emit`], the
//! sending end of a bounded channel), and a [`Sink`] turns them into
//! a table for people, JSON Lines for scripts, nmap XML for tools that read
//! nmap, nmap's grepable format, or one HTML page. Several sinks can run at once (the
//! terminal gets a table while `-o json=PATH` writes a file); each writes
//! results as they arrive so that an interrupted run keeps what it found.
//! [`records`] reads sockeye's JSON Lines back, for [`merge`] (a scan's
//! shards put together) and [`html`] (any results as a page).
//!
//! The field names and vocabularies here are the contract of
//! `docs/output.md`: new fields may be added, none renamed.

/// A printer. Called from one task, in event order: `start`, then any
/// number of `event`s, then `finish` exactly once (also after Ctrl-C).
pub trait Sink: Send {
    fn start(&mut self, info: &RunInfo) -> std::io::Result<()>;
    fn event(&mut self, event: &Event) -> std::io::Result<()>;
    fn finish(&mut self, summary: &Summary) -> std::io::Result<()>;
}

pub mod calc;
pub mod check;
mod common;
mod emit;
mod event;
#[cfg(test)]
mod fixture;
mod format;
pub mod fuzz;
mod grep;
pub mod html;
mod json;
pub mod list;
pub mod mail;
pub mod merge;
mod multi;
pub mod plan;
pub mod records;
pub mod relay;
mod service;
mod table;
pub mod talk;
mod xml;

pub use common::LIST_MAX;
pub use emit::{Emit, Stopped};
pub use event::add_count;
pub use event::{
    Discovered, Event, HostDone, PortCount, PortResult, PortState, Proto, Reason, RunInfo,
    ScanInfo, ShardRun, Summary, Tally, TargetError, TargetErrorKind,
};
pub use format::{Format, SinkOptions, UnknownFormat, new_sink};
pub use grep::GrepSink;
pub use json::JsonSink;
pub use multi::MultiSink;
pub use service::{
    HttpFacts, Method, ServiceResult, StartTls, Step, StepError, TlsOutcome, VersionVerdict,
};
pub use table::TableSink;
pub use xml::XmlSink;
