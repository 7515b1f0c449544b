//! The raw TLS hello codec (`proto/src/tls_hello.rs`) tested the three ways STYLE.md asks:
//! byte tables (the ClientHello decoded back by a small parser written here, independently of
//! the codec, and one whole hello written out byte by byte), every prefix of real server
//! flights recorded from `openssl s_server` on loopback (`tests/data/README.md` says how), and
//! bad input, plus property tests over arbitrary bytes and arbitrary record splits. The
//! cargo-fuzz target is `fuzz/fuzz_targets/tls_server_reply.rs`.

use proptest::prelude::*;
use sockeye_proto::tls_hello::{
    CIPHER_NAMES, EXT_EC_POINT_FORMATS, EXT_KEY_SHARE, EXT_PADDING, EXT_PSK_KEY_EXCHANGE_MODES,
    EXT_RENEGOTIATION_INFO, EXT_SERVER_NAME, EXT_SIGNATURE_ALGORITHMS, EXT_SUPPORTED_GROUPS,
    EXT_SUPPORTED_VERSIONS, HELLO_RETRY_RANDOM, HelloOptions, MAX_FLIGHT_LEN, MAX_HANDSHAKE_LEN,
    MAX_RECORD_LEN, MAX_WARNING_ALERTS, NOT_TLS_SHOWN, ServerHello, ServerReply, TlsHelloError,
    TlsVersion, alert_name, cipher_name, client_hello, decode_certificates, decode_server_reply,
    offered_ciphers, sni_host, version_name,
};

// ---------------------------------------------------------------------------------------
// Recorded replies (tests/data/README.md): SERVER-tlsNN.bin is what SERVER answered to our
// hello for TLS 1.N.

const TLS1_ONLY_10: &[u8] = include_bytes!("data/tls1-only-tls10.bin");
const TLS1_ONLY_11: &[u8] = include_bytes!("data/tls1-only-tls11.bin");
const TLS1_ONLY_12: &[u8] = include_bytes!("data/tls1-only-tls12.bin");
const TLS1_ONLY_13: &[u8] = include_bytes!("data/tls1-only-tls13.bin");
const TLS12_ONLY_10: &[u8] = include_bytes!("data/tls1_2-only-tls10.bin");
const TLS12_ONLY_11: &[u8] = include_bytes!("data/tls1_2-only-tls11.bin");
const TLS12_ONLY_12: &[u8] = include_bytes!("data/tls1_2-only-tls12.bin");
const TLS12_ONLY_13: &[u8] = include_bytes!("data/tls1_2-only-tls13.bin");
const TLS13_ONLY_10: &[u8] = include_bytes!("data/tls1_3-only-tls10.bin");
const TLS13_ONLY_11: &[u8] = include_bytes!("data/tls1_3-only-tls11.bin");
const TLS13_ONLY_12: &[u8] = include_bytes!("data/tls1_3-only-tls12.bin");
const TLS13_ONLY_13: &[u8] = include_bytes!("data/tls1_3-only-tls13.bin");
const TLS13_P256_13: &[u8] = include_bytes!("data/tls1_3-p256-only-tls13.bin");
const PYTHON_HTTP: &[u8] = include_bytes!("data/python-http-server-tls12.bin");
/// The certificate every s_server above used, as `openssl x509 -outform DER` wrote it.
const SERVER_CERT: &[u8] = include_bytes!("data/s_server-cert.der");

/// ServerHello record of the <= 1.2 flights: 5 + 89 bytes; their Certificate record: 5 + 791.
const HELLO_END: usize = 94;
const CERT_END: usize = 94 + 796;

fn hello(version: u16, cipher: u16, hello_retry: bool, extensions: &[u16]) -> ServerReply {
    ServerReply::Hello(ServerHello {
        version,
        cipher,
        hello_retry,
        extensions: extensions.to_vec(),
    })
}

const PROTOCOL_VERSION_ALERT: ServerReply = ServerReply::Alert {
    level: 2,
    description: 70,
};

type Recorded = (
    &'static str,
    &'static [u8],
    TlsVersion,
    ServerReply,
    usize,
    bool,
);

/// (name, bytes, offered, what decode_server_reply says and the bytes it took, whether the
/// reply accepts the offered version). Values read off the captures with an independent
/// Python decoder while recording.
fn recorded() -> Vec<Recorded> {
    use TlsVersion::*;
    // renegotiation_info, ec_point_formats: what OpenSSL answers a TLS 1.0-1.2 hello with.
    let old = [0xff01, 11];
    let alert = |name, bytes, offered| (name, bytes, offered, PROTOCOL_VERSION_ALERT, 7, false);
    vec![
        (
            "tls1-only/1.0",
            TLS1_ONLY_10,
            Tls10,
            hello(0x0301, 0xc014, false, &old),
            HELLO_END,
            true,
        ),
        // A pre-1.3 hello offers "up to" its version: the 1.0-only server answers 1.1 and 1.2
        // hellos with TLS 1.0, which is no acceptance of 1.1 or 1.2.
        (
            "tls1-only/1.1",
            TLS1_ONLY_11,
            Tls11,
            hello(0x0301, 0xc014, false, &old),
            HELLO_END,
            false,
        ),
        (
            "tls1-only/1.2",
            TLS1_ONLY_12,
            Tls12,
            hello(0x0301, 0xc014, false, &old),
            HELLO_END,
            false,
        ),
        alert("tls1-only/1.3", TLS1_ONLY_13, Tls13),
        alert("tls1_2-only/1.0", TLS12_ONLY_10, Tls10),
        alert("tls1_2-only/1.1", TLS12_ONLY_11, Tls11),
        (
            "tls1_2-only/1.2",
            TLS12_ONLY_12,
            Tls12,
            hello(0x0303, 0xc030, false, &old),
            HELLO_END,
            true,
        ),
        alert("tls1_2-only/1.3", TLS12_ONLY_13, Tls13),
        alert("tls1_3-only/1.0", TLS13_ONLY_10, Tls10),
        alert("tls1_3-only/1.1", TLS13_ONLY_11, Tls11),
        alert("tls1_3-only/1.2", TLS13_ONLY_12, Tls12),
        (
            "tls1_3-only/1.3",
            TLS13_ONLY_13,
            Tls13,
            hello(0x0304, 0x1301, false, &[43, 51]),
            127,
            true,
        ),
        // Our key share is X25519, the server wants P-256: a HelloRetryRequest, still a yes.
        (
            "tls1_3-p256-only/1.3",
            TLS13_P256_13,
            Tls13,
            hello(0x0304, 0x1301, true, &[43, 51]),
            93,
            true,
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// A ClientHello parser for the tests, written apart from the codec: plain indexing, every
// length checked against what encloses it.

#[derive(Debug)]
struct ParsedHello {
    record_version: u16,
    legacy_version: u16,
    random: [u8; 32],
    session_id: Vec<u8>,
    suites: Vec<u16>,
    compression: Vec<u8>,
    extensions: Vec<(u16, Vec<u8>)>,
    /// Length of the handshake message, header included.
    handshake_len: usize,
}

impl ParsedHello {
    fn ext(&self, ty: u16) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, d)| d.as_slice())
    }

    fn ext_types(&self) -> Vec<u16> {
        self.extensions.iter().map(|(t, _)| *t).collect()
    }
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(b[at]) << 8 | usize::from(b[at + 1])
}

