//! The message `sockeye mail` sends: headers (From, To, Subject, Date, Message-ID, MIME
//! and the user's own), a text body and attachments, built with mail-builder (MIME
//! multipart, base64 attachments, RFC 2047 for non-ASCII subjects).
//!
//! The From header is the envelope sender unless [`MessageSpec::header_from`] says
//! otherwise: nothing in SMTP ties the two together (a classic lab exercise shows how
//! easily a sender is forged), so a different From must be asked for by name.

use std::borrow::Cow;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;

/// A file to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name shown to the recipient.
    pub name: String,
    /// Its MIME type, from the extension ([`content_type_for`]).
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Everything the message is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSpec {
    /// The envelope sender (MAIL FROM), the From header by default.
    pub envelope_from: String,
    /// The recipients, the To header.
    pub to: Vec<String>,
    /// A From header other than the envelope sender, as typed (`Boss <boss@lab.test>`).
    pub header_from: Option<String>,
    pub subject: String,
    /// The text body (UTF-8).
    pub body: String,
    /// Extra headers in order; `To`, `Subject`, `Date` or `Message-ID` here replace the
    /// generated ones.
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
}

/// Headers sockeye writes itself unless the user gives them.
const REPLACEABLE: &[&str] = &["To", "Subject", "Date", "Message-ID"];

/// Checks one `--header "Name: value"` and splits it. `From` is refused (it has its own
/// flag, `--header-from`), as are names that are not RFC 5322 field names and values with
/// CR, LF or NUL (they would start a header of their own).
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(format!("--header {text:?}: expected \"Name: value\""));
    };
    let name = name.trim();
    let value = value.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(format!("--header {text:?}: {name:?} is not a header name"));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(format!("--header {text:?}: the value holds a line break"));
    }
    if name.eq_ignore_ascii_case("from") {
        return Err(
            "--header From: use --header-from to write a From header other than the envelope sender"
                .to_owned(),
        );
    }
    // mail-builder recognises Date and Message-ID by their exact spelling.
    let name = REPLACEABLE
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |known| (*known).to_owned());
    Ok((name, value.to_owned()))
}

/// A MIME type for a file name, from its extension; `application/octet-stream` otherwise.
pub fn content_type_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "conf" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "eml" => "message/rfc822",
        _ => "application/octet-stream",
    }
}

impl MessageSpec {
    fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The whole message, headers and body, lines ending in CRLF (not yet dot-stuffed).
    pub fn build(&self) -> Vec<u8> {
        let mut m = MessageBuilder::new();
        m = match &self.header_from {
            Some(from) => m.header("From", Raw::new(from.as_str())),
            None => m.from(Address::from(self.envelope_from.as_str())),
        };
        if !self.has("To") {
            let to: Vec<Address<'_>> = self.to.iter().map(|t| Address::from(t.as_str())).collect();
            m = m.to(Address::new_list(to));
        }
        if !self.has("Subject") {
            m = m.subject(self.subject.as_str());
        }
        for (name, value) in &self.headers {
            m = m.header(Cow::from(name.as_str()), Raw::new(value.as_str()));
        }
        m = m.text_body(self.body.as_str());
        for a in &self.attachments {
            m = m.attachment(a.content_type.as_str(), a.name.as_str(), a.data.as_slice());
        }
        // Writing to a Vec cannot fail.
        m.write_to_vec().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(spec: &MessageSpec) -> String {
        String::from_utf8(spec.build()).expect("ASCII")
    }

    fn spec() -> MessageSpec {
        MessageSpec {
            envelope_from: "bob@lab.test".into(),
            to: vec!["alice@lab.test".into(), "carol@lab.test".into()],
            subject: "hello".into(),
            body: "line one\n.dot line\n".into(),
            ..MessageSpec::default()
        }
    }

    fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
        let head = msg.split("\r\n\r\n").next().unwrap_or_default();
        head.split("\r\n")
            .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
            .collect()
    }

    #[test]
    fn headers_match_the_envelope() {
        let msg = text(&spec());
        assert_eq!(header(&msg, "From"), ["<bob@lab.test>"]);
        assert_eq!(header(&msg, "To"), ["<alice@lab.test>, <carol@lab.test>"]);
        assert_eq!(header(&msg, "Subject"), ["hello"]);
        assert_eq!(header(&msg, "MIME-Version"), ["1.0"]);
        assert_eq!(header(&msg, "Date").len(), 1);
        let id = header(&msg, "Message-ID");
        assert!(
            id.len() == 1 && id[0].starts_with('<') && id[0].contains('@'),
            "{id:?}"
        );
        assert!(msg.contains("\r\n\r\nline one\r\n.dot line\r\n"), "{msg}");
    }

    #[test]
    fn a_different_from_and_replaced_headers() {
        let mut s = spec();
        s.header_from = Some("The Boss <boss@lab.test>".into());
        s.headers = vec![
            parse_header("subject: replaced").unwrap(),
            parse_header("X-Test: 1").unwrap(),
            parse_header("Date: Sat, 28 Nov 2026 12:00:00 +0000").unwrap(),
        ];
        let msg = text(&s);
        assert_eq!(header(&msg, "From"), ["The Boss <boss@lab.test>"]);
        assert_eq!(header(&msg, "Subject"), ["replaced"]);
        assert_eq!(header(&msg, "X-Test"), ["1"]);
        assert_eq!(header(&msg, "Date"), ["Sat, 28 Nov 2026 12:00:00 +0000"]);
    }

    #[test]
    fn bad_headers_are_refused() {
        for bad in ["no colon", ": empty", "Bad Name: x", "From: x@y"] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_header("message-id:  <a@b> ").unwrap(),
            ("Message-ID".to_owned(), "<a@b>".to_owned())
        );
    }

    #[test]
    fn attachments_make_a_multipart_message() {
        let mut s = spec();
        s.subject = "gr\u{fc}\u{df}e".into();
        s.attachments = vec![Attachment {
            name: "data.bin".into(),
            content_type: content_type_for("data.bin").into(),
            data: vec![0, 1, 2, 255],
        }];
        let msg = text(&s);
        assert!(
            header(&msg, "Content-Type")[0].starts_with("multipart/mixed"),
            "{msg}"
        );
        assert!(msg.contains("filename=\"data.bin\""), "{msg}");
        assert!(msg.contains("\r\nAAEC/w==\r\n"), "{msg}");
        assert!(header(&msg, "Subject")[0].starts_with("=?utf-8?"), "{msg}");
        assert_eq!(content_type_for("a.PNG"), "image/png");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
    }
}
