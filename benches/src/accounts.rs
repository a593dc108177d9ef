//! `--create-users`: adds the domain and user1..userN through the `tern` CLI, which talks to
//! the running node's admin API.

use anyhow::{Context, Result, bail};
use std::sync::Arc;
use tokio::process::Command;
use tokio::sync::Semaphore;

/// Runs `tern domain add` once and `tern account add` per user, a few at a time (each one
/// hashes a password with Argon2, which is deliberately slow). Existing ones are fine.
pub async fn create(
    tern: &str,
    global_args: &[String],
    domain: &str,
    users: usize,
    password: &str,
) -> Result<()> {
    run(tern, global_args, &["domain", "add", domain]).await?;
    let permits = Arc::new(Semaphore::new(4));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=users {
        let permit = permits.clone().acquire_owned().await?;
        let (tern, global_args) = (tern.to_string(), global_args.to_vec());
        let address = format!("user{i}@{domain}");
        let password = password.to_string();
        tasks.spawn(async move {
            let _permit = permit;
            run(
                &tern,
                &global_args,
                &["account", "add", &address, "--password", &password],
            )
            .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Runs one CLI command; "already exists" counts as success so that runs can repeat.
async fn run(tern: &str, global_args: &[String], args: &[&str]) -> Result<()> {
    let out = Command::new(tern)
        .args(global_args)
        .args(args)
        .output()
        .await
        .with_context(|| format!("running {tern}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("exists") {
        return Ok(());
    }
    bail!("{tern} {}: {}", args[..2].join(" "), stderr.trim());
}
