//! A routed lab of five namespaces, for firewall tests with agents (std
//! only): three zones behind a router, and a management network that
//! reaches two of them without crossing the router.
//!
//! ```text
//!   A  198.18.101.2 ── 198.18.101.1 ┐
//!   B  198.18.102.2 ── 198.18.102.1 ├ R (forwards; nftables)
//!   C  198.18.103.2 ── 198.18.103.1 ┘
//!   M  198.18.99.1 ── 198.18.99.2 A        (management, /30 links)
//!      198.18.99.5 ── 198.18.99.6 B
//! ```
//!
//! The management addresses sort before the zones' on purpose: a controller
//! that took an agent's first address for a flow's destination would send
//! the flow over the management network, around the router.
//!
//! Interfaces are named `X2Y` (on X, towards Y). Namespaces are named
//! `sk-<pid>-<n>-<zone>` so that `netns.rs`'s stale cleanup knows them; `Drop` kills what runs in each namespace and deletes it.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use super::netns::{
    COUNTER, NS_PREFIX, STALE_CLEANUP, check_ip, check_ip_exec, cleanup_stale, destroy_ns, ns_inode,
};

pub(crate) const A: &str = "198.18.101.2";
pub(crate) const B: &str = "198.18.102.2";
pub(crate) const C: &str = "198.18.103.2";
/// The router's address on each zone's link.
pub(crate) const R_A: &str = "198.18.101.1";
pub(crate) const R_C: &str = "198.18.103.1";
/// A's and B's addresses on the management network (sorting first).
pub(crate) const A_MGMT: &str = "198.18.99.2";
pub(crate) const B_MGMT: &str = "198.18.99.6";

/// The five namespaces.
#[derive(Debug)]
pub(crate) struct Zones {
    tag: String,
}

const ZONES: [&str; 5] = ["r", "a", "b", "c", "m"];

impl Zones {
    /// Builds the namespaces, links, addresses and routes; the router
    /// forwards and has no ruleset yet. Call `require_lab` first.
    pub(crate) fn new() -> Zones {
        STALE_CLEANUP.call_once(cleanup_stale);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let z = Zones {
            tag: format!("{NS_PREFIX}{}-{n}", std::process::id()),
        };
        for zone in ZONES {
            let ns = z.ns(zone);
            if ns_inode(&ns).is_some() {
                destroy_ns(&ns);
            }
            check_ip(&["netns", "add", &ns]);
            check_ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        // (namespace, interface, address/len) pairs joined by one veth.
        let links = [
            (
                ("r", "r2a", "198.18.101.1/24"),
                ("a", "a2r", "198.18.101.2/24"),
            ),
            (
                ("r", "r2b", "198.18.102.1/24"),
                ("b", "b2r", "198.18.102.2/24"),
            ),
            (
                ("r", "r2c", "198.18.103.1/24"),
                ("c", "c2r", "198.18.103.2/24"),
            ),
            (
                ("m", "m2a", "198.18.99.1/30"),
                ("a", "a2m", "198.18.99.2/30"),
            ),
            (
                ("m", "m2b", "198.18.99.5/30"),
                ("b", "b2m", "198.18.99.6/30"),
            ),
        ];
        for ((z1, i1, a1), (z2, i2, a2)) in links {
            let (n1, n2) = (z.ns(z1), z.ns(z2));
            check_ip(&[
                "link", "add", "name", i1, "netns", &n1, "type", "veth", "peer", "name", i2,
                "netns", &n2,
            ]);
            for (ns, ifname, addr) in [(&n1, i1, a1), (&n2, i2, a2)] {
                check_ip(&["-n", ns, "addr", "add", addr, "dev", ifname]);
                check_ip(&["-n", ns, "link", "set", ifname, "up"]);
            }
        }
        for (zone, via) in [
            ("a", "198.18.101.1"),
            ("b", "198.18.102.1"),
            ("c", "198.18.103.1"),
        ] {
            check_ip(&["-n", &z.ns(zone), "route", "add", "default", "via", via]);
        }
        check_ip_exec(&z.ns("r"), &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        z.wait_links(&links.map(|((z1, i1, _), (z2, i2, _))| [(z1, i1), (z2, i2)]));
        z
    }

    /// Waits (bounded) for carrier on every link end.
    fn wait_links(&self, ends: &[[(&str, &str); 2]]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let up = |zone: &str, ifname: &str| {
            let out = check_ip(&["-n", &self.ns(zone), "-o", "link", "show", "dev", ifname]);
            String::from_utf8_lossy(&out.stdout).contains("state UP")
        };
        while Instant::now() < deadline {
            if ends.iter().flatten().all(|(z, i)| up(z, i)) {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("the zones lab's links did not come up within 5 s");
    }

    /// The namespace of `zone` (`r`, `a`, `b`, `c`, `m`).
    pub(crate) fn ns(&self, zone: &str) -> String {
        assert!(ZONES.contains(&zone), "no zone {zone}");
        format!("{}-{zone}", self.tag)
    }

    /// Replaces the router's ruleset with `ruleset` (nft syntax).
    pub(crate) fn router_rules(&self, ruleset: &str) {
        let text = format!("flush ruleset\n{ruleset}\n");
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns("r"), "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("nft");
        std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), text.as_bytes())
            .expect("ruleset");
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "nft -f: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Zones {
    fn drop(&mut self) {
        for zone in ZONES {
            destroy_ns(&self.ns(zone));
        }
    }
}
