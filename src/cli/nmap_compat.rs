//! nmap's spellings on our command line.
//!
//! nmap's multi-letter short flags (`-sT`, `-iL`, `-oX`, `-T4`) are not
//! something clap can express, and users type them from habit. Before clap
//! sees the arguments, each such token is rewritten into our long flag;
//! everything after `--` is left alone.

use std::ffi::OsString;

/// Rewrites nmap-style tokens into sockeye's flags. An nmap scan type that
/// sockeye does not have (`-sS`, `-sU`...) is an error naming it, rather
/// than clap's puzzled "unexpected argument '-s'".
pub fn rewrite(argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut iter = argv.into_iter();
    if let Some(program) = iter.next() {
        out.push(program);
    }
    while let Some(arg) = iter.next() {
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            out.push(arg);
            out.extend(iter);
            break;
        }
        let mut push = |v: &str| out.push(OsString::from(v));
        match s {
            "-iL" => push("--input-list"),
            "-sT" => push("--connect"),
            "-sS" => push("--syn"),
            "-sU" => push("--udp"),
            "-sL" => push("--list"),
            "-sV" => push("--probe"),
            // nmap's version intensity: our checks are what they are.
            "--version-light" | "--version-all" => {}
            // We never reverse-resolve: accept and ignore.
            "-n" => {}
            "-sn" | "-sP" => push("--no-port-scan"),
            "-Pn" | "-P0" => push("--no-ping"),
            "-PE" => push("--ping-echo"),
            "-PP" => push("--ping-timestamp"),
            "-PR" => push("--ping-arp"),
            "--disable-arp-ping" | "--send-ip" => push("--no-arp"),
            _ if ping_flag(s).is_some() => {
                let (long, attached) = ping_flag(s).unwrap_or(("", ""));
                if !attached.is_empty() {
                    push(&format!("{long}={attached}"));
                } else if let Some(ports) = iter.as_slice().first().cloned().filter(is_port_list) {
                    // `-PS 22,80`: nmap wants the ports attached, but a
                    // port list is no target, so take it.
                    iter.next();
                    push(&format!("{long}={}", ports.to_string_lossy()));
                } else {
                    push(long);
                }
            }
            "-PM" | "-PO" | "-PY" => {
                return Err(format!(
                    "{s}: that discovery probe is not available; sockeye scan has -PE, -PP, -PS, -PA, -PU, -PR and -Pn"
                ));
            }
            "--max-retries" => push("--retries"),
            "--max-rate" => push("--rate"),
            "--excludefile" => push("--exclude-file"),
            "--max-parallelism" => push("--max-inflight"),
            "-oX" | "-oG" | "-oN" | "-oJ" => {
                let format = match s {
                    "-oX" => "xml",
                    "-oG" => "grep",
                    "-oJ" => "json",
                    _ => "table",
                };
                push("--output");
                match iter.next().as_ref().and_then(|p| p.to_str()) {
                    Some("-") => push(format),
                    Some(path) => push(&format!("{format}={path}")),
                    // Let clap report the missing value with its usual message.
                    None => push(format!("{format}=").as_str()),
                }
            }
            "-oA" => match iter.next().as_ref().and_then(|p| p.to_str()) {
                Some(base) => {
                    for (format, ext) in [("xml", "xml"), ("grep", "gnmap"), ("table", "nmap")] {
                        push("--output");
                        push(&format!("{format}={base}.{ext}"));
                    }
                }
                None => push("--output="),
            },
            _ if s.starts_with("-T") && s.len() > 2 => {
                // Let clap judge the level: `-T9` reads "invalid value '9'
                // for '--timing <0-5>'".
                push("--timing");
                push(timing_template(s).unwrap_or(&s[2..]));
            }
            _ if s.len() == 3 && s.starts_with("-s") && s.as_bytes()[2].is_ascii_uppercase() => {
                return Err(format!(
                    "{s}: {} is not available; sockeye scan has -sS (SYN, the default as root), -sT (connect), -sU (UDP), -sL (list), -sn (host discovery) and -sV (probe)",
                    scan_type_name(&s[2..])
                ));
            }
            _ => out.push(arg),
        }
    }
    Ok(out)
}

