//! Process-wide operating-system settings.
//!
//! A scanner's concurrency is bounded by how many sockets it may hold open,
//! so the program raises its soft open-file limit to the hard limit at start
//! and sizes its in-flight window from the result.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

pub mod tcp_info;

/// File descriptors kept free for everything that is not a probe socket:
/// stdio, output files, the runtime's epoll and eventfd, DNS lookups.
pub const RESERVED_FDS: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft
/// limit now in force. Failure is not fatal: the old limit is returned and
/// the scan runs with a smaller window.
pub fn raise_nofile_limit() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(err) => {
                tracing::debug!(%err, soft, hard, "could not raise the open-file limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(err) => {
            tracing::debug!(%err, "could not read the open-file limit");
            1024
        }
    }
}

/// The current soft open-file limit.
pub fn nofile_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Closes standard output for its reader (the next command of a pipeline
/// sees its end) while keeping descriptor 1 valid: /dev/null takes its
/// place, so a later write goes nowhere rather than to whatever file would
/// reuse the number. What was written before stays written.
pub fn close_stdout() -> std::io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    nix::unistd::dup2_stdout(&null)?;
    Ok(())
}
