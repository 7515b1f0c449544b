//! Telnet's in-band commands (RFC 854, RFC 855) without I/O: splitting a byte stream into
//! data, option negotiation (`IAC WILL/WONT/DO/DONT option`), other commands (`IAC GA`,
//! `IAC NOP`...) and subnegotiations (`IAC SB option ... IAC SE`), naming options for people,
//! and refusing every option so that a prober can keep a server talking without agreeing to
//! anything.
//!
//! [`decode`] consumes every complete item and leaves a partial `IAC` sequence for the next
//! call. A subnegotiation is capped at [`MAX_SUBNEGOTIATION`] bytes.

use std::fmt;

/// Interpret As Command: starts every command; doubled, it is a data byte 0xFF.
pub const IAC: u8 = 255;
/// Subnegotiation begin.
pub const SB: u8 = 250;
/// Subnegotiation end.
pub const SE: u8 = 240;
/// Longest subnegotiation payload accepted (after undoubling 0xFF): terminal types and
/// NEW-ENVIRON lists are tens of bytes; 1 KiB leaves room and stops a flood.
pub const MAX_SUBNEGOTIATION: usize = 1024;

/// The four negotiation verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// 251: the sender wants to (or does) use the option itself.
    Will,
    /// 252: the sender refuses to use the option.
    Wont,
    /// 253: the sender asks the other side to use the option.
    Do,
    /// 254: the sender asks the other side not to use the option.
    Dont,
}

impl Verb {
    /// The command byte.
    pub fn code(self) -> u8 {
        match self {
            Verb::Will => 251,
            Verb::Wont => 252,
            Verb::Do => 253,
            Verb::Dont => 254,
        }
    }

    /// The verb for a command byte, if it is one.
    pub fn from_code(code: u8) -> Option<Verb> {
        match code {
            251 => Some(Verb::Will),
            252 => Some(Verb::Wont),
            253 => Some(Verb::Do),
            254 => Some(Verb::Dont),
            _ => None,
        }
    }

