//! A raw TLS ClientHello and the server's first flight, sans-IO, for `sockeye probe
//! --tls-versions`.
//!
//! rustls speaks only TLS 1.2 and 1.3, but a prober must say which versions a server accepts
//! (TLS 1.0 to 1.3, as testssl.sh and sslscan do) and show the certificate of a server that
//! only speaks TLS 1.0. This module builds, by hand from the wire formats of RFC 5246 (TLS 1.2,
//! the same framing as 1.0 and 1.1) and RFC 8446 (TLS 1.3), a ClientHello that offers exactly
//! one version, and reads what the server sends back: a ServerHello (accepted, with the
//! negotiated version and suite), an alert (refused), or something that is not TLS at all.
//! For TLS 1.2 and older it goes on to the cleartext Certificate message. It never completes
//! a handshake: no key is derived, nothing is encrypted or verified.
//!
//! The caller supplies the random bytes, so [`client_hello`] is deterministic. Both decoders
//! take the server's bytes from the very first one and follow the crate's rule: `Ok(None)`
//! means "read more", an error means the reply can never become valid.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

/// Bytes of a record header: content type, version, length.
pub const RECORD_HEADER_LEN: usize = 5;
/// Longest record fragment accepted: 2^14 plus the 2048 bytes RFC 5246 (6.2.3) allows for
/// an encrypted record's expansion. A cleartext handshake record is never longer.
pub const MAX_RECORD_LEN: usize = 16384 + 2048;
/// Bytes of a handshake message header: type and a 24-bit length.
pub const HANDSHAKE_HEADER_LEN: usize = 4;
/// Longest handshake message accepted. A Certificate message with a long chain is the
/// biggest one a server sends in the clear; real chains stay far below 64 KiB, and the
/// 24-bit length field would otherwise let a server announce 16 MiB.
pub const MAX_HANDSHAKE_LEN: usize = 256 * 1024;
/// Most bytes the decoders read before deciding, whatever the record sizes: a ServerHello
/// and a largest Certificate need far less unless a server splits them into tiny records,
/// which only a hostile server does. A caller never needs a larger buffer.
pub const MAX_FLIGHT_LEN: usize = 1024 * 1024;
/// Bytes of a non-TLS reply shown (escaped) in [`TlsHelloError::NotTls`].
pub const NOT_TLS_SHOWN: usize = 32;
/// Warning alerts skipped before a ServerHello or Certificate: some servers send a warning
/// (`unrecognized_name` for a host name they do not serve, old Apache does) and go on with
/// the handshake. The next warning after these is taken as the answer. OpenSSL stops at 5.
pub const MAX_WARNING_ALERTS: usize = 4;

/// Record content types (RFC 8446, 5.1).
pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
pub const CONTENT_ALERT: u8 = 21;
pub const CONTENT_HANDSHAKE: u8 = 22;
pub const CONTENT_APPLICATION_DATA: u8 = 23;

/// Alert level and description (RFC 5246, 7.2) that the decoders treat apart.
pub const ALERT_LEVEL_WARNING: u8 = 1;
pub const ALERT_CLOSE_NOTIFY: u8 = 0;

/// Handshake message types (RFC 8446, 4; RFC 5246, 7.4).
pub const HANDSHAKE_CLIENT_HELLO: u8 = 1;
pub const HANDSHAKE_SERVER_HELLO: u8 = 2;
pub const HANDSHAKE_NEW_SESSION_TICKET: u8 = 4;
pub const HANDSHAKE_CERTIFICATE: u8 = 11;
pub const HANDSHAKE_SERVER_KEY_EXCHANGE: u8 = 12;
pub const HANDSHAKE_SERVER_HELLO_DONE: u8 = 14;

/// Extension types used in the ClientHello or looked for in the ServerHello.
pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_SUPPORTED_GROUPS: u16 = 10;
pub const EXT_EC_POINT_FORMATS: u16 = 11;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
pub const EXT_PADDING: u16 = 21;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;
pub const EXT_PSK_KEY_EXCHANGE_MODES: u16 = 45;
pub const EXT_KEY_SHARE: u16 = 51;
pub const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

/// Named groups offered in supported_groups, in order of preference.
pub const GROUP_X25519: u16 = 0x001d;
pub const GROUP_SECP256R1: u16 = 0x0017;
pub const GROUP_SECP384R1: u16 = 0x0018;
const GROUPS: [u16; 3] = [GROUP_X25519, GROUP_SECP256R1, GROUP_SECP384R1];

