//! sockeye: find out what is listening on a network and talk to it.
//!
//! The library holds everything that does I/O; the binary (`src/main.rs`)
//! only hands its arguments to [`cli`] and exits with the status it gets.
//! Every engine is a library call with a typed configuration, so a process
//! with no command line can drive it too. Layers, from the bottom up (a
//! module uses only lower layers; `docs/architecture.md` has the table and
//! `tests/layers.rs` enforces it):
//!
//! 0. [`sys`]: the few OS calls and process-wide settings.
//! 1. [`target`]: host and port specifications in nmap's syntax, target
//!    sets and exclusions, name resolution, `HOST:PORT`, the seeded
//!    permutation that orders a scan.
//! 2. [`net`]: the connection layer: the typed connect outcome, a
//!    connection with capped, deadlined reads, the duration text.
//! 3. [`tls`]: rustls configurations, certificate facts, the recording
//!    verifier, STARTTLS commands.
//! 4. [`report`]: the events engines emit and every printer.
//! 5. The engines, side by side: [`scan`], [`probe`], [`relay`] (the netcat
//!    behind `sockeye cat`), [`calc`], [`mail`], [`talk`], [`peerfuzz`].
//! 6. [`agent`]: the agent of plans run from many hosts (typed actions over
//!    a pipe) and the controller's link to one.
//! 7. [`exercise`]: test plans run through the engines, here or on agents.
//! 8. [`cli`]: clap structures, their validation into engine
//!    configuration, and the one run harness.

pub mod agent;
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
