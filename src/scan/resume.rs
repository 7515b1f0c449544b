//! `--resume FILE`: checkpoints of a TCP scan, so that an interrupted run
//! (Ctrl-C, SIGTERM, SIGKILL, a crash) goes on where it stopped.
//!
//! A checkpoint names the command line's scan-defining parameters (targets,
//! exclusions, ports, scan type, seed, shard, `--all-states`) and what was
//! done. The seeded permutation makes "what was done" small: hosts come in
//! groups that finish in order, so a checkpoint holds the first group not
//! finished, and for each group in flight a bitmap of its decided pairs
//! (indexed as the permutation indexes them) and the state of its hosts.
//! The results found so far are the events sent to the printers, kept in
//! order, so that a resumed run prints them again before it goes on: its
//! output is that of a run that was never stopped.
//!
//! Files are replaced atomically (a temporary file in the same directory,
//! fsync, rename, fsync of the directory): a kill at any moment leaves the
//! previous checkpoint or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::timing::RttEstimator;
use crate::report::{Event, HostDone, PortCount, PortResult, TargetError};

/// What the first line of a checkpoint says, and the version of its shape.
const FORMAT: &str = "sockeye scan checkpoint 1";

/// How often a running scan writes its checkpoint.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// The largest checkpoint file read back (a file that large is not ours).
const MAX_FILE: u64 = 1 << 30;

/// One scan-defining parameter: its flag (or name) and its value as typed,
/// normalised where two spellings mean the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub value: String,
}

impl Param {
    pub fn new(name: &str, value: impl Into<String>) -> Param {
        Param {
            name: name.to_owned(),
            value: value.into(),
        }
    }
}

/// What `--resume` gives the engine: where to write, what the command line
/// was, and what an earlier run left (None: start afresh).
#[derive(Debug)]
pub struct Resume {
    pub path: PathBuf,
    pub params: Vec<Param>,
    pub restored: Option<Checkpoint>,
}

/// A result the printers were sent, kept to be sent again on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Logged {
    Port(PortResult),
    Host(HostDone),
    Error(TargetError),
}

impl Logged {
    /// The journal's copy of an engine event (service results are never
    /// the engine's).
    pub(super) fn of(event: &Event) -> Option<Logged> {
        match event {
            Event::Port(p) => Some(Logged::Port(p.clone())),
            Event::HostDone(h) => Some(Logged::Host(h.clone())),
            Event::TargetError(e) => Some(Logged::Error(e.clone())),
            Event::Service(_) => None,
        }
    }

    pub(super) fn into_event(self) -> Event {
        match self {
            Logged::Port(p) => Event::Port(p),
            Logged::Host(h) => Event::HostDone(h),
            Logged::Error(e) => Event::TargetError(e),
        }
    }
}

/// A host of a group in flight, as the engine keeps it; `T` names the
/// host: its target in a running scan, its index among the targets in a
/// checkpoint ([`HostSnap`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostBook<T> {
    pub target: T,
    pub group: u64,
    pub rtt: RttEstimator,
    pub counts: Vec<PortCount>,
    pub started: SystemTime,
    /// A probe of this host failed locally for good (reported once).
    pub failed: bool,
    /// Something sent by the host itself came back (see [`HostDone::up`]).
    pub answered: bool,
    /// Open ports held back while every port decided so far is open: sent
    /// when another state shows up or the host ends with too few ports to
    /// be flagged, dropped when it ends with every port open.
    pub held: Vec<PortResult>,
    /// A port of this host was decided other than open.
    pub mixed: bool,
}

/// A host in flight as a checkpoint keeps it: by its index.
pub type HostSnap = HostBook<u64>;

impl<T> HostBook<T> {
    /// The same books, the host named by `target`.
    pub fn with_target<U>(&self, target: U) -> HostBook<U> {
        HostBook {
            target,
            group: self.group,
            rtt: self.rtt,
            counts: self.counts.clone(),
            started: self.started,
            failed: self.failed,
            answered: self.answered,
            held: self.held.clone(),
            mixed: self.mixed,
        }
    }
}

/// A group in flight: its hosts and which of its pairs are decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSnap {
    pub id: u64,
    pub hosts: Vec<u64>,
    /// One bit per pair, in the permutation's indexing, as hex (least
    /// significant bit of each 64-bit word first).
    pub done: String,
}

/// The counts of the run so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountsSnap {
    pub hosts: u64,
    pub ports: u64,
    pub open: u64,
    pub closed: u64,
    pub filtered: u64,
    pub unprobed: u64,
    pub answers_all: u64,
}

/// Everything a checkpoint file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: String,
    pub params: Vec<Param>,
    pub seed: u64,
    /// Hosts the targets stood for when it was written.
    pub n_hosts: u64,
    /// Every pair was decided: resuming prints the results and sends nothing.
    pub complete: bool,
    pub counts: CountsSnap,
    /// Groups before this one are finished; their results are in `events`.
    pub next_group: u64,
    pub groups: Vec<GroupSnap>,
    pub hosts: Vec<HostSnap>,
    pub events: Vec<Logged>,
}