/// The ServerHello random that marks a HelloRetryRequest: SHA-256 of "HelloRetryRequest"
/// (RFC 8446, 4.1.3).
pub const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Suites offered in a TLS 1.2 ClientHello: the AEAD and SHA-2 suites that only TLS 1.2
/// defines first, then [`legacy_ciphers`]'s list, which 1.2 servers still accept.
const TLS12_CIPHERS: [u16; 42] = [
    // TLS 1.2 only: forward-secret AEAD first, as a modern client would.
    0xc02c, // ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    0xc030, // ECDHE_RSA_WITH_AES_256_GCM_SHA384
    0xcca9, // ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    0xcca8, // ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    0xc02b, // ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    0xc02f, // ECDHE_RSA_WITH_AES_128_GCM_SHA256
    0x009f, // DHE_RSA_WITH_AES_256_GCM_SHA384
    0xccaa, // DHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    0x009e, // DHE_RSA_WITH_AES_128_GCM_SHA256
    0xc024, // ECDHE_ECDSA_WITH_AES_256_CBC_SHA384
    0xc028, // ECDHE_RSA_WITH_AES_256_CBC_SHA384
    0xc023, // ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
    0xc027, // ECDHE_RSA_WITH_AES_128_CBC_SHA256
    0x006b, // DHE_RSA_WITH_AES_256_CBC_SHA256
    0x0067, // DHE_RSA_WITH_AES_128_CBC_SHA256
    0x009d, // RSA_WITH_AES_256_GCM_SHA384
    0x009c, // RSA_WITH_AES_128_GCM_SHA256
    0x003d, // RSA_WITH_AES_256_CBC_SHA256
    0x003c, // RSA_WITH_AES_128_CBC_SHA256
    // Defined since TLS 1.0 (AES and ECC suites by RFC 4492 and 3268): CBC with SHA-1,
    // RSA key exchange, 3DES and RC4 for the oldest servers.
    0xc00a, // ECDHE_ECDSA_WITH_AES_256_CBC_SHA
    0xc014, // ECDHE_RSA_WITH_AES_256_CBC_SHA
    0xc009, // ECDHE_ECDSA_WITH_AES_128_CBC_SHA
    0xc013, // ECDHE_RSA_WITH_AES_128_CBC_SHA
    0x0039, // DHE_RSA_WITH_AES_256_CBC_SHA
    0x0038, // DHE_DSS_WITH_AES_256_CBC_SHA
    0x0033, // DHE_RSA_WITH_AES_128_CBC_SHA
    0x0032, // DHE_DSS_WITH_AES_128_CBC_SHA
    0x0088, // DHE_RSA_WITH_CAMELLIA_256_CBC_SHA
    0x0045, // DHE_RSA_WITH_CAMELLIA_128_CBC_SHA
    0x0035, // RSA_WITH_AES_256_CBC_SHA
    0x002f, // RSA_WITH_AES_128_CBC_SHA
    0x0084, // RSA_WITH_CAMELLIA_256_CBC_SHA
    0x0041, // RSA_WITH_CAMELLIA_128_CBC_SHA
    0x0096, // RSA_WITH_SEED_CBC_SHA
    0xc012, // ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
    0x0016, // DHE_RSA_WITH_3DES_EDE_CBC_SHA
    0x000a, // RSA_WITH_3DES_EDE_CBC_SHA
    0xc011, // ECDHE_RSA_WITH_RC4_128_SHA
    0xc007, // ECDHE_ECDSA_WITH_RC4_128_SHA
    0x0005, // RSA_WITH_RC4_128_SHA
    0x0004, // RSA_WITH_RC4_128_MD5
    0x0007, // RSA_WITH_IDEA_CBC_SHA
];
/// How many of [`TLS12_CIPHERS`] exist only in TLS 1.2.
const TLS12_ONLY: usize = 19;

/// Suites offered in a TLS 1.3 ClientHello (RFC 8446, B.4), without the CCM ones that
/// servers do not enable by default.
const TLS13_CIPHERS: [u16; 3] = [0x1301, 0x1302, 0x1303];

/// signature_algorithms for TLS 1.2: modern schemes first, then SHA-1 and DSA, which old
/// certificates and servers still use (RFC 5246, 7.4.1.4.1 and RFC 8446, 4.2.3).
const SIGNATURE_SCHEMES_TLS12: [u16; 17] = [
    0x0403, // ecdsa_secp256r1_sha256
    0x0503, // ecdsa_secp384r1_sha384
    0x0603, // ecdsa_secp521r1_sha512
    0x0807, // ed25519
    0x0808, // ed448
    0x0804, // rsa_pss_rsae_sha256
    0x0805, // rsa_pss_rsae_sha384
    0x0806, // rsa_pss_rsae_sha512
    0x0809, // rsa_pss_pss_sha256
    0x080a, // rsa_pss_pss_sha384
    0x080b, // rsa_pss_pss_sha512
    0x0401, // rsa_pkcs1_sha256
    0x0501, // rsa_pkcs1_sha384
    0x0601, // rsa_pkcs1_sha512
    0x0201, // rsa_pkcs1_sha1
    0x0203, // ecdsa_sha1
    0x0402, // dsa_sha256 (RFC 5246)
];
/// TLS 1.3 has no DSA; SHA-1 schemes stay for the signatures inside old certificates.
const SIGNATURE_SCHEMES_TLS13: &[u16] = SIGNATURE_SCHEMES_TLS12.split_at(16).0;

