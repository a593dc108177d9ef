//! The command line: `tern serve` runs a node; the other commands administer a running node
//! through its admin API.

use crate::admin::api::{
    AccountView, AliasView, DomainView, FlushView, QueueView, QueuedRecipientView,
};
use crate::admin::client::AdminClient;
use crate::admin::dkim::{DkimKeyView, DnsRecordsView};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use hyper::Method;
use serde_json::json;
use std::path::PathBuf;
use tern_core::config::Config;

/// Where `tern serve --dev` keeps its data, and where the CLI looks for the admin token.
pub const DEFAULT_DATA_DIR: &str = "./tern-data";

/// Tern: a clustered mail server (SMTP, IMAP, POP3) on Raft and RocksDB.
#[derive(Debug, Parser)]
#[command(name = "tern", version)]
pub struct Cli {
    /// The admin API of the node to administer.
    #[arg(
        long,
        global = true,
        env = "TERN_ADMIN",
        default_value = "http://127.0.0.1:8080"
    )]
    pub admin: String,
    /// The data dir: where `serve` stores everything, and where the CLI finds the admin token.
    #[arg(long, global = true, env = "TERN_DATA")]
    pub data: Option<PathBuf>,
    /// The admin token (default: read from the data dir).
    #[arg(long, global = true, env = "TERN_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node.
    Serve(ServeArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage local domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage aliases.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Inspect the mail queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Cluster certificates and membership.
    #[command(subcommand)]
    Cluster(crate::cluster_cli::ClusterCommand),
    /// Online backup, verification and restore.
    #[command(subcommand)]
    Backup(crate::backup_cli::BackupCommand),
}

/// `tern serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Single node with no config file: loopback, dev ports, self-signed certificate.
    #[arg(long)]
    pub dev: bool,
    /// A tern.toml file (see `tern config example`).
    #[arg(long, conflicts_with = "dev")]
    pub config: Option<PathBuf>,
    /// Address to listen on with --dev.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
}

/// `tern config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented tern.toml with every default.
    Example,
}

/// `tern domain ...`.
#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a local domain.
    Add {
        /// e.g. example.com
        name: String,
    },
    /// List local domains.
    List,
    /// Remove a domain (it must have no accounts or aliases).
    Del {
        /// The domain.
        name: String,
    },
    /// Generate the domain's DKIM signing key (replacing an older one) and print the TXT
    /// record to publish.
    Dkim {
        /// The domain.
        name: String,
        /// The selector: the key is published at SELECTOR._domainkey.DOMAIN.
        #[arg(long, default_value = crate::admin::dkim::DEFAULT_SELECTOR)]
        selector: String,
        /// rsa (2048 bits) or ed25519.
        #[arg(long, default_value = "rsa", value_parser = ["rsa", "ed25519"])]
        algorithm: String,
    },
    /// Print the DNS records to publish for the domain (MX, SPF, DKIM, DMARC), zone-file form.
    Dns {
        /// The domain.
        name: String,
    },
}

/// `tern account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add an account (with INBOX, Sent, Drafts, Trash, Junk and Archive).
    Add {
        /// user@domain
        address: String,
        /// The password (read from standard input if absent).
        #[arg(long)]
        password: Option<String>,
        /// Quota in bytes (K, M, G suffixes allowed); 0 = unlimited.
        #[arg(long, default_value = "0", value_parser = parse_size)]
        quota: u64,
    },
    /// List accounts.
    List,
    /// Remove an account and its mail.
    Del {
        /// user@domain
        address: String,
    },
    /// Change a password.
    Passwd {
        /// user@domain
        address: String,
        /// The new password (read from standard input if absent).
        #[arg(long)]
        password: Option<String>,
    },
}

/// `tern alias ...`.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Send mail for ADDRESS to TARGET (repeat to add more targets).
    Add {
        /// The alias, e.g. postmaster@example.com
        address: String,
        /// Where its mail goes.
        target: String,
    },
    /// List aliases.
    List,
    /// Remove an alias.
    Del {
        /// The alias.
        address: String,
    },
}

