//! `sockeye probe` and `scan --probe` on 127.0.0.1 and ::1, against listeners this
//! test binds itself (never ports it does not own), and their usage errors.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use crate::util::{closed_ports, json_lines, sockeye, stderr, stdout};

/// A listener that answers every connection with `greeting` (after reading
/// a request first when `wait_for_request`), for at most `conns` connections.
fn responder(greeting: &'static [u8], wait_for_request: bool, conns: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    thread::spawn(move || {
        for stream in l.incoming().take(conns) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            if wait_for_request {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
            }
            let _ = s.write_all(greeting);
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
        }
    });
    port
}

/// The service record for `port` among `records` (JSON Lines output).
fn service(records: &[serde_json::Value], port: u16) -> &serde_json::Value {
    records
        .iter()
        .find(|r| r["type"] == "service" && r["port"] == port)
        .unwrap_or_else(|| panic!("no service record for {port}: {records:#?}"))
}

/// A scripted SMTP server on `l` for `conns` connections, each on its own
/// thread: `greeting` after `delay`, then EHLO -> `ehlo`, STARTTLS -> 454,
/// QUIT -> 221, anything else 500. Every command line it reads goes to
/// `seen`, without its line end.
fn smtp_responder(
    l: TcpListener,
    conns: usize,
    delay: Duration,
    greeting: &'static [u8],
    ehlo: &'static [u8],
    seen: std::sync::mpsc::Sender<String>,
) {
    thread::spawn(move || {
        for stream in l.incoming().take(conns) {
            let Ok(mut s) = stream else { continue };
            let seen = seen.clone();
            thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                thread::sleep(delay);
                let _ = s.write_all(greeting);
                let mut reader = std::io::BufReader::new(s.try_clone().expect("clone"));
                for _ in 0..10 {
                    let mut line = String::new();
                    if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let _ = seen.send(line.trim_end().to_string());
                    let answer: &[u8] = match line.split_whitespace().next().unwrap_or("") {
                        "EHLO" => ehlo,
                        "STARTTLS" => b"454 4.7.0 TLS not available\r\n",
                        "QUIT" => b"221 bye\r\n",
                        _ => b"500 5.5.1 unknown command\r\n",
                    };
                    let _ = s.write_all(answer);
                }
            });
        }
    });
}

#[test]
fn scan_probe_checks_each_open_port_by_content() {
    let ssh = responder(b"SSH-2.0-TestSSH_1.0\r\n", false, 4);
    let http = responder(
        b"HTTP/1.1 404 Not Found\r\nServer: test-httpd/2\r\nContent-Length: 0\r\n\r\n",
        true,
        4,
    );
    let closed = closed_ports(1)[0];
    let ports = format!("{ssh},{http},{closed}");
    let out = sockeye(&[
        "scan",
        "-sV",
        "--json",
        "--banner-wait",
        "200ms",
        "-p",
        &ports,
        "127.0.0.1",
    ]);
    // --banner-wait belongs to probe, not scan: a clear usage error.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let out = sockeye(&["scan", "-sV", "--json", "-p", &ports, "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = json_lines(&stdout(&out));
    let services = records.iter().filter(|r| r["type"] == "service").count();
    assert_eq!(services, 2, "{records:#?}");
    let by = |port: u16| service(&records, port);
    assert_eq!(by(ssh)["service"], "ssh");
    assert_eq!(by(ssh)["banner"], "SSH-2.0-TestSSH_1.0");
    assert_eq!(by(http)["service"], "http");
    assert_eq!(by(http)["http"]["status"], 404);
    assert_eq!(by(http)["http"]["server"], "test-httpd/2");
    // The host record comes after its services.
    let host_at = records
        .iter()
        .position(|r| r["type"] == "host")
        .expect("host");
    let last_service = records
        .iter()
        .rposition(|r| r["type"] == "service")
        .expect("svc");
    assert!(last_service < host_at, "{records:#?}");
}

#[test]
fn probe_table_shows_banner_and_closed_ports() {
    let ssh = responder(b"SSH-2.0-TestSSH_1.0\r\n", false, 2);
    let closed = closed_ports(1)[0];
    let out = sockeye(&[
        "probe",
        "--color",
        "never",
        "-p",
        &format!("{ssh},{closed}"),
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("sockeye probe report for 127.0.0.1\n"),
        "{text}"
    );
    let ssh_line = format!("{ssh}/tcp");
    let line = text
        .lines()
        .find(|l| l.starts_with(&ssh_line))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(" open ") && line.contains(" ssh ") && line.ends_with("SSH-2.0-TestSSH_1.0"),
        "{line}"
    );
    let closed_line = format!("{closed}/tcp");
    let line = text
        .lines()
        .find(|l| l.starts_with(&closed_line))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(" closed ") && line.contains("conn-refused"),
        "{line}"
    );
    assert!(text.contains("Scanned 1 host (2 ports)"), "{text}");
}