/// A protocol version the prober can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// Every version, oldest first.
    pub const ALL: [TlsVersion; 4] = [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    /// The version number on the wire: 0x0301 for TLS 1.0 up to 0x0304 for TLS 1.3.
    pub fn wire(&self) -> u16 {
        match self {
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    /// The version for a wire number, if it is one of the four.
    pub fn from_wire(wire: u16) -> Option<TlsVersion> {
        TlsVersion::ALL.into_iter().find(|v| v.wire() == wire)
    }

    /// `"TLSv1.0"` to `"TLSv1.3"`, as OpenSSL and the JSON output write them.
    pub fn name(&self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLSv1.0",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What goes into one ClientHello. The three byte arrays must come from a random source
/// (the codec does not draw them, so that it stays deterministic and testable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloOptions<'a> {
    /// The one version offered.
    pub version: TlsVersion,
    /// Host name for SNI. Left out when it is an IP literal or not a plain ASCII host name
    /// (see [`sni_host`]).
    pub server_name: Option<&'a str>,
    /// ClientHello.random.
    pub random: [u8; 32],
    /// legacy_session_id: 32 random bytes, the TLS 1.3 middlebox-compatibility form, sent for
    /// every version (an unknown session id only means a full handshake).
    pub session_id: [u8; 32],
    /// The X25519 public key for TLS 1.3's key_share. Any 32 bytes do: the prober never
    /// completes the handshake, it only needs the server to answer.
    pub key_share: [u8; 32],
}

/// The cipher suites a ClientHello for `version` offers, in order.
pub fn offered_ciphers(version: TlsVersion) -> &'static [u16] {
    match version {
        TlsVersion::Tls10 | TlsVersion::Tls11 => legacy_ciphers(),
        TlsVersion::Tls12 => &TLS12_CIPHERS,
        TlsVersion::Tls13 => &TLS13_CIPHERS,
    }
}

/// The suites offered to TLS 1.0 and 1.1: those defined before TLS 1.2 (CBC with SHA-1,
/// RSA, DHE and ECDHE key exchange, 3DES, RC4). A server must ignore suites it cannot use
/// at the negotiated version, but old servers are not always that careful.
fn legacy_ciphers() -> &'static [u16] {
    &TLS12_CIPHERS[TLS12_ONLY..]
}

/// The name sent in SNI for `name`, or `None` when SNI must be left out: IP literals
/// (RFC 6066, 3: "Literal IPv4 and IPv6 addresses are not permitted"), bracketed IPv6,
/// empty names, names longer than 253 bytes, and anything with a byte outside letters,
/// digits, `-`, `_` and `.` (the caller converts internationalized names to A-labels).
/// One trailing dot is dropped.
pub fn sni_host(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    (plain && !name.is_empty() && name.len() <= 253).then_some(name)
}

/// Builds one TLS record (content type 22) holding a ClientHello that offers exactly
/// `opts.version`.
///
/// TLS 1.0 to 1.2: legacy_version is that version, the record version 0x0301 (what clients
/// send for compatibility), suites from [`offered_ciphers`], and the extensions SNI,
/// supported_groups, ec_point_formats, signature_algorithms (1.2 only) and
/// renegotiation_info. TLS 1.3: legacy_version 0x0303, the TLS 1.3 suites, and SNI,
/// supported_groups, signature_algorithms, supported_versions (0x0304 only), key_share
/// (X25519 with `opts.key_share`) and psk_key_exchange_modes (psk_dhe_ke).
///
/// A padding extension (RFC 7685) brings a handshake message of 256 to 511 bytes up to
/// 512: some old F5 load balancers hang on ClientHellos of that size, which is why
/// OpenSSL, BoringSSL and browsers pad.
pub fn client_hello(opts: &HelloOptions) -> Vec<u8> {
    let tls13 = opts.version == TlsVersion::Tls13;
    let mut body = Vec::with_capacity(512);
    // TLS 1.3 says "1.2" here and puts the truth in supported_versions (RFC 8446, 4.1.2).
    put_u16(&mut body, if tls13 { 0x0303 } else { opts.version.wire() });
    body.extend_from_slice(&opts.random);
    body.push(32);
    body.extend_from_slice(&opts.session_id);
    with_len(&mut body, 2, |b| {
        for suite in offered_ciphers(opts.version) {
            put_u16(b, *suite);
        }
    });
    // Compression methods: null only.
    body.extend_from_slice(&[1, 0]);

    let mut exts = Vec::with_capacity(256);
    if let Some(host) = opts.server_name.and_then(sni_host) {
        put_ext(&mut exts, EXT_SERVER_NAME, |d| {
            with_len(d, 2, |list| {
                list.push(0); // name_type host_name
                with_len(list, 2, |n| n.extend_from_slice(host.as_bytes()));
            });
        });
    }
    put_ext(&mut exts, EXT_SUPPORTED_GROUPS, |d| {
        with_len(d, 2, |list| {
            for g in GROUPS {
                put_u16(list, g);
            }
        });
    });
    if !tls13 {
        // Uncompressed points only; RFC 8422 lets a server refuse ECDHE without this.
        put_ext(&mut exts, EXT_EC_POINT_FORMATS, |d| {
            d.extend_from_slice(&[1, 0])
        });
    }
    let schemes: &[u16] = match opts.version {
        TlsVersion::Tls10 | TlsVersion::Tls11 => &[],
        TlsVersion::Tls12 => &SIGNATURE_SCHEMES_TLS12,
        TlsVersion::Tls13 => SIGNATURE_SCHEMES_TLS13,
    };
    if !schemes.is_empty() {
        put_ext(&mut exts, EXT_SIGNATURE_ALGORITHMS, |d| {
            with_len(d, 2, |list| {
                for s in schemes {
                    put_u16(list, *s);
                }
            });
        });
    }
    if tls13 {
        put_ext(&mut exts, EXT_SUPPORTED_VERSIONS, |d| {
            with_len(d, 1, |list| put_u16(list, TlsVersion::Tls13.wire()));
        });
        put_ext(&mut exts, EXT_KEY_SHARE, |d| {
            with_len(d, 2, |shares| {
                put_u16(shares, GROUP_X25519);
                with_len(shares, 2, |k| k.extend_from_slice(&opts.key_share));
            });
        });
        // psk_dhe_ke: required alongside key_share by some servers, and we offer no PSK.
        put_ext(&mut exts, EXT_PSK_KEY_EXCHANGE_MODES, |d| {
            d.extend_from_slice(&[1, 1]);
        });
    } else {
        // An empty renegotiated_connection: "this is an initial handshake" (RFC 5746).
        put_ext(&mut exts, EXT_RENEGOTIATION_INFO, |d| d.push(0));
    }
    let unpadded = HANDSHAKE_HEADER_LEN + body.len() + 2 + exts.len();
    if (256..512).contains(&unpadded) {
        // BoringSSL's rule: fill up to 512 with the extension's 4-byte header counted,
        // but never send an empty padding extension.
        let fill = (512 - unpadded)
            .checked_sub(4)
            .filter(|&n| n > 0)
            .unwrap_or(1);
        put_ext(&mut exts, EXT_PADDING, |d| {
            d.extend(std::iter::repeat_n(0, fill))
        });
    }
    with_len(&mut body, 2, |b| b.extend_from_slice(&exts));

    let mut record = Vec::with_capacity(RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN + body.len());
    record.push(CONTENT_HANDSHAKE);
    // legacy_record_version 0x0301 for every ClientHello (RFC 8446, 5.1; RFC 5246, E.1).
    put_u16(&mut record, 0x0301);
    with_len(&mut record, 2, |r| {
        r.push(HANDSHAKE_CLIENT_HELLO);
        with_len(r, 3, |h| h.extend_from_slice(&body));
    });
    record
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Writes what `fill` appends, preceded by its length in `width` bytes (1, 2 or 3). Every
/// length here is bounded by the constants above (the longest part is a 253-byte host
/// name), so one that does not fit is a bug in this file.
fn with_len(out: &mut Vec<u8>, width: usize, fill: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.resize(at + width, 0);
    fill(out);
    let len = out.len() - at - width;
    assert!(
        len < 1 << (8 * width),
        "length {len} does not fit {width} bytes"
    );
    let be = (len as u32).to_be_bytes();
    out[at..at + width].copy_from_slice(&be[4 - width..]);
}

fn put_ext(out: &mut Vec<u8>, ext_type: u16, data: impl FnOnce(&mut Vec<u8>)) {
    put_u16(out, ext_type);
    with_len(out, 2, data);
}

/// The fields of a ServerHello (or HelloRetryRequest) that a version probe reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// The negotiated version: the supported_versions extension when present (TLS 1.3),
    /// else legacy_version.
    pub version: u16,
    /// The chosen cipher suite ([`cipher_name`] names it).
    pub cipher: u16,
    /// The random was [`HELLO_RETRY_RANDOM`]: the server accepts the version but wants
    /// another key share first. It still answers "this version is accepted".
    pub hello_retry: bool,
    /// Extension types in the order the server sent them.
    pub extensions: Vec<u16>,
}

impl ServerHello {
    /// The negotiated version, if it is one of [`TlsVersion::ALL`] (not SSLv3, say).
    pub fn tls_version(&self) -> Option<TlsVersion> {
        TlsVersion::from_wire(self.version)
    }
}

/// The server's answer to a ClientHello, as soon as it can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerReply {
    /// The server accepted and chose a version and a suite.
    Hello(ServerHello),
    /// The server refused. `description` 70 (protocol_version) and 40 (handshake_failure)
    /// are the usual "not this version" answers; [`alert_name`] names them.
    Alert { level: u8, description: u8 },
}

