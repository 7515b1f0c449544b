//! `scan -sL`: the targets a scan would probe, one per line or one JSON
//! record each, names as typed (nothing is resolved, nothing sent).

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::target::{Excludes, HostSpec, TargetSet};

/// A JSON record of the list. Its fields are in alphabetical order, as
/// the list has always written them.
#[derive(Serialize)]
struct Listed<'a> {
    target: &'a str,
    r#type: &'static str,
}

/// Writes every target of `specs` but `excludes`, in the order given, and
/// flushes `out`.
pub fn write_targets(
    mut out: impl Write,
    json: bool,
    specs: &[&HostSpec],
    excludes: &Excludes,
) -> io::Result<()> {
    for spec in specs {
        match spec {
            HostSpec::Name(name) => write_listed(&mut out, json, name)?,
            other => {
                let Some(block) = other.to_block() else {
                    continue;
                };
                let set = TargetSet::new(vec![block], excludes.clone());
                let mut line = String::with_capacity(48);
                for t in set.iter() {
                    line.clear();
                    push_addr(&mut line, t.addr);
                    write_listed(&mut out, json, &line)?;
                }
            }
        }
    }
    out.flush()
}

/// Appends an address in its usual text form. IPv4 is formatted by hand:
/// listing a /8 is 16.7 million of them, and `Display` is the bulk of the
/// time there.
fn push_addr(line: &mut String, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    line.push('.');
                }
                if octet >= 100 {
                    line.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    line.push(char::from(b'0' + octet / 10 % 10));
                }
                line.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(a) => {
            use std::fmt::Write as _;
            let _ = write!(line, "{a}");
        }
    }
}

/// One listed target: a line, or a JSON record (`{"target":..,"type":"target"}`).
fn write_listed(out: &mut impl Write, json: bool, target: &str) -> io::Result<()> {
    if json {
        let record = Listed {
            target,
            r#type: "target",
        };
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")
    } else {
        out.write_all(target.as_bytes())?;
        out.write_all(b"\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_format_as_display_does() {
        for a in [
            "0.0.0.0",
            "1.2.3.4",
            "10.100.255.9",
            "255.255.255.255",
            "198.18.0.10",
            "fd00::1",
        ] {
            let addr: IpAddr = a.parse().expect("address");
            let mut line = String::new();
            push_addr(&mut line, addr);
            assert_eq!(line, addr.to_string());
        }
    }

    #[test]
    fn json_records_keep_their_key_order() {
        let mut out = Vec::new();
        write_listed(&mut out, true, "a\"b").expect("write");
        assert_eq!(out, b"{\"target\":\"a\\\"b\",\"type\":\"target\"}\n");
    }
}