/// `tern queue ...`.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued messages, one line per recipient still to deliver.
    List,
    /// Show one queued message.
    Show {
        /// The queue id (from `tern queue list`).
        id: String,
    },
    /// Try the remote recipients of a message again now.
    Retry {
        /// The queue id.
        id: String,
    },
    /// Remove a message from the queue, without delivering or bouncing it.
    Delete {
        /// The queue id.
        id: String,
    },
    /// Try every queued remote recipient again now.
    Flush,
}

/// Parses `1024`, `10K`, `50M`, `2G` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("not a size: {text:?} (use bytes, or K, M, G)"))
}

impl Cli {
    /// The data dir the user meant.
    pub fn data_dir(&self) -> PathBuf {
        self.data
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// The configuration `tern serve` should run with.
    pub fn serve_config(&self, args: &ServeArgs) -> Result<Config> {
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("in {}", path.display()))?
            }
            None if args.dev => Config::dev(&args.bind),
            None => bail!("give --config FILE, or --dev for a single loopback node"),
        };
        if let Some(dir) = &self.data {
            config.server.data_dir = dir.clone();
        }
        Ok(config)
    }

    fn client(&self) -> Result<AdminClient> {
        let token = match &self.token {
            Some(t) => t.clone(),
            None => crate::admin::token::read(&self.data_dir())?,
        };
        AdminClient::new(&self.admin, token)
    }
}

