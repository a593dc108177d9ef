//! The outbound relay end to end inside one process: a real single-node Raft queue delivers to
//! a small SMTP server on 127.0.0.1 (reached through address literals, so no DNS is needed).
//! The server accepts, defers (450) or refuses (550) per recipient and offers STARTTLS with a
//! self-signed certificate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tern_core::config::{DnsConfig, RelayConfig, StartTls};
use tern_core::records::{QueueRecord, QueuedRecipient};
use tern_directory::{AccountInfo, Directory, Recipient};
use tern_mailbox::Mailboxes;
use tern_queue::{Envelope, Queue, Relay};
use tern_raft::RaftNode;
use tern_raft::testing::{run, start_node};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

const DEADLINE: Duration = Duration::from_secs(30);

/// One message the mock server accepted.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
    tls: bool,
}

#[derive(Default)]
struct MockState {
    /// Reply to RCPT by local part (default: accept).
    policy: HashMap<String, String>,
    received: Vec<Received>,
    offer_starttls: bool,
}

/// A scripted SMTP server.
#[derive(Clone)]
struct Mock {
    state: Arc<Mutex<MockState>>,
    port: u16,
}

impl Mock {
    async fn start(offer_starttls: bool) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mock = Mock {
            state: Arc::new(Mutex::new(MockState {
                offer_starttls,
                ..MockState::default()
            })),
            port,
        };
        let acceptor = acceptor();
        let served = mock.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let mock = served.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move { mock.connection(tcp, acceptor).await });
            }
        });
        mock
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().unwrap()
    }

    fn set_policy(&self, local: &str, reply: Option<&str>) {
        let mut state = self.state();
        match reply {
            Some(r) => state.policy.insert(local.into(), r.into()),
            None => state.policy.remove(local),
        };
    }

    fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    fn copies_for(&self, rcpt: &str) -> usize {
        self.received()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == rcpt))
            .count()
    }

    async fn connection(&self, tcp: TcpStream, acceptor: TlsAcceptor) {
        let Some(tcp) = self.session(tcp, false, true).await else {
            return;
        };
        if let Ok(tls) = acceptor.accept(tcp).await {
            self.session(tls, true, false).await;
        }
    }

    /// Serves commands; returns the stream when the client asked for STARTTLS.
    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        tls: bool,
        greet: bool,
    ) -> Option<S> {
        let mut conn = BufReader::new(stream);
        if greet {
            conn.get_mut()
                .write_all(b"220 mock.test ESMTP\r\n")
                .await
                .ok()?;
        }
        let mut from = String::new();
        let mut to: Vec<String> = Vec::new();
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            let upper = line.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") {
                let starttls = self.state().offer_starttls && !tls;
                let mut r = "250-mock.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n".to_string();
                if starttls {
                    r.push_str("250-STARTTLS\r\n");
                }
                r.push_str("250 8BITMIME\r\n");
                r
            } else if upper.starts_with("STARTTLS") {
                conn.get_mut()
                    .write_all(b"220 2.0.0 go ahead\r\n")
                    .await
                    .ok()?;
                return Some(conn.into_inner());
            } else if upper.starts_with("MAIL FROM:") {
                from = between(&line, '<', '>');
                to.clear();
                "250 2.1.0 ok\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                let rcpt = between(&line, '<', '>');
                let local = rcpt.split('@').next().unwrap_or("").to_string();
                let policy = self.state().policy.get(&local).cloned();
                match policy {
                    Some(reply) => format!("{reply}\r\n"),
                    None => {
                        to.push(rcpt);
                        "250 2.1.5 ok\r\n".into()
                    }
                }
            } else if upper.starts_with("DATA") {
                if to.is_empty() {
                    "554 5.5.1 no valid recipients\r\n".into()
                } else {
                    conn.get_mut().write_all(b"354 go on\r\n").await.ok()?;
                    let mut data = Vec::new();
                    loop {
                        let mut l = Vec::new();
                        if conn.read_until(b'\n', &mut l).await.ok()? == 0 {
                            return None;
                        }
                        if l == b".\r\n" {
                            break;
                        }
                        let unstuffed = if l.starts_with(b"..") {
                            &l[1..]
                        } else {
                            &l[..]
                        };
                        data.extend_from_slice(unstuffed);
                    }
                    self.state().received.push(Received {
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        data,
                        tls,
                    });
                    "250 2.0.0 queued\r\n".into()
                }
            } else if upper.starts_with("RSET") {
                to.clear();
                "250 2.0.0 ok\r\n".into()
            } else if upper.starts_with("QUIT") {
                let _ = conn.get_mut().write_all(b"221 2.0.0 bye\r\n").await;
                return None;
            } else {
                "502 5.5.2 unknown\r\n".into()
            };
            conn.get_mut().write_all(reply.as_bytes()).await.ok()?;
        }
    }
}

