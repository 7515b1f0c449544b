//! The calculator codec (`proto/src/calc.rs`) tested three ways, as STYLE.md asks: value/bytes
//! tables in both byte orders (hickory-dns `bin_tests`), every prefix of a valid stream
//! (linkerd2-proxy's `client_hello` prefix test), and property tests against an independent
//! i128 reference and against arbitrary splits of a TCP stream. The cargo-fuzz round trips
//! live in `fuzz/`; any input they find that breaks the codec comes back here as a regression
//! row.

use proptest::prelude::*;
use sockeye_proto::calc::{
    ByteOrder, DatagramError, HEADER_LEN, Invalid, MAX_NUMBERS, MAX_REQUEST_LEN, Op, RESPONSE_LEN,
    Request, Response, decode_datagram, decode_request, evaluate, request_len, with_request,
};

const ORDERS: [ByteOrder; 2] = [ByteOrder::Big, ByteOrder::Little];

fn other(order: ByteOrder) -> ByteOrder {
    match order {
        ByteOrder::Big => ByteOrder::Little,
        ByteOrder::Little => ByteOrder::Big,
    }
}

fn req(id: u32, op: &[u8; 3], numbers: Vec<i32>) -> Request {
    Request {
        id,
        op: *op,
        numbers,
    }
}

fn encoded(r: &Request, order: ByteOrder) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(order, &mut out);
    out
}

/// `head` followed by `word` `n` times: the bytes of a long request without writing 1028
/// literals.
fn bytes_with(head: &[u8], word: [u8; 4], n: usize) -> Vec<u8> {
    let mut v = head.to_vec();
    for _ in 0..n {
        v.extend_from_slice(&word);
    }
    v
}

/// (value, byte order, exact wire bytes), written out by hand.
fn request_table() -> Vec<(Request, ByteOrder, Vec<u8>)> {
    use ByteOrder::{Big, Little};
    vec![
        // N = 0, id 0: the shortest request, the same in both orders.
        (req(0, b"SUM", vec![]), Big, b"\0\0\0\0SUM\0".to_vec()),
        (req(0, b"SUM", vec![]), Little, b"\0\0\0\0SUM\0".to_vec()),
        (req(0, b"PRO", vec![]), Big, b"\0\0\0\0PRO\0".to_vec()),
        (req(0, b"MAX", vec![]), Little, b"\0\0\0\0MAX\0".to_vec()),
        // N = 1.
        (
            req(1, b"PRO", vec![1]),
            Big,
            vec![0, 0, 0, 1, b'P', b'R', b'O', 1, 0, 0, 0, 1],
        ),
        (
            req(1, b"PRO", vec![1]),
            Little,
            vec![1, 0, 0, 0, b'P', b'R', b'O', 1, 1, 0, 0, 0],
        ),
        // Negative numbers and a four-distinct-bytes id that shows the order.
        (
            req(0x0102_0304, b"MIN", vec![-1, -2]),
            Big,
            vec![
                1, 2, 3, 4, b'M', b'I', b'N', 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
            ],
        ),
        (
            req(0x0102_0304, b"MIN", vec![-1, -2]),
            Little,
            vec![
                4, 3, 2, 1, b'M', b'I', b'N', 2, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff,
            ],
        ),
        (
            req(42, b"SUM", vec![-123_456, 123_456]),
            Big,
            vec![
                0, 0, 0, 42, b'S', b'U', b'M', 2, 0xff, 0xfe, 0x1d, 0xc0, 0x00, 0x01, 0xe2, 0x40,
            ],
        ),
        (
            req(42, b"SUM", vec![-123_456, 123_456]),
            Little,
            vec![
                42, 0, 0, 0, b'S', b'U', b'M', 2, 0xc0, 0x1d, 0xfe, 0xff, 0x40, 0xe2, 0x01, 0x00,
            ],
        ),
        // id u32::MAX, i32::MIN and i32::MAX.
        (
            req(u32::MAX, b"MAX", vec![i32::MIN, i32::MAX, 0]),
            Big,
            vec![
                0xff, 0xff, 0xff, 0xff, b'M', b'A', b'X', 3, 0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
                0, 0, 0, 0,
            ],
        ),
        (
            req(u32::MAX, b"MAX", vec![i32::MIN, i32::MAX, 0]),
            Little,
            vec![
                0xff, 0xff, 0xff, 0xff, b'M', b'A', b'X', 3, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0x7f,
                0, 0, 0, 0,
            ],
        ),
        // Unknown operations still frame: the codec keeps the raw code.
        (
            req(7, b"XYZ", vec![5]),
            Big,
            vec![0, 0, 0, 7, b'X', b'Y', b'Z', 1, 0, 0, 0, 5],
        ),
        (
            req(7, b"sum", vec![5]),
            Little,
            vec![7, 0, 0, 0, b's', b'u', b'm', 1, 5, 0, 0, 0],
        ),
        (
            req(0, &[0xff, 0x00, 0x80], vec![]),
            Big,
            vec![0, 0, 0, 0, 0xff, 0x00, 0x80, 0],
        ),
        // N = 255, the longest request (1028 bytes).
        (
            req(0x0a0b_0c0d, b"SUM", vec![0x1122_3344; 255]),
            Big,
            bytes_with(
                &[0x0a, 0x0b, 0x0c, 0x0d, b'S', b'U', b'M', 0xff],
                [0x11, 0x22, 0x33, 0x44],
                255,
            ),
        ),
        (
            req(0x0a0b_0c0d, b"SUM", vec![0x1122_3344; 255]),
            Little,
            bytes_with(
                &[0x0d, 0x0c, 0x0b, 0x0a, b'S', b'U', b'M', 0xff],
                [0x44, 0x33, 0x22, 0x11],
                255,
            ),
        ),
        (
            req(3, b"PRO", vec![-1; 255]),
            Little,
            bytes_with(&[3, 0, 0, 0, b'P', b'R', b'O', 0xff], [0xff; 4], 255),
        ),
    ]
}

