//! OpenSSH daemons in test namespaces, with keys made at test time: how
//! agent tests reach agents over `ssh://` as users do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Keys in `dir`: `host_key` (the daemons'), `client_key` (the
/// controller's), and `authorized_keys` letting the client key in.
pub(crate) fn make_keys(dir: &Path) {
    for file in ["host_key", "client_key"] {
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join(file))
            .status()
            .expect("ssh-keygen");
        assert!(status.success(), "ssh-keygen {file}");
    }
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
        .expect("authorized_keys");
}

/// A running `sshd -D` in a namespace; dropping it kills it (by PID).
#[derive(Debug)]
pub(crate) struct Sshd(Child);

impl Sshd {
    /// Starts sshd in `ns` on `address` port 22, root login by the key of
    /// [`make_keys`] only; its config and PID file are named after `name`.
    pub(crate) fn start(ns: &str, address: &str, dir: &Path, name: &str) -> Sshd {
        Sshd::start_with(ns, address, dir, name, "")
    }

    /// As [`Sshd::start`], with `extra` lines of sshd_config.
    pub(crate) fn start_with(ns: &str, address: &str, dir: &Path, name: &str, extra: &str) -> Sshd {
        let config = dir.join(format!("{name}.sshd_config"));
        std::fs::write(
            &config,
            format!(
                "Port 22\nListenAddress {address}\nHostKey {0}/host_key\nPidFile {0}/{name}.pid\n\
                 UsePAM no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nAuthorizedKeysFile {0}/authorized_keys\nStrictModes no\n{extra}",
                dir.display()
            ),
        )
        .expect("sshd_config");
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd");
        Sshd(child)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An ssh config file in `dir` for `hosts`: root, the client key, a
/// known_hosts file holding `host_key_line` (a public key line) for each.
pub(crate) fn client_config(
    dir: &Path,
    name: &str,
    hosts: &[&str],
    host_key_line: &str,
) -> PathBuf {
    let known = dir.join(format!("{name}.known_hosts"));
    let lines: String = hosts
        .iter()
        .map(|h| format!("{h} {host_key_line}\n"))
        .collect();
    std::fs::write(&known, lines).expect("known_hosts");
    let config = dir.join(format!("{name}.config"));
    let text: String = hosts
        .iter()
        .map(|h| {
            format!(
                "Host {h}\n  User root\n  IdentityFile {0}/client_key\n  UserKnownHostsFile {1}\n  StrictHostKeyChecking yes\n",
                dir.display(),
                known.display()
            )
        })
        .collect();
    std::fs::write(&config, text).expect("ssh config");
    config
}
