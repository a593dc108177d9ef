//! `tern backup create|verify|restore`.
//!
//! A backup is a directory: one image file per Raft group (`g<N>.img`, the format of
//! `tern_store::image`: records, counts and a BLAKE3 checksum) and `manifest.json`, written
//! last, with each file's size, BLAKE3 digest and the applied index it stands for. A directory
//! without a manifest is a backup that did not finish. `create` downloads the images from a
//! running node through its admin API; `verify` and `restore` work offline.

use crate::admin::backup::{APPLIED_HEADER, BackupInfo};
use crate::admin::client::AdminClient;
use crate::progress::{Progress, size};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use hyper::Method;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use tern_core::GroupId;
use tern_raft::backup::Restore;

const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "tern-backup-1";

/// `tern backup ...`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up every group of the node at --admin into DIR (new or empty), while it serves.
    Create {
        /// Where the backup goes.
        dir: PathBuf,
    },
    /// Check every file of the backup in DIR against its size and checksum.
    Verify {
        /// The backup.
        dir: PathBuf,
    },
    /// Build a new data dir (the global --data NEWDIR) from the backup in DIR; `tern serve`
    /// then starts a single node from it.
    Restore {
        /// The backup.
        dir: PathBuf,
    },
}

/// What `manifest.json` says.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    /// Unix seconds when the backup finished.
    created: i64,
    /// The node the images came from.
    node: u64,
    partitions: u32,
    groups: Vec<GroupEntry>,
}

/// One group's file.
#[derive(Debug, Serialize, Deserialize)]
struct GroupEntry {
    group: u32,
    file: String,
    bytes: u64,
    blake3: String,
    /// The group's applied log index the image stands for, on the node it came from.
    applied_index: u64,
}

fn file_name(group: u32) -> String {
    format!("g{group}.img")
}

/// `tern backup create DIR`.
pub async fn create(api: &AdminClient, dir: &Path) -> Result<()> {
    let info: BackupInfo = api.call(Method::GET, "/v1/backup", None).await?;
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: a backup goes into a new or empty directory",
            dir.display()
        );
    }
    // A backup holds every message and password hash: as private as the data dir.
    crate::files::private_dir(dir)?;
    let groups = info.partitions + 1;
    let mut progress = Progress::new("backup", u64::from(groups));
    let mut entries = Vec::new();
    for group in 0..groups {
        let name = file_name(group);
        let part = dir.join(format!("{name}.part"));
        let mut out = BufWriter::new(File::create(&part)?);
        let mut hasher = blake3::Hasher::new();
        let mut bytes = 0u64;
        let headers = api
            .download(&format!("/v1/backup/groups/{group}"), |chunk| {
                out.write_all(chunk)?;
                hasher.update(chunk);
                bytes += chunk.len() as u64;
                progress.bytes(chunk.len() as u64);
                Ok(())
            })
            .await
            .with_context(|| format!("group {group}"))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        // The transfer ended: the image must be whole (its own trailer says so).
        tern_store::image::verify(GroupId(group), &mut BufReader::new(File::open(&part)?))
            .with_context(|| format!("group {group}: the image received is not whole"))?;
        fs::rename(&part, dir.join(&name))?;
        let applied_index = headers
            .get(APPLIED_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        entries.push(GroupEntry {
            group,
            file: name,
            bytes,
            blake3: hasher.finalize().to_hex().to_string(),
            applied_index,
        });
        progress.step(&format!("group {group}, {}", size(bytes)));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        created: chrono_now(),
        node: info.node,
        partitions: info.partitions,
        groups: entries,
    };
    write_manifest(dir, &manifest)?;
    progress.finish();
    println!(
        "backup of node {} ({} groups) in {}",
        manifest.node,
        groups,
        dir.display()
    );
    Ok(())
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let part = dir.join(format!("{MANIFEST}.part"));
    let mut file = File::create(&part)?;
    file.write_all(&serde_json::to_vec_pretty(manifest)?)?;
    file.sync_all()?;
    fs::rename(&part, dir.join(MANIFEST))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{}: incomplete backup: no {MANIFEST} (the backup did not finish)",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{}: corrupt manifest", path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{}: unknown backup format {:?}",
            path.display(),
            manifest.format
        );
    }
    let want: Vec<u32> = (0..=manifest.partitions).collect();
    let have: Vec<u32> = manifest.groups.iter().map(|g| g.group).collect();
    if want != have {
        bail!(
            "{}: the manifest lists groups {have:?}, a backup of {} partitions needs 0..={}",
            path.display(),
            manifest.partitions,
            manifest.partitions
        );
    }
    Ok(manifest)
}

