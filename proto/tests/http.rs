//! HTTP heads (`proto/src/http.rs`): response heads of real servers (nginx, Apache, CUPS)
//! and request heads both ways, every prefix, folding, bad start lines and headers, the caps,
//! and the exact HEAD request a prober sends (IPv6 brackets, injection escaped).

use sockeye_proto::http::{
    HttpError, MAX_HEAD_BYTES, MAX_HEADERS, RequestHead, ResponseHead, decode_request_head,
    decode_response_head, head_request,
};

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn resp(version: &str, status: u16, reason: &str, headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead {
        version: version.to_owned(),
        status,
        reason: reason.to_owned(),
        headers: h(headers),
    }
}

fn response_table() -> Vec<(&'static [u8], ResponseHead)> {
    vec![
        (
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 23:00:00 GMT\r\n\
              Content-Type: text/html\r\nContent-Length: 615\r\nConnection: close\r\n\r\n",
            resp(
                "HTTP/1.1",
                200,
                "OK",
                &[
                    ("Server", "nginx/1.22.1"),
                    ("Date", "Sat, 28 Nov 2026 23:00:00 GMT"),
                    ("Content-Type", "text/html"),
                    ("Content-Length", "615"),
                    ("Connection", "close"),
                ],
            ),
        ),
        (
            b"HTTP/1.1 404 Not Found\r\nServer: Apache/2.4.62 (Debian)\r\n\r\n",
            resp("HTTP/1.1", 404, "Not Found", &[("Server", "Apache/2.4.62 (Debian)")]),
        ),
        (
            b"HTTP/1.0 301 Moved Permanently\nLocation: https://lab.test/\n\n",
            resp(
                "HTTP/1.0",
                301,
                "Moved Permanently",
                &[("Location", "https://lab.test/")],
            ),
        ),
        // An empty reason, a missing reason, no headers, odd spacing around values.
        (b"HTTP/1.1 204 \r\n\r\n", resp("HTTP/1.1", 204, "", &[])),
        (b"HTTP/1.1 426\r\nUpgrade: TLS/1.2\r\n\r\n", resp("HTTP/1.1", 426, "", &[("Upgrade", "TLS/1.2")])),
        (
            b"HTTP/1.1 500 Internal  Server Error\r\nX-A:no-space\r\nX-B: \t padded \t\r\nX-C:\r\n\r\n",
            resp(
                "HTTP/1.1",
                500,
                "Internal  Server Error",
                &[("X-A", "no-space"), ("X-B", "padded"), ("X-C", "")],
            ),
        ),
        // Obsolete folding joins with one space.
        (
            b"HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\n\tthree\r\n\r\n",
            resp("HTTP/1.1", 200, "OK", &[("X-Long", "one two three")]),
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\n", resp("HTTP/1.1", 100, "Continue", &[])),
    ]
}

#[test]
fn response_heads() {
    for (bytes, want) in response_table() {
        let ctx = bytes.escape_ascii().to_string();
        assert_eq!(
            decode_response_head(bytes),
            Ok(Some((want.clone(), bytes.len()))),
            "{ctx}"
        );
        let enc = want.encode();
        assert_eq!(
            decode_response_head(&enc),
            Ok(Some((want, enc.len()))),
            "{ctx}"
        );
    }
    assert_eq!(
        resp("HTTP/1.1", 200, "OK", &[("Server", "x")]).encode(),
        b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"
    );
}

#[test]
fn header_lookup_is_case_insensitive() {
    let (head, _) = decode_response_head(response_table()[0].0)
        .unwrap()
        .unwrap();
    assert_eq!(head.header("server"), Some("nginx/1.22.1"));
    assert_eq!(head.header("SERVER"), Some("nginx/1.22.1"));
    assert_eq!(head.header("content-length"), Some("615"));
    assert_eq!(head.header("X-Missing"), None);
    let twice = resp(
        "HTTP/1.1",
        200,
        "OK",
        &[("Set-Cookie", "a"), ("set-cookie", "b")],
    );
    assert_eq!(twice.header("SET-COOKIE"), Some("a"));
}

#[test]
fn the_body_is_left_alone() {
    let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    let (_, used) = decode_response_head(bytes).unwrap().unwrap();
    assert_eq!(&bytes[used..], b"hi");
}

#[test]
fn every_prefix_needs_more() {
    for (bytes, want) in response_table() {
        for k in 0..bytes.len() {
            assert_eq!(
                decode_response_head(&bytes[..k]),
                Ok(None),
                "{want:?} prefix {k}"
            );
        }
    }
    for (bytes, want) in request_table() {
        for k in 0..bytes.len() {
            assert_eq!(
                decode_request_head(&bytes[..k]),
                Ok(None),
                "{want:?} prefix {k}"
            );
        }
    }
}

fn request_table() -> Vec<(&'static [u8], RequestHead)> {
    let req = |m: &str, t: &str, v: &str, hs: &[(&str, &str)]| RequestHead {
        method: m.to_owned(),
        target: t.to_owned(),
        version: v.to_owned(),
        headers: h(hs),
    };
    vec![
        (
            b"HEAD / HTTP/1.1\r\nHost: 198.18.0.2\r\nUser-Agent: sockeye/0.1\r\nConnection: close\r\n\r\n",
            req(
                "HEAD",
                "/",
                "HTTP/1.1",
                &[("Host", "198.18.0.2"), ("User-Agent", "sockeye/0.1"), ("Connection", "close")],
            ),
        ),
        (
            b"GET /index.html?q=1 HTTP/1.0\n\n",
            req("GET", "/index.html?q=1", "HTTP/1.0", &[]),
        ),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", req("OPTIONS", "*", "HTTP/1.1", &[("Host", "x")])),
        (
            b"GET http://lab.test/a HTTP/1.1\r\n\r\n",
            req("GET", "http://lab.test/a", "HTTP/1.1", &[]),
        ),
    ]
}

#[test]
fn request_heads() {
    for (bytes, want) in request_table() {
        assert_eq!(
            decode_request_head(bytes),
            Ok(Some((want.clone(), bytes.len())))
        );
        let enc = want.encode();
        // Rows written with CRLF re-encode to the very bytes.
        if !bytes.windows(2).any(|w| w[0] != b'\r' && w[1] == b'\n') {
            assert_eq!(enc, bytes);
        }
        assert_eq!(
            decode_request_head(&enc),
            Ok(Some((want.clone(), enc.len())))
        );
        assert_eq!(want.header("host"), want.header("HOST"));
    }
}

#[test]
fn bad_start_lines() {
    let bad = |s: &str| HttpError::BadStartLine {
        excerpt: s.to_owned(),
    };
    let responses: &[&[u8]] = &[
        b"SSH-2.0-OpenSSH_9.2p1\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 200OK\r\n\r\n",
        b"HTTP/11 200 OK\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
        b"\r\n",
    ];
    for bytes in responses {
        let first = bytes.split(|&b| b == b'\r').next().unwrap();
        let excerpt = first.escape_ascii().to_string();
        assert_eq!(decode_response_head(bytes), Err(bad(&excerpt)), "{excerpt}");
    }
    // Refused as soon as the first line is in, without waiting for a blank line.
    assert_eq!(
        decode_response_head(b"SSH-2.0-OpenSSH_9.2p1\r\n"),
        Err(bad("SSH-2.0-OpenSSH_9.2p1"))
    );
    assert_eq!(decode_response_head(b"SSH-2.0-OpenSSH_9.2p1"), Ok(None));
    let requests: &[&[u8]] = &[
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET / HTTQ/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
    ];
    for bytes in requests {
        let first = bytes.split(|&b| b == b'\r').next().unwrap();
        let excerpt = first.escape_ascii().to_string();
        assert_eq!(decode_request_head(bytes), Err(bad(&excerpt)), "{excerpt}");
    }
}

#[test]
fn bad_headers() {
    let bad = |s: &str| {
        Err(HttpError::BadHeader {
            excerpt: s.to_owned(),
        })
    };
    assert_eq!(
        decode_response_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
        bad("no colon")
    );
    assert_eq!(
        decode_response_head(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
        bad("Bad Name: x")
    );
    assert_eq!(
        decode_response_head(b"HTTP/1.1 200 OK\r\n: empty\r\n\r\n"),
        bad(": empty")
    );
    assert_eq!(
        decode_response_head(b"HTTP/1.1 200 OK\r\n folded\r\n\r\n"),
        bad(" folded")
    );
    assert_eq!(
        decode_response_head(b"HTTP/1.1 200 OK\r\nA\x00: x\r\n\r\n"),
        bad("A\\x00: x")
    );
}

#[test]
fn caps() {
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    let mut fits = many.clone();
    fits.extend_from_slice(b"\r\n");
    assert_eq!(
        decode_response_head(&fits)
            .unwrap()
            .unwrap()
            .0
            .headers
            .len(),
        MAX_HEADERS
    );
    many.extend_from_slice(b"X-last: v\r\n\r\n");
    assert_eq!(decode_response_head(&many), Err(HttpError::TooManyHeaders));

    let mut long = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    long.resize(MAX_HEAD_BYTES, b'a');
    assert_eq!(decode_response_head(&long), Err(HttpError::HeadTooLong));
    assert_eq!(decode_response_head(&long[..MAX_HEAD_BYTES - 1]), Ok(None));
    // Exactly at the cap, blank line included: accepted.
    let mut exact = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    exact.resize(MAX_HEAD_BYTES - 4, b'a');
    exact.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        decode_response_head(&exact).unwrap().unwrap().1,
        MAX_HEAD_BYTES
    );
    // One byte more and the blank line no longer fits.
    let mut over = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    over.resize(MAX_HEAD_BYTES - 3, b'a');
    over.extend_from_slice(b"\r\n\r\n");
    assert_eq!(decode_response_head(&over), Err(HttpError::HeadTooLong));
    assert_eq!(
        HttpError::TooManyHeaders.to_string(),
        "more than 128 HTTP header fields"
    );
}

#[test]
fn the_probe_request() {
    let table: &[(&str, &str, &[u8])] = &[
        (
            "h",
            "/",
            b"HEAD / HTTP/1.1\r\nHost: h\r\nUser-Agent: sockeye/0.1\r\nConnection: close\r\n\r\n",
        ),
        (
            "198.18.0.2:8080",
            "",
            b"HEAD / HTTP/1.1\r\nHost: 198.18.0.2:8080\r\nUser-Agent: sockeye/0.1\r\nConnection: close\r\n\r\n",
        ),
        (
            "fd00:5ec::2",
            "/status?x=1",
            b"HEAD /status?x=1 HTTP/1.1\r\nHost: [fd00:5ec::2]\r\nUser-Agent: sockeye/0.1\r\nConnection: close\r\n\r\n",
        ),
        (
            "[fd00::1]:80",
            "*",
            b"HEAD * HTTP/1.1\r\nHost: [fd00::1]:80\r\nUser-Agent: sockeye/0.1\r\nConnection: close\r\n\r\n",
        ),
        // Injection attempts end up percent-encoded on their own line.
        (
            "h\r\nX-Evil: 1",
            "a b\r\n",
            b"HEAD /a%20b%0D%0A HTTP/1.1\r\nHost: h%0D%0AX-Evil:%201\r\nUser-Agent: sockeye/0.1\r\nConnection: close\r\n\r\n",
        ),
        (
            "h",
            "/caf\u{e9}",
            b"HEAD /caf%C3%A9 HTTP/1.1\r\nHost: h\r\nUser-Agent: sockeye/0.1\r\nConnection: close\r\n\r\n",
        ),
    ];
    for (host, path, want) in table {
        let got = head_request(host, path);
        assert_eq!(got, *want, "{}", want.escape_ascii());
        // What we send is what our own server side reads.
        let (req, used) = decode_request_head(&got).unwrap().unwrap();
        assert_eq!(used, got.len());
        assert_eq!(req.method, "HEAD");
        assert_eq!(req.headers.len(), 3);
    }
}
