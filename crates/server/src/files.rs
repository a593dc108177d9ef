//! File modes of what a node keeps on disk. The data dir holds mail, password hashes, DKIM
//! keys and the admin token, so only the user running Tern may enter it (0700), and secret
//! files are 0600 — also when an older version, a restore or a hand-made directory left them
//! looser, whatever the process umask.

use anyhow::{Context, Result};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// What the data dir's mode must be.
const DIR_MODE: u32 = 0o700;
/// What a secret file's mode must be.
const SECRET_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) as 0700, or tightens an existing one to 0700.
pub fn private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    tighten(dir, DIR_MODE)
}

/// Tightens every secret file directly in `data_dir` (private keys `*.key`/`*-key.pem`, the
/// admin token) to 0600.
pub fn tighten_secrets(data_dir: &Path) -> Result<()> {
    let entries =
        fs::read_dir(data_dir).with_context(|| format!("reading {}", data_dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let secret = name.ends_with(".key")
            || name.ends_with("-key.pem")
            || name == crate::admin::token::TOKEN_FILE;
        if secret && entry.file_type()?.is_file() {
            tighten(&entry.path(), SECRET_MODE)?;
        }
    }
    Ok(())
}

/// Sets `path`'s mode to `mode` if it grants anything `mode` does not.
fn tighten(path: &Path, mode: u32) -> Result<()> {
    let current = fs::metadata(path)
        .with_context(|| format!("reading the mode of {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if current & !mode != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        tracing::warn!(path = %path.display(), from = format!("{current:o}"),
            to = format!("{mode:o}"), "tightened a mode that let other users in");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_loose_old_data_dir_and_its_secrets_are_tightened() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["admin.token", "tls-key.pem", "node-1.key", "tls-cert.pem"] {
            fs::write(data.join(name), b"x").unwrap();
            fs::set_permissions(data.join(name), fs::Permissions::from_mode(0o644)).unwrap();
        }
        private_dir(&data).unwrap();
        tighten_secrets(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        for name in ["admin.token", "tls-key.pem", "node-1.key"] {
            assert_eq!(mode(&data.join(name)), 0o600, "{name}");
        }
        assert_eq!(
            mode(&data.join("tls-cert.pem")),
            0o644,
            "a certificate is public"
        );
    }

    #[test]
    fn a_new_data_dir_is_private_whatever_the_umask() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("a/b/data");
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        // A stricter mode is left alone.
        fs::set_permissions(&data, fs::Permissions::from_mode(0o500)).unwrap();
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o500);
    }
}
