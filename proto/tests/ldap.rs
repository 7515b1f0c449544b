//! LDAP StartTLS (`proto/src/ldap.rs`): the request's bytes written out by hand from RFC 4511
//! and X.690, extended responses (OpenLDAP, Active Directory's four-byte lengths, a Notice of
//! Disconnection) both ways, every prefix, other operations skipped, bad BER refused.

use sockeye_proto::ldap::{
    LdapError, LdapMessage, LdapOp, MAX_MESSAGE, NOTICE_OF_DISCONNECTION_OID, STARTTLS_OID,
    decode_message, encode_message, result_name, start_tls_request,
};

/// The OID's 22 ASCII bytes.
const OID: &[u8] = b"1.3.6.1.4.1.1466.20037";

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn start_tls_request_bytes_by_hand() {
    assert_eq!(OID, STARTTLS_OID.as_bytes());
    assert_eq!(OID.len(), 0x16);
    // LDAPMessage ::= SEQUENCE (0x30) { messageID INTEGER (0x02), protocolOp }
    // ExtendedRequest ::= [APPLICATION 23] (0x40 | 0x20 | 23 = 0x77) SEQUENCE {
    //     requestName [0] (context-specific primitive: 0x80) LDAPOID }
    // 0x77's content: 2 + 22 = 24 (0x18); the SEQUENCE's: 3 + 2 + 24 = 29 (0x1d).
    let table: &[(i32, Vec<u8>)] = &[
        (
            1,
            cat(&[&[0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16], OID]),
        ),
        (
            0,
            cat(&[&[0x30, 0x1d, 0x02, 0x01, 0x00, 0x77, 0x18, 0x80, 0x16], OID]),
        ),
        // 127 fits one byte; 128 needs a leading zero to stay positive.
        (
            127,
            cat(&[&[0x30, 0x1d, 0x02, 0x01, 0x7f, 0x77, 0x18, 0x80, 0x16], OID]),
        ),
        (
            128,
            cat(&[
                &[0x30, 0x1e, 0x02, 0x02, 0x00, 0x80, 0x77, 0x18, 0x80, 0x16],
                OID,
            ]),
        ),
        (
            i32::MAX,
            cat(&[
                &[
                    0x30, 0x20, 0x02, 0x04, 0x7f, 0xff, 0xff, 0xff, 0x77, 0x18, 0x80, 0x16,
                ],
                OID,
            ]),
        ),
    ];
    for (id, bytes) in table {
        assert_eq!(start_tls_request(*id), *bytes, "id {id}");
        // Our decoder frames it and reports the request's tag.
        let msg = LdapMessage {
            message_id: *id,
            op: LdapOp::Other(0x77),
        };
        assert_eq!(decode_message(bytes), Ok(Some((msg, bytes.len()))));
    }
}

fn ext(code: u32, dn: &str, diag: &str, name: Option<&str>) -> LdapOp {
    LdapOp::ExtendedResponse {
        result_code: code,
        matched_dn: dn.to_owned(),
        diagnostic: diag.to_owned(),
        response_name: name.map(str::to_owned),
    }
}

