//! Name resolution for host specs: targets and exclusions given as names
//! become addresses before the first probe is sent, each lookup bounded by
//! [`RESOLVE_TIMEOUT`]. A target that does not resolve is reported and
//! skipped; an exclusion that does not resolve stops the run, since scanning
//! a host the user excluded because DNS hiccuped is not an option.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::exclude::{ExcludeItem, Excludes};
use super::set::{Block, Target};
use super::spec::HostSpec;

/// How long a host name may take to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A target token that gave no address to scan, and why (the message is
/// what reports print after the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{token}: {message}")]
pub struct Unresolved {
    /// The token as the user typed it.
    pub token: String,
    pub message: String,
}

/// An excluded name that did not resolve; nothing has been sent yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve excluded host {token:?}: {message}; nothing was scanned")]
pub struct ExcludeUnresolved {
    /// The token as the user typed it.
    pub token: String,
    pub message: String,
}

/// Why a lookup gave no address. Callers put the name (and their flag)
/// around these words.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The resolver did not answer within the time given.
    #[error("no answer within {}s", .0.as_secs())]
    TimedOut(Duration),
    /// The resolver's own error ("failed to lookup address information: ...").
    #[error("{0}")]
    Failed(std::io::Error),
    #[error("no addresses")]
    NoAddress,
    /// `HOST:PORT` text without a colon.
    #[error("expected HOST:PORT")]
    NotHostPort,
    /// `HOST:PORT` text whose port is not a number in 0-65535 (the words
    /// are the ones tokio's resolver gives).
    #[error("invalid port value")]
    BadPort,
}

/// The one call to the system resolver: every socket address of `host`
/// (a name or an address literal, without brackets) with `port`, in the
/// resolver's order, the wait bounded by `timeout` when one is given.
pub async fn lookup(
    host: &str,
    port: u16,
    timeout: Option<Duration>,
) -> Result<Vec<SocketAddr>, LookupError> {
    let query = tokio::net::lookup_host((host, port));
    let found = match timeout {
        Some(limit) => tokio::time::timeout(limit, query)
            .await
            .map_err(|_| LookupError::TimedOut(limit))?,
        None => query.await,
    };
    let addrs: Vec<SocketAddr> = found.map_err(LookupError::Failed)?.collect();
    if addrs.is_empty() {
        return Err(LookupError::NoAddress);
    }
    Ok(addrs)
}

/// The first socket address of a `HOST:PORT` text as typed on a command
/// line (`127.0.0.1:7000`, `[::1]:7000`, `lab.test:7000`): an address
/// literal as it is, a name through [`lookup`].
pub async fn lookup_host_port(text: &str) -> Result<SocketAddr, LookupError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = text.rsplit_once(':').ok_or(LookupError::NotHostPort)?;
    let port = port.parse::<u16>().map_err(|_| LookupError::BadPort)?;
    Ok(lookup(host, port, None).await?[0])
}

/// The distinct addresses of `name`, in the resolver's order (only the
/// first with `first_only`), or why there are none.
pub async fn resolve(name: &str, first_only: bool) -> Result<Vec<IpAddr>, String> {
    let addrs = lookup(name, 0, Some(RESOLVE_TIMEOUT))
        .await
        .map_err(|e| e.to_string())?;
    let mut out: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !out.contains(&a.ip()) {
            out.push(a.ip());
        }
    }
    if first_only {
        out.truncate(1);
    }
    Ok(out)
}

