//! Session tests over real loopback TCP against an in-memory backend, so every protocol rule
//! is checked without Raft or RocksDB (crates/pop3/tests/ covers the real backend).

use crate::backend::{Backend, MailAccount};
use crate::session::{self, SessionConfig};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::config::Limits;
use tern_core::net::{Connection, Stream};
use tern_core::ops::Unavailable;
use tern_core::records::{MailboxRecord, MessageRecord};
use tern_core::{AccountId, BlobId, MailboxId, ModSeq, Uid, flags};
use tern_directory::{AccountInfo, DirectoryError};
use tern_mailbox::{MailboxError, Snapshot};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

const USER: &str = "alice@example.com";
const PASSWORD: &str = "correct horse";
const UIDVALIDITY: u32 = 42;
/// Every wait in these tests ends here at the latest, so a bug fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(10);

/// One account's INBOX in memory.
#[derive(Default)]
struct Inbox {
    /// UID → (flags, body).
    messages: BTreeMap<u32, (Vec<String>, Arc<Vec<u8>>)>,
    locked: bool,
    /// Make the next snapshot fail as if Raft had no leader.
    unavailable: bool,
}

#[derive(Clone)]
struct MemAccount {
    info: AccountInfo,
    inbox: Arc<Mutex<Inbox>>,
}

/// Releases the in-memory maildrop lock when dropped, like `tern_mailbox::MaildropLock`.
struct MemLock(Arc<Mutex<Inbox>>);

impl Drop for MemLock {
    fn drop(&mut self) {
        self.0.lock().unwrap().locked = false;
    }
}

fn unavailable() -> MailboxError {
    MailboxError::Unavailable(Unavailable("test".into()))
}

impl MailAccount for MemAccount {
    type Lock = MemLock;

    fn info(&self) -> &AccountInfo {
        &self.info
    }

    async fn lock_maildrop(&self) -> Result<MemLock, MailboxError> {
        let mut inbox = self.inbox.lock().unwrap();
        if inbox.locked {
            return Err(MailboxError::InUse);
        }
        inbox.locked = true;
        Ok(MemLock(self.inbox.clone()))
    }

    fn inbox(&self) -> impl Future<Output = Result<Snapshot, MailboxError>> + Send {
        let inbox = self.inbox.lock().unwrap();
        let result = if inbox.unavailable {
            Err(unavailable())
        } else {
            let messages: Vec<MessageRecord> = inbox
                .messages
                .iter()
                .map(|(uid, (flags, body))| MessageRecord {
                    uid: Uid(*uid),
                    blob: BlobId::of(body),
                    size: body.len() as u64,
                    internal_date: 0,
                    flags: flags.clone(),
                    modseq: ModSeq(1),
                })
                .collect();
            Ok(Snapshot {
                mailbox: MailboxRecord {
                    id: MailboxId(1),
                    name: "INBOX".into(),
                    uidvalidity: UIDVALIDITY,
                    uidnext: inbox.messages.keys().last().map_or(1, |u| u + 1),
                    highest_modseq: 1,
                    special_use: None,
                    subscribed: true,
                    messages: messages.len() as u32,
                    unseen: 0,
                    size: messages.iter().map(|m| m.size).sum(),
                },
                messages,
                first_recent: Uid(1),
            })
        };
        std::future::ready(result)
    }

    fn read_blob(
        &self,
        blob: BlobId,
    ) -> impl Future<Output = Result<Arc<Vec<u8>>, MailboxError>> + Send {
        let inbox = self.inbox.lock().unwrap();
        let body = inbox
            .messages
            .values()
            .find(|(_, body)| BlobId::of(body) == blob)
            .map(|(_, body)| body.clone())
            .ok_or(MailboxError::MissingBlob(blob));
        std::future::ready(body)
    }

    fn add_flag(
        &self,
        _mailbox: MailboxId,
        uids: Vec<Uid>,
        flag: &str,
    ) -> impl Future<Output = Result<(), MailboxError>> + Send {
        let mut inbox = self.inbox.lock().unwrap();
        for uid in uids {
            if let Some((flags, _)) = inbox.messages.get_mut(&uid.0)
                && !flags.iter().any(|f| f == flag)
            {
                flags.push(flag.to_string());
            }
        }
        std::future::ready(Ok(()))
    }