fn response_table() -> Vec<(Vec<u8>, LdapMessage)> {
    let diag = b"unsupported extended operation";
    vec![
        // OpenLDAP's success, with responseName [10] (0x8a).
        (
            cat(&[
                &[
                    0x30, 0x24, 0x02, 0x01, 0x01, 0x78, 0x1f, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04,
                    0x00, 0x8a, 0x16,
                ],
                OID,
            ]),
            LdapMessage {
                message_id: 1,
                op: ext(0, "", "", Some(STARTTLS_OID)),
            },
        ),
        // The bare minimum: no responseName.
        (
            vec![
                0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            ],
            LdapMessage {
                message_id: 1,
                op: ext(0, "", "", None),
            },
        ),
        // Active Directory: four-byte lengths everywhere.
        (
            cat(&[
                &[0x30, 0x84, 0x00, 0x00, 0x00, 0x28, 0x02, 0x01, 0x05],
                &[0x78, 0x84, 0x00, 0x00, 0x00, 0x1f],
                &[0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00, 0x8a, 0x16],
                OID,
            ]),
            LdapMessage {
                message_id: 5,
                op: ext(0, "", "", Some(STARTTLS_OID)),
            },
        ),
        // Refused: protocolError with a diagnostic, a referral [3] skipped, a responseValue
        // [11] skipped, controls [0] after the op skipped.
        (
            cat(&[
                &[
                    0x30, 0x34, 0x02, 0x01, 0x02, 0x78, 0x2d, 0x0a, 0x01, 0x02, 0x04, 0x03,
                ],
                b"o=x",
                &[0x04, 0x1e],
                diag,
                &[0xa3, 0x00, 0x8b, 0x01, 0x00],
                &[0xa0, 0x00],
            ]),
            LdapMessage {
                message_id: 2,
                op: ext(2, "o=x", "unsupported extended operation", None),
            },
        ),
        // A Notice of Disconnection (message ID 0) with a long-form 0x81 length.
        (
            cat(&[
                &[
                    0x30, 0x81, 0x24, 0x02, 0x01, 0x00, 0x78, 0x1f, 0x0a, 0x01, 0x34, 0x04, 0x00,
                    0x04, 0x00, 0x8a, 0x16,
                ],
                NOTICE_OF_DISCONNECTION_OID.as_bytes(),
            ]),
            LdapMessage {
                message_id: 0,
                op: ext(52, "", "", Some(NOTICE_OF_DISCONNECTION_OID)),
            },
        ),
        // A bind response ([APPLICATION 1], 0x61) is skipped by length.
        (
            vec![
                0x30, 0x0c, 0x02, 0x01, 0x03, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            ],
            LdapMessage {
                message_id: 3,
                op: LdapOp::Other(0x61),
            },
        ),
        // An unbind request ([APPLICATION 2] primitive NULL, 0x42 0x00); a negative ID.
        (
            vec![0x30, 0x05, 0x02, 0x01, 0xff, 0x42, 0x00],
            LdapMessage {
                message_id: -1,
                op: LdapOp::Other(0x42),
            },
        ),
    ]
}

#[test]
fn responses_both_ways() {
    for (bytes, want) in response_table() {
        assert_eq!(
            decode_message(&bytes),
            Ok(Some((want.clone(), bytes.len()))),
            "{want:?}"
        );
        let enc = encode_message(&want);
        assert_eq!(decode_message(&enc), Ok(Some((want, enc.len()))));
    }
    // Encoding writes the shortest form: the first two rows exactly.
    let rows = response_table();
    assert_eq!(encode_message(&rows[0].1), rows[0].0);
    assert_eq!(encode_message(&rows[1].1), rows[1].0);
    assert_eq!(
        encode_message(&LdapMessage {
            message_id: 9,
            op: LdapOp::Other(0x42)
        }),
        vec![0x30, 0x05, 0x02, 0x01, 0x09, 0x42, 0x00]
    );
    // A diagnostic of 200 bytes needs the 0x81 long form.
    let long = LdapMessage {
        message_id: 1,
        op: ext(53, "", &"d".repeat(200), None),
    };
    let enc = encode_message(&long);
    // op: 0a 01 35, 04 00, 04 81 c8 + 200 = 208 (0xd0); message: 3 + 3 + 208 = 214 (0xd6).
    assert_eq!(&enc[..3], &[0x30, 0x81, 0xd6]);
    assert_eq!(decode_message(&enc), Ok(Some((long, enc.len()))));
}

