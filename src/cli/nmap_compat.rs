//! nmap's spellings on our command line.
//!
//! nmap's multi-letter short flags (`-sT`, `-iL`, `-oX`, `-T4`) are not
//! something clap can express, and users type them from habit. Before clap
//! sees the arguments, each such token is rewritten into our long flag;
//! everything after `--` is left alone.

use std::ffi::OsString;

/// Rewrites nmap-style tokens into sockeye's flags.
pub fn rewrite(argv: Vec<OsString>) -> Vec<OsString> {
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
            "-sL" => push("--list"),
            // We never ping first and never reverse-resolve: accept and ignore.
            "-Pn" | "-n" => {}
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
            _ => match timing_template(s) {
                Some(level) => {
                    push("--timing");
                    push(level);
                }
                None => out.push(arg),
            },
        }
    }
    out
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
            .into_iter()
            .skip(1)
            .map(|s| s.into_string().expect("utf-8"))
            .collect()
    }

    #[test]
    fn rewrites_nmap_flags() {
        let table: &[(&[&str], &[&str])] = &[
            (
                &["scan", "-sT", "-Pn", "-n", "x"],
                &["scan", "--connect", "x"],
            ),
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
            (&["scan", "-T9"], &["scan", "-T9"]),
        ];
        for (input, want) in table {
            assert_eq!(rw(input), *want, "input {input:?}");
        }
    }
}
