//! The snapshot files of this node, under `data_dir/snapshots/g<group>/`.
//!
//! A group's snapshot is its state in RocksDB: nothing is written when openraft asks for one.
//! Files exist only while a snapshot moves:
//! - an export being sent to a follower: an unlinked file (see [`SnapshotDir::new_export`]),
//!   gone when the transfer ends, whatever way it ends;
//! - `*.part`: a snapshot being received (removed at start: an unfinished one is worth
//!   nothing);
//! - `installing.snap`: a received snapshot, checked whole, that is being installed. It stays
//!   until the install is complete, so a node that dies in the middle installs it again.
//!
//! A snapshot file is a header — magic `TERNSNAP`, the length of the encoded openraft
//! `SnapshotMeta` (u32, big-endian), the meta — followed by the group image
//! (`tern_store::image`). The whole file is what a leader streams to a follower, so a received
//! snapshot is a valid snapshot file as soon as it is complete.

use crate::codec;
use openraft::BasicNode;
use openraft::storage::SnapshotMeta;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tern_core::GroupId;

const MAGIC: &[u8; 8] = b"TERNSNAP";
/// The `raft_meta` item of a group that is present while a received snapshot is being
/// installed: a node that finds it at start installs `installing.snap` again.
pub const INSTALLING_MARKER: u8 = 4;
const INSTALLING: &str = "installing.snap";
/// Where versions before on-demand exports kept a built snapshot (removed when found).
const LEGACY_CURRENT: &str = "current.snap";
/// Longest encoded meta accepted (a membership of a few dozen nodes takes a few KiB).
const MAX_META: u32 = 1024 * 1024;

/// The meta of a snapshot, as openraft describes it.
pub type Meta = SnapshotMeta<u64, BasicNode>;

/// The snapshot directory of a node.
#[derive(Debug)]
pub struct SnapshotDir {
    root: PathBuf,
    /// Makes the names of part files unique within this process.
    seq: AtomicU64,
}

impl SnapshotDir {
    /// Opens (creating if needed) `data_dir/snapshots`, removing part files left by a crash.
    pub fn open(data_dir: &Path) -> io::Result<SnapshotDir> {
        let root = data_dir.join("snapshots");
        fs::create_dir_all(&root)?;
        for group in fs::read_dir(&root)? {
            let group = group?.path();
            if !group.is_dir() {
                continue;
            }
            for file in fs::read_dir(&group)? {
                let file = file?.path();
                if file.extension().is_some_and(|e| e == "part") {
                    fs::remove_file(&file)?;
                }
            }
        }
        Ok(SnapshotDir {
            root,
            seq: AtomicU64::new(0),
        })
    }

    fn group_dir(&self, group: GroupId) -> PathBuf {
        self.root.join(format!("g{}", group.0))
    }

    /// The path of `group`'s snapshot being installed, whether or not it exists.
    pub fn installing_path(&self, group: GroupId) -> PathBuf {
        self.group_dir(group).join(INSTALLING)
    }

    /// The snapshot file an interrupted install left for `group`: `installing.snap`, or the
    /// `current.snap` of an older version.
    pub fn interrupted_install(&self, group: GroupId) -> PathBuf {
        let installing = self.installing_path(group);
        let legacy = self.group_dir(group).join(LEGACY_CURRENT);
        if !installing.exists() && legacy.exists() {
            return legacy;
        }
        installing
    }

    /// Removes what no install needs any more: `installing.snap` (a crash before its marker
    /// was set) and an older version's `current.snap`.
    pub fn remove_stale(&self, group: GroupId) -> io::Result<()> {
        for name in [INSTALLING, LEGACY_CURRENT] {
            match fs::remove_file(self.group_dir(group).join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes every file of `group` (its replica left this node).
    pub fn remove_group(&self, group: GroupId) -> io::Result<()> {
        match fs::remove_dir_all(self.group_dir(group)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// A new, empty part file for a snapshot of `group` being received.
    pub fn new_part(&self, group: GroupId, what: &str) -> io::Result<(File, PathBuf)> {
        let dir = self.group_dir(group);
        fs::create_dir_all(&dir)?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{what}-{}-{seq}.part", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((file, path))
    }

    /// A new file for an export of `group`, already unlinked: two handles on it with their own
    /// positions, one to write and one to read. Its space is freed when both are closed.
    pub fn new_export(&self, group: GroupId) -> io::Result<(File, File)> {
        let (file, path) = self.new_part(group, "export")?;
        let reader = File::open(&path);
        fs::remove_file(&path)?;
        Ok((file, reader?))
    }

    /// Makes a complete received part file `group`'s `installing.snap`: synced, renamed, the
    /// rename synced.
    pub fn commit(&self, group: GroupId, part: &Path) -> io::Result<PathBuf> {
        File::open(part)?.sync_all()?;
        let installing = self.installing_path(group);
        fs::rename(part, &installing)?;
        File::open(self.group_dir(group))?.sync_all()?;
        Ok(installing)
    }
}

/// Writes the header of a snapshot file.
pub fn write_header(out: &mut impl Write, meta: &Meta) -> io::Result<()> {
    let encoded = codec::encode(meta);
    let len = u32::try_from(encoded.len())
        .ok()
        .filter(|l| *l <= MAX_META)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "snapshot meta too large"))?;
    out.write_all(MAGIC)?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(&encoded)
}

/// Reads the header of a snapshot file, leaving `input` at the start of the group image.
pub fn read_header(input: &mut impl Read) -> io::Result<Meta> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(invalid("not a Tern snapshot file"));
    }
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_META {
        return Err(invalid("snapshot meta too large"));
    }
    let mut encoded = vec![0u8; len as usize];
    input.read_exact(&mut encoded)?;
    codec::decode(&encoded).map_err(|e| invalid(&format!("snapshot meta: {e}")))
}
