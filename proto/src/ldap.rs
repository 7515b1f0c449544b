//! LDAP's StartTLS (RFC 4511 4.14, RFC 4513 3) without I/O: the BER-encoded extended request
//! a prober sends and the LDAPMessage framing of what comes back, with the extended response
//! decoded and any other operation skipped by its length.
//!
//! Only what StartTLS needs of BER (X.690) is here: single-byte tags, definite lengths in the
//! short form or the long form with up to four length bytes (Active Directory always sends
//! `84 xx xx xx xx`), INTEGER and ENUMERATED up to 32 bits, OCTET STRING. A message is capped
//! at [`MAX_MESSAGE`]; an indefinite length is refused (RFC 4511 5.1 forbids it).

use std::fmt;

/// The StartTLS extended operation (RFC 4511 4.14.1).
pub const STARTTLS_OID: &str = "1.3.6.1.4.1.1466.20037";
/// The Notice of Disconnection a server sends before it closes (RFC 4511 4.4.1), with
/// message ID 0.
pub const NOTICE_OF_DISCONNECTION_OID: &str = "1.3.6.1.4.1.1466.20036";
/// Longest LDAPMessage accepted, header included: an extended response is a few hundred
/// bytes; search results are not read here.
pub const MAX_MESSAGE: usize = 65536;

/// BER tags used here (X.690 8.1.2: class bits, constructed bit, number).
mod tag {
    pub(super) const INTEGER: u8 = 0x02;
    pub(super) const OCTET_STRING: u8 = 0x04;
    pub(super) const ENUMERATED: u8 = 0x0a;
    pub(super) const SEQUENCE: u8 = 0x30;
    /// [APPLICATION 23] constructed: ExtendedRequest.
    pub(super) const EXTENDED_REQUEST: u8 = 0x77;
    /// [APPLICATION 24] constructed: ExtendedResponse.
    pub(super) const EXTENDED_RESPONSE: u8 = 0x78;
    /// [0] primitive: ExtendedRequest's requestName.
    pub(super) const REQUEST_NAME: u8 = 0x80;
    /// [3] constructed: LDAPResult's referral.
    pub(super) const REFERRAL: u8 = 0xa3;
    /// [10] primitive: ExtendedResponse's responseName.
    pub(super) const RESPONSE_NAME: u8 = 0x8a;
    /// [11] primitive: ExtendedResponse's responseValue.
    pub(super) const RESPONSE_VALUE: u8 = 0x8b;
    /// [APPLICATION 3] constructed: SearchRequest.
    pub(super) const SEARCH_REQUEST: u8 = 0x63;
    /// [APPLICATION 4] constructed: SearchResultEntry.
    pub(super) const SEARCH_ENTRY: u8 = 0x64;
    /// [APPLICATION 5] constructed: SearchResultDone.
    pub(super) const SEARCH_DONE: u8 = 0x65;
    /// [7] primitive: the `present` filter.
    pub(super) const FILTER_PRESENT: u8 = 0x87;
    pub(super) const BOOLEAN: u8 = 0x01;
    pub(super) const SET: u8 = 0x31;
    /// [0] constructed: LDAPMessage's controls.
    pub(super) const CONTROLS: u8 = 0xa0;
}

/// One LDAPMessage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapMessage {
    /// The request's ID echoed back; 0 for unsolicited notifications.
    pub message_id: i32,
    /// The operation.
    pub op: LdapOp,
}

/// The protocolOp of a message, as far as StartTLS cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapOp {
    /// ExtendedResponse ([APPLICATION 24]): the answer to StartTLS, or a Notice of
    /// Disconnection.
    ExtendedResponse {
        /// 0 is success; [`result_name`] names the others.
        result_code: u32,
        matched_dn: String,
        diagnostic: String,
        /// The OID of the response, when the server names it.
        response_name: Option<String>,
    },
    /// SearchResultEntry ([APPLICATION 4]): one entry, e.g. the root DSE.
    SearchEntry {
        dn: String,
        /// Each attribute and its values, as sent.
        attributes: Vec<(String, Vec<String>)>,
    },
    /// SearchResultDone ([APPLICATION 5]): the end of a search.
    SearchDone {
        result_code: u32,
        diagnostic: String,
    },
    /// Any other operation, by its BER tag byte, skipped by its length.
    Other(u8),
}