fn between(line: &str, open: char, close: char) -> String {
    let start = line.find(open).map_or(0, |i| i + 1);
    let end = line[start..].find(close).map_or(line.len(), |i| start + i);
    line[start..end].to_string()
}

fn acceptor() -> TlsAcceptor {
    let generated = rcgen::generate_simple_self_signed(vec!["mock.test".into()]).unwrap();
    let cert = generated.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

struct World {
    raft: RaftNode,
    directory: Directory,
    mailboxes: Mailboxes,
    queue: Queue,
    alice: AccountInfo,
}

impl World {
    async fn start(dir: PathBuf, relay: RelayConfig) -> World {
        let raft = start_node(dir).await;
        let directory = Directory::new(raft.clone());
        directory.add_domain("here.test").await.unwrap();
        let alice = directory
            .add_account("alice@here.test", "pw", 0)
            .await
            .unwrap();
        let mailboxes = Mailboxes::new(raft.clone());
        // No DNS server answers: only address literals can be delivered.
        let dns = DnsConfig {
            servers: vec!["127.0.0.1:9".into()],
            timeout_secs: 1,
        };
        let relay = Relay::new("mx.here.test", &relay, &dns).unwrap();
        let queue = Queue::start(
            raft.clone(),
            relay,
            std::time::Duration::from_secs(7 * 86400),
        )
        .await
        .unwrap();
        World {
            raft,
            directory,
            mailboxes,
            queue,
            alice,
        }
    }

    /// Alice sends `body` to `to` (as SMTP submission would queue it).
    async fn send(&self, sender: &str, to: &[String], body: &str) -> tern_core::DeliveryId {
        let envelope = Envelope {
            sender: sender.into(),
            recipients: to.iter().map(|r| Recipient::Remote(r.clone())).collect(),
            body: body.as_bytes().to_vec(),
            sender_account: Some(self.alice.id),
            mailbox: None,
        };
        self.queue.accept(envelope).await.unwrap().id
    }

    async fn inbox(&self) -> Vec<Vec<u8>> {
        let account = self.mailboxes.open(&self.alice).await.unwrap();
        let snap = account.snapshot("INBOX").await.unwrap();
        let mut out = Vec::new();
        for m in snap.messages {
            out.push(account.read_blob(m.blob).await.unwrap().to_vec());
        }
        out
    }

    async fn stop(self) {
        self.queue.shutdown().await;
        self.mailboxes.shutdown().await;
        self.raft.shutdown().await;
        drop(self.directory);
    }
}

/// Polls `check` until it returns `Some`, failing the test at the deadline.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn quick(port: u16) -> RelayConfig {
    RelayConfig {
        port,
        retry_initial_secs: 1,
        retry_max_secs: 1,
        connect_timeout_secs: 5,
        command_timeout_secs: 10,
        ..RelayConfig::default()
    }
}

fn remote_state(q: &[QueueRecord], rcpt: &str) -> Option<(u32, Option<String>)> {
    q.iter()
        .flat_map(|r| r.recipients.iter())
        .find_map(|r| match r {
            QueuedRecipient::Remote {
                address,
                attempts,
                last_error,
                ..
            } if address == rcpt => Some((*attempts, last_error.clone())),
            _ => None,
        })
}