impl Checkpoint {
    pub(super) fn new(params: Vec<Param>, seed: u64, n_hosts: u64) -> Checkpoint {
        Checkpoint {
            format: FORMAT.to_owned(),
            params,
            seed,
            n_hosts,
            complete: false,
            counts: CountsSnap::default(),
            next_group: 0,
            groups: Vec::new(),
            hosts: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot read the checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a sockeye scan checkpoint ({why})")]
    NotOurs { path: PathBuf, why: String },
    /// The checkpoint is of another command line: the first difference.
    #[error("{path} is the checkpoint of another scan: {difference}")]
    Differs { path: PathBuf, difference: String },
}

/// Reads the checkpoint at `path`; None when there is no file yet.
pub fn load(path: &Path) -> Result<Option<Checkpoint>, ResumeError> {
    let read_err = |source| ResumeError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let len = file.metadata().map_err(read_err)?.len();
    if len > MAX_FILE {
        return Err(ResumeError::NotOurs {
            path: path.to_owned(),
            why: format!("{len} bytes"),
        });
    }
    let cp: Checkpoint =
        serde_json::from_reader(io::BufReader::new(file)).map_err(|e| ResumeError::NotOurs {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
    if cp.format != FORMAT {
        return Err(ResumeError::NotOurs {
            path: path.to_owned(),
            why: format!("its format is {:?}", cp.format),
        });
    }
    Ok(Some(cp))
}

/// Compares the parameters of a checkpoint with the command line's; the
/// first difference is named, e.g. `--ports differs: 1-1000 in the
/// checkpoint, 22 now`.
pub fn compare(saved: &[Param], now: &[Param]) -> Result<(), String> {
    for p in now {
        match saved.iter().find(|s| s.name == p.name) {
            Some(s) if s.value == p.value => {}
            Some(s) => {
                return Err(format!(
                    "{} differs: {} in the checkpoint, {} now",
                    p.name,
                    shown(&s.value),
                    shown(&p.value)
                ));
            }
            None => {
                return Err(format!(
                    "{} differs: not in the checkpoint, {} now",
                    p.name,
                    shown(&p.value)
                ));
            }
        }
    }
    if let Some(s) = saved.iter().find(|s| !now.iter().any(|p| p.name == s.name)) {
        return Err(format!(
            "{} differs: {} in the checkpoint, not given now",
            s.name,
            shown(&s.value)
        ));
    }
    Ok(())
}

fn shown(value: &str) -> String {
    if value.is_empty() {
        "(none)".to_owned()
    } else {
        value.to_owned()
    }
}

/// Replaces `path` with `cp` atomically.
pub fn write_atomic(path: &Path, cp: &Checkpoint) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the checkpoint path names no file"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        serde_json::to_writer(&mut out, cp).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is durable once the directory is.
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The decided pairs of one group: a bitmap over its permutation indices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct DoneBits {
    words: Vec<u64>,
}

impl DoneBits {
    pub(super) fn with_len(bits: u64) -> DoneBits {
        DoneBits {
            words: vec![0; bits.div_ceil(64) as usize],
        }
    }

    pub(super) fn set(&mut self, k: u64) {
        if let Some(w) = self.words.get_mut((k / 64) as usize) {
            *w |= 1 << (k % 64);
        }
    }

    pub(super) fn get(&self, k: u64) -> bool {
        self.words
            .get((k / 64) as usize)
            .is_some_and(|w| w & (1 << (k % 64)) != 0)
    }

    pub(super) fn to_hex(&self) -> String {
        let mut s = String::with_capacity(self.words.len() * 16);
        for w in &self.words {
            s.push_str(&format!("{w:016x}"));
        }
        s
    }

    /// The bitmap of `bits` pairs from its hex; None when it does not fit.
    pub(super) fn from_hex(hex: &str, bits: u64) -> Option<DoneBits> {
        let want = bits.div_ceil(64) as usize;
        if hex.len() != want * 16 || !hex.is_ascii() {
            return None;
        }
        let words = (0..want)
            .map(|i| u64::from_str_radix(&hex[i * 16..i * 16 + 16], 16).ok())
            .collect::<Option<Vec<u64>>>()?;
        Some(DoneBits { words })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(ports: &str) -> Vec<Param> {
        vec![
            Param::new("targets", "198.18.0.2"),
            Param::new("--ports", ports),
        ]
    }

    #[test]
    fn the_first_difference_is_named() {
        assert_eq!(compare(&params("1-1000"), &params("1-1000")), Ok(()));
        assert_eq!(
            compare(&params("1-1000"), &params("22")),
            Err("--ports differs: 1-1000 in the checkpoint, 22 now".to_owned())
        );
        let mut more = params("22");
        more.push(Param::new("--shard", "0/2"));
        assert_eq!(
            compare(&params("22"), &more),
            Err("--shard differs: not in the checkpoint, 0/2 now".to_owned())
        );
        assert_eq!(
            compare(&more, &params("22")),
            Err("--shard differs: 0/2 in the checkpoint, not given now".to_owned())
        );
    }

    #[test]
    fn bitmaps_round_trip_through_hex() {
        let mut b = DoneBits::with_len(130);
        for k in [0, 63, 64, 129] {
            b.set(k);
        }
        let back = DoneBits::from_hex(&b.to_hex(), 130).expect("fits");
        assert_eq!(back, b);
        assert!(back.get(129) && !back.get(128));
        assert!(DoneBits::from_hex(&b.to_hex(), 200).is_none());
        assert!(DoneBits::from_hex("zz", 1).is_none());
    }

    #[test]
    fn checkpoints_are_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scan.resume");
        assert!(load(&path).expect("no file is fine").is_none());
        let mut cp = Checkpoint::new(params("1-10"), 7, 1);
        write_atomic(&path, &cp).expect("write");
        cp.complete = true;
        write_atomic(&path, &cp).expect("rewrite");
        assert_eq!(load(&path).expect("read"), Some(cp));
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("scan.resume")]);
        fs::write(&path, "{}").expect("write junk");
        assert!(matches!(load(&path), Err(ResumeError::NotOurs { .. })));
    }
}