/// Why bytes are not an LDAPMessage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapError {
    /// The message says it is longer than [`MAX_MESSAGE`] (`len`: its total length).
    MessageTooLong { len: u64 },
    /// An indefinite length (`0x80`), which LDAP forbids.
    IndefiniteLength,
    /// A length in more than four bytes.
    LengthTooLong,
    /// A tag in the multi-byte form (`0x1f` number bits), which LDAP never uses.
    HighTagNumber,
    /// The bytes do not follow the LDAPMessage grammar: `what` says where.
    Malformed { what: &'static str },
}

impl fmt::Display for LdapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LdapError::MessageTooLong { len } => {
                write!(f, "LDAP message of {len} bytes, more than {MAX_MESSAGE}")
            }
            LdapError::IndefiniteLength => f.write_str("BER indefinite length in an LDAP message"),
            LdapError::LengthTooLong => f.write_str("BER length of more than four bytes"),
            LdapError::HighTagNumber => f.write_str("BER multi-byte tag in an LDAP message"),
            LdapError::Malformed { what } => write!(f, "malformed LDAP message: {what}"),
        }
    }
}

impl std::error::Error for LdapError {}

/// A tag, its content length and the header's length, or `None` when the header is not
/// all in `buf` yet.
fn header(buf: &[u8]) -> Result<Option<(u8, u64, usize)>, LdapError> {
    let Some(&t) = buf.first() else {
        return Ok(None);
    };
    if t & 0x1f == 0x1f {
        return Err(LdapError::HighTagNumber);
    }
    let Some(&first) = buf.get(1) else {
        return Ok(None);
    };
    match first {
        0..=0x7f => Ok(Some((t, u64::from(first), 2))),
        0x80 => Err(LdapError::IndefiniteLength),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let Some(bytes) = buf.get(2..2 + n) else {
                return Ok(None);
            };
            let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            Ok(Some((t, len, 2 + n)))
        }
        _ => Err(LdapError::LengthTooLong),
    }
}

/// A cursor over a complete, length-checked slice: running out is malformed, not "need more".
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Nothing may follow the fields read: `what` names the leftover bytes.
    fn end(&self, what: &'static str) -> Result<(), LdapError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(LdapError::Malformed { what })
        }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// The next element: its tag and content.
    fn element(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), LdapError> {
        let (t, len, head) = header(self.buf)?.ok_or(LdapError::Malformed { what })?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| head.checked_add(len))
            .filter(|&end| end <= self.buf.len())
            .ok_or(LdapError::Malformed { what })?;
        let content = &self.buf[head..end];
        self.buf = &self.buf[end..];
        Ok((t, content))
    }

    /// The next element, which must carry `want`.
    fn expect(&mut self, want: u8, what: &'static str) -> Result<&'a [u8], LdapError> {
        match self.element(what)? {
            (t, content) if t == want => Ok(content),
            _ => Err(LdapError::Malformed { what }),
        }
    }
}

/// A two's-complement integer of one to four bytes (X.690 8.3).
fn integer(content: &[u8], what: &'static str) -> Result<i32, LdapError> {
    if content.is_empty() || content.len() > 4 {
        return Err(LdapError::Malformed { what });
    }
    let negative = content[0] & 0x80 != 0;
    let mut v: i64 = if negative { -1 } else { 0 };
    for &b in content {
        v = (v << 8) | i64::from(b);
    }
    i32::try_from(v).map_err(|_| LdapError::Malformed { what })
}