/// Runs an admin command against the node's API and prints the result.
pub async fn administer(cli: &Cli) -> Result<()> {
    if let Command::Cluster(c) = &cli.command
        && c.is_local()
    {
        return crate::cluster_cli::run_local(c);
    }
    use crate::backup_cli::BackupCommand;
    match &cli.command {
        Command::Backup(BackupCommand::Verify { dir }) => return crate::backup_cli::verify(dir),
        Command::Backup(BackupCommand::Restore { dir }) => {
            let Some(data) = &cli.data else {
                bail!("give the new data dir: tern backup restore DIR --data NEWDIR");
            };
            return crate::backup_cli::restore(dir, data);
        }
        _ => {}
    }
    let api = cli.client()?;
    match &cli.command {
        Command::Backup(BackupCommand::Create { dir }) => {
            crate::backup_cli::create(&api, dir).await?
        }
        Command::Backup(_) => bail!("not an admin command"),
        Command::Cluster(c) => crate::cluster_cli::run_remote(&api, c).await?,
        Command::Serve(_) | Command::Config(_) => bail!("not an admin command"),
        Command::Domain(DomainCommand::Add { name }) => {
            let added: DomainView = api
                .call(Method::POST, "/v1/domains", Some(json!({ "name": name })))
                .await?;
            println!("domain {} added", added.name);
        }
        Command::Domain(DomainCommand::List) => {
            let list: Vec<DomainView> = api.call(Method::GET, "/v1/domains", None).await?;
            for d in list {
                println!("{}", d.name);
            }
        }
        Command::Domain(DomainCommand::Del { name }) => {
            let () = api
                .call(
                    Method::DELETE,
                    &format!("/v1/domains/{}", path_escape(name)),
                    None,
                )
                .await?;
            println!("domain {name} removed");
        }
        Command::Domain(DomainCommand::Dkim {
            name,
            selector,
            algorithm,
        }) => {
            let path = format!("/v1/domains/{}/dkim", path_escape(name));
            let body = json!({ "selector": selector, "algorithm": algorithm });
            let key: DkimKeyView = api.call(Method::POST, &path, Some(body)).await?;
            println!("{}", key.record);
        }
        Command::Domain(DomainCommand::Dns { name }) => {
            let path = format!("/v1/domains/{}/dns", path_escape(name));
            let dns: DnsRecordsView = api.call(Method::GET, &path, None).await?;
            for line in dns.records {
                println!("{line}");
            }
        }
        Command::Account(AccountCommand::Add {
            address,
            password,
            quota,
        }) => {
            let password = password_or_stdin(password.as_deref())?;
            let body = json!({ "address": address, "password": password, "quota": quota });
            let a: AccountView = api.call(Method::POST, "/v1/accounts", Some(body)).await?;
            println!("account {} added", a.address);
        }
        Command::Account(AccountCommand::List) => {
            let list: Vec<AccountView> = api.call(Method::GET, "/v1/accounts", None).await?;
            for a in list {
                let quota = if a.quota == 0 {
                    "unlimited".to_string()
                } else {
                    format!("{} bytes", a.quota)
                };
                println!("{:<40} quota {quota}", a.address);
            }
        }
        Command::Account(AccountCommand::Del { address }) => {
            let path = format!("/v1/accounts/{}", path_escape(address));
            let () = api.call(Method::DELETE, &path, None).await?;
            println!("account {address} removed");
        }
        Command::Account(AccountCommand::Passwd { address, password }) => {
            let password = password_or_stdin(password.as_deref())?;
            let path = format!("/v1/accounts/{}/password", path_escape(address));
            let () = api
                .call(Method::PUT, &path, Some(json!({ "password": password })))
                .await?;
            println!("password of {address} changed");
        }
        Command::Alias(AliasCommand::Add { address, target }) => {
            let body = json!({ "address": address, "target": target });
            let () = api.call(Method::POST, "/v1/aliases", Some(body)).await?;
            println!("alias {address} -> {target} added");
        }
        Command::Alias(AliasCommand::List) => {
            let list: Vec<AliasView> = api.call(Method::GET, "/v1/aliases", None).await?;
            for a in list {
                println!("{:<40} -> {}", a.address, a.targets.join(", "));
            }
        }
        Command::Alias(AliasCommand::Del { address }) => {
            let path = format!("/v1/aliases/{}", path_escape(address));
            let () = api.call(Method::DELETE, &path, None).await?;
            println!("alias {address} removed");
        }
        Command::Queue(QueueCommand::List) => {
            let list: Vec<QueueView> = api.call(Method::GET, "/v1/queue", None).await?;
            print_queue(&list, unix_now());
        }
        Command::Queue(QueueCommand::Show { id }) => {
            let path = format!("/v1/queue/{}", path_escape(id));
            let q: QueueView = api.call(Method::GET, &path, None).await?;
            print_queued(&q, unix_now());
        }
        Command::Queue(QueueCommand::Retry { id }) => {
            let path = format!("/v1/queue/{}/retry", path_escape(id));
            let () = api.call(Method::POST, &path, None).await?;
            println!("{id}: remote recipients will be tried again now");
        }
        Command::Queue(QueueCommand::Delete { id }) => {
            let path = format!("/v1/queue/{}", path_escape(id));
            let () = api.call(Method::DELETE, &path, None).await?;
            println!("{id} deleted from the queue");
        }
        Command::Queue(QueueCommand::Flush) => {
            let flushed: FlushView = api.call(Method::POST, "/v1/queue/flush", None).await?;
            println!(
                "{} message(s) with remote recipients will be tried again now",
                flushed.messages
            );
        }
    }
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `90` → `1m`, `7200` → `2h`: the largest whole unit.
fn span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// When a recipient is tried next, relative to `now`.
fn next_try(r: &QueuedRecipientView, now: i64) -> String {
    match r.next_attempt {
        None => "now".into(),
        Some(at) if at <= now => "now".into(),
        Some(at) => format!("in {}", span(at - now)),
    }
}

fn print_queue(list: &[QueueView], now: i64) {
    if list.is_empty() {
        println!("queue is empty");
        return;
    }
    println!(
        "{:<32}  {:>4}  {:<30}  {:<30}  {:<6}  {:>8}  {:<8}  LAST ERROR",
        "ID", "AGE", "SENDER", "RECIPIENT", "TYPE", "ATTEMPTS", "NEXT TRY"
    );
    for q in list {
        let sender = if q.sender.is_empty() { "<>" } else { &q.sender };
        let age = span(now - q.created);
        for r in &q.recipients {
            println!(
                "{:<32}  {:>4}  {:<30}  {:<30}  {:<6}  {:>8}  {:<8}  {}",
                q.id,
                age,
                sender,
                r.address,
                r.kind,
                r.attempts,
                next_try(r, now),
                r.last_error.as_deref().unwrap_or("-")
            );
        }
    }
    println!("{} message(s) queued", list.len());
}

fn print_queued(q: &QueueView, now: i64) {
    let sender = if q.sender.is_empty() { "<>" } else { &q.sender };
    println!("id:         {}", q.id);
    println!("sender:     {sender}");
    println!("size:       {} bytes", q.size);
    println!(
        "queued:     {} ago (unix time {})",
        span(now - q.created),
        q.created
    );
    println!("recipients:");
    for r in &q.recipients {
        println!("  {} ({})", r.address, r.kind);
        println!("    attempts:   {}", r.attempts);
        println!("    next try:   {}", next_try(r, now));
        println!("    last error: {}", r.last_error.as_deref().unwrap_or("-"));
    }
}

/// Escapes the characters of an address that cannot appear raw in a URL path segment.
fn path_escape(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn password_or_stdin(given: Option<&str>) -> Result<String> {
    if let Some(p) = given {
        return Ok(p.to_string());
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        bail!("no password given (use --password or pipe it in)");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("10K"), Ok(10 * 1024));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn spans_use_the_largest_whole_unit() {
        assert_eq!(span(-5), "0s");
        assert_eq!(span(59), "59s");
        assert_eq!(span(90), "1m");
        assert_eq!(span(7200), "2h");
        assert_eq!(span(86400 * 3), "3d");
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_escape("a+b@x.org"), "a%2Bb@x.org");
        assert_eq!(path_escape("../x"), "..%2Fx");
    }

    #[test]
    fn cli_parses_the_issue_commands() {
        let cli = Cli::try_parse_from([
            "tern",
            "account",
            "add",
            "bob@example.com",
            "--password",
            "pw",
            "--quota",
            "10M",
        ])
        .unwrap();
        match cli.command {
            Command::Account(AccountCommand::Add { quota, .. }) => assert_eq!(quota, 10 << 20),
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["tern", "serve", "--dev", "--data", "/tmp/x"]).is_ok());
        assert!(Cli::try_parse_from(["tern", "alias", "add", "a@x.org", "b@y.org"]).is_ok());
        assert!(Cli::try_parse_from(["tern", "queue", "list"]).is_ok());
        for sub in [
            &["show", "ab"][..],
            &["retry", "ab"],
            &["delete", "ab"],
            &["flush"],
        ] {
            let args = ["tern", "queue"].iter().chain(sub.iter());
            assert!(Cli::try_parse_from(args).is_ok(), "{sub:?}");
        }
        assert!(Cli::try_parse_from(["tern", "queue", "show"]).is_err());
        match Cli::try_parse_from(["tern", "domain", "dkim", "example.com"])
            .unwrap()
            .command
        {
            Command::Domain(DomainCommand::Dkim {
                selector,
                algorithm,
                ..
            }) => assert_eq!((selector.as_str(), algorithm.as_str()), ("tern", "rsa")),
            other => panic!("parsed as {other:?}"),
        }
        let ed = [
            "tern",
            "domain",
            "dkim",
            "x.org",
            "--algorithm",
            "ed25519",
            "--selector",
            "s1",
        ];
        assert!(Cli::try_parse_from(ed).is_ok());
        let bad = ["tern", "domain", "dkim", "x.org", "--algorithm", "dsa"];
        assert!(Cli::try_parse_from(bad).is_err());
        assert!(Cli::try_parse_from(["tern", "domain", "dns", "example.com"]).is_ok());
    }
}
