//! Service sniffing (`proto/src/sniff.rs`): real banners (OpenSSH, Dropbear, Postfix, Exim,
//! Sendmail, Microsoft, vsftpd, ProFTPD, Pure-FTPd, FileZilla, Dovecot, Cyrus, Courier,
//! BusyBox telnetd) and real answers to our HEAD request (nginx, Apache, a TLS server's
//! alert, OpenLDAP's notice of disconnection), each to the service it names.

use sockeye_proto::sniff::{Sniffed, sniff_banner, sniff_reply};

#[test]
fn banners() {
    let table: &[(&[u8], Sniffed)] = &[
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", Sniffed::Ssh),
        (b"SSH-2.0-dropbear_2022.83\r\n", Sniffed::Ssh),
        (b"SSH-1.99-Cisco-1.25\r\n", Sniffed::Ssh),
        (b"220 mail.lab.test ESMTP Postfix (Debian/GNU)\r\n", Sniffed::Smtp),
        (b"220 mx.lab.test ESMTP Exim 4.96 Sat, 28 Nov 2026 23:00:00 +0000\r\n", Sniffed::Smtp),
        (
            b"220 host.lab.test ESMTP Sendmail 8.17.1.9/8.17.1.9/Debian-2; Sat, 28 Nov 2026\r\n",
            Sniffed::Smtp,
        ),
        (b"220 EX01.lab.test Microsoft ESMTP MAIL Service ready at Sat\r\n", Sniffed::Smtp),
        (b"220-mail.lab.test ESMTP\r\n220 hello\r\n", Sniffed::Smtp),
        (b"220 smtp.lab.test OpenSMTPD\r\n", Sniffed::Smtp),
        // A host name with `ftp` in it does not make an SMTP server an FTP one.
        (b"220 ftp.lab.test ESMTP Postfix\r\n", Sniffed::Smtp),
        (b"220 (vsFTPd 3.0.3)\r\n", Sniffed::Ftp),
        (b"220 ProFTPD Server (Debian) [::ffff:198.18.0.2]\r\n", Sniffed::Ftp),
        (
            b"220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------\r\n220-You are user number 1 of 50 allowed.\r\n",
            Sniffed::Ftp,
        ),
        (b"220-FileZilla Server 1.8.0\r\n220 Please visit https://filezilla-project.org/\r\n", Sniffed::Ftp),
        (b"220 Microsoft FTP Service\r\n", Sniffed::Ftp),
        (b"220 smtp.lab.test FTP server ready\r\n", Sniffed::Ftp),
        // Neither named, or both: say so.
        (b"220 Welcome\r\n", Sniffed::Numbered220),
        (b"220\r\n", Sniffed::Numbered220),
        (b"220", Sniffed::Numbered220),
        (b"220 ESMTP and FTP gateway\r\n", Sniffed::Numbered220),
        (b"+OK Dovecot (Debian) ready.\r\n", Sniffed::Pop3),
        (b"+OK Cyrus POP3 v3.6.1 server ready <1@mail>\r\n", Sniffed::Pop3),
        (
            b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n",
            Sniffed::Imap,
        ),
        (b"* OK mail.lab.test Cyrus IMAP 3.6.1 server ready\r\n", Sniffed::Imap),
        (b"* OK [CAPABILITY IMAP4rev1 UIDPLUS] Courier-IMAP ready.\r\n", Sniffed::Imap),
        (b"* PREAUTH IMAP4rev1 server logged in\r\n", Sniffed::Imap),
        (b"* BYE Too many connections\r\n", Sniffed::Imap),
        (&[0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfd, 0x1f], Sniffed::Telnet),
        (&[0xff, 0xfd, 0x18], Sniffed::Telnet),
        (b"HTTP/1.1 408 Request Timeout\r\n", Sniffed::Http),
        (&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46], Sniffed::Tls),
        (&[0x16, 0x03, 0x01, 0x00, 0x5a], Sniffed::Tls),
        // Not quite anything.
        (b"", Sniffed::Unknown),
        (b"SSH-", Sniffed::Unknown),
        (b"2200 x\r\n", Sniffed::Unknown),
        (b"221 bye\r\n", Sniffed::Unknown),
        (b"welcome to my server\r\n", Sniffed::Unknown),
        (&[0x16, 0x03, 0x05], Sniffed::Unknown),
        (&[0xff, 0x01], Sniffed::Unknown),
        (&[0x30, 0x0c, 0x02, 0x01, 0x01], Sniffed::Unknown),
    ];
    for (bytes, want) in table {
        assert_eq!(sniff_banner(bytes), *want, "{}", bytes.escape_ascii());
    }
}

#[test]
fn replies_to_our_head_request() {
    let table: &[(&[u8], Sniffed)] = &[
        (
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n",
            Sniffed::Http,
        ),
        (
            b"HTTP/1.1 400 Bad Request\r\nServer: Apache/2.4.62 (Debian)\r\n",
            Sniffed::Http,
        ),
        (b"HTTP/1.0 400 Bad Request\r\n", Sniffed::Http),
        // A TLS server reads `HEAD` as a record header and sends a fatal alert.
        (&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32], Sniffed::Tls),
        (&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46], Sniffed::Tls),
        // OpenLDAP's notice of disconnection (protocolError), short and AD-style lengths.
        (
            &[
                0x30, 0x0c, 0x02, 0x01, 0x00, 0x78, 0x07, 0x0a, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00,
            ],
            Sniffed::Ldap,
        ),
        (
            &[0x30, 0x84, 0x00, 0x00, 0x00, 0x10, 0x02, 0x01, 0x00, 0x78],
            Sniffed::Ldap,
        ),
        // Speaking-first services that were slow still count.
        (
            b"SSH-2.0-OpenSSH_9.2p1\r\nInvalid SSH identification string.\r\n",
            Sniffed::Ssh,
        ),
        (b"-ERR Unknown command.\r\n", Sniffed::Pop3),
        (
            b"* BAD Error in IMAP command received by server.\r\n",
            Sniffed::Imap,
        ),
        (
            b"220 (vsFTPd 3.0.3)\r\n530 Please login with USER and PASS.\r\n",
            Sniffed::Ftp,
        ),
        // Nothing to go on.
        (b"", Sniffed::Unknown),
        (b"500 what?\r\n", Sniffed::Unknown),
        (&[0x30, 0x84, 0x00], Sniffed::Unknown),
        (&[0x30, 0x02, 0x04, 0x00], Sniffed::Unknown),
        (&[0x00, 0x00, 0x00, 0x00], Sniffed::Unknown),
    ];
    for (bytes, want) in table {
        assert_eq!(sniff_reply(bytes), *want, "{}", bytes.escape_ascii());
    }
}

#[test]
fn names() {
    let table = [
        (Sniffed::Ssh, "ssh"),
        (Sniffed::Smtp, "smtp"),
        (Sniffed::Ftp, "ftp"),
        (Sniffed::Pop3, "pop3"),
        (Sniffed::Imap, "imap"),
        (Sniffed::Telnet, "telnet"),
        (Sniffed::Http, "http"),
        (Sniffed::Tls, "tls"),
        (Sniffed::Ldap, "ldap"),
        (Sniffed::Numbered220, "smtp-or-ftp"),
        (Sniffed::Unknown, "unknown"),
    ];
    for (s, name) in table {
        assert_eq!(s.to_string(), name);
    }
}
