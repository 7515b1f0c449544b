//! The calculator protocol of `docs/calc-protocol.md`, sans-IO.
//!
//! A request is `ID (u32) | OP (3 bytes) | N (u8) | z1..zN (i32)`, a response
//! `ID (u32) | RESULT (i32)`, in network byte order unless both sides agree on
//! little-endian (the seed's students used Python's native `struct.pack`).
//! Decoding never needs more than the header to know how long a request is,
//! so even an unknown operation keeps a stream framed; whether a request can
//! be answered is a separate step ([`Request::evaluate`]).

use std::fmt;

/// Bytes before the numbers: ID, OP, N.
pub const HEADER_LEN: usize = 8;
/// Bytes of a response.
pub const RESPONSE_LEN: usize = 8;
/// Most numbers in one request: N is one byte.
pub const MAX_NUMBERS: usize = u8::MAX as usize;
/// Longest request: 8 + 4 * 255 = 1028 bytes.
pub const MAX_REQUEST_LEN: usize = HEADER_LEN + 4 * MAX_NUMBERS;

/// Byte order of every integer on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ByteOrder {
    /// Network byte order, the default.
    #[default]
    Big,
    /// x86 native order, for peers written with Python's native `struct.pack`.
    Little,
}

impl ByteOrder {
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            ByteOrder::Big => u32::from_be_bytes(b),
            ByteOrder::Little => u32::from_le_bytes(b),
        }
    }

    fn i32(self, b: [u8; 4]) -> i32 {
        self.u32(b) as i32
    }

    fn put_u32(self, v: u32, out: &mut Vec<u8>) {
        match self {
            ByteOrder::Big => out.extend_from_slice(&v.to_be_bytes()),
            ByteOrder::Little => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
}

/// The four operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Sum,
    Pro,
    Min,
    Max,
}

impl Op {
    /// The three bytes on the wire.
    pub fn code(self) -> [u8; 3] {
        match self {
            Op::Sum => *b"SUM",
            Op::Pro => *b"PRO",
            Op::Min => *b"MIN",
            Op::Max => *b"MAX",
        }
    }

    /// The operation for three bytes, exact and case-sensitive.
    pub fn from_code(code: [u8; 3]) -> Option<Op> {
        match &code {
            b"SUM" => Some(Op::Sum),
            b"PRO" => Some(Op::Pro),
            b"MIN" => Some(Op::Min),
            b"MAX" => Some(Op::Max),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Sum => "SUM",
            Op::Pro => "PRO",
            Op::Min => "MIN",
            Op::Max => "MAX",
        }
    }
}

impl std::str::FromStr for Op {
    type Err = String;

    /// Case-insensitive on the command line (`sum` is `SUM`); the wire is exact.
    fn from_str(s: &str) -> Result<Op, String> {
        let up = s.to_ascii_uppercase();
        match up.as_bytes() {
            [a, b, c] => Op::from_code([*a, *b, *c])
                .ok_or_else(|| format!("unknown operation {s:?} (SUM, PRO, MIN or MAX)")),
            _ => Err(format!("unknown operation {s:?} (SUM, PRO, MIN or MAX)")),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One request as it came off the wire. `op` is the raw code so that an
/// unknown operation can still be reported with its ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u32,
    pub op: [u8; 3],
    pub numbers: Vec<i32>,
}

/// Why a well-framed request cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// OP is not SUM, PRO, MIN or MAX.
    UnknownOp([u8; 3]),
    /// The exact result does not fit in an i32.
    Overflow,
    /// MIN or MAX of no numbers.
    Empty,
}

impl Invalid {
    /// The spec's name for the reason: `unknown-op`, `overflow`, `empty`.
    pub fn reason(self) -> &'static str {
        match self {
            Invalid::UnknownOp(_) => "unknown-op",
            Invalid::Overflow => "overflow",
            Invalid::Empty => "empty",
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::UnknownOp(code) => {
                write!(f, "unknown-op ({:?})", String::from_utf8_lossy(code))
            }
            Invalid::Overflow => f.write_str("overflow (the result does not fit in 32 bits)"),
            Invalid::Empty => f.write_str("empty (MIN and MAX need at least one number)"),
        }
    }
}

/// A datagram that is not exactly one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramError {
    /// Shorter than the 8-byte header.
    TooShort { len: usize },
    /// The header says `expected` bytes, the datagram has `len`.
    WrongLength {
        id: u32,
        expected: usize,
        len: usize,
    },
}

impl fmt::Display for DatagramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramError::TooShort { len } => {
                write!(
                    f,
                    "bad-length ({len} bytes, shorter than the 8-byte header)"
                )
            }
            DatagramError::WrongLength { expected, len, .. } => {
                write!(f, "bad-length ({len} bytes, the header says {expected})")
            }
        }
    }
}

impl Request {
    /// A request for a known operation.
    pub fn new(id: u32, op: Op, numbers: Vec<i32>) -> Request {
        Request {
            id,
            op: op.code(),
            numbers,
        }
    }

    /// The operation, if it is one of the four.
    pub fn op(&self) -> Option<Op> {
        Op::from_code(self.op)
    }