    fn expunge(
        &self,
        _mailbox: MailboxId,
        uids: Vec<Uid>,
    ) -> impl Future<Output = Result<Vec<Uid>, MailboxError>> + Send {
        let mut inbox = self.inbox.lock().unwrap();
        let mut removed = Vec::new();
        for uid in uids {
            let deleted = inbox
                .messages
                .get(&uid.0)
                .is_some_and(|(flags, _)| flags.iter().any(|f| f == flags::DELETED));
            if deleted {
                inbox.messages.remove(&uid.0);
                removed.push(uid);
            }
        }
        std::future::ready(Ok(removed))
    }
}

/// A directory of one account.
struct MemBackend {
    account: MemAccount,
    passwords: HashMap<String, String>,
}

impl Backend for MemBackend {
    type Account = MemAccount;

    fn authenticate(
        &self,
        _client: std::net::IpAddr,
        user: &str,
        password: &str,
    ) -> impl Future<Output = Result<AccountInfo, DirectoryError>> + Send {
        let ok = self.passwords.get(user).is_some_and(|p| p == password);
        let info = self.account.info.clone();
        std::future::ready(if ok {
            Ok(info)
        } else {
            Err(DirectoryError::AuthFailed)
        })
    }

    fn open(
        &self,
        _account: &AccountInfo,
    ) -> impl Future<Output = Result<MemAccount, MailboxError>> + Send {
        std::future::ready(Ok(self.account.clone()))
    }

    async fn relay(
        &self,
        _account: &AccountInfo,
        _client: std::net::SocketAddr,
    ) -> Result<tern_mailbox::relay::RelayStream, MailboxError> {
        // The account is always here: `open` never says it is elsewhere.
        Err(MailboxError::ActorGone)
    }
}

const MESSAGES: [&[u8]; 3] = [
    b"From: bob@example.com\r\nSubject: one\r\n\r\nfirst line\r\n.dot line\r\nlast\r\n",
    b"From: carol@example.com\nSubject: two\n\nbare LF body\n",
    b"Subject: three\r\n\r\nno final newline",
];

fn backend() -> Arc<MemBackend> {
    let mut inbox = Inbox::default();
    for (i, body) in MESSAGES.iter().enumerate() {
        inbox
            .messages
            .insert(i as u32 + 1, (Vec::new(), Arc::new(body.to_vec())));
    }
    let account = MemAccount {
        info: AccountInfo {
            id: AccountId(1),
            address: USER.into(),
            quota: 0,
        },
        inbox: Arc::new(Mutex::new(inbox)),
    };
    Arc::new(MemBackend {
        account,
        passwords: HashMap::from([(USER.to_string(), PASSWORD.to_string())]),
    })
}

impl MemBackend {
    fn uids(&self) -> Vec<u32> {
        self.account
            .inbox
            .lock()
            .unwrap()
            .messages
            .keys()
            .copied()
            .collect()
    }

    fn flags(&self, uid: u32) -> Vec<String> {
        self.account.inbox.lock().unwrap().messages[&uid].0.clone()
    }
}

/// How a test server is set up.
struct Setup {
    limits: Limits,
    allow_plaintext: bool,
    tls: Option<TlsAcceptor>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            limits: Limits::default(),
            allow_plaintext: true,
            tls: None,
        }
    }
}

/// A listener that runs one session per accepted connection.
struct Server {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    sessions: tokio::sync::mpsc::UnboundedReceiver<JoinHandle<()>>,
}

