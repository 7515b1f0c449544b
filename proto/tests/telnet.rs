//! Telnet IAC parsing (`proto/src/telnet.rs`): what real telnetd servers send first
//! (inetutils, BusyBox, a router's banner) as bytes -> items -> bytes tables, every split of
//! a stream, names and Display, refusals, and bad subnegotiations.

use sockeye_proto::telnet::{
    IAC, MAX_SUBNEGOTIATION, SB, SE, TelnetError, TelnetItem, Verb, data_of, decode, encode,
    option_name, refuse,
};

fn cmd(verb: Verb, option: u8) -> TelnetItem {
    TelnetItem::Command { verb, option }
}

fn data(b: &[u8]) -> TelnetItem {
    TelnetItem::Data(b.to_vec())
}

fn sb(option: u8, d: &[u8]) -> TelnetItem {
    TelnetItem::Subnegotiation {
        option,
        data: d.to_vec(),
    }
}

fn table() -> Vec<(Vec<u8>, Vec<TelnetItem>)> {
    vec![
        // inetutils telnetd's opening: DO TERMINAL-TYPE, DO TERMINAL-SPEED, DO X-DISPLAY-LOCATION,
        // DO NEW-ENVIRON.
        (
            vec![255, 253, 24, 255, 253, 32, 255, 253, 35, 255, 253, 39],
            vec![
                cmd(Verb::Do, 24),
                cmd(Verb::Do, 32),
                cmd(Verb::Do, 35),
                cmd(Verb::Do, 39),
            ],
        ),
        // BusyBox telnetd: WILL ECHO, WILL SUPPRESS-GO-AHEAD, DO NAWS, then the login prompt.
        (
            [
                &[255, 251, 1, 255, 251, 3, 255, 253, 31][..],
                b"\r\nlab login: ",
            ]
            .concat(),
            vec![
                cmd(Verb::Will, 1),
                cmd(Verb::Will, 3),
                cmd(Verb::Do, 31),
                data(b"\r\nlab login: "),
            ],
        ),
        (
            b"User Access Verification\r\n\r\nUsername: ".to_vec(),
            vec![data(b"User Access Verification\r\n\r\nUsername: ")],
        ),
        // IAC IAC is a data byte 0xFF, merged with the data around it.
        (vec![b'a', 255, 255, b'b'], vec![data(&[b'a', 255, b'b'])]),
        (vec![255, 255], vec![data(&[255])]),
        // Other commands: GA, NOP, AYT, a stray SE, an unknown 200.
        (
            vec![255, 249, 255, 241, 255, 246, 255, 240, 255, 200],
            vec![
                TelnetItem::Other(249),
                TelnetItem::Other(241),
                TelnetItem::Other(246),
                TelnetItem::Other(240),
                TelnetItem::Other(200),
            ],
        ),
        // Subnegotiations: TERMINAL-TYPE SEND, NAWS 80x24 with an escaped 0xFF, an empty one.
        (vec![255, 250, 24, 1, 255, 240], vec![sb(24, &[1])]),
        (
            vec![255, 250, 31, 0, 80, 255, 255, 255, 240],
            vec![sb(31, &[0, 80, 255])],
        ),
        (
            vec![255, 250, 5, 255, 240, b'x'],
            vec![sb(5, &[]), data(b"x")],
        ),
        (
            vec![255, 252, 200, 255, 254, 0],
            vec![cmd(Verb::Wont, 200), cmd(Verb::Dont, 0)],
        ),
    ]
}

#[test]
fn bytes_to_items_and_back() {
    for (bytes, want) in table() {
        assert_eq!(decode(&bytes), Ok((want.clone(), bytes.len())), "{bytes:?}");
        assert_eq!(encode(&want), bytes, "{want:?}");
    }
}

#[test]
fn partial_sequences_are_left() {
    let cases: &[(&[u8], Vec<TelnetItem>, usize)] = &[
        (&[], vec![], 0),
        (&[IAC], vec![], 0),
        (&[b'h', b'i', IAC], vec![data(b"hi")], 2),
        (&[IAC, 251], vec![], 0),
        (&[IAC, 251, 1, IAC, 253], vec![cmd(Verb::Will, 1)], 3),
        (&[IAC, SB], vec![], 0),
        (&[IAC, SB, 24], vec![], 0),
        (&[IAC, SB, 24, 1, IAC], vec![], 0),
        (&[IAC, SB, 24, 1, IAC, IAC], vec![], 0),
        (&[b'x', IAC, SB, 24, 0, b'v', b't'], vec![data(b"x")], 1),
    ];
    for (bytes, items, used) in cases {
        assert_eq!(decode(bytes), Ok((items.clone(), *used)), "{bytes:?}");
    }
}

