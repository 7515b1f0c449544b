//! `sockeye calc`: the calculator protocol's server and client, over TCP and
//! UDP, on the sans-IO codec in `sockeye_proto::calc`.
//!
//! - [`server`]: TCP and UDP on one port, many clients, pipelined requests
//!   answered in order, rejected requests logged with peer, ID and reason,
//!   limits on connections, idle time and slow requests, graceful shutdown.
//! - [`peers`]: connections per peer address (capped) and the idle ones a
//!   full server reclaims for a newcomer.
//! - [`client`]: one request or many pipelined on one connection (or one
//!   datagram each), with the spec's error messages.

pub mod client;
pub mod peers;
pub mod server;