impl Server {
    async fn start(backend: Arc<MemBackend>, setup: Setup) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let (tx, sessions) = tokio::sync::mpsc::unbounded_channel();
        let token = shutdown.clone();
        let setup = Arc::new(setup);
        tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let (backend, token, setup) = (backend.clone(), token.clone(), setup.clone());
                let handle = tokio::spawn(async move {
                    let conn = Connection::new(Stream::Plain(tcp), peer, addr);
                    let cfg = SessionConfig {
                        hostname: "pop.test",
                        tls: setup.tls.as_ref(),
                        limits: &setup.limits,
                        allow_plaintext_auth_on_loopback: setup.allow_plaintext,
                    };
                    session::run(conn, backend.as_ref(), &cfg, &token).await;
                });
                if tx.send(handle).is_err() {
                    break;
                }
            }
        });
        Server {
            addr,
            shutdown,
            sessions,
        }
    }

    async fn connect(&self) -> Client<TcpStream> {
        let mut client = Client::new(TcpStream::connect(self.addr).await.unwrap());
        assert!(client.line().await.starts_with("+OK pop.test"));
        client
    }

    /// Waits until the next session has ended (its UPDATE or clean-up is done).
    async fn session_ended(&mut self) {
        let handle = tokio::time::timeout(DEADLINE, self.sessions.recv())
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(DEADLINE, handle)
            .await
            .unwrap()
            .unwrap();
    }
}

/// A line-oriented POP3 client.
struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn new(stream: S) -> Client<S> {
        Client {
            io: BufReader::new(stream),
        }
    }

    async fn send(&mut self, line: &str) {
        self.io.get_mut().write_all(line.as_bytes()).await.unwrap();
        self.io.get_mut().write_all(b"\r\n").await.unwrap();
    }

    /// One reply line without CRLF; empty at end of stream.
    async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(DEADLINE, self.io.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert!(line.is_empty() || line.ends_with("\r\n"), "{line:?}");
        line.trim_end_matches("\r\n").to_string()
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(line).await;
        self.line().await
    }

    /// The lines of a multi-line reply, un-stuffed, without the terminator.
    async fn multiline(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            if line == "." {
                return lines;
            }
            let line = line.strip_prefix('.').map_or(line.clone(), str::to_string);
            lines.push(line);
        }
    }

    async fn login(&mut self) -> String {
        assert_eq!(self.cmd(&format!("USER {USER}")).await, "+OK send PASS");
        self.cmd(&format!("PASS {PASSWORD}")).await
    }

    async fn assert_closed(&mut self) {
        assert_eq!(self.line().await, "", "expected the server to close");
    }
}

fn octets(bodies: &[&[u8]]) -> usize {
    bodies.iter().map(|b| b.len()).sum()
}

#[tokio::test]
async fn capa_in_authorization_offers_login_on_loopback() {
    let server = Server::start(backend(), Setup::default()).await;
    let mut c = server.connect().await;
    assert_eq!(c.cmd("CAPA").await, "+OK Capability list follows");
    let caps = c.multiline().await;
    for cap in [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "USER",
        "SASL PLAIN",
        "IMPLEMENTATION Tern",
    ] {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing from {caps:?}");
    }
    assert!(!caps.iter().any(|c| c == "STLS"), "no certificate, no STLS");
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    c.assert_closed().await;
}