fn string(content: &[u8]) -> String {
    String::from_utf8_lossy(content).into_owned()
}

/// Decodes one LDAPMessage from the start of `buf`. `Ok(None)`: it has not all arrived. As
/// soon as the outer header is in, a message longer than [`MAX_MESSAGE`] is refused.
pub fn decode_message(buf: &[u8]) -> Result<Option<(LdapMessage, usize)>, LdapError> {
    let Some((t, len, head)) = header(buf)? else {
        return Ok(None);
    };
    if t != tag::SEQUENCE {
        return Err(LdapError::Malformed {
            what: "an LDAPMessage is a SEQUENCE (0x30)",
        });
    }
    let total = len + head as u64;
    if total > MAX_MESSAGE as u64 {
        return Err(LdapError::MessageTooLong { len: total });
    }
    let total = total as usize;
    let Some(body) = buf.get(head..total) else {
        return Ok(None);
    };
    let mut r = Reader { buf: body };
    let id = r.expect(tag::INTEGER, "messageID must be an INTEGER")?;
    let message_id = integer(id, "messageID must be a 32-bit INTEGER")?;
    let (op_tag, op) = r.element("protocolOp is missing or cut short")?;
    let op = match op_tag {
        tag::EXTENDED_RESPONSE => extended_response(op)?,
        tag::SEARCH_ENTRY => search_entry(op)?,
        tag::SEARCH_DONE => search_done(op)?,
        _ => LdapOp::Other(op_tag),
    };
    if r.peek_tag() == Some(tag::CONTROLS) {
        r.element("controls cut short")?;
    }
    r.end("bytes after the protocolOp and controls")?;
    Ok(Some((LdapMessage { message_id, op }, total)))
}

/// The LDAPResult fields every response starts with (RFC 4511 4.1.9):
/// resultCode, matchedDN, diagnosticMessage, and a referral, skipped.
fn ldap_result(r: &mut Reader<'_>) -> Result<(u32, String, String), LdapError> {
    let code = r.expect(tag::ENUMERATED, "resultCode must be an ENUMERATED")?;
    let code = integer(code, "resultCode must be a 32-bit ENUMERATED")?;
    let result_code = u32::try_from(code).map_err(|_| LdapError::Malformed {
        what: "resultCode is negative",
    })?;
    let matched_dn = string(r.expect(tag::OCTET_STRING, "matchedDN must be an OCTET STRING")?);
    let diagnostic = string(r.expect(
        tag::OCTET_STRING,
        "diagnosticMessage must be an OCTET STRING",
    )?);
    if r.peek_tag() == Some(tag::REFERRAL) {
        r.element("referral cut short")?;
    }
    Ok((result_code, matched_dn, diagnostic))
}

fn extended_response(content: &[u8]) -> Result<LdapOp, LdapError> {
    let mut r = Reader { buf: content };
    let (result_code, matched_dn, diagnostic) = ldap_result(&mut r)?;
    let mut response_name = None;
    if r.peek_tag() == Some(tag::RESPONSE_NAME) {
        response_name = Some(string(r.element("responseName cut short")?.1));
    }
    if r.peek_tag() == Some(tag::RESPONSE_VALUE) {
        r.element("responseValue cut short")?;
    }
    r.end("bytes after the ExtendedResponse's fields")?;
    Ok(LdapOp::ExtendedResponse {
        result_code,
        matched_dn,
        diagnostic,
        response_name,
    })
}

