//! `-o FILE` (raw copy of both directions) and `-x FILE` (hex dump): the
//! tap every session writes what it sent and received into.
//!
//! Unlike ncat's dump, each line says the direction (`>` sent, `<`
//! received), the offset within that direction and the time the chunk was
//! seen, so a dump of a conversation reads in order.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

/// Bytes per hex-dump line.
pub const LINE: usize = 16;

/// Direction of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Sent,
    Received,
}

impl Dir {
    fn mark(self) -> char {
        match self {
            Dir::Sent => '>',
            Dir::Received => '<',
        }
    }
}

#[derive(Debug)]
struct Inner {
    raw: Option<BufWriter<File>>,
    hex: Option<BufWriter<File>>,
    sent: u64,
    received: u64,
}

/// The output files of `-o` and `-x`, shared by every session of a run.
#[derive(Debug)]
pub struct Tap {
    inner: Mutex<Inner>,
}

impl Tap {
    /// Opens (truncating) the files; None when neither is asked for.
    pub fn open(raw: Option<&Path>, hex: Option<&Path>) -> io::Result<Option<Tap>> {
        if raw.is_none() && hex.is_none() {
            return Ok(None);
        }
        // The error names the file: "-x /no/such/dir/f" must say which.
        let open = |p: &Path| {
            File::create(p)
                .map(BufWriter::new)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
        };
        Ok(Some(Tap {
            inner: Mutex::new(Inner {
                raw: raw.map(open).transpose()?,
                hex: hex.map(open).transpose()?,
                sent: 0,
                received: 0,
            }),
        }))
    }

    /// Records one chunk. Errors writing the log are not worth ending the
    /// session for; the first one is reported by the caller's flush.
    pub fn record(&self, dir: Dir, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let offset = match dir {
            Dir::Sent => &mut g.sent,
            Dir::Received => &mut g.received,
        };
        let start = *offset;
        *offset += data.len() as u64;
        if let Some(raw) = g.raw.as_mut() {
            let _ = raw.write_all(data).and_then(|()| raw.flush());
        }
        if let Some(hex) = g.hex.as_mut() {
            let stamp = timestamp();
            let text = dump(dir, start, &stamp, data);
            let _ = hex.write_all(text.as_bytes()).and_then(|()| hex.flush());
        }
    }
}

fn timestamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Renders one chunk: a line per 16 bytes,
/// `> 2026-11-28T23:10:00.123456789Z 00000010  48 65 ... |Hello.|`.
pub fn dump(dir: Dir, start: u64, stamp: &str, data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(LINE) * 100);
    for (i, chunk) in data.chunks(LINE).enumerate() {
        let off = start + (i * LINE) as u64;
        out.push(dir.mark());
        out.push(' ');
        out.push_str(stamp);
        out.push_str(&format!(" {off:08x} "));
        for j in 0..LINE {
            if j == LINE / 2 {
                out.push(' ');
            }
            match chunk.get(j) {
                Some(b) => out.push_str(&format!(" {b:02x}")),
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_lines() {
        let text = dump(Dir::Received, 16, "T", b"Hello, world!\n0123456789");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            "< T 00000010  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 30 31  |Hello, world!.01|"
        );
        assert!(
            lines[1].starts_with("< T 00000020  32 33 34"),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with("|23456789|"), "{}", lines[1]);
        assert!(dump(Dir::Sent, 0, "T", b"x").starts_with("> T 00000000  78"));
    }
}
