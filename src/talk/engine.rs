//! The expect engine: a sans-IO matcher over a bounded buffer
//! ([`Matcher`]) and a thin async driver ([`Expect`]) over any byte stream
//! (TCP, TLS, a STARTTLS-upgraded stream, a child's pty).
//!
//! Where the Rust expect crates spend their time, this does not: bytes are
//! read straight into the match buffer (no per-byte messages or channels),
//! a wait is one read racing one deadline timer (no sleep-polling),
//! patterns are compiled once by the caller and reused for every read, a
//! literal is searched with `memmem` only over the bytes that arrived since
//! the last search, and the buffer is bounded (64 KiB by default): a peer
//! that floods without matching ends the wait with [`Failure::FullBuffer`],
//! Tcl expect's `full_buffer`, instead of growing memory.
//!
//! Matching rule: among the patterns of one wait, the match that starts
//! leftmost in the buffer wins, ties going to the earlier pattern; the
//! buffer is consumed up to the end of that match, so the next wait sees
//! only what followed. As in Tcl expect, a regex is matched against what
//! has arrived so far: `\d+` may match "12" while "345" is in flight.

use std::borrow::Borrow;
use std::ops::Range;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The default bound of the match buffer (Tcl expect's `match_max` is 2000
/// bytes; 64 KiB holds any greeting or banner and a page of a child's output).
pub const DEFAULT_MAX_BUFFER: usize = 64 * 1024;
/// Bytes asked for per read system call.
const READ_CHUNK: usize = 8 * 1024;
/// A compiled regex may use at most this much memory: a plan's pattern
/// must not make the engine allocate without bound.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What a step waits for: a literal byte string or a regex (over bytes,
/// so binary protocols and non-UTF-8 output match too). Compiled once.
#[derive(Debug, Clone)]
pub enum Pattern {
    Literal(Box<[u8]>),
    Regex(regex::bytes::Regex),
}

impl Pattern {
    /// A literal pattern. An empty literal matches at once.
    pub fn literal(text: impl Into<Vec<u8>>) -> Pattern {
        Pattern::Literal(text.into().into_boxed_slice())
    }

    /// A regex pattern (Rust `regex` syntax, matched over bytes). `^` and
    /// `$` match at line starts and ends (CRLF or LF): a step waits for a
    /// line such as `^331 ` in a buffer that may still hold the rest of the
    /// previous one, as the line protocols need. `(?-m)` turns that off.
    pub fn regex(re: &str) -> Result<Pattern, regex::Error> {
        regex::bytes::RegexBuilder::new(re)
            .multi_line(true)
            .crlf(true)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(Pattern::Regex)
    }

    /// How the pattern reads in messages: `"Name"` or `/^230 /`.
    pub fn describe(&self) -> String {
        match self {
            Pattern::Literal(l) => format!("\"{}\"", l.escape_ascii()),
            Pattern::Regex(r) => format!("/{}/", r.as_str()),
        }
    }

    /// The leftmost match in `hay` that ends after `new_from` (earlier
    /// bytes were searched already and held no literal match).
    fn find(&self, hay: &[u8], new_from: usize) -> Option<Range<usize>> {
        match self {
            Pattern::Literal(lit) => {
                // A literal ending in the new bytes starts at most len-1
                // bytes before them: only that window is searched again.
                let from = new_from.saturating_sub(lit.len().saturating_sub(1));
                memchr::memmem::find(&hay[from..], lit).map(|i| from + i..from + i + lit.len())
            }
            // A regex match may start anywhere (`a.*b` spans old bytes), so
            // the whole (bounded) buffer is searched; the automaton's
            // prefilter makes that a memchr-speed scan for most patterns.
            Pattern::Regex(re) => re.find(hay).map(|m| m.range()),
        }
    }
}

/// A match: which pattern, and the bytes it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the pattern in the list given to the wait.
    pub index: usize,
    /// Where it matched in the buffer before consumption.
    pub range: Range<usize>,
}

/// The sans-IO half: a bounded buffer of received bytes and the search.
#[derive(Debug)]
pub struct Matcher {
    buf: Vec<u8>,
    max: usize,
    /// Bytes at the front already searched (with no match) by the current wait.
    searched: usize,
    /// Bytes consumed by matches so far, plus discarded ones.
    consumed: u64,
}

