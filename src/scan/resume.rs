//! `--resume FILE`: checkpoints of a scan, so that an interrupted run
//! (Ctrl-C, SIGTERM, SIGKILL, a crash) goes on where it stopped.
//!
//! A checkpoint names the command line's scan-defining parameters (targets,
//! exclusions, ports, scan type, seed, shard, `--all-states`) and, in a part
//! per protocol, what was done: a run that scans TCP and UDP at once runs
//! two engines, each saving its own part of the one file ([`Resume::save`]
//! writes the whole file with the latest of both).
//!
//! The TCP part ([`TcpPart`]): the seeded permutation makes "what was done"
//! small: hosts come in groups that finish in order, so it holds the first
//! group not finished, and for each group in flight a bitmap of its decided
//! pairs (indexed as the permutation indexes them) and the state of its
//! hosts. The UDP part ([`UdpPart`]): hosts start in target order, so it
//! holds the first host not started and, for each host started and not
//! finished, a bitmap over its ports (indexed as the port list is).
//!
//! The results found so far are the events sent to the printers, kept in
//! order in each part, so that a resumed run prints them again before it
//! goes on: its output is that of a run that was never stopped.
//!
//! Files are replaced atomically (a temporary file in the same directory,
//! fsync, rename, fsync of the directory): a kill at any moment leaves the
//! previous checkpoint or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::engine::ScanStats;
use super::timing::RttEstimator;
use crate::report::{Event, HostDone, PortCount, PortResult, TargetError};

/// What a checkpoint's `format` field says: the version of its shape.
const FORMAT: &str = "sockeye scan checkpoint 2";

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

/// What `--resume` gives the engines: where to write, what the command
/// line was, what an earlier run left (None: start afresh), and the file
/// as last saved, so that one engine's save keeps the other's part.
#[derive(Debug)]
pub struct Resume {
    pub path: PathBuf,
    pub params: Vec<Param>,
    pub restored: Option<Checkpoint>,
    /// The file as written last (or as read), under the lock every save
    /// holds while it writes: two engines never write at once.
    latest: Mutex<Option<Checkpoint>>,
}

/// One protocol's part of a checkpoint, as an engine saves it.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Tcp(TcpPart),
    Udp(UdpPart),
}

impl Part {
    fn complete(&self) -> bool {
        match self {
            Part::Tcp(p) => p.complete,
            Part::Udp(p) => p.complete,
        }
    }
}

impl Resume {
    /// The resume of a run with `params`, at `path`, from `restored`.
    pub fn new(path: PathBuf, params: Vec<Param>, restored: Option<Checkpoint>) -> Resume {
        Resume {
            path,
            params,
            latest: Mutex::new(restored.clone()),
            restored,
        }
    }

    /// The TCP part an earlier run left, if any.
    pub fn tcp(&self) -> Option<&TcpPart> {
        self.restored.as_ref()?.tcp.as_ref()
    }

    /// The UDP part an earlier run left, if any.
    pub fn udp(&self) -> Option<&UdpPart> {
        self.restored.as_ref()?.udp.as_ref()
    }

    /// Replaces this engine's part and writes the whole file atomically,
    /// the other part as it was last saved (or read). A part saved
    /// complete stays complete: a later incomplete one is not written.
    /// Blocking (fsync): call it off the runtime's threads.
    pub fn save(&self, seed: u64, n_hosts: u64, part: Part) -> io::Result<()> {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let cp = latest.get_or_insert_with(|| Checkpoint::new(self.params.clone(), seed, n_hosts));
        let slot_complete = match &part {
            Part::Tcp(_) => cp.tcp.as_ref().is_some_and(|p| p.complete),
            Part::Udp(_) => cp.udp.as_ref().is_some_and(|p| p.complete),
        };
        if slot_complete && !part.complete() {
            return Ok(());
        }
        cp.params = self.params.clone();
        cp.seed = seed;
        cp.n_hosts = n_hosts;
        match part {
            Part::Tcp(p) => cp.tcp = Some(p),
            Part::Udp(p) => cp.udp = Some(p),
        }
        write_atomic(&self.path, cp)
    }
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
    /// UDP ports that never answered (none in a TCP part).
    #[serde(default)]
    pub open_filtered: u64,
}

impl CountsSnap {
    /// The counts of `s` a checkpoint keeps.
    pub(super) fn of(s: &ScanStats) -> CountsSnap {
        CountsSnap {
            hosts: s.hosts,
            ports: s.ports,
            open: s.open,
            closed: s.closed,
            filtered: s.filtered,
            unprobed: s.unprobed,
            answers_all: s.answers_all,
            open_filtered: s.open_filtered,
        }
    }

