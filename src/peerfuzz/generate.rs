//! Input generators for the peer fuzzer. Every case is a pure function of
//! (seed, case number): the same seed gives the same bytes, case by case,
//! whatever ran before, so a failure found at case 812 is reproduced by
//! generating case 812 alone.
//!
//! - random bytes (`--random N`);
//! - a template with random or mutated parts (`--template FILE`): the
//!   seed's "valid HTTP header, then random bytes";
//! - mutation of recorded valid exchanges (`--corpus DIR`): bit flips, byte
//!   insertions and deletions, splices, interesting integers;
//! - line-protocol mutations (`--lines`): very long lines, missing or
//!   doubled CR/LF, NULs, format strings, huge numbers, for
//!   SMTP/FTP/POP3/IMAP/HTTP-style targets.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// The largest input any generator makes (a bound on memory and on what a
/// single case sends).
pub const MAX_INPUT: usize = 1 << 20;

/// The RNG of one case: independent of every other case.
pub fn case_rng(seed: u64, case: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(case);
    rng
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Bytes sent as they are.
    Literal(Vec<u8>),
    /// `{{random N}}` or `{{random A-B}}`: that many random bytes.
    Random { min: usize, max: usize },
    /// `{{mutate TEXT}}`: TEXT with a few mutations.
    Mutate(Vec<u8>),
    /// `{{int}}`: an interesting integer, in decimal.
    Int,
    /// `{{long}}`: a very long run of one byte.
    Long,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Part>);

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template, byte {offset}: {message}")]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    /// Parses `{{...}}` placeholders; `{{{{` is a literal `{{`.
    pub fn parse(text: &[u8]) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < text.len() {
            if text[i..].starts_with(b"{{{{") {
                lit.extend_from_slice(b"{{");
                i += 4;
                continue;
            }
            if !text[i..].starts_with(b"{{") {
                lit.push(text[i]);
                i += 1;
                continue;
            }
            let Some(end) = find(&text[i + 2..], b"}}") else {
                return Err(TemplateError {
                    offset: i,
                    message: "`{{` without its `}}`".into(),
                });
            };
            let inner = String::from_utf8_lossy(&text[i + 2..i + 2 + end]).into_owned();
            let part = placeholder(inner.trim())
                .map_err(|message| TemplateError { offset: i, message })?;
            if !lit.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut lit)));
            }
            parts.push(part);
            i += 2 + end + 2;
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(Template(parts))
    }

    /// The bytes of one case.
    pub fn generate(&self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let mut out = Vec::new();
        for part in &self.0 {
            match part {
                Part::Literal(b) => out.extend_from_slice(b),
                Part::Random { min, max } => {
                    let n = rng.random_range(*min..=*max);
                    out.extend(random_bytes(rng, n));
                }
                Part::Mutate(b) => out.extend(mutate(b, &[], rng)),
                Part::Int => out.extend(interesting_int(rng).to_string().into_bytes()),
                Part::Long => {
                    let n = rng.random_range(1_000..=70_000);
                    let byte = *pick(rng, b"A%0\xff/");
                    out.extend(std::iter::repeat_n(byte, n));
                }
            }
            if out.len() > MAX_INPUT {
                out.truncate(MAX_INPUT);
                break;
            }
        }
        out
    }
}

fn placeholder(inner: &str) -> Result<Part, String> {
    let (word, arg) = inner.split_once(' ').unwrap_or((inner, ""));
    let arg = arg.trim();
    match word {
        "random" => {
            let (min, max) = match arg.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => {
                    let n = number(arg)?;
                    (n, n)
                }
            };
            if min > max || max > MAX_INPUT {
                return Err(format!("`random {arg}`: need MIN <= MAX <= {MAX_INPUT}"));
            }
            Ok(Part::Random { min, max })
        }
        "mutate" => Ok(Part::Mutate(unescape(arg))),
        "int" => Ok(Part::Int),
        "long" => Ok(Part::Long),
        "" => Err("empty `{{}}`".into()),
        other => Err(format!(
            "unknown placeholder `{other}` (random N, random A-B, mutate TEXT, int, long)"
        )),
    }
}

fn number(s: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))
}

