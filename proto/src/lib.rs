//! Sans-IO protocol codecs and dialogues for sockeye.
//!
//! Every codec here is a pure function over bytes: `decode(&[u8])` returns
//! `Ok(None)` when it needs more input, an error for invalid input, and never
//! touches a socket. The async drivers in the `sockeye` crate are thin loops
//! around these functions, which is what makes the codecs testable with byte
//! tables and fuzzable without a runtime. Every size limit is a named constant.
//!
//! The crate has no dependencies on purpose: fuzz targets build against it
//! alone, in seconds (SMTP AUTH's base64 is a few lines in [`smtp`]).
//!
//! - [`agent`]: the frames a controller and its agents exchange (`docs/agent-protocol.md`).
//! - [`calc`]: the calculator protocol (`docs/calc-protocol.md`).
//! - [`line`](mod@line): CRLF (or bare LF) line framing with a length cap, shared by the text protocols.
//! - [`reply`]: SMTP and FTP numbered replies, single- and multi-line.
//! - [`smtp`]: EHLO capabilities, command encoders that refuse injection, DATA dot-stuffing,
//!   and the client dialogue [`smtp::Client`] (greeting, EHLO, STARTTLS, AUTH, MAIL, QUIT).
//! - [`pop3`]: `+OK`/`-ERR` status lines, dot-terminated multi-line responses, commands.
//! - [`imap`]: untagged, continuation and tagged lines, CAPABILITY, LOGIN quoting.
//! - [`http`]: HTTP/1.x request and response heads, the `HEAD` request a prober sends.
//! - [`http_request`]: the request head an HTTP proxy server reads (CONNECT and absolute
//!   URIs, ncat's answers), and the heads it writes on towards the origin and back.
//! - [`chunked`]: the chunked transfer coding, a streaming decoder and the encoder.
//! - [`proxy_auth`]: proxy Basic and Digest credentials, ncat's nonces and 407, MD5.
//! - [`telnet`]: IAC command and subnegotiation parsing, option names, refusing options.
//! - [`ldap`]: the BER StartTLS extended request and the extended response.
//! - [`packet`]: IPv4, IPv6, TCP and ICMP errors for the SYN scan: the probe it writes,
//!   the SYN-ACK, RST and quoted headers it reads, checksums with pseudo-headers.
//! - [`ping`]: host discovery's ARP frames, ICMP echo and timestamp, ICMPv6 echo and
//!   neighbor solicitation/advertisement.
//! - [`sniff`]: which service a server is, from the first bytes it sends.
//! - [`tls_hello`]: a raw TLS ClientHello offering one version and the server's first
//!   flight (ServerHello, alert, cleartext certificates), for `probe --tls-versions`.
//! - [`udp_payloads`]: the requests a UDP scan sends to well-known ports so that services answer.

pub mod agent;
pub mod calc;
pub mod chunked;
pub mod http;
pub mod http_request;
pub mod imap;
pub mod ldap;
pub mod line;
pub mod packet;
pub mod ping;
pub mod pop3;
pub mod proxy_auth;
pub mod reply;
pub mod smtp;
pub mod sniff;
pub mod telnet;
pub mod tls_hello;
pub mod udp_payloads;
