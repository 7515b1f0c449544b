//! The connection layer under every engine that talks to a server: the
//! typed outcome of resolving a name and opening a TCP connection
//! ([`connect()`]), one check's byte stream with a bounded buffer, a timeout
//! per read and an optional overall deadline ([`conn`]), and the duration
//! text every timeout message uses ([`duration`]), and the raw sockets of the
//! SYN scan ([`raw`]), and the local link host discovery asks about: routes,
//! interfaces and the ARP socket ([`link`]). It knows no protocol and
//! no TLS: `tls` upgrades a [`Conn`] by swapping its stream.

pub mod conn;
pub mod connect;
pub mod duration;
pub mod link;
pub mod raw;

pub use conn::{CheckError, Conn, Io, ReadError, Volunteered, excerpt, io_text};
pub use connect::{ConnectError, Unreachable, connect, connect_addr, resolve};
pub use duration::secs_text;