/// A server that floods without a newline is cut off at the cap, and a
/// silent one at the read timeout: one line each, bounded time.
#[test]
fn flood_and_silence_are_bounded() {
    let flood = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        thread::spawn(move || {
            if let Some(Ok(mut s)) = l.incoming().next() {
                let chunk = [b'A'; 8192];
                // Bounded: 8 MiB at most, or until the prober hangs up.
                for _ in 0..1024 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                }
            }
        });
        port
    };
    let silent = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        thread::spawn(move || {
            let held: Vec<_> = l.incoming().take(2).collect();
            thread::sleep(Duration::from_secs(8));
            drop(held);
        });
        port
    };
    let out = sockeye(&[
        "probe",
        "--json",
        "--read-timeout",
        "500ms",
        "--tls-timeout",
        "500ms",
        "--banner-wait",
        "300ms",
        "-p",
        &format!("{flood},{silent}"),
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = json_lines(&stdout(&out));
    let find = |port: u16| service(&records, port);
    assert_eq!(
        find(flood)["error"]["message"],
        "the server sent 65536 bytes without a line end; stopped reading"
    );
    let s = find(silent);
    assert_eq!(s["error"]["step"], "response");
    assert_eq!(s["error"]["message"], "timed out after 500 ms");
    assert!(s["elapsed_ms"].as_f64().expect("ms") < 5_000.0, "{s}");
}

#[test]
fn probe_usage_errors_are_one_line_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["probe"], "required arguments were not provided"),
        (
            &["probe", "--read-timeout", "0", "127.0.0.1"],
            "--read-timeout: must be more than 0",
        ),
        (&["probe", "-p", "0-x", "127.0.0.1"], "0-x"),
        (
            &["probe", "--ca-file", "/nonexistent/ca.pem", "127.0.0.1"],
            "cannot read CA file /nonexistent/ca.pem",
        ),
        (
            &["probe", "--concurrency", "0", "127.0.0.1"],
            "--concurrency: must be at least 1",
        ),
    ];
    for (args, want) in cases {
        let out = sockeye(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

/// Telnet negotiation is shown decoded, the options are refused so the
/// server goes on, and the login prompt is the banner.
#[test]
fn telnet_options_are_decoded() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        // IAC WILL ECHO, IAC WILL SUPPRESS-GO-AHEAD, IAC DO NAWS
        s.write_all(&[255, 251, 1, 255, 251, 3, 255, 253, 31])
            .expect("write");
        let mut answer = [0u8; 9];
        s.read_exact(&mut answer)
            .expect("the prober answers each option");
        s.write_all(b"\r\nDebian GNU/Linux 12\r\nlab login: ")
            .expect("write");
        let mut rest = [0u8; 64];
        let _ = s.read(&mut rest);
        answer
    });
    let out = sockeye(&["probe", "--json", "-p", &port.to_string(), "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = json_lines(&stdout(&out));
    let r = records
        .iter()
        .find(|r| r["type"] == "service")
        .expect("service");
    assert_eq!(r["service"], "telnet", "{r}");
    assert_eq!(
        r["telnet"],
        serde_json::json!(["WILL ECHO", "WILL SUPPRESS-GO-AHEAD", "DO NAWS"])
    );
    assert_eq!(r["banner"], "Debian GNU/Linux 12", "{r}");
    // DONT ECHO, DONT SUPPRESS-GO-AHEAD, WONT NAWS
    assert_eq!(
        server.join().expect("server"),
        [255, 254, 1, 255, 254, 3, 255, 252, 31]
    );
}

/// A greeting that comes after the banner wait meets our HEAD request; the
/// answer shows SMTP, so the check starts over with SMTP's dialogue.
#[test]
fn a_late_greeting_is_recognised_from_the_answer_to_head() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (seen, _) = std::sync::mpsc::channel();
    smtp_responder(
        l,
        2,
        Duration::from_millis(600),
        b"220 late.test ESMTP\r\n",
        b"250-late.test\r\n250 PIPELINING\r\n",
        seen,
    );
    let out = sockeye(&[
        "probe",
        "--json",
        "--banner-wait",
        "100ms",
        "--read-timeout",
        "2s",
        "-p",
        &port.to_string(),
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = json_lines(&stdout(&out));
    let r = records
        .iter()
        .find(|r| r["type"] == "service")
        .expect("service");
    assert_eq!(r["service"], "smtp", "{r:#}");
    assert_eq!(r["banner"], "220 late.test ESMTP", "{r:#}");
    assert_eq!(r["starttls"]["offered"], false, "{r:#}");
    assert_eq!(r["starttls"]["accepted"], false, "{r:#}");
    assert_eq!(r["starttls"]["reply"], "454 4.7.0 TLS not available");
    assert!(r.get("error").is_none(), "{r:#}");
}

/// A server that sends its greeting one byte at a time, each well within
/// the read timeout, is stopped by the check's overall deadline.
#[test]
fn a_dribbling_server_meets_the_check_deadline() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    thread::spawn(move || {
        if let Some(Ok(mut s)) = l.incoming().next() {
            let _ = s.write_all(b"220 slow");
            // Bounded: 40 bytes, 250 ms apart, never a line end.
            for _ in 0..40 {
                thread::sleep(Duration::from_millis(250));
                if s.write_all(b".").is_err() {
                    break;
                }
            }
        }
    });
    let out = sockeye(&[
        "probe",
        "--json",
        "--read-timeout",
        "1s",
        "--check-timeout",
        "1500ms",
        "-p",
        &port.to_string(),
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = json_lines(&stdout(&out));
    let r = records
        .iter()
        .find(|r| r["type"] == "service")
        .expect("service");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("the check ran out of time")),
        "{r:#}"
    );
    let ms = r["elapsed_ms"].as_f64().expect("ms");
    assert!((1_400.0..4_000.0).contains(&ms), "{ms} ms: {r:#}");
}

/// Over IPv6: an SMTP server sees `EHLO [IPv6:::1]` (RFC 5321's address
/// literal, not a bare `[::1]`) and an HTTP server `Host: [::1]:PORT`.
#[test]
fn over_ipv6_the_literals_are_the_standards() {
    let (seen_tx, seen) = std::sync::mpsc::channel::<String>();
    let smtp = TcpListener::bind("[::1]:0").expect("bind ::1 (IPv6 loopback)");
    let smtp_port = smtp.local_addr().expect("addr").port();
    smtp_responder(
        smtp,
        1,
        Duration::ZERO,
        b"220 six.test ESMTP\r\n",
        b"250-six.test\r\n250 STARTTLS\r\n",
        seen_tx.clone(),
    );
    let http = TcpListener::bind("[::1]:0").expect("bind ::1");
    let http_port = http.local_addr().expect("addr").port();
    thread::spawn(move || {
        let Some(Ok(mut s)) = http.incoming().next() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        for line in String::from_utf8_lossy(&req).lines() {
            let _ = seen_tx.send(line.to_string());
        }
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nServer: six-httpd/1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let out = sockeye(&[
        "probe",
        "--json",
        "--banner-wait",
        "300ms",
        "-p",
        &format!("{smtp_port},{http_port}"),
        "::1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = json_lines(&stdout(&out));
    let by = |port: u16| service(&records, port);
    let s = by(smtp_port);
    assert_eq!(s["service"], "smtp", "{s:#}");
    assert_eq!(s["starttls"]["offered"], true, "{s:#}");
    assert_eq!(s["starttls"]["accepted"], false, "{s:#}");
    let h = by(http_port);
    assert_eq!(h["service"], "http", "{h:#}");
    assert_eq!(h["http"]["server"], "six-httpd/1", "{h:#}");
    let lines: Vec<String> = seen.try_iter().collect();
    assert!(lines.iter().any(|l| l == "EHLO [IPv6:::1]"), "{lines:?}");
    // The port too, as it is not HTTP's 80.
    let host = format!("Host: [::1]:{http_port}");
    assert!(lines.contains(&host), "{lines:?}");
}

/// Issue 17: a multi-line FTP greeting `220-lab.test plain FTP ...` came
/// out as `220 lab.test plain FTP ...`. The banner is the server's first
/// line as sent, control characters escaped, quotes left alone.
#[test]
fn the_banner_is_the_servers_first_line_verbatim() {
    let port = responder(
        b"220-lab.test plain FTP, \"quoted\" and it's\x1b[0m here\r\n220-second line\r\n220 \r\n",
        false,
        2,
    );
    let out = sockeye(&[
        "probe",
        "--json",
        "--read-timeout",
        "2s",
        "-p",
        &port.to_string(),
        "127.0.0.1",
    ]);
    let records = json_lines(&stdout(&out));
    let r = service(&records, port);
    assert_eq!(r["service"], "ftp", "{r:#}");
    assert_eq!(
        r["banner"], "220-lab.test plain FTP, \"quoted\" and it's\\u{1b}[0m here",
        "{r:#}"
    );
}