#[test]
fn request_bytes_table() {
    for (value, order, bytes) in request_table() {
        let ctx = format!("{value:?} {order:?}");
        assert_eq!(encoded(&value, order), bytes, "encode {ctx}");
        assert_eq!(value.wire_len(), bytes.len(), "wire_len {ctx}");
        assert_eq!(request_len(&bytes), Some(bytes.len()), "request_len {ctx}");
        assert_eq!(
            decode_request(&bytes, order),
            Some((value.clone(), bytes.len())),
            "decode_request {ctx}"
        );
        assert_eq!(
            decode_datagram(&bytes, order),
            Ok(value.clone()),
            "decode_datagram {ctx}"
        );
        // The other order reads the same frame with every integer byte-swapped: the
        // server does not guess, so the order must really be the one configured.
        let swapped = req(
            value.id.swap_bytes(),
            &value.op,
            value.numbers.iter().map(|n| n.swap_bytes()).collect(),
        );
        assert_eq!(
            decode_datagram(&bytes, other(order)),
            Ok(swapped),
            "other order {ctx}"
        );
    }
}

#[test]
fn request_constants() {
    assert_eq!(HEADER_LEN, 8);
    assert_eq!(MAX_NUMBERS, 255);
    assert_eq!(MAX_REQUEST_LEN, 1028);
    assert_eq!(
        req(0, b"SUM", vec![0; MAX_NUMBERS]).wire_len(),
        MAX_REQUEST_LEN
    );
}

#[test]
#[should_panic(expected = "at most 255 numbers")]
fn encode_refuses_256_numbers() {
    let mut out = Vec::new();
    req(1, b"SUM", vec![0; 256]).encode(ByteOrder::Big, &mut out);
}

#[test]
fn request_new_and_op() {
    let r = Request::new(9, Op::Pro, vec![2, 3]);
    assert_eq!(r, req(9, b"PRO", vec![2, 3]));
    assert_eq!(r.op(), Some(Op::Pro));
    assert_eq!(req(9, b"pro", vec![]).op(), None);
    for op in [Op::Sum, Op::Pro, Op::Min, Op::Max] {
        assert_eq!(Op::from_code(op.code()), Some(op));
        assert_eq!(op.name().as_bytes(), op.code());
        assert_eq!(op.name().to_lowercase().parse::<Op>(), Ok(op));
    }
    assert!("SUMS".parse::<Op>().is_err());
    assert!("".parse::<Op>().is_err());
}

