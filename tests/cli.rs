//! The command line itself: help with examples, completions, the man page,
//! and bad input rejected with one line and exit status 2 before anything
//! is sent.

use crate::util::{sockeye, stderr, stdout};

#[test]
fn help_shows_examples_and_exit_codes() {
    let out = sockeye(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("Examples:"), "{text}");
    assert!(text.contains("sockeye scan 127.0.0.1"), "{text}");
    assert!(text.contains("130"), "exit codes documented: {text}");

    let out = sockeye(&["scan", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for needle in [
        "Examples:",
        "--top-ports",
        "-sL",
        "--shard",
        "admin-prohibited",
    ] {
        assert!(text.contains(needle), "scan --help lacks {needle}: {text}");
    }
}

#[test]
fn completions_and_man_page() {
    let out = sockeye(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("_sockeye"));
    let out = sockeye(&["completions", "zsh"]);
    assert!(stdout(&out).contains("#compdef sockeye"));

    let out = sockeye(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.starts_with(".ie") || text.contains(".TH sockeye"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(text.contains(".TH sockeye-scan"), "scan has its own page");
}

#[test]
fn version() {
    let out = sockeye(&["--version"]);
    assert_eq!(
        stdout(&out).trim(),
        format!("sockeye {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Every bad token is named in a one-line error, exit status 2, nothing on stdout.
#[test]
fn bad_input_is_one_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["scan", "-p", "999999", "127.0.0.1"], "999999"),
        (&["scan", "-p", "80-20", "127.0.0.1"], "80-20"),
        (&["scan", "-p", "ssh-nope", "127.0.0.1"], "ssh-nope"),
        (&["scan", "-p", "22,,80", "127.0.0.1"], "22,,80"),
        (&["scan", "1.2.3.4/33"], "1.2.3.4/33"),
        (&["scan", "1.2.3.256"], "1.2.3.256"),
        (&["scan", "198.18.0.9-2"], "198.18.0.9-2"),
        (
            &["scan", "--exclude", "1.2.3.4/40", "127.0.0.1"],
            "1.2.3.4/40",
        ),
        (
            &["scan", "--shard", "3/3", "--seed", "1", "127.0.0.1"],
            "3/3",
        ),
        (&["scan", "--shard", "1/3", "127.0.0.1"], "--seed"),
        (&["scan", "-o", "yaml", "127.0.0.1"], "yaml"),
        (&["scan", "--max-rtt-timeout", "soon", "127.0.0.1"], "soon"),
        (&["scan", "--top-ports", "0", "127.0.0.1"], "--top-ports"),
        (&["scan"], "no targets"),
        (&["scan", "--bogus", "127.0.0.1"], "--bogus"),
        (&["scan", "-T9", "127.0.0.1"], "'9'"),
        (
            &["scan", "-sA", "127.0.0.1"],
            "-sA: the ACK scan is not available",
        ),
        (&["scan", "-sS", "-sT", "127.0.0.1"], "--connect"),
        (&["scan", "--retries", "255", "127.0.0.1"], "at most 50"),
        (
            &["scan", "-sL", "--exclude", "lab.invalid", "198.18.0.0/30"],
            "lab.invalid",
        ),
    ];
    for (args, token) in cases {
        let out = sockeye(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(token),
            "{args:?}: error does not name {token:?}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{args:?} printed on stdout");
        // clap adds a usage hint after its own errors; ours are one line.
        if !args.contains(&"--bogus") && !args.contains(&"-T9") {
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{args:?}: not one line: {err}"
            );
        }
    }
}

/// Arguments that are not UTF-8 are errors, never a panic.
#[test]
fn non_utf8_arguments() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/tmp/\xff-no-such-file");
    let out = std::process::Command::new(crate::util::bin())
        .args(["scan", "-sL", "-iL"])
        .arg(bad)
        .output()
        .expect("run");
    // A target list that cannot be read is bad usage (issue 17).
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("sockeye: cannot read /tmp/"),
        "{}",
        stderr(&out)
    );
}

/// `--top-ports` beyond the table's 1000 ports scans them all and says so.
#[test]
fn top_ports_beyond_the_table_says_how_many() {
    let out = sockeye(&["scan", "-sL", "--top-ports", "5000", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--top-ports 5000: the table has 1000 TCP ports; scanning all 1000"),
        "{err}"
    );
    let out = sockeye(&["scan", "-sL", "--top-ports", "1000", "127.0.0.1"]);
    assert_eq!(stderr(&out), "");
}

/// clap's errors stay one line but keep what helps: the missing argument's
/// name, the valid values, the "did you mean".
#[test]
fn usage_errors_name_what_is_missing_valid_or_meant() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["mail", "-s", "x", "--to", "y"], &["--from <ADDR>"]),
        (&["calc"], &["--server <HOST:PORT>"]),
        (&["probe"], &["<TARGET>"]),
        (&["exercise", "run"], &["<PLAN>"]),
        (&["completions", "tcsh"], &["possible values: bash", "zsh"]),
        (
            &[
                "mail",
                "-s",
                "x",
                "--to",
                "y",
                "--from",
                "z",
                "--quit-after",
                "data",
            ],
            &["possible values: connect", "rcpt"],
        ),
        (&["scan", "--port", "22", "127.0.0.1"], &["'--ports'"]),
        (&["scan", "--all-state", "127.0.0.1"], &["'--all-states'"]),
        (&["scna"], &["'scan'"]),
    ];
    for (args, needles) in cases {
        let out = sockeye(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        for needle in *needles {
            assert!(err.contains(needle), "{args:?}: {needle} not in {err}");
        }
    }
}