/// `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH` in template arguments.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let (byte, used) = match b[i + 1] {
                b'r' => (b'\r', 2),
                b'n' => (b'\n', 2),
                b't' => (b'\t', 2),
                b'0' => (0, 2),
                b'\\' => (b'\\', 2),
                b'x' if i + 4 <= b.len() => {
                    match std::str::from_utf8(&b[i + 2..i + 4])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(v) => (v, 4),
                        None => (b'\\', 1),
                    }
                }
                _ => (b'\\', 1),
            };
            out.push(byte);
            i += used;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// `n` random bytes.
pub fn random_bytes(rng: &mut ChaCha8Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n.min(MAX_INPUT)];
    rng.fill(&mut v[..]);
    v
}

/// Integers that break parsers: boundaries of every width, signs, zero.
const INTERESTING: &[i64] = &[
    0,
    -1,
    1,
    127,
    128,
    255,
    256,
    -128,
    32_767,
    32_768,
    65_535,
    65_536,
    -32_768,
    2_147_483_647,
    2_147_483_648,
    -2_147_483_648,
    4_294_967_295,
    4_294_967_296,
    i64::MAX,
    i64::MIN,
];

fn interesting_int(rng: &mut ChaCha8Rng) -> i64 {
    *pick(rng, INTERESTING)
}

/// A few (1 to 8) havoc mutations of `input`; `others` give splice material.
pub fn mutate(input: &[u8], others: &[Vec<u8>], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    let rounds = rng.random_range(1..=8);
    for _ in 0..rounds {
        match rng.random_range(0..7u8) {
            // Flip one bit.
            0 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] ^= 1 << rng.random_range(0..8u8);
            }
            // Set a random byte.
            1 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] = rng.random();
            }
            // Insert random bytes.
            2 => {
                let at = rng.random_range(0..=v.len());
                let n = rng.random_range(1..=32);
                let bytes = random_bytes(rng, n);
                v.splice(at..at, bytes);
            }
            // Delete a run.
            3 if !v.is_empty() => {
                let at = rng.random_range(0..v.len());
                let n = rng.random_range(1..=(v.len() - at).min(32));
                v.drain(at..at + n);
            }
            // Overwrite with an interesting integer (1, 2, 4 or 8 bytes, either order).
            4 if v.len() >= 8 => {
                let x = interesting_int(rng).to_le_bytes();
                let width = *pick(rng, &[1usize, 2, 4, 8]);
                let at = rng.random_range(0..=v.len() - width);
                let mut bytes = x[..width].to_vec();
                if rng.random_bool(0.5) {
                    bytes.reverse();
                }
                v[at..at + width].copy_from_slice(&bytes);
            }
            // Splice in a piece of another input.
            5 if !others.is_empty() => {
                let other = pick(rng, others);
                if !other.is_empty() {
                    let from = rng.random_range(0..other.len());
                    let to = rng.random_range(from..=other.len());
                    let at = rng.random_range(0..=v.len());
                    v.splice(at..at, other[from..to].iter().copied());
                }
            }
            // Duplicate a run (repetition finds length bugs).
            _ if !v.is_empty() => {
                let at = rng.random_range(0..v.len());
                let n = rng.random_range(1..=(v.len() - at).min(64));
                let run = v[at..at + n].to_vec();
                let times = rng.random_range(1..=16);
                for _ in 0..times {
                    v.splice(at..at, run.iter().copied());
                }
            }
            _ => {}
        }
        if v.len() > MAX_INPUT {
            v.truncate(MAX_INPUT);
        }
    }
    v
}

/// Commands of line protocols, the material of `--lines`.
pub const LINE_COMMANDS: &[&str] = &[
    "EHLO fuzz.test",
    "HELO fuzz.test",
    "MAIL FROM:<a@fuzz.test>",
    "RCPT TO:<b@fuzz.test>",
    "USER anonymous",
    "PASS guest",
    "RETR 1",
    "LIST",
    "a1 LOGIN user pass",
    "a1 SELECT INBOX",
    "GET / HTTP/1.1",
    "Host: fuzz.test",
    "STAT",
    "NOOP",
];

/// Format strings and other classics.
const NASTY: &[&str] = &[
    "%n%n%n%n",
    "%s%s%s%s%s",
    "%x%x%x%x",
    "%99999999d",
    "99999999999999999999999999",
    "-99999999999999999999999999",
    "../../../../etc/passwd",
    "'\"`;|&$(x)",
    "\u{0}",
    "\u{ff}\u{fe}",
];