/// `-PS22,80` -> (`--ping-syn`, "22,80"); likewise -PA and -PU.
fn ping_flag(s: &str) -> Option<(&'static str, &str)> {
    for (prefix, long) in [
        ("-PS", "--ping-syn"),
        ("-PA", "--ping-ack"),
        ("-PU", "--ping-udp"),
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return Some((long, rest));
        }
    }
    None
}

/// A token made of digits, commas and dashes only, with at least one
/// comma or a digit and no dot: a port list, never a host.
fn is_port_list(arg: &OsString) -> bool {
    arg.to_str().is_some_and(|a| {
        !a.is_empty()
            && a.bytes().any(|b| b.is_ascii_digit())
            && a.bytes()
                .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
            && !a.starts_with('-')
    })
}

/// nmap's names for its scan types, for the error message.
fn scan_type_name(letter: &str) -> &'static str {
    match letter {
        "S" => "the SYN scan",
        "U" => "the UDP scan",
        "V" => "service detection",
        "A" => "the ACK scan",
        "F" => "the FIN scan",
        "N" => "the NULL scan",
        "X" => "the Xmas scan",
        "P" => "ping-only discovery",
        "O" => "the IP protocol scan",
        "C" => "script scanning",
        _ => "that scan type",
    }
}

/// `-T4`, `-T5`, `-Tinsane`... as a level 0-5.
fn timing_template(s: &str) -> Option<&'static str> {
    let rest = s.strip_prefix("-T")?;
    Some(match rest {
        "0" | "paranoid" => "0",
        "1" | "sneaky" => "1",
        "2" | "polite" => "2",
        "3" | "normal" => "3",
        "4" | "aggressive" => "4",
        "5" | "insane" => "5",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(args: &[&str]) -> Vec<String> {
        let argv = std::iter::once("sockeye")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        rewrite(argv)
            .expect("valid")
            .into_iter()
            .skip(1)
            .map(|s| s.into_string().expect("utf-8"))
            .collect()
    }

    #[test]
    fn unsupported_scan_types_are_named() {
        let argv = ["sockeye", "scan", "-sA", "x"].map(OsString::from).to_vec();
        let err = rewrite(argv).expect_err("-sA");
        assert!(
            err.starts_with("-sA: the ACK scan is not available"),
            "{err}"
        );
    }

    #[test]
    fn rewrites_nmap_flags() {
        let table: &[(&[&str], &[&str])] = &[
            (
                &["scan", "-sT", "-Pn", "-n", "x"],
                &["scan", "--connect", "--no-ping", "x"],
            ),
            (
                &["scan", "-sn", "-PE", "-PP", "-PS22,80", "-PA", "-PU", "x"],
                &[
                    "scan",
                    "--no-port-scan",
                    "--ping-echo",
                    "--ping-timestamp",
                    "--ping-syn=22,80",
                    "--ping-ack",
                    "--ping-udp",
                    "x",
                ],
            ),
            (
                &["scan", "-sn", "-PS", "443", "198.18.0.0/24"],
                &["scan", "--no-port-scan", "--ping-syn=443", "198.18.0.0/24"],
            ),
            (
                &["scan", "-PA", "198.18.0.1", "--send-ip"],
                &["scan", "--ping-ack", "198.18.0.1", "--no-arp"],
            ),
            (&["scan", "-sS", "x"], &["scan", "--syn", "x"]),
            (
                &["scan", "-sL", "-iL", "f"],
                &["scan", "--list", "--input-list", "f"],
            ),
            (&["scan", "-T5"], &["scan", "--timing", "5"]),
            (&["scan", "-Taggressive"], &["scan", "--timing", "4"]),
            (
                &["scan", "-oX", "a.xml"],
                &["scan", "--output", "xml=a.xml"],
            ),
            (&["scan", "-oG", "-"], &["scan", "--output", "grep"]),
            (
                &["scan", "-oA", "out"],
                &[
                    "scan",
                    "--output",
                    "xml=out.xml",
                    "--output",
                    "grep=out.gnmap",
                    "--output",
                    "table=out.nmap",
                ],
            ),
            (&["scan", "--max-retries", "1"], &["scan", "--retries", "1"]),
            (&["scan", "-p-", "x"], &["scan", "-p-", "x"]),
            (&["scan", "--", "-sT"], &["scan", "--", "-sT"]),
            (&["scan", "-T9"], &["scan", "--timing", "9"]),
        ];
        for (input, want) in table {
            assert_eq!(rw(input), *want, "input {input:?}");
        }
    }
}