fn search_entry(content: &[u8]) -> Result<LdapOp, LdapError> {
    let mut r = Reader { buf: content };
    let dn = string(r.expect(tag::OCTET_STRING, "objectName must be an OCTET STRING")?);
    let list = r.expect(tag::SEQUENCE, "attributes must be a SEQUENCE")?;
    r.end("bytes after the SearchResultEntry's attributes")?;
    let mut attributes = Vec::new();
    let mut items = Reader { buf: list };
    while !items.is_empty() {
        let attr = items.expect(tag::SEQUENCE, "a PartialAttribute must be a SEQUENCE")?;
        let mut a = Reader { buf: attr };
        let name = string(a.expect(
            tag::OCTET_STRING,
            "an attribute type must be an OCTET STRING",
        )?);
        let set = a.expect(tag::SET, "attribute values must be a SET")?;
        a.end("bytes after an attribute's values")?;
        let mut values = Vec::new();
        let mut v = Reader { buf: set };
        while !v.is_empty() {
            values.push(string(v.expect(
                tag::OCTET_STRING,
                "an attribute value must be an OCTET STRING",
            )?));
        }
        attributes.push((name, values));
    }
    Ok(LdapOp::SearchEntry { dn, attributes })
}

fn search_done(content: &[u8]) -> Result<LdapOp, LdapError> {
    let mut r = Reader { buf: content };
    let (result_code, _matched_dn, diagnostic) = ldap_result(&mut r)?;
    r.end("bytes after the SearchResultDone's fields")?;
    Ok(LdapOp::SearchDone {
        result_code,
        diagnostic,
    })
}

/// Appends a definite length in its shortest form.
fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn put(out: &mut Vec<u8>, t: u8, content: &[u8]) {
    out.push(t);
    put_len(out, content.len());
    out.extend_from_slice(content);
}

