//! How a wait reads in messages ("timed out after 1.0 s", "after 250 ms"):
//! one spelling for every layer that reports a timeout, from the TLS
//! handshake to a mail step and a fuzz run.

use std::time::Duration;

/// A wait as people read it in messages: "timed out after 1.0 s",
/// "after 250 ms".
pub fn secs_text(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