/// The blocks of `(token, spec)` targets, names resolved concurrently, in
/// the order given; the tokens that gave none come back apart.
pub async fn resolve_targets(
    specs: &[(String, HostSpec)],
    first_only: bool,
) -> (Vec<Block>, Vec<Unresolved>) {
    let lookups = specs.iter().map(|(token, spec)| async move {
        match spec {
            HostSpec::Name(name) => match resolve(name, first_only).await {
                Ok(addrs) => {
                    let label: Arc<str> = Arc::from(name.as_str());
                    let targets = addrs
                        .into_iter()
                        .map(|addr| Target {
                            addr,
                            name: Some(Arc::clone(&label)),
                        })
                        .collect();
                    Ok(Block::List(targets))
                }
                Err(message) => Err(Unresolved {
                    token: token.clone(),
                    message,
                }),
            },
            other => other.to_block().ok_or_else(|| Unresolved {
                token: token.clone(),
                message: "cannot be scanned".into(),
            }),
        }
    });
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    for r in futures::future::join_all(lookups).await {
        match r {
            Ok(b) => blocks.push(b),
            Err(e) => errors.push(e),
        }
    }
    (blocks, errors)
}

/// The exclusion set of `(token, spec)` exclusions; every excluded name
/// must resolve.
pub async fn resolve_excludes(specs: &[(String, HostSpec)]) -> Result<Excludes, ExcludeUnresolved> {
    let mut items = Vec::new();
    for (token, spec) in specs {
        match spec {
            HostSpec::Name(name) => match resolve(name, false).await {
                Ok(addrs) => items.extend(addrs.into_iter().map(ExcludeItem::Addr)),
                Err(message) => {
                    return Err(ExcludeUnresolved {
                        token: token.clone(),
                        message,
                    });
                }
            },
            other => items.extend(ExcludeItem::from_spec(other.clone())),
        }
    }
    Ok(Excludes::new(items))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::target::spec::parse_host_spec;

    fn specs(tokens: &[&str]) -> Vec<(String, HostSpec)> {
        tokens
            .iter()
            .map(|t| (t.to_string(), parse_host_spec(t).unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn addresses_need_no_lookup() {
        let (blocks, errors) = resolve_targets(&specs(&["192.0.2.1", "fd00::/127"]), false).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(blocks.iter().map(Block::len).sum::<u64>(), 3);
        let excludes = resolve_excludes(&specs(&["192.0.2.1"])).await.unwrap();
        assert!(excludes.contains("192.0.2.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn names_carry_their_label() {
        // `localhost` comes from /etc/hosts, never from the network.
        let (blocks, errors) = resolve_targets(&specs(&["localhost"]), true).await;
        assert!(errors.is_empty(), "{errors:?}");
        let [Block::List(list)] = blocks.as_slice() else {
            panic!("{blocks:?}")
        };
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name.as_deref(), Some("localhost"));
    }

    #[test]
    fn error_texts() {
        let e = ExcludeUnresolved {
            token: "nope.invalid".into(),
            message: "no addresses".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot resolve excluded host \"nope.invalid\": no addresses; nothing was scanned"
        );
    }

    #[tokio::test]
    async fn a_spec_without_a_block_is_reported() {
        let spec = vec![(
            "fd00::/64".to_string(),
            HostSpec::Net("fd00::/64".parse().unwrap()),
        )];
        let (blocks, errors) = resolve_targets(&spec, false).await;
        assert!(blocks.is_empty());
        assert_eq!(
            errors,
            vec![Unresolved {
                token: "fd00::/64".into(),
                message: "cannot be scanned".into(),
            }]
        );
    }

    #[tokio::test]
    async fn host_port_texts_as_typed() {
        let v4: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(lookup_host_port("127.0.0.1:7000").await.unwrap(), v4);
        let v6: SocketAddr = "[::1]:7000".parse().unwrap();
        assert_eq!(lookup_host_port("[::1]:7000").await.unwrap(), v6);
        // A name goes through the resolver (localhost is in /etc/hosts).
        let local = lookup_host_port("localhost:7000").await.unwrap();
        assert!(local.ip().is_loopback() && local.port() == 7000, "{local}");
        for (text, words) in [
            ("127.0.0.1", "expected HOST:PORT"),
            ("localhost:http", "invalid port value"),
            ("localhost:65536", "invalid port value"),
        ] {
            let err = lookup_host_port(text).await.expect_err(text);
            assert_eq!(err.to_string(), words, "{text}");
        }
    }
}
