//! sockeye's integration tests: one binary, a module per area.
//!
//! - `calc`: the calculator server and client, end to end on 127.0.0.1:0.
//! - `cat`: `sockeye cat` (and `ncat`), end to end on 127.0.0.1.
//! - `cli`: help, completions, man page, and bad input (exit 2, one line).
//! - `scan_local`: scans of listeners this test binds on 127.0.0.1 (only
//!   ports we own: never ranges in the machine's own namespace).
//! - `scan_lab`: scans across network namespaces made by the test
//!   (198.18.0.0/15), with nftables for filtered and ICMP verdicts.

mod support;
mod util;

mod calc;
mod cat;
mod cli;
mod scan_lab;
mod scan_local;