#[tokio::test]
async fn transaction_commands_and_update() {
    let backend = backend();
    let mut server = Server::start(backend.clone(), Setup::default()).await;
    let mut c = server.connect().await;
    let total = octets(&MESSAGES);
    assert_eq!(
        c.login().await,
        format!("+OK maildrop has 3 messages ({total} octets)")
    );
    assert_eq!(c.cmd("STAT").await, format!("+OK 3 {total}"));

    assert_eq!(
        c.cmd("LIST").await,
        format!("+OK 3 messages ({total} octets)")
    );
    let sizes: Vec<String> = MESSAGES
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {}", i + 1, m.len()))
        .collect();
    assert_eq!(c.multiline().await, sizes);
    assert_eq!(
        c.cmd("LIST 2").await,
        format!("+OK 2 {}", MESSAGES[1].len())
    );
    assert_eq!(c.cmd("LIST 4").await, "-ERR no such message");
    assert_eq!(c.cmd("LIST 0").await, "-ERR no such message");

    assert_eq!(c.cmd("UIDL").await, "+OK unique-id listing follows");
    assert_eq!(c.multiline().await, ["1 42.1", "2 42.2", "3 42.3"]);
    assert_eq!(c.cmd("UIDL 3").await, "+OK 3 42.3");

    assert_eq!(
        c.cmd("RETR 1").await,
        format!("+OK {} octets", MESSAGES[0].len())
    );
    assert_eq!(
        c.multiline().await,
        [
            "From: bob@example.com",
            "Subject: one",
            "",
            "first line",
            ".dot line",
            "last"
        ]
    );
    // Bare LFs go out as CRLF (checked by `line`), and a missing final newline is added.
    c.cmd("RETR 2").await;
    assert_eq!(
        c.multiline().await,
        [
            "From: carol@example.com",
            "Subject: two",
            "",
            "bare LF body"
        ]
    );
    c.cmd("RETR 3").await;
    assert_eq!(
        c.multiline().await,
        ["Subject: three", "", "no final newline"]
    );

    assert_eq!(c.cmd("TOP 1 1").await, "+OK top of message follows");
    assert_eq!(
        c.multiline().await,
        ["From: bob@example.com", "Subject: one", "", "first line"]
    );
    c.cmd("TOP 2 0").await;
    assert_eq!(
        c.multiline().await,
        ["From: carol@example.com", "Subject: two", ""]
    );

    assert_eq!(c.cmd("DELE 2").await, "+OK message deleted");
    assert_eq!(c.cmd("DELE 2").await, "-ERR message already deleted");
    assert_eq!(c.cmd("RETR 2").await, "-ERR no such message");
    assert_eq!(c.cmd("LIST 2").await, "-ERR no such message");
    let left = octets(&[MESSAGES[0], MESSAGES[2]]);
    assert_eq!(c.cmd("STAT").await, format!("+OK 2 {left}"));
    assert_eq!(c.cmd("UIDL").await, "+OK unique-id listing follows");
    assert_eq!(c.multiline().await, ["1 42.1", "3 42.3"]);

    assert_eq!(
        c.cmd("RSET").await,
        format!("+OK maildrop has 3 messages ({total} octets)")
    );
    assert_eq!(c.cmd("DELE 1").await, "+OK message deleted");
    assert_eq!(c.cmd("DELE 9").await, "-ERR no such message");
    assert_eq!(c.cmd("NOOP").await, "+OK");
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK pop.test POP3 server signing off (2 messages left)"
    );
    c.assert_closed().await;
    server.session_ended().await;

    assert_eq!(backend.uids(), [2, 3]);
    assert_eq!(backend.flags(2), [flags::SEEN]);
    assert_eq!(backend.flags(3), [flags::SEEN]);
}

#[tokio::test]
async fn top_does_not_mark_seen() {
    let backend = backend();
    let mut server = Server::start(backend.clone(), Setup::default()).await;
    let mut c = server.connect().await;
    c.login().await;
    c.cmd("TOP 1 5").await;
    c.multiline().await;
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    server.session_ended().await;
    assert!(backend.flags(1).is_empty());
}

#[tokio::test]
async fn connection_lost_without_quit_deletes_nothing() {
    let backend = backend();
    let mut server = Server::start(backend.clone(), Setup::default()).await;
    let mut c = server.connect().await;
    c.login().await;
    c.cmd("RETR 1").await;
    c.multiline().await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message deleted");
    assert_eq!(c.cmd("DELE 3").await, "+OK message deleted");
    drop(c);
    server.session_ended().await;
    assert_eq!(backend.uids(), [1, 2, 3]);
    // The deletion never happened, so the download still counts as reading it.
    assert_eq!(backend.flags(1), [flags::SEEN]);

    // The lock went with the session: a new one logs in and sees everything.
    let mut c = server.connect().await;
    assert!(c.login().await.starts_with("+OK maildrop has 3 messages"));
}

#[tokio::test]
async fn retrieved_messages_are_marked_seen_even_without_quit() {
    let backend = backend();
    let mut server = Server::start(backend.clone(), Setup::default()).await;
    let mut c = server.connect().await;
    c.login().await;
    c.cmd("RETR 2").await;
    c.multiline().await;
    drop(c);
    server.session_ended().await;
    assert_eq!(backend.flags(2), [flags::SEEN]);
    assert!(backend.flags(1).is_empty());
}

