//! `--allow`, `--deny`, `--allowfile`, `--denyfile`: which peers listen
//! mode serves. Host specs use nmap's syntax (addresses, CIDR, octet
//! ranges), parsed by `target`; names are resolved once at start.

use std::net::IpAddr;

use crate::target::Excludes;

/// The access rules: a peer is served when it is allowed (or no allow list
/// was given) and not denied.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub allow: Option<Excludes>,
    pub deny: Option<Excludes>,
}

impl Access {
    pub fn permits(&self, ip: IpAddr) -> bool {
        // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if let Some(allow) = &self.allow
            && !allow.contains(ip)
        {
            return false;
        }
        !self.deny.as_ref().is_some_and(|d| d.contains(ip))
    }

    pub fn is_open(&self) -> bool {
        self.allow.is_none() && self.deny.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{ExcludeItem, parse_exclude_list};

    fn set(text: &str) -> Excludes {
        Excludes::new(
            parse_exclude_list(text)
                .unwrap()
                .into_iter()
                .filter_map(ExcludeItem::from_spec)
                .collect(),
        )
    }

    #[test]
    fn allow_then_deny() {
        let a = Access {
            allow: Some(set("127.0.0.0/8")),
            deny: Some(set("127.0.0.2")),
        };
        assert!(a.permits("127.0.0.1".parse().unwrap()));
        assert!(!a.permits("127.0.0.2".parse().unwrap()));
        assert!(!a.permits("198.18.0.1".parse().unwrap()));
        assert!(a.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(Access::default().permits("198.18.0.1".parse().unwrap()));
    }
}