/// (value, byte order, exact wire bytes) for responses.
fn response_table() -> Vec<(Response, ByteOrder, [u8; 8])> {
    use ByteOrder::{Big, Little};
    let r = |id, result| Response { id, result };
    vec![
        (r(0, 0), Big, [0; 8]),
        (r(0, 0), Little, [0; 8]),
        (r(1, 1), Big, [0, 0, 0, 1, 0, 0, 0, 1]),
        (r(1, 1), Little, [1, 0, 0, 0, 1, 0, 0, 0]),
        (r(u32::MAX, -1), Big, [0xff; 8]),
        (r(u32::MAX, -1), Little, [0xff; 8]),
        (r(0x0102_0304, i32::MIN), Big, [1, 2, 3, 4, 0x80, 0, 0, 0]),
        (
            r(0x0102_0304, i32::MIN),
            Little,
            [4, 3, 2, 1, 0, 0, 0, 0x80],
        ),
        (r(9, i32::MAX), Big, [0, 0, 0, 9, 0x7f, 0xff, 0xff, 0xff]),
        (r(9, i32::MAX), Little, [9, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]),
        (r(42, -123_456), Big, [0, 0, 0, 42, 0xff, 0xfe, 0x1d, 0xc0]),
        (
            r(42, -123_456),
            Little,
            [42, 0, 0, 0, 0xc0, 0x1d, 0xfe, 0xff],
        ),
        (r(0, -2), Big, [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe]),
    ]
}

#[test]
fn response_bytes_table() {
    for (value, order, bytes) in response_table() {
        let ctx = format!("{value:?} {order:?}");
        let mut out = Vec::new();
        value.encode(order, &mut out);
        assert_eq!(out, bytes, "encode {ctx}");
        assert_eq!(
            Response::decode(&bytes, order),
            Some((value, RESPONSE_LEN)),
            "decode {ctx}"
        );
        assert_eq!(
            Response::decode_datagram(&bytes, order),
            Some(value),
            "decode_datagram {ctx}"
        );
        let swapped = Response {
            id: value.id.swap_bytes(),
            result: value.result.swap_bytes(),
        };
        assert_eq!(
            Response::decode_datagram(&bytes, other(order)),
            Some(swapped),
            "other order {ctx}"
        );
    }
}

