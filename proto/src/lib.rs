//! Sans-IO protocol codecs and dialogues for sockeye.
//!
//! Every codec here is a pure function over bytes: `decode(&[u8])` returns
//! `Ok(None)` when it needs more input, an error for invalid input, and never
//! touches a socket. The async drivers in the `sockeye` crate are thin loops
//! around these functions, which is what makes the codecs testable with byte
//! tables and fuzzable without a runtime.
//!
//! The crate has no dependencies on purpose: fuzz targets build against it
//! alone, in seconds.
//!
//! - [`calc`]: the calculator protocol (`shared/spec/calc-protocol.md`).
//! - [`tls_hello`]: a raw TLS ClientHello offering one version and the server's first
//!   flight (ServerHello, alert, cleartext certificates), for `probe --tls-versions`.
//!
//! SMTP, POP3, IMAP, FTP and HTTP-head codecs land here with the issues that use them.

pub mod calc;
pub mod tls_hello;
