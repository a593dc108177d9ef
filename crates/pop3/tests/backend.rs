//! POP3 sessions against the real backend: a one-node Raft on RocksDB in a temporary
//! directory with four partitions, the directory and the mailbox actors, driven over loopback
//! TCP the way a mail client would.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tern_core::config::Limits;
use tern_core::flags;
use tern_core::net::{Connection, Stream};
use tern_directory::Directory;
use tern_mailbox::{Account, Mailboxes};
use tern_pop3::Pop3Context;
use tern_raft::RaftNode;
use tern_raft::testing::{run, start_node};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const USER: &str = "pop@example.com";
const PASSWORD: &str = "s3cret pass";
/// Every wait ends here at the latest, so a bug fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(30);

const MESSAGES: [&str; 3] = [
    "From: a@example.net\r\nSubject: first\r\n\r\nhello\r\n.leading dot\r\nbye\r\n",
    "From: b@example.net\r\nSubject: second\r\n\r\nline 1\r\nline 2\r\nline 3\r\n",
    "From: c@example.net\r\nSubject: third\r\n\r\nthe end\r\n",
];

/// A node with one account holding [`MESSAGES`], and a POP3 listener in front of it.
struct Node {
    raft: RaftNode,
    mailboxes: Mailboxes,
    account: Account,
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    sessions: tokio::sync::mpsc::UnboundedReceiver<JoinHandle<()>>,
}

impl Node {
    async fn start(dir: PathBuf) -> Node {
        let raft = start_node(dir).await;
        let directory = Directory::new(raft.clone());
        let mailboxes = Mailboxes::new(raft.clone());
        directory.add_domain("example.com").await.unwrap();
        let info = directory.add_account(USER, PASSWORD, 0).await.unwrap();
        let account = mailboxes.open(&info).await.unwrap();
        for body in MESSAGES {
            account
                .append("INBOX", body.as_bytes().to_vec(), vec![], None)
                .await
                .unwrap();
        }
        let ctx = Arc::new(Pop3Context {
            hostname: "pop.test".into(),
            directory,
            mailboxes: mailboxes.clone(),
            tls: None,
            limits: Limits::default(),
            allow_plaintext_auth_on_loopback: true,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let (tx, sessions) = tokio::sync::mpsc::unbounded_channel();
        let token = shutdown.clone();
        tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let conn = Connection::new(Stream::Plain(tcp), peer, addr);
                let session = tern_pop3::run_session(conn, ctx.clone(), token.clone());
                if tx.send(tokio::spawn(session)).is_err() {
                    break;
                }
            }
        });
        Node {
            raft,
            mailboxes,
            account,
            addr,
            shutdown,
            sessions,
        }
    }

    async fn connect(&self) -> Client {
        let mut client = Client {
            io: BufReader::new(TcpStream::connect(self.addr).await.unwrap()),
        };
        assert!(client.line().await.starts_with("+OK pop.test"));
        client
    }

    /// Waits until the next session has finished, UPDATE included.
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

    async fn stop(self) {
        self.shutdown.cancel();
        self.mailboxes.shutdown().await;
        self.raft.shutdown().await;
    }
}

struct Client {
    io: BufReader<TcpStream>,
}

impl Client {
    async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(DEADLINE, self.io.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        line.trim_end_matches("\r\n").to_string()
    }

    async fn cmd(&mut self, line: &str) -> String {
        let stream = self.io.get_mut();
        stream.write_all(line.as_bytes()).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
        self.line().await
    }

    async fn multiline(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            if line == "." {
                return lines;
            }
            lines.push(line.strip_prefix('.').map_or(line.clone(), str::to_string));
        }
    }

    async fn login(&mut self) -> String {
        assert_eq!(self.cmd(&format!("USER {USER}")).await, "+OK send PASS");
        self.cmd(&format!("PASS {PASSWORD}")).await
    }
}

fn lines(body: &str) -> Vec<String> {
    body.trim_end_matches("\r\n")
        .split("\r\n")
        .map(str::to_string)
        .collect()
}

#[test]
fn download_delete_and_quit() {
    run(|dir| async move {
        let mut node = Node::start(dir).await;
        let uidvalidity = node.account.status("INBOX").await.unwrap().uidvalidity;
        let uids: Vec<u32> = node
            .account
            .snapshot("INBOX")
            .await
            .unwrap()
            .messages
            .iter()
            .map(|m| m.uid.0)
            .collect();
        let total: usize = MESSAGES.iter().map(|m| m.len()).sum();

        let mut c = node.connect().await;
        assert_eq!(
            c.login().await,
            format!("+OK maildrop has 3 messages ({total} octets)")
        );
        assert_eq!(c.cmd("STAT").await, format!("+OK 3 {total}"));
        c.cmd("LIST").await;
        let sizes: Vec<String> = (1..)
            .zip(MESSAGES)
            .map(|(n, m)| format!("{n} {}", m.len()))
            .collect();
        assert_eq!(c.multiline().await, sizes);
        c.cmd("UIDL").await;
        let ids: Vec<String> = (1..)
            .zip(&uids)
            .map(|(n, uid)| format!("{n} {uidvalidity}.{uid}"))
            .collect();
        assert_eq!(c.multiline().await, ids);

        assert_eq!(
            c.cmd("RETR 1").await,
            format!("+OK {} octets", MESSAGES[0].len())
        );
        assert_eq!(c.multiline().await, lines(MESSAGES[0]));
        assert_eq!(c.cmd("TOP 2 1").await, "+OK top of message follows");
        assert_eq!(
            c.multiline().await,
            ["From: b@example.net", "Subject: second", "", "line 1"]
        );

        assert_eq!(c.cmd("DELE 3").await, "+OK message deleted");
        assert_eq!(
            c.cmd("RSET").await,
            format!("+OK maildrop has 3 messages ({total} octets)")
        );
        assert_eq!(c.cmd("DELE 2").await, "+OK message deleted");
        assert_eq!(c.cmd("LIST 2").await, "-ERR no such message");
        assert_eq!(
            c.cmd("QUIT").await,
            "+OK pop.test POP3 server signing off (2 messages left)"
        );
        node.session_ended().await;

        let inbox = node.account.snapshot("INBOX").await.unwrap();
        let left: Vec<u32> = inbox.messages.iter().map(|m| m.uid.0).collect();
        assert_eq!(left, [uids[0], uids[2]]);
        assert!(inbox.messages[0].flags.iter().any(|f| f == flags::SEEN));
        assert!(!inbox.messages[1].flags.iter().any(|f| f == flags::SEEN));
        node.stop().await;
    });
}

#[test]
fn second_session_is_refused_while_the_first_holds_the_lock() {
    run(|dir| async move {
        let mut node = Node::start(dir).await;
        let mut first = node.connect().await;
        assert!(first.login().await.starts_with("+OK maildrop has 3"));
        assert_eq!(first.cmd("DELE 1").await, "+OK message deleted");

        let mut second = node.connect().await;
        assert_eq!(
            second.login().await,
            "-ERR [IN-USE] maildrop already locked"
        );

        // The first connection drops without QUIT: nothing is deleted and the lock is released.
        drop(first);
        node.session_ended().await;
        assert_eq!(
            node.account.snapshot("INBOX").await.unwrap().messages.len(),
            3
        );
        assert!(second.login().await.starts_with("+OK maildrop has 3"));
        assert!(second.cmd("QUIT").await.starts_with("+OK"));
        node.stop().await;
    });
}