fn text_of(message: &[u8]) -> String {
    String::from_utf8_lossy(message).into_owned()
}

#[test]
fn accepted_deferred_and_refused_recipients() {
    run(|dir| async move {
        let mock = Mock::start(true).await;
        mock.set_policy("later", Some("450 4.2.0 try again later"));
        mock.set_policy("nobody", Some("550 5.1.1 no such user"));
        let w = World::start(dir, quick(mock.port)).await;
        let ok = "ok@[127.0.0.1]".to_string();
        let later = "later@[127.0.0.1]".to_string();
        let nobody = "nobody@[127.0.0.1]".to_string();
        let body =
            "Return-Path: <alice@here.test>\r\nSubject: hello\r\n\r\n.leading dot\r\nbye\r\n";
        let id = w
            .send(
                "alice@here.test",
                &[ok.clone(), later.clone(), nobody.clone()],
                body,
            )
            .await;

        // The accepted recipient gets the message once, over TLS, without our Return-Path,
        // with its leading dot intact.
        let delivered = eventually("the delivery", || async {
            mock.received().into_iter().find(|m| m.to.contains(&ok))
        })
        .await;
        assert!(delivered.tls, "STARTTLS was offered, so it was used");
        assert_eq!(delivered.from, "alice@here.test");
        assert_eq!(
            text_of(&delivered.data),
            "Subject: hello\r\n\r\n.leading dot\r\nbye\r\n"
        );

        // The refused one comes back to Alice as a DSN in her INBOX.
        let dsn = eventually("the DSN", || async { w.inbox().await.into_iter().next() }).await;
        let parsed = mail_parser::MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Undelivered Mail Returned to Sender")
        );
        let dsn_text = text_of(&dsn);
        assert!(dsn_text.contains("multipart/report"));
        assert!(dsn_text.contains("Final-Recipient: rfc822; nobody@[127.0.0.1]"));
        assert!(dsn_text.contains("Status: 5.1.1"));
        assert!(dsn_text.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user"));
        assert!(
            dsn_text.contains("Subject: hello"),
            "the original header is quoted"
        );

        // The deferred one stays queued with its error, and is retried ...
        let (attempts, error) = eventually("two deferrals", || async {
            let q = w.queue.list().await.unwrap();
            remote_state(&q, &later).filter(|(n, _)| *n >= 2)
        })
        .await;
        assert!(attempts >= 2);
        assert!(error.unwrap_or_default().contains("450 4.2.0"));
        let listed = w.queue.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, id);
        assert_eq!(
            listed[0].recipients.len(),
            1,
            "only the deferred one is left"
        );

        // ... until the remote accepts it; then the queue drains.
        mock.set_policy("later", None);
        eventually("the queue to drain", || async {
            w.queue.list().await.unwrap().is_empty().then_some(())
        })
        .await;
        assert_eq!(mock.copies_for(&later), 1);
        assert_eq!(mock.copies_for(&ok), 1, "delivered exactly once");
        assert_eq!(
            w.inbox().await.len(),
            1,
            "one DSN, for the refused recipient only"
        );
        w.stop().await;
    });
}