impl Matcher {
    /// A matcher holding at most `max` bytes (at least 1).
    pub fn new(max: usize) -> Matcher {
        Matcher {
            buf: Vec::new(),
            max: max.max(1),
            searched: 0,
            consumed: 0,
        }
    }

    /// Bytes received and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Whether no more bytes fit.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= self.max
    }

    /// The bound given at creation.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Appends what fits of `bytes`; returns how many were taken.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.max - self.buf.len().min(self.max));
        self.buf.extend_from_slice(&bytes[..n]);
        n
    }

    /// Room for the next read: a slice of the buffer's spare space (at
    /// most `READ_CHUNK` bytes, never past the bound), filled by the read
    /// in place; `commit` keeps the count read. (Zeroing the room is a
    /// memset, cheap next to the read system call, and keeps this safe.)
    fn spare(&mut self) -> &mut [u8] {
        let start = self.buf.len();
        let room = (self.max - start.min(self.max)).min(READ_CHUNK);
        self.buf.resize(start + room, 0);
        &mut self.buf[start..]
    }

    /// Keeps `n` bytes of the last [`spare`](Matcher::spare) slice.
    fn commit(&mut self, start: usize, n: usize) {
        self.buf.truncate(start + n);
    }

    /// Starts a new wait: the next [`find`](Matcher::find) searches the
    /// whole buffer (the patterns changed).
    pub fn new_wait(&mut self) {
        self.searched = 0;
    }

    /// Searches for `patterns` in what arrived; on a match, consumes the
    /// buffer up to its end and returns it with the matched bytes.
    /// (Patterns are taken by reference: cloning a compiled regex would
    /// give it a fresh match cache, re-allocated on its first search.)
    pub fn find<P: Borrow<Pattern>>(&mut self, patterns: &[P]) -> Option<(Hit, Vec<u8>)> {
        let mut best: Option<Hit> = None;
        for (index, p) in patterns.iter().enumerate() {
            if let Some(range) = p.borrow().find(&self.buf, self.searched)
                && best.as_ref().is_none_or(|b| range.start < b.range.start)
            {
                best = Some(Hit { index, range });
            }
        }
        match best {
            Some(hit) => {
                let matched = self.buf[hit.range.clone()].to_vec();
                self.consume(hit.range.end);
                Some((hit, matched))
            }
            None => {
                self.searched = self.buf.len();
                None
            }
        }
    }

    /// Drops the first `n` bytes.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.consumed += n as u64;
        self.searched = self.searched.saturating_sub(n);
    }

    /// Takes every buffered byte out (for a STARTTLS upgrade, where bytes
    /// before the handshake must be accounted for).
    pub fn take(&mut self) -> Vec<u8> {
        self.searched = 0;
        self.consumed += self.buf.len() as u64;
        std::mem::take(&mut self.buf)
    }

    /// The last `n` bytes received and not consumed (for failure messages).
    pub fn tail(&self, n: usize) -> &[u8] {
        &self.buf[self.buf.len().saturating_sub(n)..]
    }
}

/// Why a wait or a send ended without a match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The deadline passed first.
    #[error("timeout")]
    Timeout,
    /// The peer closed (or the child exited) first.
    #[error("eof")]
    Eof,
    /// The buffer filled up without a match (Tcl expect's `full_buffer`).
    #[error("full buffer")]
    FullBuffer,
    /// Another read or write error, in plain words.
    #[error("{0}")]
    Io(String),
}

/// The async half: a stream and its matcher.
#[derive(Debug)]
pub struct Expect<S> {
    io: S,
    matcher: Matcher,
    eof: bool,
    /// The last bytes seen, kept across consumption, for failure messages.
    bytes_in: u64,
}

/// Bytes of context kept for "last bytes received" in messages.
pub const TAIL: usize = 80;

impl<S: AsyncRead + AsyncWrite + Unpin> Expect<S> {
    /// Wraps `io` with a match buffer of at most `max_buffer` bytes.
    pub fn new(io: S, max_buffer: usize) -> Expect<S> {
        Expect {
            io,
            matcher: Matcher::new(max_buffer),
            eof: false,
            bytes_in: 0,
        }
    }

