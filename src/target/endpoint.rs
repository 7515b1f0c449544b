//! `HOST:PORT` as people type it and as we print it: the one parser of an
//! endpoint text (a name or address, an IPv6 address in brackets, a port
//! that may be optional) and the one formatter, which brackets IPv6.
//!
//! The grammar, for `text`:
//! - `[HOST]` or `[HOST]:PORT`: the brackets hold an IPv6 address (or any
//!   host); anything else after `]` is an error;
//! - two colons or more, unbracketed: a bare IPv6 address, without a port
//!   (`::1:80` is ambiguous, so it is read as an address, never as `::1`
//!   port 80);
//! - `HOST:PORT`, or `HOST` alone.
//!
//! The host is never empty. A port is what `u16` parses (0-65535); callers
//! that connect use [`parse_host_port`], which needs one and refuses 0.

/// What is wrong with an endpoint text. Callers put their own words (and the
/// flag's name) around it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// `[` without its `]`.
    #[error("missing ']'")]
    MissingBracket,
    /// Something other than `:PORT` after the `]`.
    #[error("expected :PORT after ']'")]
    AfterBracket,
    #[error("no host")]
    NoHost,
    /// A port is needed and none was given.
    #[error("no port")]
    NoPort,
    /// The port text, which is not a number in 0-65535.
    #[error("invalid port {0:?}")]
    BadPort(String),
    /// Port 0, where a port to connect to is needed.
    #[error("port 0")]
    PortZero,
}

/// `HOST[:PORT]`, `[HOST][:PORT]` or a bare IPv6 address: the host without
/// brackets, and the port if one was given (0 included).
pub fn parse_host_opt_port(text: &str) -> Result<(String, Option<u16>), EndpointError> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(EndpointError::MissingBracket)?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(EndpointError::AfterBracket),
            },
        }
    } else if text.matches(':').count() > 1 {
        (text, None)
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(EndpointError::NoHost);
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| EndpointError::BadPort(p.to_owned()))
        })
        .transpose()?;
    Ok((host.to_owned(), port))
}

/// `HOST:PORT` or `[HOST]:PORT` with a port to connect to (1-65535).
pub fn parse_host_port(text: &str) -> Result<(String, u16), EndpointError> {
    match parse_host_opt_port(text)? {
        (_, None) => Err(EndpointError::NoPort),
        (_, Some(0)) => Err(EndpointError::PortZero),
        (host, Some(port)) => Ok((host, port)),
    }
}

/// `host:port`, or `[host]:port` when the host is an IPv6 address, so that
/// [`parse_host_port`] reads it back.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EndpointError::*;

    /// What a parser should give for a text: the host, and the port.
    type Want<P> = Result<(&'static str, P), EndpointError>;

    #[test]
    fn optional_port() {
        let cases: &[(&str, Want<Option<u16>>)] = &[
            ("host", Ok(("host", None))),
            ("host:80", Ok(("host", Some(80)))),
            ("host:0", Ok(("host", Some(0)))),
            ("host:65535", Ok(("host", Some(65535)))),
            ("192.0.2.1:25", Ok(("192.0.2.1", Some(25)))),
            ("[::1]:80", Ok(("::1", Some(80)))),
            ("[::1]", Ok(("::1", None))),
            ("[fd00::2]:25", Ok(("fd00::2", Some(25)))),
            ("[name]:7", Ok(("name", Some(7)))),
            ("::1", Ok(("::1", None))),
            ("fd00::2", Ok(("fd00::2", None))),
            ("::1:80", Ok(("::1:80", None))),
            ("a:b:c", Ok(("a:b:c", None))),
            ("host:", Err(BadPort("".into()))),
            ("host:65536", Err(BadPort("65536".into()))),
            ("host:http", Err(BadPort("http".into()))),
            ("host:-1", Err(BadPort("-1".into()))),
            ("[::1]:", Err(BadPort("".into()))),
            ("[::1]:99999", Err(BadPort("99999".into()))),
            (":80", Err(NoHost)),
            ("", Err(NoHost)),
            ("[]:80", Err(NoHost)),
            ("[::1", Err(MissingBracket)),
            ("[::1:80", Err(MissingBracket)),
            ("[::1]80", Err(AfterBracket)),
            ("[::1]x:80", Err(AfterBracket)),
        ];
        for (text, want) in cases {
            let got = parse_host_opt_port(text);
            let want = want.clone().map(|(h, p)| (h.to_owned(), p));
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn required_port() {
        let cases: &[(&str, Want<u16>)] = &[
            ("a:21", Ok(("a", 21))),
            ("[fd00::2]:25", Ok(("fd00::2", 25))),
            ("[::1]:80", Ok(("::1", 80))),
            ("host:65535", Ok(("host", 65535))),
            ("host:0", Err(PortZero)),
            ("host:", Err(BadPort("".into()))),
            ("host:65536", Err(BadPort("65536".into()))),
            (":80", Err(NoHost)),
            ("a", Err(NoPort)),
            ("[::1]", Err(NoPort)),
            ("a:b:c", Err(NoPort)),
            ("::1:80", Err(NoPort)),
        ];
        for (text, want) in cases {
            let got = parse_host_port(text);
            let want = want.clone().map(|(h, p)| (h.to_owned(), p));
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn format_reads_back() {
        let cases = [
            ("host", 80, "host:80"),
            ("192.0.2.1", 25, "192.0.2.1:25"),
            ("::1", 80, "[::1]:80"),
            ("fd00::2", 65535, "[fd00::2]:65535"),
            ("host", 0, "host:0"),
        ];
        for (host, port, text) in cases {
            assert_eq!(host_port(host, port), text);
            assert_eq!(
                parse_host_opt_port(text),
                Ok((host.to_owned(), Some(port))),
                "{text}"
            );
        }
    }

    #[test]
    fn error_texts() {
        let cases = [
            (MissingBracket, "missing ']'"),
            (AfterBracket, "expected :PORT after ']'"),
            (NoHost, "no host"),
            (NoPort, "no port"),
            (BadPort("x".into()), "invalid port \"x\""),
            (PortZero, "port 0"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }
}