impl ServerReply {
    /// Whether this reply says the server accepts `offered`: a ServerHello (or a
    /// HelloRetryRequest) for that very version. Before TLS 1.3 a ClientHello offers "up to"
    /// its version (RFC 5246, E.1), so a server that only speaks TLS 1.0 answers a TLS 1.2
    /// hello with a TLS 1.0 ServerHello (recorded from `openssl s_server -tls1` in
    /// `proto/tests/data/tls1-only-tls12.bin`); that is no acceptance of TLS 1.2.
    pub fn accepts(&self, offered: TlsVersion) -> bool {
        matches!(self, ServerReply::Hello(hello) if hello.version == offered.wire())
    }
}

/// Why a server's reply can never become a valid answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsHelloError {
    /// The first bytes are not a TLS record header: another protocol listens there (an
    /// HTTP, SMTP or SSH server, say). Holds up to [`NOT_TLS_SHOWN`] bytes, escaped.
    NotTls { first_bytes: String },
    /// A later record header is not TLS (at byte `offset` of the reply).
    BadRecordHeader { offset: usize },
    /// A record longer than [`MAX_RECORD_LEN`].
    RecordTooLong { len: usize },
    /// A handshake message longer than [`MAX_HANDSHAKE_LEN`].
    HandshakeTooLong { len: usize },
    /// More than [`MAX_FLIGHT_LEN`] bytes without an answer.
    FlightTooLong,
    /// A record of a type that cannot come here (application data before a handshake,
    /// a ChangeCipherSpec where a ServerHello or Certificate belongs).
    UnexpectedRecord { content_type: u8 },
    /// A handshake message of a type that cannot come here.
    UnexpectedMessage { msg_type: u8 },
    /// A message whose fields do not add up.
    Malformed {
        message: &'static str,
        problem: &'static str,
    },
    /// [`decode_certificates`] met an alert instead of the certificate.
    Alert { level: u8, description: u8 },
    /// [`decode_certificates`]: TLS 1.3 was negotiated (or a HelloRetryRequest came), so the
    /// certificate is encrypted; get it from a real handshake instead.
    CertificateEncrypted { version: u16 },
    /// [`decode_certificates`]: the server went on without a Certificate (an anonymous
    /// suite, or `msg_type` 0 for a ChangeCipherSpec of a resumed session).
    NoCertificate { msg_type: u8 },
}

impl fmt::Display for TlsHelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsHelloError::NotTls { first_bytes } => {
                write!(f, "not a TLS reply: \"{first_bytes}\"")
            }
            TlsHelloError::BadRecordHeader { offset } => {
                write!(f, "not a TLS record header at byte {offset} of the reply")
            }
            TlsHelloError::RecordTooLong { len } => {
                write!(f, "TLS record of {len} bytes (at most {MAX_RECORD_LEN})")
            }
            TlsHelloError::HandshakeTooLong { len } => write!(
                f,
                "TLS handshake message of {len} bytes (at most {MAX_HANDSHAKE_LEN})"
            ),
            TlsHelloError::FlightTooLong => write!(
                f,
                "no answer in the first {MAX_FLIGHT_LEN} bytes of the server's reply"
            ),
            TlsHelloError::UnexpectedRecord { content_type } => {
                write!(f, "unexpected TLS record of type {content_type}")
            }
            TlsHelloError::UnexpectedMessage { msg_type } => {
                write!(f, "unexpected TLS handshake message of type {msg_type}")
            }
            TlsHelloError::Malformed { message, problem } => {
                write!(f, "malformed {message}: {problem}")
            }
            TlsHelloError::Alert { level, description } => write!(
                f,
                "TLS alert {} ({description}, level {level})",
                alert_name(*description)
            ),
            TlsHelloError::CertificateEncrypted { version } => write!(
                f,
                "{} negotiated: the certificate is encrypted",
                version_name(*version).unwrap_or("TLS 1.3")
            ),
            TlsHelloError::NoCertificate { msg_type } => write!(
                f,
                "the server sent no certificate (next message of type {msg_type})"
            ),
        }
    }
}

impl std::error::Error for TlsHelloError {}

/// Reads the server's first answer to a ClientHello from `buf`, the server's bytes from the
/// first one on. `Ok(None)`: read more. On success, also returns how many bytes of `buf` the
/// records read so far took (the record that finished the ServerHello may already hold the
/// start of the next message; those bytes are not needed for a version probe).
///
/// Handshake messages may be split across records or share one (RFC 8446, 5.1). Up to
/// [`MAX_WARNING_ALERTS`] warning alerts before the ServerHello are skipped; a fatal alert
/// (or close_notify) is the answer. A non-TLS first byte is an error at once ([`TlsHelloError::NotTls`]), so a driver can stop
/// reading as soon as an HTTP or SMTP server starts talking.
pub fn decode_server_reply(buf: &[u8]) -> Result<Option<(ServerReply, usize)>, TlsHelloError> {
    let mut flight = Flight::new(buf);
    let reply = match flight.next_event()? {
        None => return Ok(None),
        Some(Event::Alert { level, description }) => ServerReply::Alert { level, description },
        Some(Event::Handshake { msg_type, body }) if msg_type == HANDSHAKE_SERVER_HELLO => {
            ServerReply::Hello(parse_server_hello(&flight.handshake[body])?)
        }
        Some(Event::Handshake { msg_type, .. }) => {
            return Err(TlsHelloError::UnexpectedMessage { msg_type });
        }
        Some(Event::ChangeCipherSpec) => {
            return Err(TlsHelloError::UnexpectedRecord {
                content_type: CONTENT_CHANGE_CIPHER_SPEC,
            });
        }
    };
    Ok(Some((reply, flight.pos)))
}

