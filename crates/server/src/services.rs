//! The node's services, started in dependency order (Raft, then directory, mailboxes and
//! queue) and the per-protocol session contexts built from them.

use crate::limits::ConnectionLimiter;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use tern_core::config::ClusterConfig;
use tern_core::config::Config;
use tern_directory::{Directory, LoginPolicy};
use tern_filter::Filter;
use tern_imap::ImapContext;
use tern_mailbox::Mailboxes;
use tern_pop3::Pop3Context;
use tern_queue::{Queue, Relay};
use tern_raft::link::LinkTls;
use tern_raft::{LinkConfig, MoveLimits, RaftConfig, RaftNode};
use tern_smtp::{SmtpContext, SmtpMode};
use tokio_rustls::TlsAcceptor;

/// Everything a connection or an admin request may need.
pub struct Services {
    /// The Raft groups.
    pub raft: RaftNode,
    /// Domains, accounts, aliases, authentication.
    pub directory: Directory,
    /// Mailbox actors.
    pub mailboxes: Mailboxes,
    /// The durable queue.
    pub queue: Queue,
    /// Inbound checks, Authentication-Results, DKIM keys and records.
    pub filter: Arc<Filter>,
    /// The server certificate.
    pub tls: TlsAcceptor,
    /// Connection admission.
    pub limiter: ConnectionLimiter,
    /// SMTP on the MX port.
    pub smtp_mx: Arc<SmtpContext>,
    /// SMTP on the submission ports.
    pub smtp_submission: Arc<SmtpContext>,
    /// IMAP.
    pub imap: Arc<ImapContext>,
    /// POP3.
    pub pop3: Arc<Pop3Context>,
}

impl Services {
    /// Starts Raft and the services on top of it.
    pub async fn start(config: &Config, tls: TlsAcceptor) -> Result<Services> {
        let raft = RaftNode::start(RaftConfig {
            node_id: config.cluster.node_id,
            data_dir: config.server.data_dir.clone(),
            partitions: config.cluster.partitions,
            link: link_config(&config.cluster)?,
            storage: config.storage.clone(),
        })
        .await
        .context("starting the Raft groups")?;
        let directory = Directory::with_login_policy(raft.clone(), login_policy(&config.limits));
        let mailboxes = Mailboxes::new(raft.clone());
        let relay = Relay::new(&config.server.hostname, &config.relay, &config.dns)
            .context("setting up the outbound relay")?;
        let dedup_window = dedup_window(config)?;
        let queue = Queue::start(raft.clone(), relay, dedup_window)
            .await
            .context("starting the queue")?;
        let limits = config.limits.clone();
        let hostname = config.server.hostname.clone();
        let filter = Arc::new(
            Filter::new(&config.filter, &config.dns, &hostname)
                .context("setting up the inbound filter")?,
        );
        let plaintext = config.server.allow_plaintext_auth_on_loopback;
        let smtp = |mode| {
            Arc::new(SmtpContext {
                hostname: hostname.clone(),
                mode,
                directory: directory.clone(),
                queue: queue.clone(),
                tls: Some(tls.clone()),
                limits: limits.clone(),
                allow_plaintext_auth_on_loopback: plaintext,
                filter: filter.clone(),
            })
        };
        Ok(Services {
            smtp_mx: smtp(SmtpMode::Mx),
            smtp_submission: smtp(SmtpMode::Submission),
            imap: Arc::new(ImapContext {
                hostname: hostname.clone(),
                directory: directory.clone(),
                mailboxes: mailboxes.clone(),
                tls: Some(tls.clone()),
                limits: limits.clone(),
                allow_plaintext_auth_on_loopback: plaintext,
            }),
            pop3: Arc::new(Pop3Context {
                hostname: hostname.clone(),
                directory: directory.clone(),
                mailboxes: mailboxes.clone(),
                tls: Some(tls.clone()),
                limits: limits.clone(),
                allow_plaintext_auth_on_loopback: plaintext,
            }),
            limiter: ConnectionLimiter::from_limits(&limits),
            raft,
            directory,
            mailboxes,
            queue,
            filter,
            tls,
        })
    }

    /// Stops the actors, then Raft (which closes RocksDB last).
    pub async fn shutdown(&self) {
        self.queue.shutdown().await;
        self.mailboxes.shutdown().await;
        self.raft.shutdown().await;
    }
}

/// The node link of a clustered node (`[cluster] listen` set), with its mTLS material loaded.
fn link_config(cluster: &ClusterConfig) -> Result<Option<LinkConfig>> {
    if !cluster.is_clustered() {
        return Ok(None);
    }
    let (Some(ca), Some(cert), Some(key)) = (&cluster.ca, &cluster.cert, &cluster.key) else {
        anyhow::bail!(
            "[cluster] listen is set, so ca, cert and key are required \
             (make them with `tern cluster ca` and `tern cluster cert`)"
        );
    };
    if cluster.node_id == 0 {
        anyhow::bail!("[cluster] node_id must be 1 or more");
    }
    if ![3, 5].contains(&cluster.replication_factor) {
        anyhow::bail!(
            "[cluster] replication_factor must be 3 or 5, not {}",
            cluster.replication_factor
        );
    }
    if cluster.max_concurrent_moves == 0 {
        anyhow::bail!("[cluster] max_concurrent_moves must be 1 or more");
    }
    let tls = LinkTls::load(ca, cert, key).context("loading the cluster certificates")?;
    Ok(Some(LinkConfig {
        listen: cluster.listen.clone(),
        advertise: cluster.advertised().to_string(),
        seeds: cluster.seeds.clone(),
        tls,
        moves: MoveLimits {
            replication_factor: cluster.replication_factor,
            max_concurrent: cluster.max_concurrent_moves,
            bytes_per_sec: cluster.move_rate_limit.saturating_mul(1 << 20),
        },
    }))
}

/// How long de-duplication records are kept: `[storage] dedup_window_secs`, which must outlast
/// the queue's own retries (`[relay] give_up_after_secs`) by a day, so that a delivery retried
/// by the queue is still recognised.
fn dedup_window(config: &Config) -> Result<Duration> {
    let window = config.storage.dedup_window_secs;
    let queue_life = config.relay.give_up_after_secs;
    if window < queue_life.saturating_add(86_400) {
        anyhow::bail!(
            "[storage] dedup_window_secs ({window}) must be at least a day longer than \
             [relay] give_up_after_secs ({queue_life})"
        );
    }
    Ok(Duration::from_secs(window))
}

/// The login throttle's settings from `[limits]`.
fn login_policy(limits: &tern_core::config::Limits) -> LoginPolicy {
    LoginPolicy {
        delay_after: limits.login_delay_after_failures,
        refuse_after: limits.login_refuse_after_failures,
        max_delay: std::time::Duration::from_secs(limits.login_max_delay_secs),
        window: std::time::Duration::from_secs(limits.login_failure_window_secs),
    }
}