    /// Puts these counts back into `s`; `s.resumed` becomes the pairs they
    /// decided (not probed again).
    pub(super) fn restore_into(&self, s: &mut ScanStats) {
        s.hosts = self.hosts;
        s.ports = self.ports;
        s.open = self.open;
        s.closed = self.closed;
        s.filtered = self.filtered;
        s.unprobed = self.unprobed;
        s.answers_all = self.answers_all;
        s.open_filtered = self.open_filtered;
        s.resumed = self.ports + self.unprobed;
    }
}

/// Everything a checkpoint file holds: the command line it is of, and a
/// part per protocol scanned (None: that engine saved nothing yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: String,
    pub params: Vec<Param>,
    pub seed: u64,
    /// Hosts the targets stood for when it was written.
    pub n_hosts: u64,
    pub tcp: Option<TcpPart>,
    pub udp: Option<UdpPart>,
}

impl Checkpoint {
    pub(super) fn new(params: Vec<Param>, seed: u64, n_hosts: u64) -> Checkpoint {
        Checkpoint {
            format: FORMAT.to_owned(),
            params,
            seed,
            n_hosts,
            tcp: None,
            udp: None,
        }
    }
}

/// What the TCP engine (connect or SYN) did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpPart {
    /// Every pair was decided: resuming prints the results and sends nothing.
    pub complete: bool,
    pub counts: CountsSnap,
    /// Groups before this one are finished; their results are in `events`.
    pub next_group: u64,
    pub groups: Vec<GroupSnap>,
    pub hosts: Vec<HostSnap>,
    pub events: Vec<Logged>,
}

/// What the UDP engine did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UdpPart {
    /// Every port was decided: resuming prints the results and sends nothing.
    pub complete: bool,
    pub counts: CountsSnap,
    /// Hosts before this index were started; those not in `hosts` are
    /// finished (or excluded), their results in `events`.
    pub next_host: u64,
    /// Hosts started and not finished, by index.
    pub hosts: Vec<UdpHostSnap>,
    /// Hosts whose ICMP errors proved rate limited, over finished hosts.
    pub limited_hosts: u64,
    /// Closed ports of those hosts that answered only when sent again.
    pub recovered: u64,
    /// The longest pace a finished limited host was probed at, in
    /// milliseconds.
    pub slowest_period_ms: Option<u64>,
    pub events: Vec<Logged>,
}