#[tokio::test]
async fn second_session_gets_in_use() {
    let backend = backend();
    let mut server = Server::start(backend, Setup::default()).await;
    let mut first = server.connect().await;
    assert!(first.login().await.starts_with("+OK"));
    let mut second = server.connect().await;
    assert_eq!(
        second.login().await,
        "-ERR [IN-USE] maildrop already locked"
    );
    // Still in AUTHORIZATION: the client may retry once the other session is gone.
    assert_eq!(
        second.cmd("STAT").await,
        "-ERR command not valid in this state"
    );
    assert!(first.cmd("QUIT").await.starts_with("+OK"));
    server.session_ended().await;
    assert!(second.login().await.starts_with("+OK maildrop has 3"));
}

#[tokio::test]
async fn bad_credentials_then_close_at_the_limit() {
    let setup = Setup {
        limits: Limits {
            max_auth_failures: 2,
            ..Limits::default()
        },
        ..Setup::default()
    };
    let server = Server::start(backend(), setup).await;
    let mut c = server.connect().await;
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK send PASS");
    assert_eq!(c.cmd("PASS wrong").await, "-ERR [AUTH] invalid credentials");
    assert_eq!(c.cmd("PASS again").await, "-ERR send USER first");
    c.send("USER nobody@example.com").await;
    c.line().await;
    assert!(
        c.cmd("PASS wrong")
            .await
            .starts_with("-ERR [AUTH] invalid credentials")
    );
    c.assert_closed().await;
}

#[tokio::test]
async fn plaintext_login_needs_tls_off_loopback_exemption() {
    let setup = Setup {
        allow_plaintext: false,
        ..Setup::default()
    };
    let server = Server::start(backend(), setup).await;
    let mut c = server.connect().await;
    c.cmd("CAPA").await;
    let caps = c.multiline().await;
    assert!(!caps.iter().any(|c| c == "USER" || c.starts_with("SASL")));
    assert!(
        c.cmd("USER x@example.com")
            .await
            .starts_with("-ERR [AUTH] ")
    );
    assert!(c.cmd("PASS x").await.starts_with("-ERR [AUTH] "));
    assert!(
        c.cmd("AUTH PLAIN AGEAYg==")
            .await
            .starts_with("-ERR [AUTH] ")
    );
}

fn plain(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

#[tokio::test]
async fn auth_plain_with_initial_response() {
    let server = Server::start(backend(), Setup::default()).await;
    let mut c = server.connect().await;
    let reply = c
        .cmd(&format!("AUTH PLAIN {}", plain(USER, PASSWORD)))
        .await;
    assert!(reply.starts_with("+OK maildrop has 3 messages"), "{reply}");
    assert!(c.cmd("STAT").await.starts_with("+OK 3 "));
}

#[tokio::test]
async fn auth_plain_with_continuation_and_cancel() {
    let server = Server::start(backend(), Setup::default()).await;
    let mut c = server.connect().await;
    assert_eq!(c.cmd("AUTH").await, "+OK SASL mechanisms follow");
    assert_eq!(c.multiline().await, ["PLAIN"]);
    assert_eq!(
        c.cmd("AUTH CRAM-MD5").await,
        "-ERR unsupported SASL mechanism"
    );
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd("*").await, "-ERR authentication cancelled");
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd("not base64!").await, "-ERR malformed SASL response");
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    let reply = c.cmd(&plain(USER, PASSWORD)).await;
    assert!(reply.starts_with("+OK maildrop has 3 messages"), "{reply}");
}