fn parse_client_hello(rec: &[u8]) -> ParsedHello {
    assert_eq!(rec[0], 22, "handshake record");
    let record_version = be16(rec, 1) as u16;
    assert_eq!(be16(rec, 3), rec.len() - 5, "record length");
    let hs = &rec[5..];
    assert_eq!(hs[0], 1, "ClientHello");
    let hs_len = usize::from(hs[1]) << 16 | be16(hs, 2);
    assert_eq!(hs_len, hs.len() - 4, "handshake length");
    let b = &hs[4..];
    let legacy_version = be16(b, 0) as u16;
    let random: [u8; 32] = b[2..34].try_into().expect("32 bytes");
    let sid_len = usize::from(b[34]);
    let session_id = b[35..35 + sid_len].to_vec();
    let mut i = 35 + sid_len;
    let suites_len = be16(b, i);
    assert_eq!(suites_len % 2, 0);
    let suites = b[i + 2..i + 2 + suites_len]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    i += 2 + suites_len;
    let comp_len = usize::from(b[i]);
    let compression = b[i + 1..i + 1 + comp_len].to_vec();
    i += 1 + comp_len;
    let exts_len = be16(b, i);
    i += 2;
    assert_eq!(i + exts_len, b.len(), "extensions end the hello");
    let mut extensions = Vec::new();
    while i < b.len() {
        let ty = be16(b, i) as u16;
        let len = be16(b, i + 2);
        extensions.push((ty, b[i + 4..i + 4 + len].to_vec()));
        i += 4 + len;
    }
    assert_eq!(i, b.len());
    ParsedHello {
        record_version,
        legacy_version,
        random,
        session_id,
        suites,
        compression,
        extensions,
        handshake_len: hs.len(),
    }
}

fn opts(version: TlsVersion, server_name: Option<&str>) -> HelloOptions<'_> {
    HelloOptions {
        version,
        server_name,
        random: std::array::from_fn(|i| i as u8),
        session_id: std::array::from_fn(|i| 0xa0 + i as u8),
        key_share: std::array::from_fn(|i| 0x40 + i as u8),
    }
}

