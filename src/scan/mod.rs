//! Scan engines and their timing.
//!
//! - [`connect`]: one TCP connect probe and the typed outcome of it.
//! - [`engine`]: the scheduler that drives probes over a seeded permutation
//!   of every (host, port) pair, in a bounded in-flight window, with per-host
//!   timeouts, retries of unanswered probes, a rate cap and backoff on local
//!   exhaustion. It emits [`crate::report::Event`]s and never prints.
//! - [`syn`]: the SYN scan: the same scheduler, with half-open probes on
//!   raw sockets and replies validated by a sequence-number cookie.
//! - [`timing`]: RTT estimation and rate limiting.
//! - [`udp`]: the UDP scan, its ICMP reading and its pacing to the
//!   targets' ICMP rate limits.
//! - [`discover`]: host discovery (`-sn`, and before a port scan of many
//!   hosts): ARP/NDP on the local link, ICMP and TCP/UDP pings beyond it,
//!   connect pings without privilege.
//! - [`mixed`]: TCP and UDP in one run: one report per host.
//! - [`resume`]: `--resume` checkpoints: what was done, written atomically.
//! - [`template`]: the `-T0`..`-T5` timing templates.

pub mod connect;
pub mod discover;
pub mod engine;
pub mod mixed;
pub mod resume;
pub mod syn;
pub mod template;
pub mod timing;
pub mod udp;

pub use discover::{
    DiscoveryConfig, DiscoveryStats, Probes, RawSetup, discover_connect, discover_raw,
};
pub use engine::{Progress, ScanConfig, ScanStats, Shard, connect_scan};
pub use mixed::{add_stats, join_protocols};
pub use syn::{SynError, SynSetup, syn_scan};
pub use template::Template;
pub use timing::RttLimits;
pub use udp::{UdpStats, udp_scan};