/// One row of the evaluation table: op, numbers, result.
type EvalRow = (&'static [u8; 3], Vec<i32>, Result<i32, Invalid>);

/// The spec's semantics and its edges.
fn evaluation_table() -> Vec<EvalRow> {
    use Invalid::{Empty, Overflow, UnknownOp};
    let twos_then_zero = {
        let mut v = vec![2; 254];
        v.push(0);
        v
    };
    let zero_inside_twos = {
        let mut v = vec![2; 100];
        v.push(0);
        v.extend([2; 154]);
        v
    };
    // 255 factors of 2 and a 0: 256 numbers cannot be sent, but `evaluate` takes any slice
    // and the i64 accumulator overflows long before the zero.
    let brief_twos_then_zero = {
        let mut v = vec![2; 255];
        v.push(0);
        v
    };
    vec![
        // Nothing.
        (b"SUM", vec![], Ok(0)),
        (b"PRO", vec![], Ok(1)),
        (b"MIN", vec![], Err(Empty)),
        (b"MAX", vec![], Err(Empty)),
        // Unknown operations, exact and case-sensitive; the op is checked before emptiness.
        (b"XYZ", vec![1, 2], Err(UnknownOp(*b"XYZ"))),
        (b"sum", vec![1], Err(UnknownOp(*b"sum"))),
        (b"min", vec![], Err(UnknownOp(*b"min"))),
        (b"\0\0\0", vec![], Err(UnknownOp([0; 3]))),
        // SUM.
        (b"SUM", vec![1, 2, 3], Ok(6)),
        (b"SUM", vec![-5, 3], Ok(-2)),
        (b"SUM", vec![i32::MAX], Ok(i32::MAX)),
        (b"SUM", vec![i32::MAX, 1], Err(Overflow)),
        (b"SUM", vec![i32::MAX, 1, -1], Ok(i32::MAX)),
        (b"SUM", vec![i32::MIN, -1], Err(Overflow)),
        (b"SUM", vec![i32::MIN, -1, 1], Ok(i32::MIN)),
        (b"SUM", vec![i32::MAX, i32::MIN], Ok(-1)),
        (b"SUM", vec![i32::MAX; 255], Err(Overflow)),
        (b"SUM", vec![i32::MIN; 255], Err(Overflow)),
        (b"SUM", vec![1; 255], Ok(255)),
        // PRO.
        (b"PRO", vec![2, 3, 7], Ok(42)),
        (b"PRO", vec![-2, 3], Ok(-6)),
        (b"PRO", vec![0], Ok(0)),
        (b"PRO", vec![65536, 65536], Err(Overflow)),
        (b"PRO", vec![65536, 65536, 0], Ok(0)),
        (b"PRO", vec![0, 65536, 65536], Ok(0)),
        (b"PRO", vec![65536, -32768], Ok(i32::MIN)),
        (b"PRO", vec![65536, 32768], Err(Overflow)),
        (b"PRO", vec![46340, 46340], Ok(2_147_395_600)),
        (b"PRO", vec![46341, 46341], Err(Overflow)),
        (b"PRO", twos_then_zero, Ok(0)),
        (b"PRO", zero_inside_twos, Ok(0)),
        (b"PRO", brief_twos_then_zero, Ok(0)),
        (b"PRO", vec![2; 255], Err(Overflow)),
        (b"PRO", vec![2; 30], Ok(1 << 30)),
        (b"PRO", vec![2; 31], Err(Overflow)),
        (b"PRO", vec![-2; 31], Ok(i32::MIN)),
        (b"PRO", vec![-1, i32::MIN], Err(Overflow)),
        (b"PRO", vec![i32::MIN, 1], Ok(i32::MIN)),
        (b"PRO", vec![i32::MIN, -1, -1], Ok(i32::MIN)),
        (b"PRO", vec![-1; 255], Ok(-1)),
        (b"PRO", vec![-1; 254], Ok(1)),
        // Past i64 on the way: (-2^31)^2 * -2 is exactly i64::MIN, one more -1 leaves i64.
        (b"PRO", vec![i32::MIN, i32::MIN, -2], Err(Overflow)),
        (b"PRO", vec![i32::MIN, i32::MIN, -2, -1], Err(Overflow)),
        (b"PRO", vec![i32::MIN, i32::MIN, -2, -1, 0], Ok(0)),
        (b"PRO", vec![i32::MIN; 3], Err(Overflow)),
        (b"PRO", vec![i32::MAX, i32::MAX, i32::MAX, 0], Ok(0)),
        // MIN and MAX.
        (b"MIN", vec![5], Ok(5)),
        (b"MAX", vec![5], Ok(5)),
        (b"MIN", vec![-3, -7, 4], Ok(-7)),
        (b"MAX", vec![-3, -7, -4], Ok(-3)),
        (b"MIN", vec![i32::MIN, i32::MAX], Ok(i32::MIN)),
        (b"MAX", vec![i32::MIN, i32::MAX], Ok(i32::MAX)),
        (b"MIN", vec![i32::MAX; 255], Ok(i32::MAX)),
        (b"MAX", vec![i32::MIN; 255], Ok(i32::MIN)),
    ]
}

#[test]
fn evaluation_table_holds() {
    for (op, numbers, want) in evaluation_table() {
        let ctx = format!("{} of {:?}", String::from_utf8_lossy(op), numbers);
        assert_eq!(evaluate(*op, &numbers), want, "evaluate {ctx}");
        assert_eq!(reference(*op, &numbers), want, "reference {ctx}");
        if numbers.len() <= MAX_NUMBERS {
            assert_eq!(
                req(1, op, numbers).evaluate(),
                want,
                "Request::evaluate {ctx}"
            );
        }
    }
}

#[test]
fn invalid_reasons_use_the_spec_names() {
    assert_eq!(Invalid::UnknownOp(*b"XYZ").reason(), "unknown-op");
    assert_eq!(Invalid::Overflow.reason(), "overflow");
    assert_eq!(Invalid::Empty.reason(), "empty");
}

/// The spec's semantics computed independently of the codec: sums exactly in i128, products
/// in i128 saturating. Saturation is exact enough: a product of non-zero integers never
/// shrinks in magnitude, so a saturated product is far outside i32 unless a later zero
/// factor makes it 0, which `saturating_mul` also gives.
fn reference(op: [u8; 3], numbers: &[i32]) -> Result<i32, Invalid> {
    let wide: i128 = match &op {
        b"SUM" => numbers.iter().map(|&n| i128::from(n)).sum(),
        b"PRO" => numbers
            .iter()
            .fold(1i128, |acc, &n| acc.saturating_mul(i128::from(n))),
        b"MIN" => i128::from(*numbers.iter().min().ok_or(Invalid::Empty)?),
        b"MAX" => i128::from(*numbers.iter().max().ok_or(Invalid::Empty)?),
        _ => return Err(Invalid::UnknownOp(op)),
    };
    i32::try_from(wide).map_err(|_| Invalid::Overflow)
}

fn op_code() -> impl Strategy<Value = [u8; 3]> {
    prop_oneof![
        4 => prop_oneof![Just(*b"SUM"), Just(*b"PRO"), Just(*b"MIN"), Just(*b"MAX")],
        1 => any::<[u8; 3]>(),
    ]
}

/// Numbers that reach the interesting edges: extremes, zeros and small factors (products of
/// many small factors cross the i32 boundary) as well as anything.
fn number() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => any::<i32>(),
        3 => -3..=3i32,
        1 => -70_000..=70_000i32,
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
        1 => Just(0),
    ]
}