#[tokio::test]
async fn state_gate_and_bad_input() {
    let server = Server::start(backend(), Setup::default()).await;
    let mut c = server.connect().await;
    assert_eq!(c.cmd("STAT").await, "-ERR command not valid in this state");
    assert_eq!(
        c.cmd("RETR 1").await,
        "-ERR command not valid in this state"
    );
    assert_eq!(c.cmd("HELO x").await, "-ERR unknown command");
    assert_eq!(c.cmd("PASS x").await, "-ERR send USER first");
    let long = format!("USER {}", "x".repeat(600));
    assert_eq!(c.cmd(&long).await, "-ERR line too long");
    assert_eq!(
        c.cmd("USER a\u{1}b").await,
        "-ERR invalid characters in command"
    );
    c.login().await;
    assert_eq!(
        c.cmd("USER x").await,
        "-ERR command not valid in this state"
    );
    assert_eq!(c.cmd("RETR x").await, "-ERR syntax error: invalid number");
    assert_eq!(c.cmd("STLS").await, "-ERR command not valid in this state");
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let server = Server::start(backend(), Setup::default()).await;
    let mut c = server.connect().await;
    let batch = format!("USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\nQUIT\r\n");
    c.io.get_mut().write_all(batch.as_bytes()).await.unwrap();
    assert_eq!(c.line().await, "+OK send PASS");
    assert!(c.line().await.starts_with("+OK maildrop has 3"));
    assert!(c.line().await.starts_with("+OK 3 "));
    assert_eq!(c.line().await, format!("+OK 1 {}", MESSAGES[0].len()));
    assert_eq!(c.line().await, "+OK 1 42.1");
    assert!(
        c.line()
            .await
            .starts_with("+OK pop.test POP3 server signing off")
    );
    c.assert_closed().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_without_update() {
    let backend = backend();
    let mut server = Server::start(backend.clone(), Setup::default()).await;
    let mut c = server.connect().await;
    c.login().await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message deleted");
    server.shutdown.cancel();
    assert_eq!(c.line().await, "-ERR [SYS/TEMP] server shutting down");
    c.assert_closed().await;
    server.session_ended().await;
    assert_eq!(backend.uids(), [1, 2, 3]);
}

#[tokio::test]
async fn idle_clients_are_dropped_silently() {
    let setup = Setup {
        limits: Limits {
            pop3_idle_timeout_secs: 1,
            ..Limits::default()
        },
        ..Setup::default()
    };
    let server = Server::start(backend(), setup).await;
    let mut c = server.connect().await;
    // RFC 1939 §3: the autologout timer closes the connection without a response.
    c.assert_closed().await;
}

#[tokio::test]
async fn storage_outage_is_a_temporary_error() {
    let backend = backend();
    backend.account.inbox.lock().unwrap().unavailable = true;
    let mut server = Server::start(backend.clone(), Setup::default()).await;
    let mut c = server.connect().await;
    assert_eq!(
        c.login().await,
        "-ERR [SYS/TEMP] temporarily unavailable, try again later"
    );
    backend.account.inbox.lock().unwrap().unavailable = false;
    // The failed attempt released the lock: the retry succeeds on the same connection.
    assert!(c.login().await.starts_with("+OK maildrop has 3"));
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    server.session_ended().await;
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost`, and a connector that
/// trusts it.
fn tls_pair() -> (TlsAcceptor, tokio_rustls::TlsConnector) {
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = generated.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        tokio_rustls::TlsConnector::from(Arc::new(client)),
    )
}

#[tokio::test]
async fn stls_upgrades_and_unlocks_login() {
    let (acceptor, connector) = tls_pair();
    let setup = Setup {
        allow_plaintext: false,
        tls: Some(acceptor),
        ..Setup::default()
    };
    let server = Server::start(backend(), setup).await;
    let mut c = server.connect().await;
    c.cmd("CAPA").await;
    assert!(c.multiline().await.iter().any(|c| c == "STLS"));
    assert!(
        c.cmd(&format!("USER {USER}"))
            .await
            .starts_with("-ERR [AUTH]")
    );
    assert_eq!(c.cmd("STLS").await, "+OK Begin TLS negotiation");

    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, c.io.into_inner()).await.unwrap();
    let mut c = Client::new(tls);
    c.send("CAPA").await;
    assert_eq!(c.line().await, "+OK Capability list follows");
    let caps = c.multiline().await;
    assert!(caps.iter().any(|c| c == "USER"), "{caps:?}");
    assert!(!caps.iter().any(|c| c == "STLS"), "{caps:?}");
    assert_eq!(c.cmd("STLS").await, "-ERR already using TLS");
    assert!(c.login().await.starts_with("+OK maildrop has 3"));
}