#[test]
fn every_prefix_needs_more() {
    let mut stream = Vec::new();
    for (bytes, _) in response_table() {
        stream.extend_from_slice(&bytes);
    }
    let mut at = 0;
    for (bytes, want) in response_table() {
        let rest = &stream[at..];
        for k in 0..bytes.len() {
            assert_eq!(decode_message(&rest[..k]), Ok(None), "{want:?} prefix {k}");
        }
        assert_eq!(decode_message(rest), Ok(Some((want, bytes.len()))));
        at += bytes.len();
    }
}

#[test]
fn bad_ber() {
    let malformed = |what: &'static str| Err(LdapError::Malformed { what });
    assert_eq!(
        decode_message(b"HTTP/1.1 400"),
        malformed("an LDAPMessage is a SEQUENCE (0x30)")
    );
    assert_eq!(
        decode_message(&[0x30, 0x80]),
        Err(LdapError::IndefiniteLength)
    );
    assert_eq!(
        decode_message(&[0x30, 0x85, 0, 0, 0, 0, 1]),
        Err(LdapError::LengthTooLong)
    );
    assert_eq!(decode_message(&[0x3f]), Err(LdapError::HighTagNumber));
    assert_eq!(
        decode_message(&[0x30, 0x84, 0x00, 0x01, 0x00, 0x00]),
        Err(LdapError::MessageTooLong { len: 65542 })
    );
    assert_eq!(
        decode_message(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
        Err(LdapError::MessageTooLong {
            len: 0xffff_ffff + 6
        })
    );
    // Just under the cap: needs more, no error.
    let n = MAX_MESSAGE - 6;
    let head = [0x30, 0x84, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    assert_eq!(decode_message(&head), Ok(None));
    let cases: &[(&[u8], &'static str)] = &[
        (&[0x30, 0x00], "messageID must be an INTEGER"),
        (
            &[0x30, 0x03, 0x04, 0x01, 0x01],
            "messageID must be an INTEGER",
        ),
        (
            &[0x30, 0x02, 0x02, 0x00],
            "messageID must be a 32-bit INTEGER",
        ),
        (
            &[0x30, 0x07, 0x02, 0x05, 0x01, 0, 0, 0, 0],
            "messageID must be a 32-bit INTEGER",
        ),
        (
            &[0x30, 0x03, 0x02, 0x01, 0x01],
            "protocolOp is missing or cut short",
        ),
        // The op says 5 bytes, the message holds 2.
        (
            &[0x30, 0x05, 0x02, 0x01, 0x01, 0x61, 0x05],
            "protocolOp is missing or cut short",
        ),
        (
            &[0x30, 0x07, 0x02, 0x01, 0x01, 0x42, 0x00, 0x05, 0x00],
            "bytes after the protocolOp and controls",
        ),
        (
            &[0x30, 0x05, 0x02, 0x01, 0x01, 0x78, 0x00],
            "resultCode must be an ENUMERATED",
        ),
        (
            &[
                0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0xff, 0x04, 0x00, 0x04, 0x00,
            ],
            "resultCode is negative",
        ),
        (
            &[
                0x30, 0x0a, 0x02, 0x01, 0x01, 0x78, 0x05, 0x0a, 0x01, 0x00, 0x04, 0x00,
            ],
            "diagnosticMessage must be an OCTET STRING",
        ),
        (
            &[
                0x30, 0x0e, 0x02, 0x01, 0x01, 0x78, 0x09, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
                0x01, 0x00,
            ],
            "bytes after the ExtendedResponse's fields",
        ),
    ];
    for (bytes, what) in cases {
        assert_eq!(decode_message(bytes), malformed(what), "{bytes:02x?}");
    }
    assert_eq!(
        LdapError::Malformed { what: "x" }.to_string(),
        "malformed LDAP message: x"
    );
}

#[test]
fn result_names() {
    let table: &[(u32, &str)] = &[
        (0, "success"),
        (1, "operationsError"),
        (2, "protocolError"),
        (7, "authMethodNotSupported"),
        (13, "confidentialityRequired"),
        (49, "invalidCredentials"),
        (52, "unavailable"),
        (53, "unwillingToPerform"),
        (80, "other"),
        (9, "unknown"),
        (4_000_000_000, "unknown"),
    ];
    for (code, name) in table {
        assert_eq!(result_name(*code), *name);
    }
}

/// The root DSE search, written out from RFC 4511 4.5.1 and X.690.
#[test]
fn root_dse_request_bytes_by_hand() {
    use sockeye_proto::ldap::root_dse_request;
    let got = root_dse_request(2, &["vendorName"]);
    let op: Vec<u8> = cat(&[
        &[0x04, 0x00],       // baseObject ""
        &[0x0a, 0x01, 0x00], // scope baseObject
        &[0x0a, 0x01, 0x00], // derefAliases neverDerefAliases
        &[0x02, 0x01, 0x00], // sizeLimit 0
        &[0x02, 0x01, 0x0a], // timeLimit 10
        &[0x01, 0x01, 0x00], // typesOnly FALSE
        &[0x87, 0x0b],       // present [7] "objectClass"
        b"objectClass",
        &[0x30, 0x0c, 0x04, 0x0a], // attributes: SEQUENCE { "vendorName" }
        b"vendorName",
    ]);
    assert_eq!(op.len(), 44);
    let want = cat(&[&[0x30, 5 + 44, 0x02, 0x01, 0x02, 0x63, 44], &op]);
    assert_eq!(got, want);
}

fn root_dse_entry() -> LdapMessage {
    LdapMessage {
        message_id: 2,
        op: LdapOp::SearchEntry {
            dn: String::new(),
            attributes: vec![
                ("supportedLDAPVersion".into(), vec!["3".into()]),
                (
                    "supportedExtension".into(),
                    vec![
                        "1.3.6.1.4.1.1466.20037".into(),
                        "1.3.6.1.4.1.4203.1.11.1".into(),
                    ],
                ),
            ],
        },
    }
}

#[test]
fn search_entries_and_done_both_ways_and_every_prefix() {
    let done = LdapMessage {
        message_id: 2,
        op: LdapOp::SearchDone {
            result_code: 0,
            diagnostic: String::new(),
        },
    };
    for msg in [root_dse_entry(), done] {
        let bytes = encode_message(&msg);
        assert_eq!(decode_message(&bytes), Ok(Some((msg.clone(), bytes.len()))));
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_message(&bytes[..cut]),
                Ok(None),
                "prefix {cut} of {msg:?}"
            );
        }
    }
    // A value that is not an OCTET STRING is refused, not skipped.
    let mut bad = encode_message(&root_dse_entry());
    let at = bad.iter().position(|&b| b == 0x31).expect("a SET") + 2;
    bad[at] = 0x02;
    assert!(matches!(
        decode_message(&bad),
        Err(LdapError::Malformed { .. })
    ));
}

#[test]
fn products_from_the_root_dse() {
    use sockeye_proto::ldap::product_from_root_dse;
    let attrs = |pairs: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    };
    let LdapOp::SearchEntry { attributes, .. } = root_dse_entry().op else {
        unreachable!()
    };
    assert_eq!(
        product_from_root_dse(&attributes).as_deref(),
        Some("OpenLDAP")
    );
    assert_eq!(
        product_from_root_dse(&attrs(&[
            ("vendorName", &["389 Project"]),
            ("vendorVersion", &["389-Directory/2.3.4"]),
        ]))
        .as_deref(),
        Some("389 Project 389-Directory/2.3.4")
    );
    assert_eq!(
        product_from_root_dse(&attrs(&[(
            "supportedCapabilities",
            &["1.2.840.113556.1.4.800"]
        )]))
        .as_deref(),
        Some("Microsoft Active Directory")
    );
    assert_eq!(
        product_from_root_dse(&attrs(&[("supportedLDAPVersion", &["3"])])),
        None
    );
}