/// Reads through `inner`, hashing and counting.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Checks one group's file: size, checksum and the image inside.
fn check_group(dir: &Path, entry: &GroupEntry) -> Result<()> {
    let path = dir.join(&entry.file);
    let file = File::open(&path).with_context(|| format!("{}: missing", entry.file))?;
    let mut input = Hashing {
        inner: BufReader::with_capacity(1 << 20, file),
        hasher: blake3::Hasher::new(),
        bytes: 0,
    };
    let image = tern_store::image::verify(GroupId(entry.group), &mut input);
    if input.bytes != entry.bytes {
        bail!(
            "{}: {} bytes, the manifest says {}",
            entry.file,
            input.bytes,
            entry.bytes
        );
    }
    if input.hasher.finalize().to_hex().as_str() != entry.blake3 {
        bail!(
            "{}: checksum mismatch (the file changed or is corrupt)",
            entry.file
        );
    }
    image.with_context(|| entry.file.clone())?;
    Ok(())
}

/// `tern backup verify DIR`: every problem is listed; any makes the command fail.
pub fn verify(dir: &Path) -> Result<()> {
    let manifest = verified(dir)?;
    let bytes: u64 = manifest.groups.iter().map(|g| g.bytes).sum();
    println!(
        "backup OK: {} groups of node {}, {}",
        manifest.groups.len(),
        manifest.node,
        size(bytes)
    );
    Ok(())
}

fn verified(dir: &Path) -> Result<Manifest> {
    let manifest = read_manifest(dir)?;
    let mut progress = Progress::new("verify", manifest.groups.len() as u64);
    let mut problems = Vec::new();
    for entry in &manifest.groups {
        match check_group(dir, entry) {
            Ok(()) => {
                progress.bytes(entry.bytes);
                progress.step(&format!("{} OK", entry.file));
            }
            Err(e) => {
                progress.step(&format!("{} FAILED", entry.file));
                problems.push(format!("{e:#}"));
            }
        }
    }
    progress.finish();
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("corrupt: {p}");
        }
        bail!(
            "{}: {} of {} files failed verification; nothing restored",
            dir.display(),
            problems.len(),
            manifest.groups.len()
        );
    }
    Ok(manifest)
}

/// `tern backup restore DIR --data NEWDIR`: verifies everything first, then writes.
pub fn restore(dir: &Path, data: &Path) -> Result<()> {
    if data.exists() && fs::read_dir(data)?.next().is_some() {
        bail!(
            "{} is not empty: restore builds a new data dir",
            data.display()
        );
    }
    let manifest = verified(dir)?;
    let restore = Restore::create(data, manifest.partitions)?;
    let mut progress = Progress::new("restore", manifest.groups.len() as u64);
    for entry in &manifest.groups {
        let file = File::open(dir.join(&entry.file))?;
        let mut input = BufReader::with_capacity(1 << 20, file);
        let stats = restore
            .group(GroupId(entry.group), &mut input)
            .with_context(|| format!("restoring {}", entry.file))?;
        progress.bytes(entry.bytes);
        progress.step(&format!("group {}, {} records", entry.group, stats.records));
    }
    drop(restore);
    progress.finish();
    println!(
        "restored {} groups into {}; start it with: tern serve --data {} ...",
        manifest.groups.len(),
        data.display(),
        data.display()
    );
    Ok(())
}
