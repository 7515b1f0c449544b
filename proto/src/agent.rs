//! Frames of the agent protocol (`docs/agent-protocol.md`), sans-IO.
//!
//! A controller (`sockeye exercise run`) and an agent (`sockeye agent
//! --stdio`) exchange frames over any byte pipe (SSH, `ip netns exec`, a
//! container's exec). A frame is
//!
//! ```text
//! length  u32, big-endian: the bytes that follow (5 ..= MAX_FRAME)
//! kind    u8: hello 1, welcome 2, refuse 3, request 4, event 5, result 6, bye 7
//! id      u32, big-endian: the request a frame belongs to (0 for the handshake and bye)
//! body    the rest: a UTF-8 JSON object whose fields the kind and the action decide
//! ```
//!
//! This module only cuts and builds frames; what a body means is the
//! business of the `sockeye` crate. A length past [`MAX_FRAME`] or under the
//! header's 5 bytes, and an unknown kind, are errors at once: a peer that
//! sends them is not speaking this protocol, and nothing more is read.

use std::fmt;

/// The largest frame, header included (after the length field): 1 MiB.
/// The biggest body a controller sends is a talk script or a scan shard's
/// port list; a result carries at most a few thousand records.
pub const MAX_FRAME: usize = 1 << 20;

/// Bytes of the length field.
pub const LEN_BYTES: usize = 4;

/// Bytes after the length field that every frame has: kind and id.
pub const HEADER: usize = 5;

/// The version of the protocol this codec speaks (the handshake's `protocol`).
pub const VERSION: u16 = 1;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Controller -> agent, first: its protocol version and capabilities.
    Hello,
    /// Agent -> controller: the versions agree; the agent's capabilities,
    /// limits and addresses.
    Welcome,
    /// Agent -> controller: the versions do not agree (both are named).
    Refuse,
    /// Controller -> agent: an action to carry out.
    Request,
    /// Agent -> controller: something happened while a request runs (a
    /// listener is ready, a nonce arrived).
    Event,
    /// Agent -> controller: a request's outcome; its id is free again.
    Result,
    /// Either way: the sender is done; the pipe closes next.
    Bye,
}

impl Kind {
    /// The kind's byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Kind::Hello => 1,
            Kind::Welcome => 2,
            Kind::Refuse => 3,
            Kind::Request => 4,
            Kind::Event => 5,
            Kind::Result => 6,
            Kind::Bye => 7,
        }
    }

    /// The kind of a byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Welcome,
            3 => Kind::Refuse,
            4 => Kind::Request,
            5 => Kind::Event,
            6 => Kind::Result,
            7 => Kind::Bye,
            _ => return None,
        })
    }
}

/// One frame, borrowing its body from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: Kind,
    pub id: u32,
    pub body: &'a [u8],
}