/// Reads the server's flight (from its first byte, like [`decode_server_reply`]) up to the
/// cleartext Certificate message of TLS 1.2 and older, and returns its certificates in the
/// order sent (the server's own first), as DER, with the bytes of `buf` the records read
/// took. `Ok(None)`: read more.
///
/// Errors besides malformed input: [`TlsHelloError::Alert`] when the server refused,
/// [`TlsHelloError::CertificateEncrypted`] for TLS 1.3, [`TlsHelloError::NoCertificate`]
/// for an anonymous suite. The DER itself is not parsed here.
pub fn decode_certificates(buf: &[u8]) -> Result<Option<(CertificateChain, usize)>, TlsHelloError> {
    let mut flight = Flight::new(buf);
    let hello = match flight.next_event()? {
        None => return Ok(None),
        Some(Event::Alert { level, description }) => {
            return Err(TlsHelloError::Alert { level, description });
        }
        Some(Event::Handshake { msg_type, body }) if msg_type == HANDSHAKE_SERVER_HELLO => {
            parse_server_hello(&flight.handshake[body])?
        }
        Some(Event::Handshake { msg_type, .. }) => {
            return Err(TlsHelloError::UnexpectedMessage { msg_type });
        }
        Some(Event::ChangeCipherSpec) => {
            return Err(TlsHelloError::UnexpectedRecord {
                content_type: CONTENT_CHANGE_CIPHER_SPEC,
            });
        }
    };
    if hello.hello_retry || hello.version >= TlsVersion::Tls13.wire() {
        return Err(TlsHelloError::CertificateEncrypted {
            version: hello.version,
        });
    }
    match flight.next_event()? {
        None => Ok(None),
        Some(Event::Handshake { msg_type, body }) if msg_type == HANDSHAKE_CERTIFICATE => {
            let certs = parse_certificate_list(&flight.handshake[body])?;
            Ok(Some((certs, flight.pos)))
        }
        // Anonymous (EC)DH goes straight to its key exchange or ServerHelloDone; a resumed
        // session to a ticket or ChangeCipherSpec (RFC 5246, 7.3 and RFC 5077, 3.1).
        Some(Event::Handshake { msg_type, .. })
            if matches!(
                msg_type,
                HANDSHAKE_SERVER_KEY_EXCHANGE
                    | HANDSHAKE_SERVER_HELLO_DONE
                    | HANDSHAKE_NEW_SESSION_TICKET
            ) =>
        {
            Err(TlsHelloError::NoCertificate { msg_type })
        }
        Some(Event::Handshake { msg_type, .. }) => {
            Err(TlsHelloError::UnexpectedMessage { msg_type })
        }
        Some(Event::ChangeCipherSpec) => Err(TlsHelloError::NoCertificate { msg_type: 0 }),
        Some(Event::Alert { level, description }) => {
            Err(TlsHelloError::Alert { level, description })
        }
    }
}

/// DER certificates in the order the server sent them, its own first.
pub type CertificateChain = Vec<Vec<u8>>;

/// One thing the server said, in order.
enum Event {
    /// A whole handshake message; `body` indexes [`Flight::handshake`].
    Handshake {
        msg_type: u8,
        body: Range<usize>,
    },
    Alert {
        level: u8,
        description: u8,
    },
    ChangeCipherSpec,
}

/// Walks the records at the start of a reply, gathering handshake fragments into whole
/// messages.
struct Flight<'a> {
    buf: &'a [u8],
    /// End of the records read so far.
    pos: usize,
    /// Handshake bytes of the records read so far.
    handshake: Vec<u8>,
    /// Start of the first handshake message not yet returned.
    taken: usize,
    /// Warning alerts skipped so far.
    warnings: usize,
}

