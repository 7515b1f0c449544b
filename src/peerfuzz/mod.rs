//! `sockeye fuzz`: fuzz a server (client mode) or a client (server mode)
//! over the network, reproducibly.
//!
//! - [`generate`]: the generators; every case is a pure function of (seed, case).
//! - [`run`]: the drivers: send each case to a server, or answer each client
//!   with one; notice a target that dies (refuses where it accepted, exits
//!   when started with `--spawn`) or hangs (stops accepting, or no answer
//!   with `--expect-answer`); save the input that did it with its seed and
//!   case number; replay a saved input.
//!
//! Not to be confused with `fuzz/`, the cargo-fuzz targets of our own codecs.

pub mod generate;
pub mod run;

pub use generate::Template;
pub use run::{Failure, FailureKind, FuzzConfig, FuzzSummary, Generator};