    /// Length on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 4 * self.numbers.len()
    }

    /// Computes the result exactly, or says why it cannot be answered.
    pub fn evaluate(&self) -> Result<i32, Invalid> {
        evaluate(self.op, &self.numbers)
    }

    /// Appends the request's bytes to `out`. Panics if there are more than
    /// 255 numbers: check with [`MAX_NUMBERS`] before (clients refuse such
    /// requests locally).
    pub fn encode(&self, order: ByteOrder, out: &mut Vec<u8>) {
        assert!(self.numbers.len() <= MAX_NUMBERS, "at most 255 numbers");
        order.put_u32(self.id, out);
        out.extend_from_slice(&self.op);
        out.push(self.numbers.len() as u8);
        for n in &self.numbers {
            order.put_u32(*n as u32, out);
        }
    }
}

/// Computes `op` over `numbers` exactly (in i64, which holds any sum of 255
/// i32s; products are checked step by step).
pub fn evaluate(op: [u8; 3], numbers: &[i32]) -> Result<i32, Invalid> {
    let op = Op::from_code(op).ok_or(Invalid::UnknownOp(op))?;
    let wide: i64 = match op {
        Op::Sum => numbers.iter().map(|&n| i64::from(n)).sum(),
        Op::Pro => {
            let mut acc: i64 = 1;
            for &n in numbers {
                // Once the product leaves i32 it can come back only through
                // a zero factor; keep going in i64 while it fits, and treat
                // a product beyond i64 as overflow unless a later zero
                // factor makes it 0 (the exact result).
                acc = match acc.checked_mul(i64::from(n)) {
                    Some(v) => v,
                    None => {
                        return if numbers.contains(&0) {
                            Ok(0)
                        } else {
                            Err(Invalid::Overflow)
                        };
                    }
                };
            }
            acc
        }
        Op::Min => i64::from(*numbers.iter().min().ok_or(Invalid::Empty)?),
        Op::Max => i64::from(*numbers.iter().max().ok_or(Invalid::Empty)?),
    };
    i32::try_from(wide).map_err(|_| Invalid::Overflow)
}

/// The length of the request at the start of `buf`, or `None` when fewer
/// than 8 bytes are there to tell.
pub fn request_len(buf: &[u8]) -> Option<usize> {
    buf.get(7).map(|&n| HEADER_LEN + 4 * usize::from(n))
}

/// Decodes one request from the start of a stream buffer. `Ok(None)` means
/// more bytes are needed; on success, returns the request and the bytes it
/// took. A stream request cannot be malformed: any 8 + 4N bytes frame one.
pub fn decode_request(buf: &[u8], order: ByteOrder) -> Option<(Request, usize)> {
    let len = request_len(buf)?;
    let frame = buf.get(..len)?;
    Some((parse_frame(frame, order), len))
}

/// Calls `f` with the ID, raw op and numbers of the request at the start of
/// `buf` without allocating, returning the bytes it took (`None`: need more).
/// The server's hot path.
pub fn with_request<R>(
    buf: &[u8],
    order: ByteOrder,
    f: impl FnOnce(u32, [u8; 3], &mut dyn Iterator<Item = i32>) -> R,
) -> Option<(R, usize)> {
    let len = request_len(buf)?;
    let frame = buf.get(..len)?;
    let id = order.u32([frame[0], frame[1], frame[2], frame[3]]);
    let op = [frame[4], frame[5], frame[6]];
    let mut numbers = frame[HEADER_LEN..]
        .chunks_exact(4)
        .map(|c| order.i32([c[0], c[1], c[2], c[3]]));
    Some((f(id, op, &mut numbers), len))
}

/// Decodes a UDP datagram, which must be exactly one request.
pub fn decode_datagram(buf: &[u8], order: ByteOrder) -> Result<Request, DatagramError> {
    let Some(expected) = request_len(buf) else {
        return Err(DatagramError::TooShort { len: buf.len() });
    };
    if buf.len() != expected {
        let id = order.u32([buf[0], buf[1], buf[2], buf[3]]);
        return Err(DatagramError::WrongLength {
            id,
            expected,
            len: buf.len(),
        });
    }
    Ok(parse_frame(buf, order))
}

/// `frame` is exactly one request (length checked by the caller).
fn parse_frame(frame: &[u8], order: ByteOrder) -> Request {
    let id = order.u32([frame[0], frame[1], frame[2], frame[3]]);
    let op = [frame[4], frame[5], frame[6]];
    let numbers = frame[HEADER_LEN..]
        .chunks_exact(4)
        .map(|c| order.i32([c[0], c[1], c[2], c[3]]))
        .collect();
    Request { id, op, numbers }
}

/// A response: the request's ID and its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub id: u32,
    pub result: i32,
}

impl Response {
    pub fn encode(&self, order: ByteOrder, out: &mut Vec<u8>) {
        order.put_u32(self.id, out);
        order.put_u32(self.result as u32, out);
    }

    /// Decodes one response from the start of a stream buffer (`None`: need
    /// more bytes).
    pub fn decode(buf: &[u8], order: ByteOrder) -> Option<(Response, usize)> {
        let b = buf.get(..RESPONSE_LEN)?;
        Some((
            Response {
                id: order.u32([b[0], b[1], b[2], b[3]]),
                result: order.i32([b[4], b[5], b[6], b[7]]),
            },
            RESPONSE_LEN,
        ))
    }

    /// Decodes a response datagram, which must be exactly 8 bytes.
    pub fn decode_datagram(buf: &[u8], order: ByteOrder) -> Option<Response> {
        if buf.len() != RESPONSE_LEN {
            return None;
        }
        Response::decode(buf, order).map(|(r, _)| r)
    }
}