impl<'a> Flight<'a> {
    fn new(buf: &'a [u8]) -> Flight<'a> {
        Flight {
            buf,
            pos: 0,
            handshake: Vec::new(),
            taken: 0,
            warnings: 0,
        }
    }

    /// The next event, `Ok(None)` when `buf` ends before it does.
    fn next_event(&mut self) -> Result<Option<Event>, TlsHelloError> {
        loop {
            if let Some(event) = self.take_message()? {
                return Ok(Some(event));
            }
            let rest = &self.buf[self.pos..];
            self.check_header(rest)?;
            let Some(header) = rest.get(..RECORD_HEADER_LEN) else {
                return Ok(None);
            };
            let content_type = header[0];
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if len > MAX_RECORD_LEN {
                return Err(TlsHelloError::RecordTooLong { len });
            }
            let end = RECORD_HEADER_LEN + len;
            if self.pos + end > MAX_FLIGHT_LEN {
                return Err(TlsHelloError::FlightTooLong);
            }
            let Some(fragment) = rest.get(RECORD_HEADER_LEN..end) else {
                return Ok(None);
            };
            self.pos += end;
            match content_type {
                CONTENT_HANDSHAKE => {
                    // Forbidden by RFC 8446 (5.1) and a way to spin a reader for nothing.
                    if fragment.is_empty() {
                        return Err(malformed("handshake record", "empty"));
                    }
                    self.handshake.extend_from_slice(fragment);
                }
                CONTENT_ALERT => {
                    // Always two bytes in practice; RFC 8446 forbids splitting alerts.
                    let [level, description] = *fragment else {
                        return Err(malformed("alert", "not 2 bytes long"));
                    };
                    // A warning is no answer (RFC 5246, 7.2), except close_notify.
                    if level == ALERT_LEVEL_WARNING
                        && description != ALERT_CLOSE_NOTIFY
                        && self.warnings < MAX_WARNING_ALERTS
                    {
                        self.warnings += 1;
                        continue;
                    }
                    return Ok(Some(Event::Alert { level, description }));
                }
                CONTENT_CHANGE_CIPHER_SPEC => {
                    if fragment != [1] {
                        return Err(malformed("ChangeCipherSpec", "not the single byte 1"));
                    }
                    return Ok(Some(Event::ChangeCipherSpec));
                }
                _ => return Err(TlsHelloError::UnexpectedRecord { content_type }),
            }
        }
    }

    /// Checks every byte of a record header that is there, so that a reply that is not
    /// TLS is refused from its first byte.
    fn check_header(&self, rest: &[u8]) -> Result<(), TlsHelloError> {
        let content_ok = rest.first().is_none_or(|t| {
            matches!(
                *t,
                CONTENT_CHANGE_CIPHER_SPEC
                    | CONTENT_ALERT
                    | CONTENT_HANDSHAKE
                    | CONTENT_APPLICATION_DATA
            )
        });
        // Record versions are 3.0 (SSLv3) to 3.4; everything real sends 3.1 to 3.3.
        let major_ok = rest.get(1).is_none_or(|&b| b == 3);
        let minor_ok = rest.get(2).is_none_or(|&b| b <= 4);
        if content_ok && major_ok && minor_ok {
            Ok(())
        } else if self.pos == 0 {
            let shown = &self.buf[..self.buf.len().min(NOT_TLS_SHOWN)];
            Err(TlsHelloError::NotTls {
                first_bytes: shown.escape_ascii().to_string(),
            })
        } else {
            Err(TlsHelloError::BadRecordHeader { offset: self.pos })
        }
    }

    /// The next whole handshake message among the bytes gathered, if there is one.
    fn take_message(&mut self) -> Result<Option<Event>, TlsHelloError> {
        let pending = &self.handshake[self.taken..];
        let Some(header) = pending.get(..HANDSHAKE_HEADER_LEN) else {
            return Ok(None);
        };
        let msg_type = header[0];
        let len =
            usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
        // Refused from the header alone: no need to wait for 16 MiB to say no.
        if len > MAX_HANDSHAKE_LEN {
            return Err(TlsHelloError::HandshakeTooLong { len });
        }
        if pending.len() < HANDSHAKE_HEADER_LEN + len {
            return Ok(None);
        }
        let start = self.taken + HANDSHAKE_HEADER_LEN;
        self.taken = start + len;
        Ok(Some(Event::Handshake {
            msg_type,
            body: start..start + len,
        }))
    }
}

fn malformed(message: &'static str, problem: &'static str) -> TlsHelloError {
    TlsHelloError::Malformed { message, problem }
}

/// A cursor over one message's bytes: reading past the end is malformed (the message's
/// length said it was complete), and [`Reader::finish`] refuses trailing bytes.
struct Reader<'a> {
    data: &'a [u8],
    message: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], message: &'static str) -> Reader<'a> {
        Reader { data, message }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsHelloError> {
        if n > self.data.len() {
            return Err(malformed(self.message, "truncated"));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, TlsHelloError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, TlsHelloError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a length prefix of `width` bytes, as a reader of its own.
    fn sub(&mut self, width: usize) -> Result<Reader<'a>, TlsHelloError> {
        let len = self
            .take(width)?
            .iter()
            .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        Ok(Reader::new(self.take(len)?, self.message))
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn finish(&self) -> Result<(), TlsHelloError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(malformed(self.message, "trailing bytes"))
        }
    }
}

/// A ServerHello body (RFC 5246, 7.4.1.3; RFC 8446, 4.1.3). Extensions are optional before
/// TLS 1.3: a body may end after the compression method.
fn parse_server_hello(body: &[u8]) -> Result<ServerHello, TlsHelloError> {
    const MSG: &str = "ServerHello";
    let mut r = Reader::new(body, MSG);
    let legacy_version = r.u16()?;
    if legacy_version >> 8 != 3 {
        return Err(malformed(MSG, "version is not 3.x"));
    }
    let random = r.take(32)?;
    let session_id_len = usize::from(r.u8()?);
    if session_id_len > 32 {
        return Err(malformed(MSG, "session id longer than 32 bytes"));
    }
    r.take(session_id_len)?;
    let cipher = r.u16()?;
    let _compression = r.u8()?;
    let mut version = legacy_version;
    let mut extensions = Vec::new();
    if !r.is_empty() {
        let mut exts = r.sub(2)?;
        r.finish()?;
        while !exts.is_empty() {
            let ext_type = exts.u16()?;
            let mut data = exts.sub(2)?;
            // RFC 8446, 4.2: at most one extension of each type.
            if extensions.contains(&ext_type) {
                return Err(malformed(MSG, "duplicate extension"));
            }
            extensions.push(ext_type);
            if ext_type == EXT_SUPPORTED_VERSIONS {
                version = data.u16()?;
                data.finish()?;
            }
        }
    }
    Ok(ServerHello {
        version,
        cipher,
        hello_retry: random == HELLO_RETRY_RANDOM,
        extensions,
    })
}

/// A TLS 1.2-style Certificate body: a 24-bit-length list of 24-bit-length DER blobs
/// (RFC 5246, 7.4.2), none of them empty.
fn parse_certificate_list(body: &[u8]) -> Result<Vec<Vec<u8>>, TlsHelloError> {
    const MSG: &str = "Certificate";
    let mut r = Reader::new(body, MSG);
    let mut list = r.sub(3)?;
    r.finish()?;
    let mut certs = Vec::new();
    while !list.is_empty() {
        let cert = list.sub(3)?;
        if cert.is_empty() {
            return Err(malformed(MSG, "empty certificate"));
        }
        certs.push(cert.data.to_vec());
    }
    Ok(certs)
}

/// The name of a protocol version: `"SSLv3"`, `"TLSv1.0"` to `"TLSv1.3"`.
pub fn version_name(wire: u16) -> Option<&'static str> {
    match wire {
        0x0300 => Some("SSLv3"),
        _ => TlsVersion::from_wire(wire).map(|v| v.name()),
    }
}