    /// `WILL`, `WONT`, `DO`, `DONT`.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Will => "WILL",
            Verb::Wont => "WONT",
            Verb::Do => "DO",
            Verb::Dont => "DONT",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One piece of a telnet stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelnetItem {
    /// Data bytes (`IAC IAC` already turned into one 0xFF). Consecutive data comes as one item.
    Data(Vec<u8>),
    /// Option negotiation.
    Command { verb: Verb, option: u8 },
    /// Any other command byte after `IAC`: GA (249), NOP (241), AYT (246), a stray SE...
    Other(u8),
    /// `IAC SB option data IAC SE`, data with `IAC IAC` undoubled.
    Subnegotiation { option: u8, data: Vec<u8> },
}

impl fmt::Display for TelnetItem {
    /// `WILL ECHO`, `DO 200`, `GA`, `SB TERMINAL-TYPE 01`, data as escaped text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TelnetItem::Data(bytes) => write!(f, "{}", bytes.escape_ascii()),
            TelnetItem::Command { verb, option } => match option_name(*option) {
                Some(name) => write!(f, "{verb} {name}"),
                None => write!(f, "{verb} {option}"),
            },
            TelnetItem::Other(code) => match command_name(*code) {
                Some(name) => f.write_str(name),
                None => write!(f, "IAC {code}"),
            },
            TelnetItem::Subnegotiation { option, data } => {
                match option_name(*option) {
                    Some(name) => write!(f, "SB {name}")?,
                    None => write!(f, "SB {option}")?,
                }
                for b in data {
                    write!(f, " {b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a telnet stream cannot be read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelnetError {
    /// A subnegotiation for `option` went past [`MAX_SUBNEGOTIATION`] bytes without `IAC SE`.
    SubnegotiationTooLong { option: u8 },
    /// Inside a subnegotiation for `option`, `IAC` was followed by `byte`, neither `IAC` nor
    /// `SE` (RFC 855 allows only those two).
    BadSubnegotiation { option: u8, byte: u8 },
}

impl fmt::Display for TelnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |o: u8| option_name(o).map_or_else(|| o.to_string(), str::to_owned);
        match self {
            TelnetError::SubnegotiationTooLong { option } => write!(
                f,
                "telnet subnegotiation of {} longer than {MAX_SUBNEGOTIATION} bytes",
                name(*option)
            ),
            TelnetError::BadSubnegotiation { option, byte } => write!(
                f,
                "telnet subnegotiation of {} holds IAC {byte}, not IAC IAC or IAC SE",
                name(*option)
            ),
        }
    }
}

impl std::error::Error for TelnetError {}

/// The name of an option (IANA's telnet options registry, arpa/telnet.h spelling).
pub fn option_name(option: u8) -> Option<&'static str> {
    Some(match option {
        0 => "BINARY",
        1 => "ECHO",
        2 => "RCP",
        3 => "SUPPRESS-GO-AHEAD",
        4 => "NAMS",
        5 => "STATUS",
        6 => "TIMING-MARK",
        7 => "RCTE",
        8 => "NAOL",
        9 => "NAOP",
        10 => "NAOCRD",
        11 => "NAOHTS",
        12 => "NAOHTD",
        13 => "NAOFFD",
        14 => "NAOVTS",
        15 => "NAOVTD",
        16 => "NAOLFD",
        17 => "EXTEND-ASCII",
        18 => "LOGOUT",
        19 => "BYTE-MACRO",
        20 => "DATA-ENTRY-TERMINAL",
        21 => "SUPDUP",
        22 => "SUPDUP-OUTPUT",
        23 => "SEND-LOCATION",
        24 => "TERMINAL-TYPE",
        25 => "END-OF-RECORD",
        26 => "TUID",
        27 => "OUTMRK",
        28 => "TTYLOC",
        29 => "3270-REGIME",
        30 => "X.3-PAD",
        31 => "NAWS",
        32 => "TERMINAL-SPEED",
        33 => "TOGGLE-FLOW-CONTROL",
        34 => "LINEMODE",
        35 => "X-DISPLAY-LOCATION",
        36 => "ENVIRON",
        37 => "AUTHENTICATION",
        38 => "ENCRYPT",
        39 => "NEW-ENVIRON",
        40 => "TN3270E",
        41 => "XAUTH",
        42 => "CHARSET",
        43 => "RSP",
        44 => "COM-PORT-OPTION",
        45 => "SUPPRESS-LOCAL-ECHO",
        46 => "START-TLS",
        47 => "KERMIT",
        48 => "SEND-URL",
        49 => "FORWARD-X",
        138 => "PRAGMA-LOGON",
        139 => "SSPI-LOGON",
        140 => "PRAGMA-HEARTBEAT",
        255 => "EXOPL",
        _ => return None,
    })
}

/// The name of a command byte after `IAC` other than the negotiation verbs.
fn command_name(code: u8) -> Option<&'static str> {
    Some(match code {
        236 => "EOF",
        237 => "SUSP",
        238 => "ABORT",
        239 => "EOR",
        240 => "SE",
        241 => "NOP",
        242 => "DM",
        243 => "BRK",
        244 => "IP",
        245 => "AO",
        246 => "AYT",
        247 => "EC",
        248 => "EL",
        249 => "GA",
        _ => return None,
    })
}

/// Appends `bytes` to the data item at the end of `items`, or starts one.
fn push_data(items: &mut Vec<TelnetItem>, bytes: &[u8]) {
    if let Some(TelnetItem::Data(d)) = items.last_mut() {
        d.extend_from_slice(bytes);
    } else {
        items.push(TelnetItem::Data(bytes.to_vec()));
    }
}