/// The shortest two's-complement content of `v` (X.690 8.3.2).
fn int_content(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

fn message(message_id: i32, op_tag: u8, op: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(op.len() + 12);
    put(&mut body, tag::INTEGER, &int_content(i64::from(message_id)));
    put(&mut body, op_tag, op);
    let mut out = Vec::with_capacity(body.len() + 6);
    put(&mut out, tag::SEQUENCE, &body);
    out
}

/// The StartTLS ExtendedRequest: `LDAPMessage { messageID, extendedReq [APPLICATION 23]
/// { requestName [0] "1.3.6.1.4.1.1466.20037" } }`, no requestValue (RFC 4511 4.14.1). For
/// message ID 1 that is `30 1d 02 01 01 77 18 80 16` and the 22 bytes of the OID.
pub fn start_tls_request(message_id: i32) -> Vec<u8> {
    let mut op = Vec::with_capacity(24);
    put(&mut op, tag::REQUEST_NAME, STARTTLS_OID.as_bytes());
    message(message_id, tag::EXTENDED_REQUEST, &op)
}

/// The root DSE attributes that tell which server this is.
pub const ROOT_DSE_ATTRIBUTES: &[&str] = &[
    "vendorName",
    "vendorVersion",
    "supportedLDAPVersion",
    "supportedExtension",
    "supportedControl",
    "supportedCapabilities",
    "forestFunctionality",
];

/// A search of the root DSE (RFC 4512 5.1: base "", scope base, filter
/// `(objectClass=*)`) for `attributes`; anonymous, allowed before a bind.
pub fn root_dse_request(message_id: i32, attributes: &[&str]) -> Vec<u8> {
    let mut op = Vec::new();
    put(&mut op, tag::OCTET_STRING, b"");
    put(&mut op, tag::ENUMERATED, &[0]); // baseObject
    put(&mut op, tag::ENUMERATED, &[0]); // neverDerefAliases
    put(&mut op, tag::INTEGER, &[0]); // no size limit
    put(&mut op, tag::INTEGER, &[10]); // 10 s time limit
    put(&mut op, tag::BOOLEAN, &[0]); // typesOnly FALSE
    put(&mut op, tag::FILTER_PRESENT, b"objectClass");
    let mut list = Vec::new();
    for a in attributes {
        put(&mut list, tag::OCTET_STRING, a.as_bytes());
    }
    put(&mut op, tag::SEQUENCE, &list);
    message(message_id, tag::SEARCH_REQUEST, &op)
}

/// Which server a root DSE describes: its `vendorName` (and
/// `vendorVersion`) when it says, else what its extensions give away:
/// OpenLDAP's own OIDs (1.3.6.1.4.1.4203), Active Directory's capabilities
/// (1.2.840.113556.1.4.800).
pub fn product_from_root_dse(attributes: &[(String, Vec<String>)]) -> Option<String> {
    let get = |name: &str| {
        attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    };
    if let Some(vendor) = get("vendorName").first() {
        return Some(match get("vendorVersion").first() {
            Some(version) => format!("{vendor} {version}"),
            None => vendor.clone(),
        });
    }
    let any = |name: &str, prefix: &str| get(name).iter().any(|v| v.starts_with(prefix));
    if any("supportedCapabilities", "1.2.840.113556.1.4.800")
        || !get("forestFunctionality").is_empty()
    {
        return Some("Microsoft Active Directory".into());
    }
    if any("supportedExtension", "1.3.6.1.4.1.4203.")
        || any("supportedControl", "1.3.6.1.4.1.4203.")
    {
        return Some("OpenLDAP".into());
    }
    None
}

/// Encodes a message, for test servers and round trips. [`LdapOp::Other`] is written as its
/// tag with no content.
pub fn encode_message(msg: &LdapMessage) -> Vec<u8> {
    match &msg.op {
        LdapOp::ExtendedResponse {
            result_code,
            matched_dn,
            diagnostic,
            response_name,
        } => {
            let mut op = Vec::new();
            put(
                &mut op,
                tag::ENUMERATED,
                &int_content(i64::from(*result_code)),
            );
            put(&mut op, tag::OCTET_STRING, matched_dn.as_bytes());
            put(&mut op, tag::OCTET_STRING, diagnostic.as_bytes());
            if let Some(name) = response_name {
                put(&mut op, tag::RESPONSE_NAME, name.as_bytes());
            }
            message(msg.message_id, tag::EXTENDED_RESPONSE, &op)
        }
        LdapOp::SearchEntry { dn, attributes } => {
            let mut list = Vec::new();
            for (name, values) in attributes {
                let mut attr = Vec::new();
                put(&mut attr, tag::OCTET_STRING, name.as_bytes());
                let mut set = Vec::new();
                for v in values {
                    put(&mut set, tag::OCTET_STRING, v.as_bytes());
                }
                put(&mut attr, tag::SET, &set);
                put(&mut list, tag::SEQUENCE, &attr);
            }
            let mut op = Vec::new();
            put(&mut op, tag::OCTET_STRING, dn.as_bytes());
            put(&mut op, tag::SEQUENCE, &list);
            message(msg.message_id, tag::SEARCH_ENTRY, &op)
        }
        LdapOp::SearchDone {
            result_code,
            diagnostic,
        } => {
            let mut op = Vec::new();
            put(
                &mut op,
                tag::ENUMERATED,
                &int_content(i64::from(*result_code)),
            );
            put(&mut op, tag::OCTET_STRING, b"");
            put(&mut op, tag::OCTET_STRING, diagnostic.as_bytes());
            message(msg.message_id, tag::SEARCH_DONE, &op)
        }
        LdapOp::Other(t) => message(msg.message_id, *t, &[]),
    }
}

/// The RFC 4511 appendix A name of a result code (`success`, `protocolError`,
/// `unavailable`...), or `unknown`.
pub fn result_name(code: u32) -> &'static str {
    match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        5 => "compareFalse",
        6 => "compareTrue",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        14 => "saslBindInProgress",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        33 => "aliasProblem",
        34 => "invalidDNSyntax",
        36 => "aliasDereferencingProblem",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        // RFC 3909 (Cancel operation).
        118 => "canceled",
        119 => "noSuchOperation",
        120 => "tooLate",
        121 => "cannotCancel",
        _ => "unknown",
    }
}
