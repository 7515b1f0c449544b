//! The services the prober knows: the classic seventeen of services.md,
//! their usual ports, whether TLS comes first, and which dialogue checks
//! them.

/// A service the prober can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Telnet,
    Ssh,
    Smtp,
    Submission,
    Smtps,
    Pop2,
    Pop3,
    Imap,
    Imaps,
    Pop3s,
    Ftp,
    Http,
    Https,
    Ipp,
    Kerberos,
    Ldap,
    Ldaps,
}

/// The dialogue that checks a service (after TLS, for implicit TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialogue {
    /// Report what the server volunteers (telnet, with IAC decoded).
    Telnet,
    /// Read the first line (ssh, pop2).
    Banner,
    Smtp,
    Pop3,
    Imap,
    Ftp,
    Http,
    Ldap,
    /// Connect (and handshake) only.
    Connect,
}

/// services.md's classic set, in its order.
pub const CLASSIC: [Service; 17] = [
    Service::Telnet,
    Service::Ssh,
    Service::Smtp,
    Service::Submission,
    Service::Smtps,
    Service::Pop2,
    Service::Pop3,
    Service::Imap,
    Service::Imaps,
    Service::Pop3s,
    Service::Ftp,
    Service::Http,
    Service::Https,
    Service::Ipp,
    Service::Kerberos,
    Service::Ldap,
    Service::Ldaps,
];

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Telnet => "telnet",
            Service::Ssh => "ssh",
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Smtps => "smtps",
            Service::Pop2 => "pop2",
            Service::Pop3 => "pop3",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Pop3s => "pop3s",
            Service::Ftp => "ftp",
            Service::Http => "http",
            Service::Https => "https",
            Service::Ipp => "ipp",
            Service::Kerberos => "kerberos",
            Service::Ldap => "ldap",
            Service::Ldaps => "ldaps",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Service::Telnet => 23,
            Service::Ssh => 22,
            Service::Smtp => 25,
            Service::Submission => 587,
            Service::Smtps => 465,
            Service::Pop2 => 109,
            Service::Pop3 => 110,
            Service::Imap => 143,
            Service::Imaps => 993,
            Service::Pop3s => 995,
            Service::Ftp => 21,
            Service::Http => 80,
            Service::Https => 443,
            Service::Ipp => 631,
            Service::Kerberos => 88,
            Service::Ldap => 389,
            Service::Ldaps => 636,
        }
    }

    /// TLS before the first byte of the protocol.
    pub fn implicit_tls(self) -> bool {
        matches!(
            self,
            Service::Smtps | Service::Imaps | Service::Pop3s | Service::Https | Service::Ldaps
        )
    }

    pub fn dialogue(self) -> Dialogue {
        match self {
            Service::Telnet => Dialogue::Telnet,
            Service::Ssh | Service::Pop2 => Dialogue::Banner,
            Service::Smtp | Service::Submission | Service::Smtps => Dialogue::Smtp,
            Service::Pop3 | Service::Pop3s => Dialogue::Pop3,
            Service::Imap | Service::Imaps => Dialogue::Imap,
            Service::Ftp => Dialogue::Ftp,
            Service::Http | Service::Https | Service::Ipp => Dialogue::Http,
            Service::Kerberos => Dialogue::Connect,
            Service::Ldap | Service::Ldaps => Dialogue::Ldap,
        }
    }

    /// The classic service usually found on `port`.
    pub fn for_port(port: u16) -> Option<Service> {
        CLASSIC.iter().copied().find(|s| s.port() == port)
    }
}

impl Dialogue {
    /// Whether the server speaks first in this protocol (so the check
    /// waits for a greeting, which also tells what really answered).
    pub fn server_first(self) -> bool {
        matches!(
            self,
            Dialogue::Telnet
                | Dialogue::Banner
                | Dialogue::Smtp
                | Dialogue::Pop3
                | Dialogue::Imap
                | Dialogue::Ftp
        )
    }

    /// The service name reported when this dialogue was recognised by
    /// content on a port that is not its own.
    pub fn generic_name(self) -> &'static str {
        match self {
            Dialogue::Telnet => "telnet",
            Dialogue::Banner => "ssh",
            Dialogue::Smtp => "smtp",
            Dialogue::Pop3 => "pop3",
            Dialogue::Imap => "imap",
            Dialogue::Ftp => "ftp",
            Dialogue::Http => "http",
            Dialogue::Ldap => "ldap",
            Dialogue::Connect => "unknown",
        }
    }
}
