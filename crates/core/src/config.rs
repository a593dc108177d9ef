//! The `tern.toml` configuration. Every field has a default, so an empty file is a valid
//! config; `tern serve --dev` builds one in code with the dev ports on loopback.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Identity and storage.
    pub server: ServerConfig,
    /// Listening sockets.
    pub listeners: ListenerConfig,
    /// TLS certificate.
    pub tls: TlsConfig,
    /// Protocol limits that protect the server.
    pub limits: Limits,
    /// Replication layout.
    pub cluster: ClusterConfig,
    /// Raft logs and snapshots on disk.
    pub storage: StorageConfig,
    /// Where MX, SPF, DKIM, DMARC and DNSBL lookups go.
    pub dns: DnsConfig,
    /// Inbound checks on the MX listener: SPF, DKIM, DMARC, DNSBL.
    pub filter: FilterConfig,
    /// Outbound delivery to remote MX hosts: retries, TLS, bounces.
    pub relay: RelayConfig,
}

/// Outbound delivery to remote MX hosts by the queue partition actors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// TCP port of remote MX hosts (25; tests point it at a local server).
    pub port: u16,
    /// The name sent in EHLO; empty = `[server] hostname`.
    pub helo: String,
    /// When to use STARTTLS.
    pub starttls: StartTls,
    /// Seconds before the first retry; the delay doubles after each failed attempt.
    pub retry_initial_secs: u64,
    /// The longest delay between two attempts, in seconds.
    pub retry_max_secs: u64,
    /// Seconds after which a message still undeliverable is bounced (DSN).
    pub give_up_after_secs: u64,
    /// Seconds after which one "delayed" DSN goes to the sender; 0 = never.
    pub delay_notice_after_secs: u64,
    /// Simultaneous connections to one destination domain from this node.
    pub max_connections_per_destination: usize,
    /// Seconds to wait for a TCP connection to an MX host.
    pub connect_timeout_secs: u64,
    /// Seconds to wait for each SMTP reply (RFC 5321 §4.5.3.2 suggests minutes).
    pub command_timeout_secs: u64,
    /// Messages with more Received headers than this are a mail loop and bounce (5.4.6).
    pub max_hops: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            port: 25,
            helo: String::new(),
            starttls: StartTls::Opportunistic,
            retry_initial_secs: 300,
            retry_max_secs: 4 * 3600,
            give_up_after_secs: 5 * 86400,
            delay_notice_after_secs: 0,
            max_connections_per_destination: 4,
            connect_timeout_secs: 30,
            command_timeout_secs: 300,
            max_hops: 50,
        }
    }
}

/// The outbound STARTTLS policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Encrypt when the server offers STARTTLS, without checking its certificate (Postfix
    /// `may`): an unauthenticated but encrypted channel beats plaintext, and refusing a
    /// self-signed MX would only push the mail back to plaintext.
    #[default]
    Opportunistic,
    /// Never send in plaintext: defer when STARTTLS is not offered or fails (Postfix
    /// `encrypt`; the certificate is still not checked).
    Required,
    /// Never use STARTTLS.
    Disabled,
}

/// The DNS resolver used by the outbound relay and the inbound checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers to ask, as `ip` or `ip:port` (port 53 by default); empty = the system's
    /// `/etc/resolv.conf`.
    pub servers: Vec<String>,
    /// Seconds to wait for one answer, over all tries.
    pub timeout_secs: u64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout_secs: 5,
        }
    }
}

impl DnsConfig {
    /// How one lookup is tried: up to `timeout_secs` tries of one second each (at most 10), so
    /// that a lost UDP packet costs a second rather than the whole timeout.
    pub fn tries(&self) -> (std::time::Duration, usize) {
        let tries = self.timeout_secs.clamp(1, 10) as usize;
        (std::time::Duration::from_secs(1), tries)
    }

