//! IDLE (RFC 2177): push changes to the client until it says DONE.

use crate::session::{Flow, Session};
use std::time::Duration;
use tern_core::net::ReadError;
use tokio::sync::broadcast::error::RecvError;

impl Session {
    pub(crate) async fn idle(&mut self, tag: &str) -> std::io::Result<Flow> {
        let Some(account) = self.account() else {
            self.tagged(tag, "BAD Not authenticated");
            return Ok(Flow::Continue);
        };
        // Subscribe before the first refresh, so nothing falls between the two.
        let mut events = account.watch();
        self.untagged("+ idling");
        self.refresh(true, false).await;
        self.emit();
        self.conn.flush().await?;
        let timeout = Duration::from_secs(self.ctx.limits.imap_idle_timeout_secs);
        // IDLE bounds its own wait for DONE (below); the command loop sets the bound again.
        self.conn.set_read_timeout(None);
        let max_line = self.ctx.limits.max_line_length;
        let shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.untagged("* BYE Server shutting down");
                    return Ok(Flow::Close);
                }
                event = events.recv() => {
                    match event {
                        Ok(_) | Err(RecvError::Lagged(_)) => {
                            self.refresh(true, false).await;
                            self.emit();
                            self.conn.flush().await?;
                        }
                        Err(RecvError::Closed) => {
                            self.untagged("* BYE Mailbox moved, please reconnect");
                            return Ok(Flow::Close);
                        }
                    }
                }
                line = tokio::time::timeout(timeout, self.conn.read_line(max_line)) => {
                    return match line {
                        Err(_) => {
                            self.untagged("* BYE Autologout; idle for too long");
                            Ok(Flow::Close)
                        }
                        Ok(Ok(Some(l))) if l.eq_ignore_ascii_case(b"DONE") => {
                            self.tagged(tag, "OK IDLE terminated");
                            Ok(Flow::Continue)
                        }
                        Ok(Ok(Some(_))) | Ok(Err(ReadError::TooLong(_))) => {
                            self.tagged(tag, "BAD Expected DONE");
                            Ok(Flow::Continue)
                        }
                        Ok(Ok(None)) => Ok(Flow::Close),
                        Ok(Err(ReadError::BareLineEnding)) => {
                            self.untagged("* BYE Bare LF or CR received; lines end with CRLF");
                            Ok(Flow::Close)
                        }
                        Ok(Err(ReadError::Io(e))) => Err(e),
                    };
                }
            }
        }
    }
}
