//! Arbitrary bytes as a stream of LDAPMessages: each decoded message stays within the cap,
//! decode -> encode -> decode gives the same message, and the StartTLS request for an ID
//! taken from the input frames as one message with that ID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::ldap::{
    LdapMessage, LdapOp, MAX_MESSAGE, decode_message, encode_message, result_name,
    start_tls_request,
};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while let Ok(Some((msg, used))) = decode_message(&data[at..]) {
        assert!(used >= 2 && used <= MAX_MESSAGE);
        let bytes = encode_message(&msg);
        if bytes.len() <= MAX_MESSAGE {
            assert_eq!(decode_message(&bytes), Ok(Some((msg.clone(), bytes.len()))));
        }
        if let LdapOp::ExtendedResponse { result_code, .. } = &msg.op {
            let _ = result_name(*result_code);
        }
        at += used;
    }
    if let Some(id) = data.get(..4) {
        let id = i32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        let req = start_tls_request(id);
        let want = LdapMessage {
            message_id: id,
            op: LdapOp::Other(0x77),
        };
        assert_eq!(decode_message(&req), Ok(Some((want, req.len()))));
    }
});