    /// The configured servers as socket addresses; an entry without a port gets port 53.
    pub fn server_addrs(&self) -> Result<Vec<std::net::SocketAddr>, String> {
        self.servers
            .iter()
            .map(|s| {
                s.parse::<std::net::SocketAddr>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
                    .map_err(|_| format!("[dns] servers: {s:?} is not an ip or ip:port"))
            })
            .collect()
    }
}

/// Which inbound checks run on the MX listener. SPF, DKIM and DMARC results always end up in
/// the Authentication-Results header; only a failing DMARC policy (`p=reject` or
/// `p=quarantine`) changes what happens to a message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Check SPF for the MAIL FROM and HELO identities.
    pub spf: bool,
    /// Verify DKIM signatures.
    pub dkim: bool,
    /// Evaluate DMARC (with SPF and DKIM alignment) and apply the sender domain's policy.
    pub dmarc: bool,
    /// DNSBL zones (e.g. `zen.spamhaus.org`); a client listed in any is refused at connect.
    pub dnsbl: Vec<String>,
    /// Overrides per recipient domain. With several recipient domains in one message, a check
    /// runs when any of them wants it.
    pub domains: std::collections::BTreeMap<String, FilterOverride>,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            spf: true,
            dkim: true,
            dmarc: true,
            dnsbl: Vec::new(),
            domains: Default::default(),
        }
    }
}

/// The checks one recipient domain turns on or off; an absent field keeps the global value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterOverride {
    /// SPF on or off for this domain.
    pub spf: Option<bool>,
    /// DKIM on or off for this domain.
    pub dkim: Option<bool>,
    /// DMARC on or off for this domain.
    pub dmarc: Option<bool>,
}

/// Identity and storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The host name in greetings and Received headers.
    pub hostname: String,
    /// Where RocksDB, the certificate and the admin token live.
    pub data_dir: PathBuf,
    /// Allow AUTH/LOGIN/USER without TLS from loopback clients (`--dev` only).
    pub allow_plaintext_auth_on_loopback: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: "localhost".into(),
            data_dir: PathBuf::from("./tern-data"),
            allow_plaintext_auth_on_loopback: false,
        }
    }
}

/// Socket addresses of each listener (an empty string disables one), and which peers are load
/// balancers that speak the PROXY protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerConfig {
    /// SMTP for inbound mail (MX), RFC 5321.
    pub smtp: String,
    /// Message submission with STARTTLS, RFC 6409.
    pub submission: String,
    /// Message submission over implicit TLS, RFC 8314.
    pub submissions: String,
    /// IMAP with STARTTLS.
    pub imap: String,
    /// IMAP over implicit TLS.
    pub imaps: String,
    /// POP3 with STLS.
    pub pop3: String,
    /// POP3 over implicit TLS.
    pub pop3s: String,
    /// Admin HTTP API, health and metrics. Keep it on loopback or a private network.
    pub admin: String,
    /// Load balancers (IP addresses or CIDR networks) whose connections to the client
    /// listeners must start with a PROXY protocol header (v2 or v1) naming the real client.
    /// Other peers are served directly, without a header. Empty = PROXY protocol disabled.
    pub proxy_protocol_from: Vec<String>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig::on(
            "0.0.0.0",
            [25, 587, 465, 143, 993, 110, 995],
            "127.0.0.1:8080",
        )
    }
}

impl ListenerConfig {
    /// Listeners on `host` with ports in the order smtp, submission, submissions, imap, imaps,
    /// pop3, pop3s.
    pub fn on(host: &str, ports: [u16; 7], admin: &str) -> ListenerConfig {
        let at = |p: u16| {
            if host.contains(':') {
                format!("[{host}]:{p}")
            } else {
                format!("{host}:{p}")
            }
        };
        ListenerConfig {
            smtp: at(ports[0]),
            submission: at(ports[1]),
            submissions: at(ports[2]),
            imap: at(ports[3]),
            imaps: at(ports[4]),
            pop3: at(ports[5]),
            pop3s: at(ports[6]),
            admin: admin.to_string(),
            proxy_protocol_from: Vec::new(),
        }
    }