/// Bytes that are not a frame of this protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The length field says more than [`MAX_FRAME`].
    TooLong { len: usize },
    /// The length field says less than the 5-byte header.
    TooShort { len: usize },
    /// A kind byte this version does not know.
    UnknownKind(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { len } => {
                write!(f, "a frame of {len} bytes (at most {MAX_FRAME})")
            }
            FrameError::TooShort { len } => {
                write!(f, "a frame of {len} bytes (at least {HEADER})")
            }
            FrameError::UnknownKind(b) => write!(f, "unknown frame kind {b}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Decodes one frame from the start of `buf`: the frame and the bytes it
/// took, `Ok(None)` when more bytes are needed, or an error as soon as the
/// header shows the bytes are not a frame (before the body arrives).
pub fn decode(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(len_field) = buf.get(..LEN_BYTES) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len_field[0], len_field[1], len_field[2], len_field[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLong { len });
    }
    if len < HEADER {
        return Err(FrameError::TooShort { len });
    }
    if let Some(&k) = buf.get(LEN_BYTES)
        && Kind::from_byte(k).is_none()
    {
        return Err(FrameError::UnknownKind(k));
    }
    let Some(frame) = buf.get(LEN_BYTES..LEN_BYTES + len) else {
        return Ok(None);
    };
    let kind = Kind::from_byte(frame[0]).ok_or(FrameError::UnknownKind(frame[0]))?;
    let id = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
    Ok(Some((
        Frame {
            kind,
            id,
            body: &frame[HEADER..],
        },
        LEN_BYTES + len,
    )))
}

/// Appends the frame `kind`/`id`/`body` to `out`; a body that would make it
/// longer than [`MAX_FRAME`] is refused and `out` is left as it was.
pub fn encode(kind: Kind, id: u32, body: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = HEADER + body.len();
    if len > MAX_FRAME {
        return Err(FrameError::TooLong { len });
    }
    out.reserve(LEN_BYTES + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(kind.byte());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: Kind, id: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(kind, id, body, &mut out).expect("fits");
        out
    }

    /// Bytes on the wire, written out by hand.
    #[test]
    fn byte_table() {
        let table: &[(&[u8], Kind, u32, &[u8])] = &[
            (
                b"\x00\x00\x00\x13\x01\x00\x00\x00\x00{\"protocol\":1}",
                Kind::Hello,
                0,
                b"{\"protocol\":1}",
            ),
            (
                b"\x00\x00\x00\x07\x04\x00\x00\x00\x2a{}",
                Kind::Request,
                42,
                b"{}",
            ),
            (b"\x00\x00\x00\x05\x07\x00\x00\x00\x00", Kind::Bye, 0, b""),
            (
                b"\x00\x00\x00\x07\x06\xff\xff\xff\xff{}",
                Kind::Result,
                u32::MAX,
                b"{}",
            ),
        ];
        for &(wire, kind, id, body) in table {
            assert_eq!(frame(kind, id, body), wire, "{kind:?}");
            let (f, used) = decode(wire).expect("valid").expect("whole");
            assert_eq!((f.kind, f.id, f.body, used), (kind, id, body, wire.len()));
        }
        for b in 1..=7u8 {
            assert_eq!(Kind::from_byte(b).map(Kind::byte), Some(b));
        }
        assert_eq!(Kind::from_byte(0), None);
        assert_eq!(Kind::from_byte(8), None);
    }

    #[test]
    fn bad_headers_are_refused_before_the_body_arrives() {
        let table: &[(&[u8], FrameError)] = &[
            (
                b"\x00\x10\x00\x01",
                FrameError::TooLong { len: MAX_FRAME + 1 },
            ),
            (
                b"\xff\xff\xff\xff\x04",
                FrameError::TooLong {
                    len: u32::MAX as usize,
                },
            ),
            (
                b"\x00\x00\x00\x04\x04\x00\x00\x00",
                FrameError::TooShort { len: 4 },
            ),
            (b"\x00\x00\x00\x00", FrameError::TooShort { len: 0 }),
            (b"\x00\x00\x00\x09\x08", FrameError::UnknownKind(8)),
            (b"\x00\x00\x00\x09\x00\x00", FrameError::UnknownKind(0)),
        ];
        for &(wire, err) in table {
            assert_eq!(decode(wire), Err(err), "{wire:?}");
        }
        assert!(encode(Kind::Event, 1, &vec![b'x'; MAX_FRAME], &mut Vec::new()).is_err());
        let mut kept = b"before".to_vec();
        assert!(encode(Kind::Event, 1, &vec![b'x'; MAX_FRAME], &mut kept).is_err());
        assert_eq!(kept, b"before");
        // The largest body that fits.
        let big = frame(Kind::Event, 1, &vec![b'x'; MAX_FRAME - HEADER]);
        assert_eq!(decode(&big).expect("valid").expect("whole").1, big.len());
    }

    /// Every proper prefix of a valid stream asks for more; the whole of it
    /// gives the frames in order, whatever the cut.
    #[test]
    fn every_prefix_needs_more_and_frames_follow_each_other() {
        let mut wire = frame(Kind::Hello, 0, b"{\"protocol\":1}");
        wire.extend(frame(Kind::Request, 7, b"{\"action\":\"connect\"}"));
        wire.extend(frame(Kind::Bye, 0, b""));
        let first = decode(&wire).expect("valid").expect("whole").1;
        for cut in 0..first {
            assert_eq!(decode(&wire[..cut]), Ok(None), "cut at {cut}");
        }
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < wire.len() {
            let (f, used) = decode(&wire[at..]).expect("valid").expect("whole");
            kinds.push((f.kind, f.id));
            at += used;
        }
        assert_eq!(
            kinds,
            [(Kind::Hello, 0), (Kind::Request, 7), (Kind::Bye, 0)]
        );
    }
}
