//! What to scan: hosts and ports in nmap's syntax, and the order to scan them in.
//!
//! - [`endpoint`]: `HOST:PORT` text, parsed and formatted.
//! - [`spec`]: host specifications (addresses, CIDR, octet ranges, names)
//!   and target files.
//! - [`exclude`]: exclusion lists and the set of addresses they stand for.
//! - [`set`]: an indexable, lazily iterated target set: a /8 is never
//!   expanded into memory.
//! - [`resolve`]: names into addresses, for targets and exclusions.
//! - [`ports`]: port specifications, service names and the built-in
//!   frequency-ordered top-ports table.
//! - [`permute`]: a seeded pseudo-random permutation of `0..n` computed
//!   index by index (no shuffled list in memory), and shards of it.

pub mod endpoint;
pub mod exclude;
pub mod permute;
pub mod ports;
pub mod resolve;
mod services;
pub mod set;
pub mod spec;

pub use exclude::{ExcludeItem, Excludes, parse_exclude_list};
pub use set::{Block, Target, TargetSet};
pub use spec::{HostSpec, OctetRange, parse_host_spec, parse_target_file};

/// The usual TCP service name of a port ("smtp" for 25), from the built-in table.
pub fn tcp_service_name(port: u16) -> Option<&'static str> {
    services::name(port, Proto::Tcp)
}

use std::fmt;

/// Transport protocol of a port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host or port specification that cannot be used, naming the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {token:?}: {why}")]
pub struct SpecError {
    /// "target", "port", "exclude"...
    pub kind: &'static str,
    /// The token as the user typed it.
    pub token: String,
    /// What is wrong with it, in a few words.
    pub why: String,
}
