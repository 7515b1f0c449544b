//! Arbitrary text as `Proxy-Authorization` credentials and as `Proxy-Authenticate`
//! challenges: reading never panics, and Digest
//! credentials built from the text's pieces with the right response are accepted while the
//! same with one wrong password are refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_proto::proxy_auth::{
    Credentials, DigestCredentials, REALM, Verdict, check, digest_response, make_nonce,
    parse_challenges, parse_credentials,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_credentials(text);
    let _ = parse_challenges(text);
    let mut parts = text.splitn(3, '\n');
    let (user, pass, uri) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let secret = b"fuzz secret 0123";
    let now = (1_700_000_000, 42);
    let nonce = make_nonce(secret, now.0, now.1);
    let creds = |pass: &str| {
        Credentials::Digest(Box::new(DigestCredentials {
            username: Some(user.into()),
            realm: Some(REALM.into()),
            nonce: Some(nonce.clone()),
            uri: Some(uri.into()),
            response: Some(digest_response(user, REALM, pass, "GET", uri, &nonce, None)),
            ..Default::default()
        }))
    };
    assert_eq!(
        check(&creds(pass), user, pass, "GET", secret, now),
        Verdict::Accepted
    );
    let wrong = format!("{pass}x");
    assert_eq!(
        check(&creds(&wrong), user, pass, "GET", secret, now),
        Verdict::Refused
    );
});
