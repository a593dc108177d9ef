//! SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN: the challenge/response exchange.
//! Credential checks are the directory's job.

use crate::replies::{self, Reply};
use std::io;
use tern_core::net::{Connection, ReadError};
use tern_directory::sasl;

/// The result of an exchange.
pub enum Exchange {
    /// The client sent a user name and password.
    Credentials(String, String),
    /// The exchange ended with this reply (cancelled, malformed, unknown mechanism).
    Failed(Reply),
    /// The connection went away.
    Closed,
}

/// Runs the exchange for `mechanism`, starting with the optional initial response.
pub async fn exchange(
    conn: &mut Connection,
    mechanism: &str,
    initial: Option<String>,
    max_line: usize,
) -> io::Result<Exchange> {
    match mechanism {
        "PLAIN" => {
            let response = match initial {
                Some(r) if r == "=" => String::new(),
                Some(r) => r,
                None => match challenge(conn, "", max_line).await? {
                    Some(r) => r,
                    None => return Ok(Exchange::Closed),
                },
            };
            Ok(match sasl::decode_plain(&response) {
                Ok((user, pass)) => Exchange::Credentials(user, pass),
                Err(e) => Exchange::Failed(sasl_failure(e)),
            })
        }
        "LOGIN" => {
            let user_b64 = match initial {
                Some(r) => r,
                None => match challenge(conn, "VXNlcm5hbWU6", max_line).await? {
                    Some(r) => r,
                    None => return Ok(Exchange::Closed),
                },
            };
            let user = match sasl::decode_login_step(&user_b64) {
                Ok(u) => u,
                Err(e) => return Ok(Exchange::Failed(sasl_failure(e))),
            };
            let Some(pass_b64) = challenge(conn, "UGFzc3dvcmQ6", max_line).await? else {
                return Ok(Exchange::Closed);
            };
            Ok(match sasl::decode_login_step(&pass_b64) {
                Ok(pass) => Exchange::Credentials(user, pass),
                Err(e) => Exchange::Failed(sasl_failure(e)),
            })
        }
        _ => Ok(Exchange::Failed(replies::UNSUPPORTED_MECHANISM)),
    }
}

fn sasl_failure(e: sasl::SaslError) -> Reply {
    match e {
        sasl::SaslError::Cancelled => replies::AUTH_CANCELLED,
        other => Reply::new(501, "5.5.2", format!("Cannot decode response: {other}")),
    }
}

/// Sends `334 <text>` and reads the client's line; `None` if the client left.
async fn challenge(
    conn: &mut Connection,
    text: &str,
    max_line: usize,
) -> io::Result<Option<String>> {
    conn.write(format!("334 {text}\r\n").as_bytes());
    match conn.read_line(max_line).await {
        Ok(Some(line)) => Ok(Some(String::from_utf8_lossy(&line).trim().to_string())),
        Ok(None) => Ok(None),
        Err(ReadError::TooLong(_)) => Ok(Some(String::new())),
        Err(ReadError::BareLineEnding) => {
            // Answered here; the session closes as if the client had left.
            conn.write(&replies::BARE_LINE_ENDING.to_bytes());
            Ok(None)
        }
        Err(ReadError::Io(e)) => Err(e),
    }
}