fn numbers() -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        prop::collection::vec(number(), 0..=8),
        prop::collection::vec(number(), 0..=MAX_NUMBERS),
        prop::collection::vec(-2..=2i32, 0..=MAX_NUMBERS),
        prop::collection::vec(prop_oneof![Just(1), Just(-1), Just(2), Just(-2)], 25..=40),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (any::<u32>(), op_code(), numbers()).prop_map(|(id, op, numbers)| Request { id, op, numbers })
}

fn order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::Big), Just(ByteOrder::Little)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn evaluate_matches_the_i128_reference(op in op_code(), numbers in numbers()) {
        prop_assert_eq!(evaluate(op, &numbers), reference(op, &numbers));
    }
}

/// A stream of several requests of mixed lengths and ops.
fn sample_stream() -> Vec<Request> {
    vec![
        req(1, b"SUM", vec![1, 2, 3]),
        req(2, b"PRO", vec![]),
        req(0x0102_0304, b"MIN", vec![-1]),
        req(u32::MAX, b"XYZ", vec![7, 8]),
        req(5, b"MAX", (0..255).collect()),
        req(6, b"SUM", vec![i32::MIN]),
    ]
}

#[test]
fn every_prefix_of_a_stream_needs_more_until_the_whole_request() {
    for order in ORDERS {
        let requests = sample_stream();
        let mut bytes = Vec::new();
        for r in &requests {
            r.encode(order, &mut bytes);
        }
        let mut at = 0;
        for r in &requests {
            let rest = &bytes[at..];
            let len = r.wire_len();
            for k in 0..=rest.len() {
                let prefix = &rest[..k];
                let ctx = format!("{order:?} request {} prefix {k}", r.id);
                let want_len = (k >= HEADER_LEN).then_some(len);
                assert_eq!(request_len(prefix), want_len, "request_len {ctx}");
                let want = (k >= len).then(|| (r.clone(), len));
                assert_eq!(decode_request(prefix, order), want, "decode_request {ctx}");
                let via_with =
                    with_request(prefix, order, |id, op, nums| req(id, &op, nums.collect()));
                assert_eq!(via_with, want, "with_request {ctx}");
            }
            at += len;
        }
        assert_eq!(at, bytes.len());
    }
}

#[test]
fn every_prefix_of_a_response_stream() {
    for order in ORDERS {
        let first = Response { id: 7, result: -7 };
        let second = Response {
            id: u32::MAX,
            result: i32::MIN,
        };
        let mut bytes = Vec::new();
        first.encode(order, &mut bytes);
        second.encode(order, &mut bytes);
        for k in 0..=bytes.len() {
            let prefix = &bytes[..k];
            let want = (k >= RESPONSE_LEN).then_some((first, RESPONSE_LEN));
            assert_eq!(
                Response::decode(prefix, order),
                want,
                "{order:?} prefix {k}"
            );
            let want_datagram = (k == RESPONSE_LEN).then_some(first);
            assert_eq!(
                Response::decode_datagram(prefix, order),
                want_datagram,
                "{order:?} datagram prefix {k}"
            );
        }
        assert_eq!(
            Response::decode(&bytes[RESPONSE_LEN..], order),
            Some((second, RESPONSE_LEN))
        );
    }
}