    /// The matcher (what is buffered, its tail).
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Puts bytes read elsewhere (before a STARTTLS upgrade handed the
    /// stream over) at the front of the buffer, as far as they fit.
    pub fn preload(&mut self, bytes: &[u8]) {
        self.matcher.push(bytes);
    }

    /// Total bytes received so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Waits up to `timeout` for one of `patterns`. One read at a time
    /// straight into the match buffer, racing a single deadline timer.
    pub async fn expect<P: Borrow<Pattern>>(
        &mut self,
        patterns: &[P],
        timeout: Duration,
    ) -> Result<(Hit, Vec<u8>), Failure> {
        self.matcher.new_wait();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            if let Some(hit) = self.matcher.find(patterns) {
                return Ok(hit);
            }
            if self.eof {
                return Err(Failure::Eof);
            }
            if self.matcher.is_full() {
                return Err(Failure::FullBuffer);
            }
            let start = self.matcher.buf.len();
            let read = {
                let room = self.matcher.spare();
                tokio::select! {
                    biased;
                    r = self.io.read(room) => Some(r),
                    () = &mut deadline => None,
                }
            };
            match read {
                None => {
                    self.matcher.commit(start, 0);
                    return Err(Failure::Timeout);
                }
                Some(Ok(0)) => {
                    self.matcher.commit(start, 0);
                    self.eof = true;
                }
                Some(Ok(n)) => {
                    self.matcher.commit(start, n);
                    self.bytes_in += n as u64;
                }
                Some(Err(err)) => {
                    self.matcher.commit(start, 0);
                    // A pty reads EIO once the child has exited and closed
                    // its side: that is the child's end of file.
                    if err.raw_os_error() == Some(nix::libc::EIO) {
                        self.eof = true;
                    } else {
                        return Err(Failure::Io(crate::net::io_text(&err)));
                    }
                }
            }
        }
    }