/// `sockeye` or `sockeye exercise` alone: the help on stdout, status 2.
#[test]
fn a_bare_command_prints_its_help_on_stdout() {
    for args in [&[][..], &["exercise"][..]] {
        let out = sockeye(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stdout(&out).contains("Usage: sockeye"), "{args:?}");
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

/// `sockeye man | head` ends quietly; `sockeye man scan` is one page.
#[test]
fn man_pages_one_at_a_time_and_quiet_on_a_closed_pipe() {
    let out = sockeye(&["man", "scan"]);
    assert_eq!(out.status.code(), Some(0));
    let page = stdout(&out);
    assert_eq!(
        page.matches("\n.TH ").count() + usize::from(page.starts_with(".TH ")),
        1
    );
    assert!(
        page.contains("sockeye\\-scan"),
        "{}",
        &page[..200.min(page.len())]
    );
    let out = sockeye(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("scan, probe"), "{}", stderr(&out));

    // A reader that is gone before the page is written (`| head` that has
    // had enough): no "Broken pipe" error, status 0.
    let mut child = std::process::Command::new(crate::util::bin())
        .arg("man")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(stderr(&out), "");
    assert_eq!(out.status.code(), Some(0));
}

/// The plan schema is in `sockeye exercise --help`, not only the README.
#[test]
fn exercise_help_has_the_plan_schema() {
    for args in [
        &["exercise", "--help"][..],
        &["exercise", "run", "--help"][..],
    ] {
        let out = sockeye(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = stdout(&out);
        for needle in [
            "checks:",
            "matrix:",
            "connect: HOST:PORT",
            "probe: {target, service, sni}",
            "calc: {server, op, args, little_endian}",
            "fail_at: STAGE",
            "cert_days_left",
        ] {
            assert!(text.contains(needle), "{args:?}: {needle} missing");
        }
    }
}

/// A file named on the command line that cannot be read is named in the
/// error and is bad usage (2), before anything is sent.
#[test]
fn unreadable_input_files_are_named_and_bad_usage() {
    for args in [
        &["scan", "-iL", "/nonexistent/targets"][..],
        &[
            "scan",
            "--exclude-file",
            "/nonexistent/targets",
            "127.0.0.1",
        ][..],
        &["exercise", "run", "/nonexistent/targets"][..],
    ] {
        let out = sockeye(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("/nonexistent/targets"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}