/// One line-protocol case: a few lines, each a command mutated the way
/// line parsers break: very long, CR/LF missing or doubled, NULs, format
/// strings, huge numbers.
pub fn lines_case(base: &[Vec<u8>], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let count = rng.random_range(1..=4);
    for _ in 0..count {
        let mut line: Vec<u8> = if base.is_empty() || rng.random_bool(0.3) {
            pick(rng, LINE_COMMANDS).as_bytes().to_vec()
        } else {
            pick(rng, base).clone()
        };
        match rng.random_range(0..6u8) {
            0 => {
                // A very long argument.
                let n = rng.random_range(600..=70_000);
                let fill = *pick(rng, b"A%9\x00");
                line.push(b' ');
                line.extend(std::iter::repeat_n(fill, n));
            }
            1 => {
                line.push(b' ');
                line.extend_from_slice(pick(rng, NASTY).as_bytes());
            }
            2 => {
                let at = rng.random_range(0..=line.len());
                line.insert(at, 0);
            }
            3 => {
                // A long line that is also a format string.
                let n = rng.random_range(200..=4_000);
                line.push(b' ');
                for _ in 0..n {
                    line.extend_from_slice(b"%n");
                }
            }
            4 => {
                line.push(b' ');
                line.extend(interesting_int(rng).to_string().into_bytes());
            }
            _ => line = mutate(&line, base, rng),
        }
        const ENDS: [&[u8]; 6] = [b"\r\n", b"\n", b"\r", b"", b"\r\n\r\n", b"\n\r"];
        let end = ENDS[rng.random_range(0..ENDS.len())];
        line.extend_from_slice(end);
        out.extend(line);
        if out.len() > MAX_INPUT {
            out.truncate(MAX_INPUT);
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_case_depends_on_seed_and_case_only() {
        let t = Template::parse(b"A{{random 10-20}}B{{int}}{{mutate hello\\r\\n}}").expect("ok");
        let a: Vec<Vec<u8>> = (0..50).map(|c| t.generate(&mut case_rng(9, c))).collect();
        // Case 37 alone, without the 37 before it, is the same.
        assert_eq!(t.generate(&mut case_rng(9, 37)), a[37]);
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(distinct.len() > 45, "cases should differ");
        assert_ne!(t.generate(&mut case_rng(10, 37)), a[37], "another seed");
        for case in &a {
            assert!(case.starts_with(b"A"));
        }
    }

    #[test]
    fn template_syntax() {
        assert_eq!(
            Template::parse(b"GET {{{{x}} {{random 3}}\\r")
                .expect("ok")
                .0,
            vec![
                Part::Literal(b"GET {{x}} ".to_vec()),
                Part::Random { min: 3, max: 3 },
                Part::Literal(b"\\r".to_vec()),
            ]
        );
        let errors: &[(&[u8], &str)] = &[
            (b"x{{random", "template, byte 1: `{{` without its `}}`"),
            (
                b"{{random 9-2}}",
                "template, byte 0: `random 9-2`: need MIN <= MAX <= 1048576",
            ),
            (
                b"{{nope}}",
                "template, byte 0: unknown placeholder `nope` (random N, random A-B, mutate TEXT, int, long)",
            ),
            (b"{{}}", "template, byte 0: empty `{{}}`"),
        ];
        for (text, want) in errors {
            assert_eq!(Template::parse(text).expect_err("bad").to_string(), *want);
        }
        assert_eq!(
            unescape("a\\r\\n\\x41\\0\\\\\\q"),
            b"a\r\nA\0\\\\q".to_vec()
        );
    }

    #[test]
    fn mutations_and_lines_stay_bounded() {
        let corpus = vec![b"EHLO x\r\n".to_vec(), vec![0u8; 100], Vec::new()];
        for case in 0..2_000 {
            let mut rng = case_rng(1, case);
            let m = mutate(&corpus[(case % 3) as usize], &corpus, &mut rng);
            assert!(m.len() <= MAX_INPUT);
            let l = lines_case(&corpus, &mut rng);
            assert!(l.len() <= MAX_INPUT);
        }
    }
}