/// Decoding a stream in two calls at any split point gives the same items (data runs may be
/// cut in two) as decoding it whole: no prefix is ever an error.
#[test]
fn every_split_of_a_stream() {
    let mut stream = Vec::new();
    let mut all = Vec::new();
    for (bytes, items) in table() {
        stream.extend_from_slice(&bytes);
        all.extend(items);
    }
    let (whole, used) = decode(&stream).unwrap();
    assert_eq!(used, stream.len());
    assert_eq!(encode(&whole), encode(&all));
    for k in 0..=stream.len() {
        let (mut items, used) = decode(&stream[..k]).unwrap();
        assert!(used <= k);
        let (rest, more) = decode(&stream[used..]).unwrap();
        assert_eq!(used + more, stream.len(), "split {k}");
        items.extend(rest);
        assert_eq!(encode(&items), encode(&whole), "split {k}");
        assert_eq!(data_of(&items), data_of(&whole), "split {k}");
        let negotiations = |v: &[TelnetItem]| {
            v.iter()
                .filter(|i| !matches!(i, TelnetItem::Data(_)))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(negotiations(&items), negotiations(&whole), "split {k}");
    }
}

#[test]
fn bad_subnegotiations() {
    assert_eq!(
        decode(&[IAC, SB, 24, 1, IAC, 241]),
        Err(TelnetError::BadSubnegotiation {
            option: 24,
            byte: 241
        })
    );
    let mut long = vec![IAC, SB, 39];
    long.extend(std::iter::repeat_n(b'v', MAX_SUBNEGOTIATION));
    assert_eq!(decode(&long), Ok((vec![], 0)));
    let mut fits = long.clone();
    fits.extend_from_slice(&[IAC, SE]);
    assert_eq!(decode(&fits).unwrap().1, fits.len());
    long.push(b'v');
    assert_eq!(
        decode(&long),
        Err(TelnetError::SubnegotiationTooLong { option: 39 })
    );
    assert_eq!(
        TelnetError::SubnegotiationTooLong { option: 39 }.to_string(),
        "telnet subnegotiation of NEW-ENVIRON longer than 1024 bytes"
    );
    assert_eq!(
        TelnetError::BadSubnegotiation {
            option: 200,
            byte: 1
        }
        .to_string(),
        "telnet subnegotiation of 200 holds IAC 1, not IAC IAC or IAC SE"
    );
    assert_eq!(SE, 240);
}

#[test]
fn names_and_display() {
    let names: &[(u8, &str)] = &[
        (0, "BINARY"),
        (1, "ECHO"),
        (3, "SUPPRESS-GO-AHEAD"),
        (5, "STATUS"),
        (6, "TIMING-MARK"),
        (24, "TERMINAL-TYPE"),
        (31, "NAWS"),
        (32, "TERMINAL-SPEED"),
        (34, "LINEMODE"),
        (35, "X-DISPLAY-LOCATION"),
        (36, "ENVIRON"),
        (39, "NEW-ENVIRON"),
        (46, "START-TLS"),
        (255, "EXOPL"),
    ];
    for (code, name) in names {
        assert_eq!(option_name(*code), Some(*name));
    }
    assert_eq!(option_name(200), None);
    assert_eq!(option_name(50), None);
    let shown: &[(TelnetItem, &str)] = &[
        (cmd(Verb::Will, 1), "WILL ECHO"),
        (cmd(Verb::Do, 200), "DO 200"),
        (cmd(Verb::Wont, 3), "WONT SUPPRESS-GO-AHEAD"),
        (cmd(Verb::Dont, 31), "DONT NAWS"),
        (TelnetItem::Other(249), "GA"),
        (TelnetItem::Other(241), "NOP"),
        (TelnetItem::Other(7), "IAC 7"),
        (sb(24, &[1]), "SB TERMINAL-TYPE 01"),
        (sb(99, &[0, 255]), "SB 99 00 ff"),
        (data(b"hi\r\n\x1b"), "hi\\r\\n\\x1b"),
    ];
    for (item, text) in shown {
        assert_eq!(item.to_string(), *text);
    }
    for v in [Verb::Will, Verb::Wont, Verb::Do, Verb::Dont] {
        assert_eq!(Verb::from_code(v.code()), Some(v));
    }
    assert_eq!(Verb::from_code(250), None);
}

#[test]
fn refusing_everything() {
    let items = vec![
        cmd(Verb::Do, 24),
        cmd(Verb::Will, 1),
        cmd(Verb::Wont, 3),
        cmd(Verb::Dont, 31),
        data(b"login: "),
        TelnetItem::Other(249),
        sb(24, &[1]),
        cmd(Verb::Do, 200),
    ];
    assert_eq!(
        refuse(&items),
        vec![IAC, 252, 24, IAC, 254, 1, IAC, 252, 200]
    );
    assert_eq!(refuse(&[data(b"x")]), Vec::<u8>::new());
    assert_eq!(data_of(&items), b"login: ");
}