fn u16s(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// supported_groups: list length 6, x25519, secp256r1, secp384r1.
const GROUPS_EXT: [u8; 8] = [0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18];

const SIG_SCHEMES_13: [u16; 16] = [
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b, 0x0401,
    0x0501, 0x0601, 0x0201, 0x0203,
];

fn sig_algs_ext(schemes: &[u16]) -> Vec<u8> {
    let mut v = ((schemes.len() * 2) as u16).to_be_bytes().to_vec();
    v.extend(u16s(schemes));
    v
}

// ---------------------------------------------------------------------------------------
// ClientHello

#[test]
fn tls13_hello_byte_for_byte() {
    let mut o = opts(TlsVersion::Tls13, None);
    o.random = [0x11; 32];
    o.session_id = [0x22; 32];
    o.key_share = [0x33; 32];
    let mut want = vec![
        22, 0x03, 0x01, 0x00, 188, // record: handshake, 3.1, 188 bytes
        1, 0x00, 0x00, 184, // ClientHello, 184 bytes
        0x03, 0x03, // legacy_version: TLS 1.2
    ];
    want.extend([0x11; 32]); // random
    want.push(32); // session id
    want.extend([0x22; 32]);
    want.extend([0, 6, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03]); // three suites
    want.extend([1, 0]); // compression: null
    want.extend([0, 105]); // extensions, 105 bytes
    want.extend([0x00, 0x0a, 0, 8]); // supported_groups
    want.extend(GROUPS_EXT);
    want.extend([0x00, 0x0d, 0, 34, 0, 32]); // signature_algorithms, 16 schemes
    want.extend(u16s(&SIG_SCHEMES_13));
    want.extend([0x00, 0x2b, 0, 3, 2, 0x03, 0x04]); // supported_versions: TLS 1.3 only
    want.extend([0x00, 0x33, 0, 38, 0, 36, 0x00, 0x1d, 0, 32]); // key_share: x25519
    want.extend([0x33; 32]);
    want.extend([0x00, 0x2d, 0, 2, 1, 1]); // psk_key_exchange_modes: psk_dhe_ke
    assert_eq!(want.len(), 5 + 188);
    assert_eq!(client_hello(&o), want);
}

#[test]
fn every_version_offers_what_it_says() {
    let key_share: [u8; 32] = std::array::from_fn(|i| 0x40 + i as u8);
    for version in TlsVersion::ALL {
        let o = opts(version, Some("localhost"));
        let p = parse_client_hello(&client_hello(&o));
        let ctx = format!("{version}");
        assert_eq!(p.record_version, 0x0301, "{ctx}");
        let legacy = if version == TlsVersion::Tls13 {
            0x0303
        } else {
            version.wire()
        };
        assert_eq!(p.legacy_version, legacy, "{ctx}");
        assert_eq!(p.random, o.random, "{ctx}");
        assert_eq!(p.session_id, o.session_id, "{ctx}");
        assert_eq!(p.compression, [0], "{ctx}");
        assert_eq!(p.suites, offered_ciphers(version), "{ctx}");
        // SNI: list of 12 bytes, host_name (0), 9 bytes "localhost".
        let mut sni = vec![0, 12, 0, 0, 9];
        sni.extend(b"localhost");
        assert_eq!(p.ext(EXT_SERVER_NAME), Some(&sni[..]), "{ctx}");
        assert_eq!(p.ext(EXT_SUPPORTED_GROUPS), Some(&GROUPS_EXT[..]), "{ctx}");
        match version {
            TlsVersion::Tls10 | TlsVersion::Tls11 => {
                assert_eq!(p.ext_types(), [0, 10, 11, 0xff01], "{ctx}");
            }
            TlsVersion::Tls12 => {
                assert_eq!(p.ext_types(), [0, 10, 11, 13, 0xff01], "{ctx}");
                let mut schemes = SIG_SCHEMES_13.to_vec();
                schemes.push(0x0402); // dsa_sha256, TLS 1.2 only
                assert_eq!(
                    p.ext(EXT_SIGNATURE_ALGORITHMS),
                    Some(&sig_algs_ext(&schemes)[..])
                );
            }
            TlsVersion::Tls13 => {
                assert_eq!(p.ext_types(), [0, 10, 13, 43, 51, 45], "{ctx}");
                assert_eq!(
                    p.ext(EXT_SIGNATURE_ALGORITHMS),
                    Some(&sig_algs_ext(&SIG_SCHEMES_13)[..])
                );
                assert_eq!(p.ext(EXT_SUPPORTED_VERSIONS), Some(&[2, 3, 4][..]));
                let mut share = vec![0, 36, 0x00, 0x1d, 0, 32];
                share.extend(key_share);
                assert_eq!(p.ext(EXT_KEY_SHARE), Some(&share[..]));
                assert_eq!(p.ext(EXT_PSK_KEY_EXCHANGE_MODES), Some(&[1, 1][..]));
            }
        }
        if version != TlsVersion::Tls13 {
            assert_eq!(p.ext(EXT_EC_POINT_FORMATS), Some(&[1, 0][..]), "{ctx}");
            assert_eq!(p.ext(EXT_RENEGOTIATION_INFO), Some(&[0][..]), "{ctx}");
            assert_eq!(p.ext(EXT_SUPPORTED_VERSIONS), None, "{ctx}");
        }
    }
}

#[test]
fn suites_fit_the_version() {
    let name = |s: u16| cipher_name(s).unwrap_or_else(|| panic!("no name for {s:#06x}"));
    assert_eq!(offered_ciphers(TlsVersion::Tls13), [0x1301, 0x1302, 0x1303]);
    assert_eq!(
        offered_ciphers(TlsVersion::Tls10),
        offered_ciphers(TlsVersion::Tls11)
    );
    // Old servers need RSA key exchange and CBC: AES-CBC-SHA, 3DES and RC4 with RSA.
    for must in [
        0x002f, 0x0035, 0x000a, 0x0005, 0xc013, 0xc014, 0x0033, 0x0039,
    ] {
        for v in [TlsVersion::Tls10, TlsVersion::Tls11, TlsVersion::Tls12] {
            assert!(offered_ciphers(v).contains(&must), "{v} offers {must:#06x}");
        }
    }
    // TLS 1.2 leads with ECDHE AEAD suites and offers ChaCha20.
    let tls12 = offered_ciphers(TlsVersion::Tls12);
    for must in [0xc02b, 0xc02c, 0xc02f, 0xc030, 0xcca8, 0xcca9, 0x009c] {
        assert!(tls12.contains(&must), "1.2 offers {must:#06x}");
    }
    assert!(name(tls12[0]).starts_with("TLS_ECDHE_") && name(tls12[0]).contains("GCM"));
    // Nothing TLS 1.2-only (AEAD, SHA-2 MACs) in a 1.0 hello, no TLS 1.3 suite before 1.3.
    for s in offered_ciphers(TlsVersion::Tls10) {
        let n = name(*s);
        for only12 in ["GCM", "CHACHA", "SHA256", "SHA384", "CCM"] {
            assert!(!n.contains(only12), "{n} in a TLS 1.0 hello");
        }
    }
    for v in [TlsVersion::Tls10, TlsVersion::Tls11, TlsVersion::Tls12] {
        let suites = offered_ciphers(v);
        assert!(suites.iter().all(|s| s >> 8 != 0x13), "{v}");
        let mut unique = suites.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), suites.len(), "{v}: no suite twice");
        // No signalling suite: TLS_FALLBACK_SCSV would make a newer server refuse.
        assert!(
            !suites.contains(&0x5600) && !suites.contains(&0x00ff),
            "{v}"
        );
    }
}

#[test]
fn sni_is_left_out_for_addresses_and_odd_names() {
    let long = "a".repeat(254);
    let longest = format!("{}.b", "a".repeat(251));
    for name in [
        "127.0.0.1",
        "::1",
        "[::1]",
        "fe80::1%eth0",
        "",
        ".",
        "a b",
        "bücher.example",
        "host:443",
        long.as_str(),
    ] {
        assert_eq!(sni_host(name), None, "{name:?}");
        for version in TlsVersion::ALL {
            let p = parse_client_hello(&client_hello(&opts(version, Some(name))));
            assert_eq!(p.ext(EXT_SERVER_NAME), None, "{name:?} {version}");
        }
    }
    assert_eq!(sni_host("example.com."), Some("example.com"));
    assert_eq!(sni_host("_dmarc.x-y.example"), Some("_dmarc.x-y.example"));
    assert_eq!(sni_host(&longest), Some(longest.as_str()));
    let p = parse_client_hello(&client_hello(&opts(
        TlsVersion::Tls12,
        Some("example.com."),
    )));
    let mut sni = vec![0, 14, 0, 0, 11];
    sni.extend(b"example.com");
    assert_eq!(p.ext(EXT_SERVER_NAME), Some(&sni[..]));
    // No name at all: no SNI either.
    let p = parse_client_hello(&client_hello(&opts(TlsVersion::Tls12, None)));
    assert_eq!(p.ext_types(), [10, 11, 13, 0xff01]);
}

