//! Errors: one line on stderr and ncat's exit statuses, whatever name or
//! global flags the cat runs under.

use super::proc::{self, Cat, WAIT, read_all};
use super::{closed_port, server};

#[test]
fn errors_are_one_line_with_ncat_exit_codes() {
    let (_held, closed) = closed_port();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["--no-such-flag".into()], 2, "--no-such-flag"),
        (vec!["127.0.0.1".into(), "70000".into()], 2, "invalid port"),
        (vec!["-l".into(), "-z".into()], 2, "-z"),
        (vec!["127.0.0.1".into(), closed.to_string()], 1, "refused"),
        (
            vec!["no-such-host.invalid".into(), "80".into()],
            1,
            "could not resolve",
        ),
        (
            vec![
                "--proxy".into(),
                format!("127.0.0.1:{closed}"),
                "example.test".into(),
                "80".into(),
            ],
            1,
            "refused",
        ),
    ];
    for (args, code, needle) in cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let d = Cat::spawn(&argv).finish(WAIT);
        assert_eq!(d.code, Some(code), "{args:?}: {}", d.stderr);
        assert_eq!(d.stderr.lines().count(), 1, "{args:?}: {}", d.stderr);
        assert!(d.stderr.contains(needle), "{args:?}: {}", d.stderr);
        assert!(d.stderr.starts_with("sockeye cat: "), "{}", d.stderr);
    }
}

/// Regression: behind sockeye's global flags (`sockeye -v cat ...`) a bad
/// cat flag exited 1, not 2, because every failure of the cat became 1.
#[test]
fn usage_error_after_global_flags_exits_2() {
    let exe = std::path::Path::new(proc::bin());
    let d = Cat::spawn_with(exe, &["-v", "cat"], &["--bogus"], None).finish(WAIT);
    assert_eq!(d.code, Some(2), "{}", d.stderr);
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.stderr);
    assert!(d.stderr.starts_with("sockeye cat: "), "{}", d.stderr);
    assert!(d.stderr.contains("--bogus"), "{}", d.stderr);
}

/// Installed as `ncat`, the binary is the cat; -v and -q keep ncat's sense.
#[test]
fn runs_as_ncat_under_that_name() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ncat");
    std::os::unix::fs::symlink(proc::bin(), &link).unwrap();
    let out = std::process::Command::new(&link)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ncat"));
    let srv = Cat::spawn_with(
        &link,
        &[],
        &["-v", "-l", "-c", "echo via ncat", "127.0.0.1", "0"],
        None,
    );
    let port = srv.port();
    assert!(
        srv.stderr().starts_with("Ncat: listening on"),
        "{}",
        srv.stderr()
    );
    let c = Cat::spawn_with(
        &link,
        &[],
        &["-q", "1", "127.0.0.1", &port.to_string()],
        None,
    );
    assert_eq!(c.finish(WAIT).out(), "via ncat\n");
    let bad = Cat::spawn_with(&link, &[], &["--bogus"], None).finish(WAIT);
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.starts_with("Ncat: "), "{}", bad.stderr);
    // `sockeye cat -q 1 -v` is the cat's -q and -v, not sockeye's globals.
    let (port2, h) = server(|mut s| read_all(&mut s));
    let d = Cat::spawn(&["-v", "-q", "1", "127.0.0.1", &port2.to_string()]).finish(WAIT);
    h.join().unwrap();
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    assert!(d.stderr.contains("connected to"), "{}", d.stderr);
}

/// Regression (issue 17): `-x /nonexist/dir/f` said "cannot open the output
/// file: No such file or directory" without naming it, and exited 1; ncat
/// stops with status 2 before opening any socket.
#[test]
fn an_output_file_that_cannot_be_made_is_named_and_exits_2() {
    let exe = std::path::Path::new(proc::bin());
    for flag in ["-o", "-x"] {
        let d = Cat::spawn_with(
            exe,
            &["cat"],
            &[flag, "/nonexist/dir/f", "127.0.0.1", "9"],
            None,
        )
        .finish(WAIT);
        assert_eq!(d.code, Some(2), "{flag}: {}", d.stderr);
        assert_eq!(d.stderr.lines().count(), 1, "{flag}: {}", d.stderr);
        assert!(d.stderr.contains("/nonexist/dir/f"), "{flag}: {}", d.stderr);
    }
}