    /// The dev listeners: SMTP 2525, submission 2587, submissions 2465, IMAP 1143, IMAPS 1993,
    /// POP3 1110, POP3S 1995, admin 8080.
    pub fn dev(host: &str) -> ListenerConfig {
        let admin = if host.contains(':') {
            format!("[{host}]:8080")
        } else {
            format!("{host}:8080")
        };
        ListenerConfig::on(host, [2525, 2587, 2465, 1143, 1993, 1110, 1995], &admin)
    }
}

/// The server certificate. Without paths, a self-signed one is generated in the data dir.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// Limits that keep one client from hurting the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest message accepted by SMTP or APPEND, in bytes (SIZE).
    pub max_message_size: u64,
    /// Most recipients in one SMTP transaction.
    pub max_recipients: usize,
    /// Longest command line, in bytes.
    pub max_line_length: usize,
    /// Concurrent connections from one client (an IPv4 address or an IPv6 /64), all protocols
    /// together.
    pub max_connections_per_ip: usize,
    /// Concurrent connections in all.
    pub max_connections: usize,
    /// Caps for SMTP (MX) connections alone (`[limits.smtp]`), within the two above.
    pub smtp: ProtocolCaps,
    /// Caps for submission (587 and 465) connections (`[limits.submission]`).
    pub submission: ProtocolCaps,
    /// Caps for IMAP (143 and 993) connections (`[limits.imap]`).
    pub imap: ProtocolCaps,
    /// Caps for POP3 (110 and 995) connections (`[limits.pop3]`).
    pub pop3: ProtocolCaps,
    /// Seconds an SMTP client may stay silent (RFC 5321 suggests 5 minutes).
    pub smtp_idle_timeout_secs: u64,
    /// Seconds an IMAP client may stay silent outside IDLE (RFC 9051: at least 30 minutes).
    pub imap_idle_timeout_secs: u64,
    /// Seconds a POP3 client may stay silent (RFC 1939: at least 10 minutes).
    pub pop3_idle_timeout_secs: u64,
    /// Seconds an SMTP client may go without sending a byte of DATA (RFC 5321 §4.5.3.2.5:
    /// 3 minutes per data block).
    pub smtp_data_timeout_secs: u64,
    /// Seconds an IMAP client may stay silent before it has logged in.
    pub imap_login_timeout_secs: u64,
    /// Seconds a client may take to finish a TLS handshake (implicit TLS, STARTTLS, STLS).
    pub tls_handshake_timeout_secs: u64,
    /// Failed authentications on one connection before it is closed.
    pub max_auth_failures: u32,
    /// Failed logins of one client (IPv4 address or IPv6 /64), or for one account, within
    /// `login_failure_window_secs`, after which each attempt waits before its password is
    /// checked (a quarter of a second, doubling); 0 turns login throttling off.
    pub login_delay_after_failures: u32,
    /// ...after which attempts are refused without checking (SMTP `454 4.7.0`, IMAP
    /// `NO [UNAVAILABLE]`, POP3 `-ERR [AUTH]`) until the window has passed since the last one.
    pub login_refuse_after_failures: u32,
    /// Seconds a failed login counts.
    pub login_failure_window_secs: u64,
    /// Longest delay before a throttled attempt is checked, in seconds.
    pub login_max_delay_secs: u64,
    /// Messages one authenticated account may send per hour, cluster-wide; 0 = unlimited.
    pub max_messages_per_hour: u32,
    /// Messages one authenticated account may send per day, cluster-wide; 0 = unlimited.
    pub max_messages_per_day: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            max_line_length: 8192,
            max_connections_per_ip: 64,
            max_connections: 10_000,
            smtp: ProtocolCaps::new(50, 4_000),
            submission: ProtocolCaps::new(32, 2_000),
            imap: ProtocolCaps::new(64, 8_000),
            pop3: ProtocolCaps::new(16, 2_000),
            smtp_idle_timeout_secs: 300,
            imap_idle_timeout_secs: 1800,
            pop3_idle_timeout_secs: 600,
            smtp_data_timeout_secs: 180,
            imap_login_timeout_secs: 60,
            tls_handshake_timeout_secs: 30,
            max_auth_failures: 3,
            login_delay_after_failures: 3,
            login_refuse_after_failures: 10,
            login_failure_window_secs: 900,
            login_max_delay_secs: 15,
            max_messages_per_hour: 0,
            max_messages_per_day: 0,
        }
    }
}

