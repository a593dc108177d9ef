//! The command line: `tern serve` runs a node; the other commands administer a running node
//! through its admin API.

use crate::admin::api::{AccountView, AliasView, DomainView, QueueView};
use crate::admin::client::AdminClient;
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
    /// List queued messages.
    List,
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
    let api = cli.client()?;
    match &cli.command {
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
            print_queue(&list);
        }
    }
    Ok(())
}

fn print_queue(list: &[QueueView]) {
    if list.is_empty() {
        println!("queue is empty");
        return;
    }
    for q in list {
        let sender = if q.sender.is_empty() { "<>" } else { &q.sender };
        println!("{}  {} bytes  from {sender}", q.id, q.size);
        for r in &q.recipients {
            let error = r.last_error.as_deref().unwrap_or("-");
            println!(
                "    {:<40} {:<6} attempts {}  last error: {error}",
                r.address, r.kind, r.attempts
            );
        }
    }
    println!("{} message(s) queued", list.len());
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
    }
}