/// The name of an alert description (RFC 8446, 6; RFC 5246, 7.2), `"unknown"` for others.
pub fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        _ => "unknown",
    }
}

/// The IANA name of a cipher suite: every suite this module offers and the others a
/// scan meets (export, NULL, anonymous, static DH/ECDH, PSK, SRP, CCM, ARIA, Camellia, SEED,
/// IDEA): every suite OpenSSL 3.0 knows, under the same names as `openssl ciphers -stdname`.
pub fn cipher_name(suite: u16) -> Option<&'static str> {
    CIPHER_NAMES
        .binary_search_by_key(&suite, |&(code, _)| code)
        .ok()
        .map(|i| CIPHER_NAMES[i].1)
}

/// Sorted by code, for [`cipher_name`]'s binary search (a test checks the order).
pub const CIPHER_NAMES: &[(u16, &str)] = &[
    (0x0000, "TLS_NULL_WITH_NULL_NULL"),
    (0x0001, "TLS_RSA_WITH_NULL_MD5"),
    (0x0002, "TLS_RSA_WITH_NULL_SHA"),
    (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5"),
    (0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA"),
    (0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0009, "TLS_RSA_WITH_DES_CBC_SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x000b, "TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA"),
    (0x000c, "TLS_DH_DSS_WITH_DES_CBC_SHA"),
    (0x000d, "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA"),
    (0x000e, "TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x000f, "TLS_DH_RSA_WITH_DES_CBC_SHA"),
    (0x0010, "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0011, "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0012, "TLS_DHE_DSS_WITH_DES_CBC_SHA"),
    (0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA"),
    (0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0017, "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5"),
    (0x0018, "TLS_DH_anon_WITH_RC4_128_MD5"),
    (0x0019, "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA"),
    (0x001a, "TLS_DH_anon_WITH_DES_CBC_SHA"),
    (0x001b, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA"),
    (0x002c, "TLS_PSK_WITH_NULL_SHA"),
    (0x002d, "TLS_DHE_PSK_WITH_NULL_SHA"),
    (0x002e, "TLS_RSA_PSK_WITH_NULL_SHA"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0030, "TLS_DH_DSS_WITH_AES_128_CBC_SHA"),
    (0x0031, "TLS_DH_RSA_WITH_AES_128_CBC_SHA"),
    (0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x0036, "TLS_DH_DSS_WITH_AES_256_CBC_SHA"),
    (0x0037, "TLS_DH_RSA_WITH_AES_256_CBC_SHA"),
    (0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x003a, "TLS_DH_anon_WITH_AES_256_CBC_SHA"),
    (0x003b, "TLS_RSA_WITH_NULL_SHA256"),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x0040, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256"),
    (0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0044, "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0046, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0x006a, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256"),
    (0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0x006c, "TLS_DH_anon_WITH_AES_128_CBC_SHA256"),
    (0x006d, "TLS_DH_anon_WITH_AES_256_CBC_SHA256"),
    (0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0087, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0089, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA"),
    (0x008a, "TLS_PSK_WITH_RC4_128_SHA"),
    (0x008b, "TLS_PSK_WITH_3DES_EDE_CBC_SHA"),
    (0x008c, "TLS_PSK_WITH_AES_128_CBC_SHA"),
    (0x008d, "TLS_PSK_WITH_AES_256_CBC_SHA"),
    (0x0090, "TLS_DHE_PSK_WITH_AES_128_CBC_SHA"),
    (0x0091, "TLS_DHE_PSK_WITH_AES_256_CBC_SHA"),
    (0x0094, "TLS_RSA_PSK_WITH_AES_128_CBC_SHA"),
    (0x0095, "TLS_RSA_PSK_WITH_AES_256_CBC_SHA"),
    (0x0096, "TLS_RSA_WITH_SEED_CBC_SHA"),
    (0x0099, "TLS_DHE_DSS_WITH_SEED_CBC_SHA"),
    (0x009a, "TLS_DHE_RSA_WITH_SEED_CBC_SHA"),
    (0x009b, "TLS_DH_anon_WITH_SEED_CBC_SHA"),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0x00a2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256"),
    (0x00a3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384"),
    (0x00a6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256"),
    (0x00a7, "TLS_DH_anon_WITH_AES_256_GCM_SHA384"),
    (0x00a8, "TLS_PSK_WITH_AES_128_GCM_SHA256"),
    (0x00a9, "TLS_PSK_WITH_AES_256_GCM_SHA384"),
    (0x00aa, "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256"),
    (0x00ab, "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384"),
    (0x00ac, "TLS_RSA_PSK_WITH_AES_128_GCM_SHA256"),
    (0x00ad, "TLS_RSA_PSK_WITH_AES_256_GCM_SHA384"),
    (0x00ae, "TLS_PSK_WITH_AES_128_CBC_SHA256"),
    (0x00af, "TLS_PSK_WITH_AES_256_CBC_SHA384"),
    (0x00b0, "TLS_PSK_WITH_NULL_SHA256"),
    (0x00b1, "TLS_PSK_WITH_NULL_SHA384"),
    (0x00b2, "TLS_DHE_PSK_WITH_AES_128_CBC_SHA256"),
    (0x00b3, "TLS_DHE_PSK_WITH_AES_256_CBC_SHA384"),
    (0x00b4, "TLS_DHE_PSK_WITH_NULL_SHA256"),
    (0x00b5, "TLS_DHE_PSK_WITH_NULL_SHA384"),
    (0x00b6, "TLS_RSA_PSK_WITH_AES_128_CBC_SHA256"),
    (0x00b7, "TLS_RSA_PSK_WITH_AES_256_CBC_SHA384"),
    (0x00b8, "TLS_RSA_PSK_WITH_NULL_SHA256"),
    (0x00b9, "TLS_RSA_PSK_WITH_NULL_SHA384"),
    (0x00ba, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256"),
    (0x00bd, "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256"),
    (0x00be, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256"),
    (0x00bf, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256"),
    (0x00c0, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256"),
    (0x00c3, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256"),
    (0x00c4, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256"),
    (0x00c5, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256"),
    (0x00ff, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    (0x1304, "TLS_AES_128_CCM_SHA256"),
    (0x1305, "TLS_AES_128_CCM_8_SHA256"),
    (0x5600, "TLS_FALLBACK_SCSV"),
    (0xc001, "TLS_ECDH_ECDSA_WITH_NULL_SHA"),
    (0xc002, "TLS_ECDH_ECDSA_WITH_RC4_128_SHA"),
    (0xc003, "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc004, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc005, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA"),
    (0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"),
    (0xc008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc00b, "TLS_ECDH_RSA_WITH_NULL_SHA"),
    (0xc00c, "TLS_ECDH_RSA_WITH_RC4_128_SHA"),
    (0xc00d, "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc00e, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA"),
    (0xc00f, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA"),
    (0xc010, "TLS_ECDHE_RSA_WITH_NULL_SHA"),
    (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0xc015, "TLS_ECDH_anon_WITH_NULL_SHA"),
    (0xc016, "TLS_ECDH_anon_WITH_RC4_128_SHA"),
    (0xc017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA"),
    (0xc018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"),
    (0xc019, "TLS_ECDH_anon_WITH_AES_256_CBC_SHA"),
    (0xc01d, "TLS_SRP_SHA_WITH_AES_128_CBC_SHA"),
    (0xc01e, "TLS_SRP_SHA_RSA_WITH_AES_128_CBC_SHA"),
    (0xc01f, "TLS_SRP_SHA_DSS_WITH_AES_128_CBC_SHA"),
    (0xc020, "TLS_SRP_SHA_WITH_AES_256_CBC_SHA"),
    (0xc021, "TLS_SRP_SHA_RSA_WITH_AES_256_CBC_SHA"),
    (0xc022, "TLS_SRP_SHA_DSS_WITH_AES_256_CBC_SHA"),
    (0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xc025, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xc026, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    (0xc029, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256"),
    (0xc02a, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384"),
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xc02d, "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xc02e, "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xc031, "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256"),
    (0xc032, "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384"),
    (0xc035, "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA"),
    (0xc036, "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA"),
    (0xc037, "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"),
    (0xc038, "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA384"),
    (0xc039, "TLS_ECDHE_PSK_WITH_NULL_SHA"),
    (0xc03a, "TLS_ECDHE_PSK_WITH_NULL_SHA256"),
    (0xc03b, "TLS_ECDHE_PSK_WITH_NULL_SHA384"),
    (0xc050, "TLS_RSA_WITH_ARIA_128_GCM_SHA256"),
    (0xc051, "TLS_RSA_WITH_ARIA_256_GCM_SHA384"),
    (0xc052, "TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256"),
    (0xc053, "TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384"),
    (0xc056, "TLS_DHE_DSS_WITH_ARIA_128_GCM_SHA256"),
    (0xc057, "TLS_DHE_DSS_WITH_ARIA_256_GCM_SHA384"),
    (0xc05c, "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256"),
    (0xc05d, "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384"),
    (0xc060, "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256"),
    (0xc061, "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384"),
    (0xc06a, "TLS_PSK_WITH_ARIA_128_GCM_SHA256"),
    (0xc06b, "TLS_PSK_WITH_ARIA_256_GCM_SHA384"),
    (0xc06c, "TLS_DHE_PSK_WITH_ARIA_128_GCM_SHA256"),
    (0xc06d, "TLS_DHE_PSK_WITH_ARIA_256_GCM_SHA384"),
    (0xc06e, "TLS_RSA_PSK_WITH_ARIA_128_GCM_SHA256"),
    (0xc06f, "TLS_RSA_PSK_WITH_ARIA_256_GCM_SHA384"),
    (0xc072, "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256"),
    (0xc073, "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384"),
    (0xc076, "TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256"),
    (0xc077, "TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384"),
    (0xc094, "TLS_PSK_WITH_CAMELLIA_128_CBC_SHA256"),
    (0xc095, "TLS_PSK_WITH_CAMELLIA_256_CBC_SHA384"),
    (0xc096, "TLS_DHE_PSK_WITH_CAMELLIA_128_CBC_SHA256"),
    (0xc097, "TLS_DHE_PSK_WITH_CAMELLIA_256_CBC_SHA384"),
    (0xc098, "TLS_RSA_PSK_WITH_CAMELLIA_128_CBC_SHA256"),
    (0xc099, "TLS_RSA_PSK_WITH_CAMELLIA_256_CBC_SHA384"),
    (0xc09a, "TLS_ECDHE_PSK_WITH_CAMELLIA_128_CBC_SHA256"),
    (0xc09b, "TLS_ECDHE_PSK_WITH_CAMELLIA_256_CBC_SHA384"),
    (0xc09c, "TLS_RSA_WITH_AES_128_CCM"),
    (0xc09d, "TLS_RSA_WITH_AES_256_CCM"),
    (0xc09e, "TLS_DHE_RSA_WITH_AES_128_CCM"),
    (0xc09f, "TLS_DHE_RSA_WITH_AES_256_CCM"),
    (0xc0a0, "TLS_RSA_WITH_AES_128_CCM_8"),
    (0xc0a1, "TLS_RSA_WITH_AES_256_CCM_8"),
    (0xc0a2, "TLS_DHE_RSA_WITH_AES_128_CCM_8"),
    (0xc0a3, "TLS_DHE_RSA_WITH_AES_256_CCM_8"),
    (0xc0a4, "TLS_PSK_WITH_AES_128_CCM"),
    (0xc0a5, "TLS_PSK_WITH_AES_256_CCM"),
    (0xc0a6, "TLS_DHE_PSK_WITH_AES_128_CCM"),
    (0xc0a7, "TLS_DHE_PSK_WITH_AES_256_CCM"),
    (0xc0a8, "TLS_PSK_WITH_AES_128_CCM_8"),
    (0xc0a9, "TLS_PSK_WITH_AES_256_CCM_8"),
    (0xc0aa, "TLS_PSK_DHE_WITH_AES_128_CCM_8"),
    (0xc0ab, "TLS_PSK_DHE_WITH_AES_256_CCM_8"),
    (0xc0ac, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"),
    (0xc0ad, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM"),
    (0xc0ae, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
    (0xc0af, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8"),
    (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xccab, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    (0xccac, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    (0xccad, "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    (0xccae, "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256"),
];