/// Connection caps of one protocol (its STARTTLS and implicit-TLS ports together), applied
/// within the server-wide ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolCaps {
    /// Concurrent connections of this protocol from one client (IPv4 address or IPv6 /64).
    pub max_connections_per_ip: usize,
    /// Concurrent connections of this protocol in all.
    pub max_connections: usize,
}

impl ProtocolCaps {
    /// `per_ip` per client, `total` in all.
    pub const fn new(per_ip: usize, total: usize) -> ProtocolCaps {
        ProtocolCaps {
            max_connections_per_ip: per_ip,
            max_connections: total,
        }
    }
}

/// How each Raft group keeps its log and snapshots on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// A group writes a snapshot (a file of its whole state, see ARCHITECTURE.md) after this
    /// many log entries since its last one; the log behind the snapshot is then purged, so a
    /// node's log holds at most about this many entries per group plus `log_keep_entries`.
    pub snapshot_entries: u64,
    /// Log entries kept behind a snapshot, so a follower that lags a little catches up from
    /// the log rather than by a whole snapshot.
    pub log_keep_entries: u64,
    /// A group also snapshots once its log has grown by this many bytes since the last
    /// snapshot (large messages fill the log long before `snapshot_entries`); 0 = off.
    pub snapshot_log_bytes: u64,
    /// ...and once an entry has waited this many seconds outside any snapshot, so a quiet
    /// group's log is purged too; 0 = off.
    pub snapshot_max_age_secs: u64,
    /// Seconds a transaction's de-duplication record (its delivery id) is kept, so that a
    /// retried proposal or delivery is recognised; then the partition's queue actor removes
    /// it. At least a day more than `[relay] give_up_after_secs`.
    pub dedup_window_secs: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            snapshot_entries: 20_000,
            log_keep_entries: 1_000,
            snapshot_log_bytes: 256 << 20,
            snapshot_max_age_secs: 86_400,
            dedup_window_secs: 7 * 86_400,
        }
    }
}

/// Replication layout and the node link. With `listen` empty the node runs alone: every group
/// has this node as its one voter. With `listen` set, the node joins a cluster over mTLS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id (1 on a single node); unique and never reused in a cluster.
    pub node_id: u64,
    /// Number of data partitions, fixed when the data dir is first initialised (a single node)
    /// or by `tern cluster init --partitions` (a cluster).
    pub partitions: u32,
    /// Where the node link listens (`host:port`); empty = single node, no node link.
    pub listen: String,
    /// The address peers dial to reach this node (default: `listen`).
    pub advertise: String,
    /// Node-link addresses of existing members, tried in order by `tern cluster join`.
    pub seeds: Vec<String>,
    /// The cluster CA certificate (PEM); peers must present a certificate it signed.
    pub ca: Option<PathBuf>,
    /// This node's certificate (PEM), signed by the cluster CA.
    pub cert: Option<PathBuf>,
    /// This node's private key (PEM).
    pub key: Option<PathBuf>,
    /// Voters of each partition (3 or 5); the nodes that hold a copy of its mail.
    pub replication_factor: usize,
    /// Replica moves (add, catch up, promote, remove) each node starts at once as the leader
    /// of the groups that move.
    pub max_concurrent_moves: usize,
    /// Snapshot bytes a node sends per second to replicas being added, in MiB (0 = no limit).
    pub move_rate_limit: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: 1,
            partitions: 64,
            listen: String::new(),
            advertise: String::new(),
            seeds: Vec::new(),
            ca: None,
            cert: None,
            key: None,
            replication_factor: 3,
            max_concurrent_moves: 2,
            move_rate_limit: 0,
        }
    }
}

