//! `tern cluster ...`: certificates (made locally, no node needed) and membership commands
//! (sent to a node's admin API).

use crate::admin::client::AdminClient;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use hyper::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tern_raft::link::ClusterCa;
use tern_raft::link::tls::write_file;

/// `tern cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Make a cluster CA (ca.pem, ca.key) in DIR.
    Ca {
        /// Where to write the CA.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Make a node certificate signed by the cluster CA.
    Cert {
        /// The CA directory (from `tern cluster ca`).
        #[arg(long)]
        ca: PathBuf,
        /// The node id.
        #[arg(long)]
        node: u64,
        /// The node-link address peers dial (HOST:PORT); HOST goes into the certificate.
        #[arg(long)]
        addr: String,
        /// Where to write node-N.pem and node-N.key (default: the CA directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Days the certificate is valid from now. Rotate before then: issue a new one for
        /// the same node id and restart the node (README, "Node identity and rotating node
        /// certificates").
        #[arg(long, default_value_t = tern_raft::link::tls::DEFAULT_VALID_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=36_500))]
        valid_days: u32,
    },
    /// Create the cluster on this node (the first one).
    Init {
        /// Data partitions, fixed for the life of the cluster. 256 spreads evenly up to about
        /// 30 nodes (each holds 3 x 256 / N, give or take one).
        #[arg(long, default_value_t = 256)]
        partitions: u32,
    },
    /// Add this node to a cluster (run against the joining node's admin API).
    Join {
        /// A member's node-link address (default: the node's configured seeds).
        #[arg(long)]
        seed: Option<String>,
    },
    /// Show nodes, their health, and every group's leader, voters, commit index and lag.
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
        /// Keep showing it: redrawn with a progress bar of the replica moves on a terminal,
        /// one progress line per interval otherwise.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
        /// Seconds between two looks with --watch.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        interval: u64,
        /// With --watch: stop once no replica move is left.
        #[arg(long, requires = "watch")]
        until_done: bool,
    },
    /// Move every partition replica off a node (it stays a member; `remove` it afterwards).
    Drain {
        /// The node id.
        node: u64,
        /// Stop draining the node: it may hold replicas again.
        #[arg(long)]
        cancel: bool,
    },
    /// Take a node out of the cluster. Refused while it holds partition replicas (drain it
    /// first) unless --dead.
    Remove {
        /// The node id.
        node: u64,
        /// The node is gone for good: remove it anyway; its replicas are made again on the
        /// other nodes from the surviving copies.
        #[arg(long)]
        dead: bool,
    },
}

impl ClusterCommand {
    /// Whether the command works on local files only (no admin API involved).
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            ClusterCommand::Ca { .. } | ClusterCommand::Cert { .. }
        )
    }
}

/// Runs a local certificate command.
pub fn run_local(command: &ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Ca { dir } => {
            ClusterCa::generate()?.save(dir)?;
            println!("cluster CA written to {}", dir.display());
            Ok(())
        }
        ClusterCommand::Cert {
            ca,
            node,
            addr,
            out,
            valid_days,
        } => issue(ca, *node, addr, out.as_deref().unwrap_or(ca), *valid_days),
        _ => bail!("not a local command"),
    }
}

fn issue(ca_dir: &Path, node: u64, addr: &str, out: &Path, valid_days: u32) -> Result<()> {
    if node == 0 {
        bail!("node ids start at 1");
    }
    if node >= tern_raft::link::client::UNKNOWN_PEERS {
        bail!(
            "node ids must be below {}",
            tern_raft::link::client::UNKNOWN_PEERS
        );
    }
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => bail!("--addr must be HOST:PORT, got {addr:?}"),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ca = ClusterCa::load(ca_dir).context("loading the cluster CA")?;
    let pair = ca.issue_valid_for(node, host, valid_days)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let cert = out.join(format!("node-{node}.pem"));
    let key = out.join(format!("node-{node}.key"));
    write_file(&cert, pair.cert.as_bytes(), false)?;
    write_file(&key, pair.key.as_bytes(), true)?;
    println!(
        "node {node}: {} and {} (valid for {valid_days} days)",
        cert.display(),
        key.display()
    );
    Ok(())
}

/// Runs a membership command against the admin API.
pub async fn run_remote(api: &AdminClient, command: &ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Init { partitions } => {
            let info: Value = api
                .call(
                    Method::POST,
                    "/v1/cluster/init",
                    Some(json!({ "partitions": partitions })),
                )
                .await?;
            println!("cluster initialised with {} partitions", info["partitions"]);
        }
        ClusterCommand::Join { seed } => {
            let info: Value = api
                .call(
                    Method::POST,
                    "/v1/cluster/join",
                    Some(json!({ "seed": seed })),
                )
                .await?;
            let members = info["members"].as_object().map_or(0, |m| m.len());
            println!(
                "joined: {members} members, {} partitions",
                info["partitions"]
            );
        }
        ClusterCommand::Drain { node, cancel } => {
            let _: Value = api
                .call(
                    Method::POST,
                    "/v1/cluster/drain",
                    Some(json!({ "node": node, "cancel": cancel })),
                )
                .await?;
            if *cancel {
                println!("node {node} no longer drains");
            } else {
                println!(
                    "node {node} is draining: its replicas move to the other nodes \
                     (`tern cluster status` shows how many it still holds)"
                );
            }
        }
        ClusterCommand::Remove { node, dead } => {
            let _: Value = api
                .call(
                    Method::POST,
                    "/v1/cluster/remove",
                    Some(json!({ "node": node, "dead": dead })),
                )
                .await?;
            println!("node {node} removed");
        }
        ClusterCommand::Status {
            watch: true,
            interval,
            until_done,
            ..
        } => {
            crate::cluster_status::watch(api, Duration::from_secs(*interval), *until_done).await?;
        }
        ClusterCommand::Status { json, .. } => {
            let status: Value = api.call(Method::GET, "/v1/cluster/status", None).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", crate::cluster_status::render(&status));
            }
        }
        ClusterCommand::Ca { .. } | ClusterCommand::Cert { .. } => run_local(command)?,
    }
    Ok(())
}
