//! The admin bearer token: random, created on first start, stored in the data dir with mode
//! 0600 so only the operator who runs the node (and the CLI on the same machine) can read it.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The token's file name inside the data dir.
pub const TOKEN_FILE: &str = "admin.token";

/// Where the token of the node with `data_dir` lives.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Reads the token, creating it if the data dir has none.
pub fn load_or_create(data_dir: &Path) -> Result<String> {
    let path = path(data_dir);
    if path.exists() {
        return read(data_dir);
    }
    let bytes: [u8; 32] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::tls::write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// Reads an existing token.
pub fn read(data_dir: &Path) -> Result<String> {
    let path = path(data_dir);
    let token = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the admin token {} (is the data dir right? use --data DIR or --token)",
            path.display()
        )
    })?;
    Ok(token.trim().to_string())
}