/// A UDP host in flight, as a checkpoint keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UdpHostSnap {
    /// Its index among the targets.
    pub index: u64,
    pub started: SystemTime,
    /// One bit per port (in the order of the scan's port list) decided,
    /// as [`GroupSnap::done`] spells it.
    pub done: String,
    pub counts: Vec<PortCount>,
    pub answered: bool,
    pub rtt: RttEstimator,
    /// ICMP errors heard from it.
    pub icmp: u64,
    pub recovered: u64,
    /// The pace its ICMP errors to one source address were found to need,
    /// in milliseconds (None: probed freely); a run with N `--source`
    /// addresses probes the host N times as often.
    pub period_ms: Option<u64>,
    /// A pace was measured for it (it limits its errors).
    pub paced: bool,
    /// Measured once and found no limit.
    pub cleared: bool,
    /// A local error made it unprobeable (its ports counted unprobed).
    pub failed: bool,
}

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot read the checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a sockeye scan checkpoint ({why})")]
    NotOurs { path: PathBuf, why: String },
    /// A checkpoint of another version of sockeye.
    #[error(
        "{path} is a checkpoint of another sockeye version ({format:?}, this one reads {FORMAT:?}): \
         remove it or name another file to start afresh"
    )]
    Format { path: PathBuf, format: String },
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
    let mut text = Vec::new();
    io::Read::read_to_end(&mut &file, &mut text).map_err(read_err)?;
    let not_ours = |why: String| ResumeError::NotOurs {
        path: path.to_owned(),
        why,
    };
    /// Only the format, read first: an older shape gets a clear word.
    #[derive(Deserialize)]
    struct Head {
        format: Option<String>,
    }
    let head: Head = serde_json::from_slice(&text).map_err(|e| not_ours(e.to_string()))?;
    match head.format.as_deref() {
        Some(FORMAT) => {}
        Some(old) if old.starts_with("sockeye scan checkpoint ") => {
            return Err(ResumeError::Format {
                path: path.to_owned(),
                format: old.to_owned(),
            });
        }
        Some(other) => return Err(not_ours(format!("its format is {other:?}"))),
        None => return Err(not_ours("it names no format".to_owned())),
    }
    let cp: Checkpoint = serde_json::from_slice(&text).map_err(|e| not_ours(e.to_string()))?;
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

    /// How many pairs are decided.
    pub(super) fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
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
        let mut words = (0..want)
            .map(|i| u64::from_str_radix(&hex[i * 16..i * 16 + 16], 16).ok())
            .collect::<Option<Vec<u64>>>()?;
        // Bits past the end name no pair: a damaged file may set them.
        if !bits.is_multiple_of(64)
            && let Some(last) = words.last_mut()
        {
            *last &= (1u64 << (bits % 64)) - 1;
        }
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
        assert_eq!(back.count(), 4);
        assert!(DoneBits::from_hex(&b.to_hex(), 200).is_none());
        assert!(DoneBits::from_hex("zz", 1).is_none());
        // A damaged file's bits past the end count for nothing.
        let all = DoneBits::from_hex(&"f".repeat(48), 130).expect("fits");
        assert_eq!(all.count(), 130);
    }

    #[test]
    fn checkpoints_are_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scan.resume");
        assert!(load(&path).expect("no file is fine").is_none());
        let mut cp = Checkpoint::new(params("1-10"), 7, 1);
        write_atomic(&path, &cp).expect("write");
        cp.tcp = Some(TcpPart {
            complete: true,
            ..TcpPart::default()
        });
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

    fn udp_part(next_host: u64) -> UdpPart {
        UdpPart {
            next_host,
            hosts: vec![UdpHostSnap {
                index: next_host - 1,
                started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                done: DoneBits::with_len(10).to_hex(),
                counts: vec![PortCount {
                    proto: crate::report::Proto::Udp,
                    state: crate::report::PortState::Closed,
                    reason: crate::report::Reason::PortUnreach,
                    count: 3,
                }],
                answered: true,
                rtt: RttEstimator::default(),
                icmp: 3,
                recovered: 1,
                period_ms: Some(1002),
                paced: true,
                cleared: false,
                failed: false,
            }],
            ..UdpPart::default()
        }
    }

    /// Each engine saves its own part; the other's stays as it was saved,
    /// and both read back as written.
    #[test]
    fn one_part_saved_keeps_the_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scan.resume");
        let resume = Resume::new(path.clone(), params("T:22,U:53"), None);
        let tcp = TcpPart {
            next_group: 3,
            ..TcpPart::default()
        };
        resume.save(7, 4, Part::Tcp(tcp.clone())).expect("tcp");
        resume.save(7, 4, Part::Udp(udp_part(2))).expect("udp");
        let tcp2 = TcpPart {
            next_group: 4,
            ..TcpPart::default()
        };
        resume
            .save(7, 4, Part::Tcp(tcp2.clone()))
            .expect("tcp again");
        let cp = load(&path).expect("read").expect("a file");
        assert_eq!((cp.seed, cp.n_hosts), (7, 4));
        assert_eq!(cp.params, params("T:22,U:53"));
        assert_eq!(cp.tcp, Some(tcp2));
        assert_eq!(cp.udp, Some(udp_part(2)));

        // A resumed run keeps the part it has not saved yet.
        let again = Resume::new(path.clone(), params("T:22,U:53"), Some(cp.clone()));
        assert_eq!(again.udp(), Some(&udp_part(2)));
        again.save(7, 4, Part::Tcp(tcp)).expect("tcp");
        let read = load(&path).expect("read").expect("a file");
        assert_eq!(read.udp, Some(udp_part(2)));
        assert_eq!(read.tcp.map(|t| t.next_group), Some(3));
    }

    /// A part saved complete is not replaced by an incomplete one.
    #[test]
    fn a_complete_part_stays_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scan.resume");
        let resume = Resume::new(path.clone(), params("U:53"), None);
        let done = UdpPart {
            complete: true,
            next_host: 1,
            ..UdpPart::default()
        };
        resume
            .save(1, 1, Part::Udp(done.clone()))
            .expect("complete");
        resume.save(1, 1, Part::Udp(udp_part(1))).expect("ignored");
        let cp = load(&path).expect("read").expect("a file");
        assert_eq!(cp.udp, Some(done));
        assert_eq!(cp.tcp, None);
    }

    /// A checkpoint of the first shape (one TCP scan, no parts) is refused
    /// with the format named and what to do.
    #[test]
    fn an_older_format_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scan.resume");
        fs::write(
            &path,
            r#"{"format":"sockeye scan checkpoint 1","params":[],"seed":1,"n_hosts":1,"complete":false}"#,
        )
        .expect("write");
        let err = load(&path).expect_err("refused");
        assert!(matches!(err, ResumeError::Format { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("\"sockeye scan checkpoint 1\"") && text.contains("start afresh"),
            "{text}"
        );
        fs::write(&path, r#"{"format":"something else"}"#).expect("write");
        assert!(matches!(load(&path), Err(ResumeError::NotOurs { .. })));
    }
}