/// Splits the start of `buf` into items. Returns every complete item and the bytes they
/// took; a partial `IAC` sequence at the end (a lone `IAC`, `IAC WILL` without its option,
/// an unfinished subnegotiation) is left for the next call with more bytes.
pub fn decode(buf: &[u8]) -> Result<(Vec<TelnetItem>, usize), TelnetError> {
    let mut items = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest[0] != IAC {
            let run = rest.iter().position(|&b| b == IAC).unwrap_or(rest.len());
            push_data(&mut items, &rest[..run]);
            at += run;
            continue;
        }
        let Some(&cmd) = rest.get(1) else {
            break;
        };
        if cmd == IAC {
            push_data(&mut items, &[IAC]);
            at += 2;
        } else if let Some(verb) = Verb::from_code(cmd) {
            let Some(&option) = rest.get(2) else {
                break;
            };
            items.push(TelnetItem::Command { verb, option });
            at += 3;
        } else if cmd == SB {
            match subnegotiation(rest)? {
                Some((item, used)) => {
                    items.push(item);
                    at += used;
                }
                None => break,
            }
        } else {
            items.push(TelnetItem::Other(cmd));
            at += 2;
        }
    }
    Ok((items, at))
}

/// `rest` starts with `IAC SB`: the subnegotiation and its length, or `None` until `IAC SE`.
fn subnegotiation(rest: &[u8]) -> Result<Option<(TelnetItem, usize)>, TelnetError> {
    let Some(&option) = rest.get(2) else {
        return Ok(None);
    };
    let mut data = Vec::new();
    let mut i = 3;
    while i < rest.len() {
        let b = rest[i];
        if b == IAC {
            match rest.get(i + 1) {
                None => return Ok(None),
                Some(&SE) => {
                    let item = TelnetItem::Subnegotiation { option, data };
                    return Ok(Some((item, i + 2)));
                }
                Some(&IAC) => i += 1,
                Some(&byte) => return Err(TelnetError::BadSubnegotiation { option, byte }),
            }
        }
        if data.len() == MAX_SUBNEGOTIATION {
            return Err(TelnetError::SubnegotiationTooLong { option });
        }
        data.push(b);
        i += 1;
    }
    Ok(None)
}

/// Writes items back as bytes: data with 0xFF doubled, commands after `IAC`, subnegotiations
/// framed by `IAC SB option` and `IAC SE`. For test servers and round trips.
pub fn encode(items: &[TelnetItem]) -> Vec<u8> {
    let mut out = Vec::new();
    let escaped = |out: &mut Vec<u8>, bytes: &[u8]| {
        for &b in bytes {
            out.push(b);
            if b == IAC {
                out.push(IAC);
            }
        }
    };
    for item in items {
        match item {
            TelnetItem::Data(bytes) => escaped(&mut out, bytes),
            TelnetItem::Command { verb, option } => {
                out.extend_from_slice(&[IAC, verb.code(), *option]);
            }
            TelnetItem::Other(code) => out.extend_from_slice(&[IAC, *code]),
            TelnetItem::Subnegotiation { option, data } => {
                out.extend_from_slice(&[IAC, SB, *option]);
                escaped(&mut out, data);
                out.extend_from_slice(&[IAC, SE]);
            }
        }
    }
    out
}

/// The answer that refuses everything asked: `DO x` gets `WONT x` and `WILL x` gets
/// `DONT x`, so the server stops waiting and goes on talking. `WONT` and `DONT` need no
/// answer (RFC 854: a refusal is acknowledged by silence, which also prevents loops).
pub fn refuse(items: &[TelnetItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        if let TelnetItem::Command { verb, option } = item {
            let answer = match verb {
                Verb::Do => Verb::Wont,
                Verb::Will => Verb::Dont,
                Verb::Wont | Verb::Dont => continue,
            };
            out.extend_from_slice(&[IAC, answer.code(), *option]);
        }
    }
    out
}

/// The data bytes of `items`, joined: what a person would see of the stream.
pub fn data_of(items: &[TelnetItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        if let TelnetItem::Data(bytes) = item {
            out.extend_from_slice(bytes);
        }
    }
    out
}