impl ClusterConfig {
    /// Whether this node is (or will be) part of a multi-node cluster.
    pub fn is_clustered(&self) -> bool {
        !self.listen.is_empty()
    }

    /// The address peers dial.
    pub fn advertised(&self) -> &str {
        if self.advertise.is_empty() {
            &self.listen
        } else {
            &self.advertise
        }
    }
}

impl Config {
    /// The `--dev` configuration: loopback listeners on the dev ports, data in `./tern-data`,
    /// plaintext auth allowed for loopback clients.
    pub fn dev(bind: &str) -> Config {
        Config {
            listeners: ListenerConfig::dev(bind),
            server: ServerConfig {
                allow_plaintext_auth_on_loopback: true,
                ..ServerConfig::default()
            },
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.listeners.smtp, "0.0.0.0:25");
        assert_eq!(c.cluster.partitions, 64);
    }

    #[test]
    fn dns_servers_take_an_optional_port() {
        let c: Config =
            toml::from_str("[dns]\nservers = [\"127.0.0.1\", \"127.0.0.2:5353\"]").unwrap();
        let addrs = c.dns.server_addrs().unwrap();
        assert_eq!(addrs[0].to_string(), "127.0.0.1:53");
        assert_eq!(addrs[1].to_string(), "127.0.0.2:5353");
        let bad: Config = toml::from_str("[dns]\nservers = [\"ns.example\"]").unwrap();
        assert!(bad.dns.server_addrs().is_err());
    }

    #[test]
    fn dns_lookups_are_tried_in_one_second_steps() {
        let secs = |t: u64| {
            DnsConfig {
                timeout_secs: t,
                ..DnsConfig::default()
            }
            .tries()
        };
        assert_eq!(secs(5), (std::time::Duration::from_secs(1), 5));
        assert_eq!(secs(0).1, 1);
        assert_eq!(secs(60).1, 10);
    }

    #[test]
    fn filter_section_with_domain_overrides() {
        let c: Config = toml::from_str("").unwrap();
        assert!(c.filter.spf && c.filter.dkim && c.filter.dmarc && c.filter.dnsbl.is_empty());
        let text = "[filter]\ndmarc = false\ndnsbl = [\"bl.example\"]\n\
                    [filter.domains.\"example.com\"]\nspf = false\n";
        let c: Config = toml::from_str(text).unwrap();
        assert!(!c.filter.dmarc && c.filter.spf);
        assert_eq!(c.filter.dnsbl, vec!["bl.example".to_string()]);
        assert_eq!(c.filter.domains["example.com"].spf, Some(false));
        assert_eq!(c.filter.domains["example.com"].dkim, None);
        assert!(toml::from_str::<Config>("[filter.domains.\"x.org\"]\nspff = true").is_err());
    }

    #[test]
    fn relay_section_and_sending_limits() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.relay.port, 25);
        assert_eq!(c.relay.starttls, StartTls::Opportunistic);
        assert_eq!(c.limits.max_messages_per_hour, 0);
        let text = "[relay]\nport = 2525\nstarttls = \"required\"\nretry_initial_secs = 1\n\
                    [limits]\nmax_messages_per_day = 10\n";
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c.relay.port, 2525);
        assert_eq!(c.relay.starttls, StartTls::Required);
        assert_eq!(c.relay.retry_initial_secs, 1);
        assert_eq!(c.relay.retry_max_secs, 14400);
        assert_eq!(c.limits.max_messages_per_day, 10);
        assert!(toml::from_str::<Config>("[relay]\nstarttls = \"maybe\"").is_err());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(toml::from_str::<Config>("[server]\nhostnme = \"x\"").is_err());
    }

    #[test]
    fn dev_ports() {
        let c = Config::dev("127.0.0.1");
        assert_eq!(c.listeners.imap, "127.0.0.1:1143");
        assert_eq!(c.listeners.admin, "127.0.0.1:8080");
    }
}