/// Hellos of 256 to 511 bytes are padded (the F5 workaround); none other is.
#[test]
fn padding_keeps_the_hello_out_of_256_to_511_bytes() {
    let mut padded = 0;
    for version in TlsVersion::ALL {
        for len in 0..=253 {
            let name = "a".repeat(len);
            let bytes = client_hello(&opts(version, Some(&name)));
            let p = parse_client_hello(&bytes);
            let ctx = format!("{version} name of {len} bytes");
            assert!(!(256..512).contains(&p.handshake_len), "{ctx}");
            let Some(pad) = p.ext(EXT_PADDING) else {
                continue;
            };
            padded += 1;
            assert_eq!(
                p.ext_types().last(),
                Some(&EXT_PADDING),
                "{ctx}: padding last"
            );
            assert!(pad.iter().all(|&b| b == 0), "{ctx}");
            assert!(!pad.is_empty(), "{ctx}");
            // Without the padding it would have been 256..512; with it, exactly 512
            // unless that left no room for a non-empty extension.
            let unpadded = p.handshake_len - 4 - pad.len();
            assert!((256..512).contains(&unpadded), "{ctx}");
            if unpadded <= 507 {
                assert_eq!(p.handshake_len, 512, "{ctx}");
            } else {
                assert_eq!(pad.len(), 1, "{ctx}");
            }
        }
    }
    assert!(
        padded > 100,
        "the range was reached ({padded} padded hellos)"
    );
}

#[test]
fn hello_is_deterministic_and_uses_only_the_given_bytes() {
    for version in TlsVersion::ALL {
        let a = opts(version, Some("example.org"));
        assert_eq!(client_hello(&a), client_hello(&a));
        let mut b = a;
        b.random[5] ^= 0xff;
        b.session_id[7] ^= 0xff;
        b.key_share[9] ^= 0xff;
        let (x, y) = (client_hello(&a), client_hello(&b));
        assert_eq!(x.len(), y.len());
        let differ: Vec<usize> = (0..x.len()).filter(|&i| x[i] != y[i]).collect();
        // Record 5 + handshake 4 + version 2: random at 11, session id after its length.
        let mut want = vec![11 + 5, 11 + 33 + 7];
        if version == TlsVersion::Tls13 {
            // The key share is the last 32 bytes before psk_key_exchange_modes (6 bytes).
            want.push(x.len() - 6 - 32 + 9);
        }
        assert_eq!(differ, want, "{version}");
    }
}

