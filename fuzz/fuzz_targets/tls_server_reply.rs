//! Arbitrary bytes as the first flight of a TLS server (sockeye-proto's `tls_hello`): both
//! decoders must never panic, must agree with each other on where the flight stands, and an
//! answer must come again from exactly the bytes it says it took.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::tls_hello::{
    MAX_FLIGHT_LEN, ServerReply, TlsHelloError, TlsVersion, decode_certificates,
    decode_server_reply,
};

fuzz_target!(|data: &[u8]| {
    let reply = decode_server_reply(data);
    let certs = decode_certificates(data);
    match &reply {
        Ok(None) => assert_eq!(certs, Ok(None), "the certificate comes after the hello"),
        Ok(Some((answer, n))) => {
            assert!(*n <= data.len() && *n <= MAX_FLIGHT_LEN);
            assert_eq!(
                decode_server_reply(&data[..*n]).as_ref(),
                Ok(&Some((answer.clone(), *n)))
            );
            match answer {
                ServerReply::Alert { level, description } => {
                    assert_eq!(
                        certs,
                        Err(TlsHelloError::Alert {
                            level: *level,
                            description: *description
                        })
                    );
                    assert!(TlsVersion::ALL.iter().all(|v| !answer.accepts(*v)));
                }
                ServerReply::Hello(hello) => {
                    let accepted: Vec<_> = TlsVersion::ALL
                        .iter()
                        .filter(|v| answer.accepts(**v))
                        .collect();
                    assert!(accepted.len() <= 1);
                    assert_eq!(accepted.len() == 1, hello.tls_version().is_some());
                    if hello.hello_retry || hello.version >= 0x0304 {
                        assert_eq!(
                            certs,
                            Err(TlsHelloError::CertificateEncrypted {
                                version: hello.version
                            })
                        );
                    }
                }
            }
        }
        // The certificate reader stops at the same first fault.
        Err(e) => assert_eq!(certs.as_ref(), Err(e)),
    }
    if let Ok(Some((chain, n))) = &certs {
        assert!(matches!(reply, Ok(Some((_, m))) if m <= *n));
        assert!(*n <= data.len());
        assert!(chain.iter().all(|c| !c.is_empty()));
        assert_eq!(
            decode_certificates(&data[..*n]).as_ref(),
            Ok(&Some((chain.clone(), *n)))
        );
    }
    // Messages are for people: they must format whatever the input.
    for e in [reply.err(), certs.err()].into_iter().flatten() {
        assert!(!e.to_string().is_empty());
    }
});