    /// Writes `bytes` and flushes, within `timeout`.
    pub async fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), Failure> {
        let write = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::Eof),
            Ok(Err(err)) => Err(Failure::Io(crate::net::io_text(&err))),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Takes the stream back with any bytes buffered and not consumed.
    pub fn into_parts(mut self) -> (S, Vec<u8>) {
        let rest = self.matcher.take();
        (self.io, rest)
    }

    /// Closes the write side politely, bounded.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(200), self.io.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Pattern {
        Pattern::literal(s.as_bytes())
    }

    #[test]
    fn a_literal_split_across_pushes_is_found_once_whole() {
        let mut m = Matcher::new(1024);
        let pats = [lit("word:")];
        m.push(b"Pass");
        assert_eq!(m.find(&pats), None);
        m.push(b"wo");
        assert_eq!(m.find(&pats), None);
        m.push(b"rd: rest");
        let (hit, text) = m.find(&pats).expect("match");
        assert_eq!((hit.index, hit.range, text), (0, 4..9, b"word:".to_vec()));
        // Consumed up to the end of the match.
        assert_eq!(m.buffered(), b" rest");
    }

    #[test]
    fn every_split_point_of_a_stream_finds_the_same_match() {
        let stream = b"220 ready\r\n331 Please specify the password.\r\n";
        let pats = [lit("331 "), Pattern::regex(r"5\d\d ").expect("re")];
        for cut in 0..=stream.len() {
            let mut m = Matcher::new(1024);
            m.push(&stream[..cut]);
            let first = m.find(&pats);
            m.push(&stream[cut..]);
            let hit = first.or_else(|| m.find(&pats)).expect("match");
            assert_eq!(hit.0.index, 0, "cut {cut}");
            assert_eq!(hit.1, b"331 ", "cut {cut}");
        }
    }

    proptest::proptest! {
        /// However a stream is cut into reads, the first match is where a
        /// search of the whole stream finds it (literals only search new
        /// bytes, so this is what guards that window arithmetic).
        #[test]
        fn chunking_never_changes_the_first_match(
            stream in proptest::collection::vec(proptest::sample::select(b"ab\r\n".to_vec()), 0..200),
            needle in proptest::collection::vec(proptest::sample::select(b"ab\r\n".to_vec()), 1..5),
            cuts in proptest::collection::vec(0usize..200, 0..20),
        ) {
            let want = memchr::memmem::find(&stream, &needle);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut m = Matcher::new(4096);
            let pats = [Pattern::literal(needle.clone())];
            let mut from = 0;
            let mut got = None;
            for cut in cuts {
                m.push(&stream[from..cut]);
                from = cut;
                if let Some((hit, text)) = m.find(&pats) {
                    proptest::prop_assert_eq!(&text, &needle);
                    // Absolute position: consumed bytes end at the match end.
                    got = Some(m.consumed as usize - needle.len());
                    let _ = hit;
                    break;
                }
            }
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn the_leftmost_match_wins_and_ties_go_to_the_earlier_pattern() {
        let mut m = Matcher::new(1024);
        m.push(b"530 Login incorrect.\r\n230 never\r\n");
        let pats = [lit("230"), lit("530")];
        assert_eq!(m.find(&pats).map(|h| h.0.index), Some(1));
        let mut m = Matcher::new(1024);
        m.push(b"abc");
        let pats = [Pattern::regex("a.").expect("re"), lit("ab")];
        assert_eq!(m.find(&pats).map(|h| h.0.index), Some(0));
    }

    #[test]
    fn a_regex_matching_across_old_and_new_bytes_is_found() {
        let mut m = Matcher::new(1024);
        let pats = [Pattern::regex(r"Name \([^)]*\):").expect("re")];
        m.push(b"Name (198.18");
        assert_eq!(m.find(&pats), None);
        m.push(b".0.2:clif): ");
        assert!(m.find(&pats).is_some());
    }

    #[test]
    fn anchors_match_at_line_boundaries() {
        let mut m = Matcher::new(1024);
        m.push(b"220 hello\r\n");
        assert!(m.find(&[lit("220 ")]).is_some());
        // The rest of the greeting is still there; ^ still finds the new line.
        m.push(b"331 Password\r\n");
        let pats = [Pattern::regex(r"^331 .*$").expect("re")];
        let (_, text) = m.find(&pats).expect("match");
        assert_eq!(text, b"331 Password");
        m.push(b"x230");
        assert_eq!(m.find(&[Pattern::regex("^230").expect("re")]), None);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut m = Matcher::new(8);
        assert_eq!(m.push(b"0123456789"), 8);
        assert!(m.is_full());
        assert_eq!(m.push(b"x"), 0);
        assert_eq!(m.tail(3), b"567");
        m.consume(4);
        assert_eq!(m.push(b"abcdef"), 4);
        assert_eq!(m.buffered(), b"4567abcd");
    }

    #[test]
    fn a_bad_or_huge_regex_is_refused() {
        assert!(Pattern::regex("(").is_err());
        assert!(Pattern::regex(r"\w{1000}{1000}").is_err());
    }

    #[tokio::test]
    async fn expect_over_a_duplex_stream_matches_times_out_and_sees_eof() {
        let (mut peer, ours) = tokio::io::duplex(64);
        let mut e = Expect::new(ours, 1024);
        peer.write_all(b"Name (host:me): ").await.expect("write");
        let (hit, _) = e
            .expect(&[lit("Name")], Duration::from_secs(5))
            .await
            .expect("match");
        assert_eq!(hit.index, 0);
        e.send(b"anonymous\n", Duration::from_secs(1))
            .await
            .expect("send");
        let mut got = [0u8; 10];
        peer.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"anonymous\n");
        // Nothing more arrives: a timeout, with the unmatched rest kept.
        let err = e
            .expect(&[lit("word:")], Duration::from_millis(50))
            .await
            .expect_err("timeout");
        assert_eq!(err, Failure::Timeout);
        assert_eq!(e.matcher().buffered(), b" (host:me): ");
        drop(peer);
        let err = e
            .expect(&[lit("word:")], Duration::from_secs(5))
            .await
            .expect_err("eof");
        assert_eq!(err, Failure::Eof);
    }

    #[tokio::test]
    async fn a_flood_without_a_match_ends_in_full_buffer() {
        let (mut peer, ours) = tokio::io::duplex(4096);
        let writer = tokio::spawn(async move {
            let chunk = [b'A'; 1024];
            for _ in 0..64 {
                if peer.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut e = Expect::new(ours, 16 * 1024);
        let err = e
            .expect(&[lit("never")], Duration::from_secs(5))
            .await
            .expect_err("full");
        assert_eq!(err, Failure::FullBuffer);
        assert_eq!(e.matcher().buffered().len(), 16 * 1024);
        drop(e);
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn the_deadline_ends_a_silent_wait_on_time() {
        let (_peer, ours) = tokio::io::duplex(64);
        let mut e = Expect::new(ours, 1024);
        let start = std::time::Instant::now();
        let err = e
            .expect(&[lit("x")], Duration::from_millis(150))
            .await
            .expect_err("timeout");
        assert_eq!(err, Failure::Timeout);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert_eq!(e.bytes_in(), 0);
    }
}
