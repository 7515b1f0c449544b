//! What the netcat engine (`relay`, behind `sockeye cat`) tells the user
//! while it runs, and how it prints: [`Notice`]s arrive through a
//! [`crate::report::Emit`]; [`NoticePrinter`] decides which reach stderr at
//! the chosen verbosity, in ncat's words after ncat's prefix, and sends the
//! open ports of `-z` to stdout when they are the command's output.

use std::io::{self, Write};

/// Something worth telling the user; the CLI decides what is printed
/// ([`NoticePrinter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Listening(String),
    Connected(String),
    Accepted(String),
    Closed(String),
    Denied(String),
    TooManyClients(String),
    /// A hub client that stopped reading: its queue passed the limit.
    SlowClient {
        peer: String,
        queued: usize,
    },
    /// The SHA-256 fingerprint of the generated TLS certificate.
    Fingerprint(String),
    /// ALPN protocol agreed on a TLS session.
    Alpn(String),
    PortOpen {
        host: String,
        port: u16,
    },
    PortClosed {
        host: String,
        port: u16,
        why: String,
    },
    /// A non-fatal problem (a client's TLS handshake failed in `-k` mode...).
    Warning(String),
}

impl Notice {
    /// Verbosity at which the CLI shows it (0: always).
    pub fn level(&self) -> u8 {
        match self {
            Notice::SlowClient { .. }
            | Notice::Fingerprint(_)
            | Notice::Warning(_)
            | Notice::PortOpen { .. } => 0,
            _ => 1,
        }
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Listening(a) => write!(f, "listening on {a}"),
            Notice::Connected(a) => write!(f, "connected to {a}"),
            Notice::Accepted(a) => write!(f, "connection from {a}"),
            Notice::Closed(a) => write!(f, "{a} closed"),
            Notice::Denied(a) => write!(f, "connection from {a} denied (--allow/--deny)"),
            Notice::TooManyClients(a) => {
                write!(f, "connection from {a} refused: too many clients (-m)")
            }
            Notice::SlowClient { peer, queued } => write!(
                f,
                "{peer} disconnected: it stopped reading and {queued} bytes were queued for it"
            ),
            Notice::Fingerprint(fp) => write!(f, "TLS certificate SHA-256 fingerprint: {fp}"),
            Notice::Alpn(p) => write!(f, "ALPN protocol: {p}"),
            Notice::PortOpen { host, port } => write!(f, "{host} {port} open"),
            Notice::PortClosed { host, port, why } => write!(f, "{host} {port} {why}"),
            Notice::Warning(w) => write!(f, "{w}"),
        }
    }
}

/// How `sockeye cat` (or `ncat`) prints notices.
#[derive(Debug, Clone, Copy)]
pub struct NoticePrinter {
    /// `-v` count: a notice is shown when its [`Notice::level`] is at most this.
    pub verbose: u8,
    /// `-z` lists open ports on stdout (the command's output) rather than
    /// only on stderr at `-v`.
    pub list_open: bool,
    /// What starts each stderr line: `Ncat` or `sockeye cat`.
    pub prefix: &'static str,
}

impl NoticePrinter {
    /// Writes `n` where it belongs: an open port of `-z` to `out`, any other
    /// notice shown at this verbosity to `err`, the rest nowhere.
    pub fn print(&self, n: &Notice, out: &mut impl Write, err: &mut impl Write) -> io::Result<()> {
        if self.list_open
            && let Notice::PortOpen { host, port } = n
        {
            return writeln!(out, "{host} {port} open");
        }
        let shown = match n {
            Notice::PortOpen { .. } | Notice::PortClosed { .. } => self.verbose >= 1,
            other => other.level() <= self.verbose,
        };
        if shown {
            writeln!(err, "{}: {n}", self.prefix)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(p: NoticePrinter, n: Notice) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        p.print(&n, &mut out, &mut err).expect("in memory");
        (
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(err).expect("utf-8"),
        )
    }

    #[test]
    fn each_notice_goes_where_its_level_and_mode_say() {
        let quiet = NoticePrinter {
            verbose: 0,
            list_open: false,
            prefix: "Ncat",
        };
        let loud = NoticePrinter {
            verbose: 1,
            ..quiet
        };
        let zero_io = NoticePrinter {
            list_open: true,
            ..quiet
        };
        let accepted = Notice::Accepted("198.18.0.1:40000".into());
        let open = Notice::PortOpen {
            host: "198.18.0.2".into(),
            port: 22,
        };
        let closed = Notice::PortClosed {
            host: "198.18.0.2".into(),
            port: 23,
            why: "refused".into(),
        };
        let table = [
            (quiet, accepted.clone(), "", ""),
            (
                loud,
                accepted,
                "",
                "Ncat: connection from 198.18.0.1:40000\n",
            ),
            (quiet, Notice::Warning("w".into()), "", "Ncat: w\n"),
            (quiet, open.clone(), "", ""),
            (loud, open.clone(), "", "Ncat: 198.18.0.2 22 open\n"),
            (zero_io, open, "198.18.0.2 22 open\n", ""),
            (zero_io, closed.clone(), "", ""),
            (loud, closed, "", "Ncat: 198.18.0.2 23 refused\n"),
        ];
        for (printer, notice, out, err) in table {
            assert_eq!(
                printed(printer, notice.clone()),
                (out.to_string(), err.to_string()),
                "{notice:?} at {printer:?}"
            );
        }
    }
}
