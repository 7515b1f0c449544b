//! sockeye: find out what is listening on a network and talk to it.
//!
//! The library holds everything that does I/O; the binary (`src/main.rs`)
//! only parses arguments, runs a command and maps its outcome to an exit
//! code. Layers, from the bottom up:
//!
//! - [`target`]: host and port specifications in nmap's syntax, lazy
//!   iteration over them, and the seeded permutation that orders a scan.
//! - [`net`]: the connection layer under the engines: the typed connect
//!   outcome, a connection with capped, deadlined reads, the duration text.
//! - [`report`]: the typed results every engine emits and the printers
//!   (sinks) that render them: table, JSON Lines, nmap XML, grepable.
//! - [`scan`]: the scan engines and their timing.
//! - [`cli`]: clap structures, their validation into engine configuration,
//!   and the glue that runs each subcommand.
//! - [`calc`]: the calculator protocol's server and client.
//! - [`mail`]: `sockeye mail`, the SMTP submission client.
//! - [`relay`]: the netcat engine behind `sockeye cat` (and `ncat`).
//! - [`sys`]: the few process-wide OS settings (open-file limit).

pub mod calc;
pub mod cli;
pub mod exercise;
pub mod mail;
pub mod net;
pub mod peerfuzz;
pub mod probe;
pub mod relay;
pub mod report;
pub mod scan;
pub mod sys;
pub mod talk;
pub mod target;
pub mod tls;