#[test]
fn a_datagram_must_be_exactly_one_request() {
    for order in ORDERS {
        for r in sample_stream() {
            let mut bytes = encoded(&r, order);
            let len = bytes.len();
            for k in 0..len {
                let want = if k < HEADER_LEN {
                    DatagramError::TooShort { len: k }
                } else {
                    DatagramError::WrongLength {
                        id: r.id,
                        expected: len,
                        len: k,
                    }
                };
                assert_eq!(
                    decode_datagram(&bytes[..k], order),
                    Err(want),
                    "{order:?} request {} prefix {k}",
                    r.id
                );
            }
            assert_eq!(decode_datagram(&bytes, order), Ok(r.clone()));
            bytes.push(0);
            assert_eq!(
                decode_datagram(&bytes, order),
                Err(DatagramError::WrongLength {
                    id: r.id,
                    expected: len,
                    len: len + 1,
                }),
                "{order:?} request {} plus one byte",
                r.id
            );
            // Two requests in one datagram are not one request either.
            r.encode(order, &mut bytes);
            assert_eq!(
                decode_datagram(&bytes, order),
                Err(DatagramError::WrongLength {
                    id: r.id,
                    expected: len,
                    len: 2 * len + 1,
                })
            );
        }
    }
}

#[test]
fn datagram_error_messages_say_bad_length() {
    let short = DatagramError::TooShort { len: 3 };
    assert_eq!(
        short.to_string(),
        "bad-length (3 bytes, shorter than the 8-byte header)"
    );
    let wrong = DatagramError::WrongLength {
        id: 1,
        expected: 12,
        len: 13,
    };
    assert_eq!(
        wrong.to_string(),
        "bad-length (13 bytes, the header says 12)"
    );
}

/// Cuts `len` bytes at the given points (as indices into 0..=len), sorted.
fn cuts(len: usize, points: &[prop::sample::Index]) -> Vec<usize> {
    let mut at: Vec<usize> = points.iter().map(|p| p.index(len + 1)).collect();
    at.push(0);
    at.push(len);
    at.sort_unstable();
    at
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// What the TCP server does: append whatever arrived, decode every whole request,
    /// drain what they took. Any split of the stream gives back the requests in order.
    #[test]
    fn a_stream_split_anywhere_decodes_to_the_same_requests(
        requests in prop::collection::vec(request(), 0..12),
        order in order(),
        points in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let mut bytes = Vec::new();
        for r in &requests {
            r.encode(order, &mut bytes);
        }
        let at = cuts(bytes.len(), &points);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for pair in at.windows(2) {
            buf.extend_from_slice(&bytes[pair[0]..pair[1]]);
            while let Some((r, len)) = decode_request(&buf, order) {
                prop_assert_eq!(len, r.wire_len());
                got.push(r);
                buf.drain(..len);
            }
            // What is left is always less than one request.
            prop_assert!(buf.len() < request_len(&buf).unwrap_or(HEADER_LEN));
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, requests);
    }

    /// The allocation-free hot path agrees with `decode_request` on any frame.
    #[test]
    fn with_request_agrees_with_decode_request(
        r in request(),
        order in order(),
        trailing in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = encoded(&r, order);
        bytes.extend_from_slice(&trailing);
        let decoded = decode_request(&bytes, order);
        let via_with = with_request(&bytes, order, |id, op, nums| (id, op, nums.collect::<Vec<_>>()));
        prop_assert_eq!(decoded.clone(), Some((r.clone(), r.wire_len())));
        prop_assert_eq!(via_with, Some(((r.id, r.op, r.numbers.clone()), r.wire_len())));
    }

    /// Any bytes at all: a stream decoder either needs more or frames exactly
    /// `request_len` bytes, and re-encoding gives those bytes back.
    #[test]
    fn arbitrary_bytes_frame_or_wait(
        bytes in prop::collection::vec(any::<u8>(), 0..1100),
        order in order(),
    ) {
        match decode_request(&bytes, order) {
            None => {
                prop_assert!(bytes.len() < request_len(&bytes).unwrap_or(HEADER_LEN));
            }
            Some((r, len)) => {
                prop_assert_eq!(Some(len), request_len(&bytes));
                prop_assert!(len <= bytes.len());
                prop_assert_eq!(encoded(&r, order), &bytes[..len]);
                prop_assert_eq!(decode_datagram(&bytes[..len], order), Ok(r));
            }
        }
    }

    #[test]
    fn responses_round_trip(id in any::<u32>(), result in any::<i32>(), order in order()) {
        let value = Response { id, result };
        let mut bytes = Vec::new();
        value.encode(order, &mut bytes);
        prop_assert_eq!(bytes.len(), RESPONSE_LEN);
        prop_assert_eq!(Response::decode(&bytes, order), Some((value, RESPONSE_LEN)));
        prop_assert_eq!(Response::decode_datagram(&bytes, order), Some(value));
    }
}