#[test]
fn null_sender_loops_and_expiry() {
    run(|dir| async move {
        let mock = Mock::start(false).await;
        mock.set_policy("nobody", Some("550 5.1.1 no such user"));
        mock.set_policy("later", Some("451 4.3.0 busy"));
        let relay = RelayConfig {
            // Everything that fails even once is already too old.
            give_up_after_secs: 0,
            max_hops: 3,
            ..quick(mock.port)
        };
        let w = World::start(dir, relay).await;

        // A bounce from the null sender is never bounced back.
        w.send(
            "",
            &["nobody@[127.0.0.1]".into()],
            "Subject: bounce\r\n\r\nx\r\n",
        )
        .await;
        // A looping message is bounced without being sent.
        let looping = "Received: a\r\nReceived: b\r\nReceived: c\r\nReceived: d\r\nSubject: loop\r\n\r\nx\r\n";
        w.send("alice@here.test", &["ok@[127.0.0.1]".into()], looping)
            .await;
        // A temporary failure past give_up_after_secs bounces (status 4.4.7).
        w.send(
            "alice@here.test",
            &["later@[127.0.0.1]".into()],
            "Subject: late\r\n\r\nx\r\n",
        )
        .await;

        eventually("the queue to drain", || async {
            w.queue.list().await.unwrap().is_empty().then_some(())
        })
        .await;
        let dsns = eventually("two DSNs", || async {
            let inbox = w.inbox().await;
            (inbox.len() >= 2).then_some(inbox)
        })
        .await;
        let texts: Vec<String> = dsns.iter().map(|d| text_of(d)).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("Status: 5.4.6") && t.contains("Subject: loop"))
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("Status: 4.4.7") && t.contains("451 4.3.0 busy"))
        );
        assert!(mock.received().is_empty(), "nothing was delivered");
        assert_eq!(w.inbox().await.len(), 2, "no DSN for the null sender");
        w.stop().await;
    });
}

#[test]
fn required_tls_defers_when_not_offered() {
    run(|dir| async move {
        let mock = Mock::start(false).await;
        let relay = RelayConfig {
            starttls: StartTls::Required,
            ..quick(mock.port)
        };
        let w = World::start(dir, relay).await;
        let rcpt = "ok@[127.0.0.1]".to_string();
        w.send(
            "alice@here.test",
            std::slice::from_ref(&rcpt),
            "Subject: x\r\n\r\nx\r\n",
        )
        .await;
        let (_, error) = eventually("a deferral", || async {
            let q = w.queue.list().await.unwrap();
            remote_state(&q, &rcpt).filter(|(n, _)| *n >= 1)
        })
        .await;
        assert!(error.unwrap_or_default().contains("STARTTLS"));
        assert!(mock.received().is_empty());
        // Once the server offers STARTTLS, the message goes, encrypted.
        mock.state().offer_starttls = true;
        let delivered = eventually("the delivery", || async {
            mock.received().into_iter().next()
        })
        .await;
        assert!(delivered.tls);
        w.stop().await;
    });
}

#[test]
fn one_delay_notice_while_retrying() {
    run(|dir| async move {
        let mock = Mock::start(false).await;
        mock.set_policy("later", Some("450 4.2.0 try again later"));
        let relay = RelayConfig {
            delay_notice_after_secs: 1,
            ..quick(mock.port)
        };
        let w = World::start(dir, relay).await;
        let rcpt = "later@[127.0.0.1]".to_string();
        w.send(
            "alice@here.test",
            std::slice::from_ref(&rcpt),
            "Subject: slow\r\n\r\nx\r\n",
        )
        .await;
        let notice = eventually("the delay notice", || async {
            w.inbox().await.into_iter().next()
        })
        .await;
        let text = text_of(&notice);
        assert!(text.contains("Action: delayed"), "{text}");
        assert!(text.contains("Will-Retry-Until: "));
        // Several more deferrals later there is still exactly one notice.
        let attempts_now =
            remote_state(&w.queue.list().await.unwrap(), &rcpt).map_or(0, |(n, _)| n);
        eventually("three more deferrals", || async {
            let q = w.queue.list().await.unwrap();
            remote_state(&q, &rcpt).filter(|(n, _)| *n >= attempts_now + 3)
        })
        .await;
        assert_eq!(w.inbox().await.len(), 1, "the delay notice is sent once");
        mock.set_policy("later", None);
        eventually("the queue to drain", || async {
            w.queue.list().await.unwrap().is_empty().then_some(())
        })
        .await;
        assert_eq!(mock.copies_for(&rcpt), 1);
        w.stop().await;
    });
}