#[test]
fn versions_and_names() {
    use TlsVersion::*;
    let table = [
        (Tls10, 0x0301, "TLSv1.0"),
        (Tls11, 0x0302, "TLSv1.1"),
        (Tls12, 0x0303, "TLSv1.2"),
        (Tls13, 0x0304, "TLSv1.3"),
    ];
    for (v, wire, name) in table {
        assert_eq!(v.wire(), wire);
        assert_eq!(v.to_string(), name);
        assert_eq!(TlsVersion::from_wire(wire), Some(v));
        assert_eq!(version_name(wire), Some(name));
    }
    assert_eq!(TlsVersion::ALL, [Tls10, Tls11, Tls12, Tls13]);
    assert!(Tls10 < Tls13);
    assert_eq!(version_name(0x0300), Some("SSLv3"));
    assert_eq!(version_name(0x0305), None);
    assert_eq!(version_name(0x0002), None);
    assert_eq!(TlsVersion::from_wire(0x0300), None);

    assert_eq!(
        cipher_name(0xc02f),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
    assert_eq!(cipher_name(0x1302), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(cipher_name(0x000a), Some("TLS_RSA_WITH_3DES_EDE_CBC_SHA"));
    assert_eq!(
        cipher_name(0xcca8),
        Some("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")
    );
    assert_eq!(cipher_name(0x0a0a), None, "GREASE");
    assert_eq!(cipher_name(0xffff), None);
    for w in CIPHER_NAMES.windows(2) {
        assert!(w[0].0 < w[1].0, "sorted, no duplicate: {:#06x}", w[1].0);
    }
    for (code, name) in CIPHER_NAMES {
        assert_eq!(cipher_name(*code), Some(*name));
        assert!(name.starts_with("TLS_"), "{name}");
    }
    for version in TlsVersion::ALL {
        for s in offered_ciphers(version) {
            assert!(cipher_name(*s).is_some(), "{s:#06x} offered but unnamed");
        }
    }

    assert_eq!(alert_name(40), "handshake_failure");
    assert_eq!(alert_name(70), "protocol_version");
    assert_eq!(alert_name(71), "insufficient_security");
    assert_eq!(alert_name(112), "unrecognized_name");
    assert_eq!(alert_name(0), "close_notify");
    assert_eq!(alert_name(255), "unknown");
}

// ---------------------------------------------------------------------------------------
// Recorded server replies

#[test]
fn recorded_replies_decode_to_what_the_servers_said() {
    for (name, bytes, offered, want, len, accepted) in recorded() {
        let got = decode_server_reply(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, Some((want.clone(), len)), "{name}");
        assert_eq!(want.accepts(offered), accepted, "{name}");
        for other in TlsVersion::ALL.into_iter().filter(|v| *v != offered) {
            let same_version = matches!(&want, ServerReply::Hello(h) if h.version == other.wire());
            assert_eq!(want.accepts(other), same_version, "{name} vs {other}");
        }
    }
}

#[test]
fn recorded_certificates_are_the_server_certificate() {
    for bytes in [TLS1_ONLY_10, TLS1_ONLY_11, TLS1_ONLY_12, TLS12_ONLY_12] {
        assert_eq!(
            decode_certificates(bytes),
            Ok(Some((vec![SERVER_CERT.to_vec()], CERT_END)))
        );
    }
    for bytes in [TLS13_ONLY_13, TLS13_P256_13] {
        assert_eq!(
            decode_certificates(bytes),
            Err(TlsHelloError::CertificateEncrypted { version: 0x0304 })
        );
    }
    assert_eq!(
        decode_certificates(TLS1_ONLY_13),
        Err(TlsHelloError::Alert {
            level: 2,
            description: 70
        })
    );
}

#[test]
fn every_prefix_of_the_recorded_replies() {
    for (name, bytes, _, want, len, _) in recorded() {
        let certs = decode_certificates(bytes);
        let certs_at = if matches!(certs, Ok(Some(_))) {
            CERT_END
        } else {
            len
        };
        for k in 0..=bytes.len() {
            let prefix = &bytes[..k];
            let got = decode_server_reply(prefix);
            if k < len {
                assert_eq!(got, Ok(None), "{name} prefix {k}");
            } else {
                assert_eq!(got, Ok(Some((want.clone(), len))), "{name} prefix {k}");
            }
            let got = decode_certificates(prefix);
            if k < certs_at {
                assert_eq!(got, Ok(None), "{name} certificates, prefix {k}");
            } else {
                assert_eq!(got, certs, "{name} certificates, prefix {k}");
            }
        }
    }
}

#[test]
fn a_python_http_server_is_not_tls_from_its_first_byte() {
    assert_eq!(decode_server_reply(&PYTHON_HTTP[..0]), Ok(None));
    for k in 1..=PYTHON_HTTP.len() {
        let shown = PYTHON_HTTP[..k.min(NOT_TLS_SHOWN)]
            .escape_ascii()
            .to_string();
        let want = TlsHelloError::NotTls { first_bytes: shown };
        assert_eq!(
            decode_server_reply(&PYTHON_HTTP[..k]),
            Err(want.clone()),
            "prefix {k}"
        );
        assert_eq!(
            decode_certificates(&PYTHON_HTTP[..k]),
            Err(want),
            "prefix {k}"
        );
    }
    let err = decode_server_reply(PYTHON_HTTP).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"not a TLS reply: "<!DOCTYPE HTML>\n<html lang=\"en\">""#
    );
}

/// The handshake bytes of a recorded flight, re-framed into records of `size` bytes:
/// messages split across records, or several in one.
fn reframe(flight: &[u8], size: usize) -> (Vec<u8>, Vec<usize>) {
    let mut handshake = Vec::new();
    let mut i = 0;
    while i < flight.len() {
        let len = be16(flight, i + 3);
        assert_eq!(flight[i], 22, "only handshake records");
        handshake.extend_from_slice(&flight[i + 5..i + 5 + len]);
        i += 5 + len;
    }
    let mut out = Vec::new();
    let mut ends = Vec::new(); // (handshake bytes so far, wire bytes so far) per record
    let mut fed = 0;
    for chunk in handshake.chunks(size) {
        out.extend([22, 3, 1]);
        out.extend((chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
        fed += chunk.len();
        ends.push((fed, out.len()));
    }
    // Where the ServerHello (4 + 85 bytes) and the Certificate (4 + 787) are complete.
    let done = |hs: usize| {
        ends.iter()
            .find(|(f, _)| *f >= hs)
            .expect("in the flight")
            .1
    };
    (out, vec![done(89), done(89 + 791)])
}

#[test]
fn records_of_any_size_give_the_same_answer() {
    let want_hello = hello(0x0301, 0xc014, false, &[0xff01, 11]);
    let certs = vec![SERVER_CERT.to_vec()];
    // Sizes 1 to the whole flight in one record, the recorded order of messages kept.
    for size in 1..=1200 {
        let (bytes, ends) = reframe(TLS1_ONLY_10, size);
        assert_eq!(
            decode_server_reply(&bytes),
            Ok(Some((want_hello.clone(), ends[0]))),
            "records of {size}"
        );
        assert_eq!(
            decode_certificates(&bytes),
            Ok(Some((certs.clone(), ends[1]))),
            "records of {size}"
        );
    }
    // And every prefix for a few framings.
    for size in [1, 3, 88, 89, 90, 4096] {
        let (bytes, ends) = reframe(TLS1_ONLY_10, size);
        for k in 0..=bytes.len() {
            let hello_now = decode_server_reply(&bytes[..k]);
            let certs_now = decode_certificates(&bytes[..k]);
            let ctx = format!("records of {size}, prefix {k}");
            assert_eq!(hello_now.unwrap().is_some(), k >= ends[0], "{ctx}");
            assert_eq!(certs_now.unwrap().is_some(), k >= ends[1], "{ctx}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bad and odd input

/// A record of `content_type` around `fragment`.
fn record(content_type: u8, fragment: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type, 3, 3];
    r.extend((fragment.len() as u16).to_be_bytes());
    r.extend_from_slice(fragment);
    r
}

/// A handshake message of `msg_type` around `body`.
fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    let mut m = vec![msg_type, len[1], len[2], len[3]];
    m.extend_from_slice(body);
    m
}

/// A ServerHello body: version, random, session id, suite, null compression, then `tail`
/// (the extensions block with its length, or nothing).
fn server_hello_body(version: u16, random: [u8; 32], sid: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend(random);
    b.push(sid.len() as u8);
    b.extend_from_slice(sid);
    b.extend([0xc0, 0x2f, 0]);
    b.extend_from_slice(tail);
    b
}

fn extensions(exts: &[(u16, &[u8])]) -> Vec<u8> {
    let mut inner = Vec::new();
    for (t, d) in exts {
        inner.extend(t.to_be_bytes());
        inner.extend((d.len() as u16).to_be_bytes());
        inner.extend_from_slice(d);
    }
    let mut out = (inner.len() as u16).to_be_bytes().to_vec();
    out.extend(inner);
    out
}

fn server_hello_record(body: &[u8]) -> Vec<u8> {
    record(22, &message(2, body))
}

fn malformed(message: &'static str, problem: &'static str) -> TlsHelloError {
    TlsHelloError::Malformed { message, problem }
}

fn not_tls(shown: &str) -> TlsHelloError {
    TlsHelloError::NotTls {
        first_bytes: shown.to_owned(),
    }
}

#[test]
fn server_hello_variants() {
    // No extensions at all, as SSLv3 and early TLS servers send.
    let bare = server_hello_record(&server_hello_body(0x0300, [7; 32], &[], &[]));
    let want = ServerHello {
        version: 0x0300,
        cipher: 0xc02f,
        hello_retry: false,
        extensions: vec![],
    };
    assert_eq!(
        decode_server_reply(&bare),
        Ok(Some((ServerReply::Hello(want.clone()), bare.len())))
    );
    assert_eq!(want.tls_version(), None);
    // An empty extensions block.
    let empty = server_hello_record(&server_hello_body(0x0303, [7; 32], &[1; 32], &[0, 0]));
    let Ok(Some((ServerReply::Hello(h), _))) = decode_server_reply(&empty) else {
        panic!("empty extensions");
    };
    assert_eq!((h.version, h.extensions.len()), (0x0303, 0));
    assert_eq!(h.tls_version(), Some(TlsVersion::Tls12));
    // supported_versions wins over legacy_version; unknown extensions are listed.
    let exts = extensions(&[(0x1234, b"xyz"), (43, &[3, 4]), (0xff01, &[0])]);
    let b = server_hello_record(&server_hello_body(0x0303, HELLO_RETRY_RANDOM, &[], &exts));
    let Ok(Some((ServerReply::Hello(h), n))) = decode_server_reply(&b) else {
        panic!("supported_versions");
    };
    assert_eq!(n, b.len());
    assert_eq!(
        h,
        ServerHello {
            version: 0x0304,
            cipher: 0xc02f,
            hello_retry: true,
            extensions: vec![0x1234, 43, 0xff01],
        }
    );
    // A HelloRetryRequest is "accepted" but carries no certificate.
    assert!(ServerReply::Hello(h).accepts(TlsVersion::Tls13));
    assert_eq!(
        decode_certificates(&b),
        Err(TlsHelloError::CertificateEncrypted { version: 0x0304 })
    );
}

#[test]
fn malformed_server_hellos() {
    let sh = "ServerHello";
    let cases: Vec<(&str, Vec<u8>, TlsHelloError)> = vec![
        (
            "body ends inside the random",
            server_hello_record(&[3, 3, 1, 2, 3]),
            malformed(sh, "truncated"),
        ),
        (
            "empty body",
            server_hello_record(&[]),
            malformed(sh, "truncated"),
        ),
        (
            "version 2.0",
            server_hello_record(&server_hello_body(0x0200, [0; 32], &[], &[])),
            malformed(sh, "version is not 3.x"),
        ),
        (
            "33-byte session id",
            server_hello_record(&server_hello_body(0x0303, [0; 32], &[0; 33], &[])),
            malformed(sh, "session id longer than 32 bytes"),
        ),
        (
            "a lone byte after the compression method",
            server_hello_record(&server_hello_body(0x0303, [0; 32], &[], &[0])),
            malformed(sh, "truncated"),
        ),
        (
            "extensions block longer than the message",
            server_hello_record(&server_hello_body(
                0x0303,
                [0; 32],
                &[],
                &[0, 9, 0xff, 1, 0, 1],
            )),
            malformed(sh, "truncated"),
        ),
        (
            "bytes after the extensions",
            server_hello_record(&server_hello_body(0x0303, [0; 32], &[], &[0, 0, 0])),
            malformed(sh, "trailing bytes"),
        ),
        (
            "extension data longer than its block",
            server_hello_record(&server_hello_body(
                0x0303,
                [0; 32],
                &[],
                &[0, 5, 0xff, 1, 0, 2, 0],
            )),
            malformed(sh, "truncated"),
        ),
        (
            "duplicate extension",
            server_hello_record(&server_hello_body(
                0x0303,
                [0; 32],
                &[],
                &extensions(&[(0xff01, &[0]), (0xff01, &[0])]),
            )),
            malformed(sh, "duplicate extension"),
        ),
        (
            "supported_versions of 3 bytes",
            server_hello_record(&server_hello_body(
                0x0303,
                [0; 32],
                &[],
                &extensions(&[(43, &[3, 4, 0])]),
            )),
            malformed(sh, "trailing bytes"),
        ),
        (
            "supported_versions of 1 byte",
            server_hello_record(&server_hello_body(
                0x0303,
                [0; 32],
                &[],
                &extensions(&[(43, &[3])]),
            )),
            malformed(sh, "truncated"),
        ),
    ];
    for (what, bytes, err) in cases {
        assert_eq!(decode_server_reply(&bytes), Err(err.clone()), "{what}");
        assert_eq!(decode_certificates(&bytes), Err(err), "{what}");
    }
}

#[test]
fn bad_records_and_other_protocols() {
    let long_banner = b"220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n";
    let cases: Vec<(&str, Vec<u8>, TlsHelloError)> = vec![
        (
            "HTTP",
            b"HTTP/1.1 400 Bad Request\r\n".to_vec(),
            not_tls(r"HTTP/1.1 400 Bad Request\r\n"),
        ),
        (
            "SMTP, cut at 32 bytes",
            long_banner.to_vec(),
            not_tls("220 mail.example.org ESMTP Postf"),
        ),
        (
            "SSH",
            b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec(),
            not_tls(r"SSH-2.0-OpenSSH_9.2p1\r\n"),
        ),
        (
            "an SSLv2 record",
            vec![0x80, 0x2e, 0x04, 0x00, 0x01],
            not_tls(r"\x80.\x04\x00\x01"),
        ),
        ("content type 24", vec![24], not_tls(r"\x18")),
        ("record version 2.x", vec![22, 2], not_tls(r"\x16\x02")),
        (
            "record version 3.5",
            vec![22, 3, 5],
            not_tls(r"\x16\x03\x05"),
        ),
        (
            "record one byte over the cap",
            vec![22, 3, 3, 0x48, 0x01],
            TlsHelloError::RecordTooLong {
                len: MAX_RECORD_LEN + 1,
            },
        ),
        (
            "handshake message one byte over the cap",
            record(22, &[2, 0x04, 0x00, 0x01]),
            TlsHelloError::HandshakeTooLong {
                len: MAX_HANDSHAKE_LEN + 1,
            },
        ),
        (
            "a 16 MiB handshake message",
            record(22, &[2, 0xff, 0xff, 0xff]),
            TlsHelloError::HandshakeTooLong { len: 0xff_ffff },
        ),
        (
            "empty handshake record",
            record(22, &[]),
            malformed("handshake record", "empty"),
        ),
        (
            "alert of 3 bytes",
            record(21, &[2, 40, 0]),
            malformed("alert", "not 2 bytes long"),
        ),
        (
            "alert of 1 byte",
            record(21, &[2]),
            malformed("alert", "not 2 bytes long"),
        ),
        (
            "application data first",
            record(23, &[0; 16]),
            TlsHelloError::UnexpectedRecord { content_type: 23 },
        ),
        (
            "ChangeCipherSpec first",
            record(20, &[1]),
            TlsHelloError::UnexpectedRecord { content_type: 20 },
        ),
        (
            "ChangeCipherSpec of value 2",
            record(20, &[2]),
            malformed("ChangeCipherSpec", "not the single byte 1"),
        ),
        (
            "a Certificate before any ServerHello",
            record(22, &message(11, &[0, 0, 0])),
            TlsHelloError::UnexpectedMessage { msg_type: 11 },
        ),
        (
            "a ClientHello echoed back",
            client_hello(&opts(TlsVersion::Tls12, None)),
            TlsHelloError::UnexpectedMessage { msg_type: 1 },
        ),
        (
            "garbage where the second record starts",
            [record(22, &[2, 0, 0, 80]), b"HTTP".to_vec()].concat(),
            TlsHelloError::BadRecordHeader { offset: 9 },
        ),
    ];
    for (what, bytes, err) in cases {
        assert_eq!(decode_server_reply(&bytes), Err(err.clone()), "{what}");
        assert!(!err.to_string().is_empty());
    }
    // At the caps exactly: still waiting for more, not an error.
    assert_eq!(decode_server_reply(&[22, 3, 3, 0x48, 0x00]), Ok(None));
    assert_eq!(
        decode_server_reply(&record(22, &[2, 0x04, 0x00, 0x00])),
        Ok(None)
    );
    // Alerts of any level or description come back as they are.
    // (Warnings other than close_notify are skipped: see the next test.)
    for (level, description) in [(1, 0), (2, 40), (2, 71), (2, 112), (9, 255)] {
        let alert = record(21, &[level, description]);
        let want = ServerReply::Alert { level, description };
        assert_eq!(decode_server_reply(&alert), Ok(Some((want.clone(), 7))));
        assert!(!want.accepts(TlsVersion::Tls12));
    }
}

/// Old Apache sends a warning `unrecognized_name` for a host name it does not serve, then
/// its ServerHello: the warning is no answer.
#[test]
fn warning_alerts_are_skipped_up_to_the_cap() {
    let warning = record(21, &[1, 112]);
    let want = hello(0x0301, 0xc014, false, &[0xff01, 11]);
    let certs = vec![SERVER_CERT.to_vec()];
    for n in 1..=MAX_WARNING_ALERTS {
        let bytes = [warning.repeat(n), TLS1_ONLY_10.to_vec()].concat();
        let skipped = 7 * n;
        for k in 0..=bytes.len() {
            let ctx = format!("{n} warnings, prefix {k}");
            let reply = decode_server_reply(&bytes[..k]);
            if k < skipped + HELLO_END {
                assert_eq!(reply, Ok(None), "{ctx}");
            } else {
                assert_eq!(
                    reply,
                    Ok(Some((want.clone(), skipped + HELLO_END))),
                    "{ctx}"
                );
            }
        }
        assert_eq!(
            decode_certificates(&bytes),
            Ok(Some((certs.clone(), skipped + CERT_END)))
        );
    }
    // One more than the cap: the last warning is the answer.
    let bytes = [
        warning.repeat(MAX_WARNING_ALERTS + 1),
        TLS1_ONLY_10.to_vec(),
    ]
    .concat();
    let alert = ServerReply::Alert {
        level: 1,
        description: 112,
    };
    let at = 7 * (MAX_WARNING_ALERTS + 1);
    assert_eq!(decode_server_reply(&bytes), Ok(Some((alert, at))));
    // A warning, then a fatal alert; close_notify even as a warning is an answer.
    let bytes = [warning.clone(), record(21, &[2, 40])].concat();
    assert_eq!(
        decode_server_reply(&bytes),
        Ok(Some((
            ServerReply::Alert {
                level: 2,
                description: 40
            },
            14
        )))
    );
    let bytes = [warning.clone(), record(21, &[1, 0])].concat();
    assert_eq!(
        decode_server_reply(&bytes),
        Ok(Some((
            ServerReply::Alert {
                level: 1,
                description: 0
            },
            14
        )))
    );
    // A warning between the ServerHello and the Certificate records.
    let mut bytes = TLS1_ONLY_10[..HELLO_END].to_vec();
    bytes.extend(&warning);
    bytes.extend(&TLS1_ONLY_10[HELLO_END..]);
    assert_eq!(decode_certificates(&bytes), Ok(Some((certs, CERT_END + 7))));
}

/// A server that splits a handshake message into 1-byte records is refused once it has
/// sent [`MAX_FLIGHT_LEN`] bytes, not when the message ends.
#[test]
fn tiny_records_are_bounded_by_the_flight_cap() {
    let msg = message(2, &vec![0; MAX_HANDSHAKE_LEN]);
    let mut bytes = Vec::with_capacity(msg.len() * 6);
    for b in &msg {
        bytes.extend(record(22, &[*b]));
    }
    assert!(bytes.len() > MAX_FLIGHT_LEN);
    assert_eq!(
        decode_server_reply(&bytes),
        Err(TlsHelloError::FlightTooLong)
    );
    // Decided on the header of the record that would cross the cap: 174,762 records of 6
    // bytes end at 1,048,572, so the next header is whole 1 byte past the cap.
    let whole_records = MAX_FLIGHT_LEN / 6 * 6;
    assert_eq!(decode_server_reply(&bytes[..whole_records + 4]), Ok(None));
    assert_eq!(
        decode_server_reply(&bytes[..whole_records + 5]),
        Err(TlsHelloError::FlightTooLong)
    );
}

/// A ServerHello for TLS 1.2 followed by `next`.
fn after_tls12_hello(next: &[u8]) -> Vec<u8> {
    let mut b = server_hello_record(&server_hello_body(0x0303, [9; 32], &[], &[0, 0]));
    b.extend_from_slice(next);
    b
}

/// A Certificate body: a 24-bit list length, then each certificate with its 24-bit length.
fn certificate_body(certs: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend(&(c.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend(list);
    body
}

#[test]
fn certificate_messages() {
    let c = "Certificate";
    // A chain of three, in order; a ServerHelloDone in the same record does not matter.
    let chain: [&[u8]; 3] = [b"\x30\x03leaf", b"\x30\x01i", b"\x30\x02ca"];
    let mut hs = message(11, &certificate_body(&chain));
    hs.extend(message(14, &[]));
    let bytes = after_tls12_hello(&record(22, &hs));
    let want: Vec<Vec<u8>> = chain.iter().map(|c| c.to_vec()).collect();
    assert_eq!(decode_certificates(&bytes), Ok(Some((want, bytes.len()))));
    // An empty list is well-formed (the codec does not judge it).
    let bytes = after_tls12_hello(&record(22, &message(11, &certificate_body(&[]))));
    assert_eq!(decode_certificates(&bytes), Ok(Some((vec![], bytes.len()))));

    let cases: Vec<(&str, Vec<u8>, TlsHelloError)> = vec![
        (
            "an empty certificate",
            after_tls12_hello(&record(22, &message(11, &certificate_body(&[b"x", b""])))),
            malformed(c, "empty certificate"),
        ),
        (
            "list longer than the message",
            after_tls12_hello(&record(22, &message(11, &[0, 0, 9, 0, 0, 1, 0x30]))),
            malformed(c, "truncated"),
        ),
        (
            "certificate longer than the list",
            after_tls12_hello(&record(22, &message(11, &[0, 0, 4, 0, 0, 2, 0x30]))),
            malformed(c, "truncated"),
        ),
        (
            "bytes after the list",
            after_tls12_hello(&record(22, &message(11, &[0, 0, 0, 0]))),
            malformed(c, "trailing bytes"),
        ),
        (
            "anonymous: ServerKeyExchange next",
            after_tls12_hello(&record(22, &message(12, &[3, 0, 0x1d, 0]))),
            TlsHelloError::NoCertificate { msg_type: 12 },
        ),
        (
            "ServerHelloDone next",
            after_tls12_hello(&record(22, &message(14, &[]))),
            TlsHelloError::NoCertificate { msg_type: 14 },
        ),
        (
            "resumed: ChangeCipherSpec next",
            after_tls12_hello(&record(20, &[1])),
            TlsHelloError::NoCertificate { msg_type: 0 },
        ),
        (
            "an alert after the ServerHello",
            after_tls12_hello(&record(21, &[2, 40])),
            TlsHelloError::Alert {
                level: 2,
                description: 40,
            },
        ),
        (
            "a second ServerHello",
            after_tls12_hello(&server_hello_record(&server_hello_body(
                0x0303,
                [9; 32],
                &[],
                &[],
            ))),
            TlsHelloError::UnexpectedMessage { msg_type: 2 },
        ),
        (
            "application data",
            after_tls12_hello(&record(23, &[0; 8])),
            TlsHelloError::UnexpectedRecord { content_type: 23 },
        ),
        (
            "garbage after the ServerHello record",
            after_tls12_hello(b"\r\n"),
            TlsHelloError::BadRecordHeader { offset: 49 },
        ),
    ];
    for (what, bytes, err) in cases {
        assert_eq!(decode_certificates(&bytes), Err(err), "{what}");
        // The ServerHello alone is fine for a version probe.
        assert!(
            matches!(
                decode_server_reply(&bytes),
                Ok(Some((ServerReply::Hello(_), 49)))
            ),
            "{what}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Properties

/// The decoders' contract on any bytes: no panic; an answer holds for every longer buffer
/// (the bytes after it do not matter), and the bytes it took are enough for it.
fn check_contract(bytes: &[u8], extra: &[u8]) {
    let longer = [bytes, extra].concat();
    match decode_server_reply(bytes) {
        Ok(None) => {}
        Ok(Some((reply, n))) => {
            assert!(n <= bytes.len());
            assert_eq!(
                decode_server_reply(&bytes[..n]),
                Ok(Some((reply.clone(), n)))
            );
            assert_eq!(decode_server_reply(&longer), Ok(Some((reply, n))));
        }
        Err(TlsHelloError::NotTls { .. }) => {
            // The shown bytes grow with the buffer; the verdict does not.
            assert!(matches!(
                decode_server_reply(&longer),
                Err(TlsHelloError::NotTls { .. })
            ));
        }
        Err(e) => assert_eq!(decode_server_reply(&longer), Err(e)),
    }
    match decode_certificates(bytes) {
        Ok(None) => {}
        Ok(Some((certs, n))) => {
            assert!(n <= bytes.len());
            assert!(certs.iter().all(|c| !c.is_empty()));
            assert_eq!(decode_certificates(&longer), Ok(Some((certs, n))));
        }
        Err(TlsHelloError::NotTls { .. }) => {}
        Err(e) => assert_eq!(decode_certificates(&longer), Err(e)),
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_keep_the_contract(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        extra in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        check_contract(&bytes, &extra);
    }

    /// Arbitrary bytes after a valid record header: the header passes, the rest is random.
    #[test]
    fn arbitrary_records_keep_the_contract(
        content_type in 20u8..24,
        body in proptest::collection::vec(any::<u8>(), 0..300),
        extra in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        check_contract(&record(content_type, &body), &extra);
    }

    /// A recorded flight with one byte changed still keeps the contract.
    #[test]
    fn mutated_flights_keep_the_contract(at in 0usize..1202, value: u8, cut in 0usize..1203) {
        let mut bytes = TLS1_ONLY_10.to_vec();
        bytes[at] = value;
        check_contract(&bytes[..cut.min(bytes.len())], &bytes[cut.min(bytes.len())..]);
    }

    /// The recorded TLS 1.2 flight, re-framed at random record sizes, decodes the same.
    #[test]
    fn random_reframing_decodes_the_same(sizes in proptest::collection::vec(1usize..900, 1..40)) {
        let mut handshake = Vec::new();
        let mut i = 0;
        while i < TLS12_ONLY_12.len() {
            let len = be16(TLS12_ONLY_12, i + 3);
            handshake.extend_from_slice(&TLS12_ONLY_12[i + 5..i + 5 + len]);
            i += 5 + len;
        }
        let mut bytes = Vec::new();
        let mut rest = &handshake[..];
        let mut k = 0;
        while !rest.is_empty() {
            let n = sizes[k % sizes.len()].min(rest.len());
            bytes.extend(record(22, &rest[..n]));
            rest = &rest[n..];
            k += 1;
        }
        let want = hello(0x0303, 0xc030, false, &[0xff01, 11]);
        let got = decode_server_reply(&bytes).unwrap().unwrap();
        prop_assert_eq!(got.0, want);
        let (certs, _) = decode_certificates(&bytes).unwrap().unwrap();
        prop_assert_eq!(certs, vec![SERVER_CERT.to_vec()]);
    }
}
