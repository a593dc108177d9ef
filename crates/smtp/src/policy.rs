//! What the inbound filter and DKIM signing do to a message at the end of DATA, before it is
//! committed: on the MX listener, the SPF/DKIM/DMARC verdict (refuse, file to Junk, or accept)
//! and its Authentication-Results header; on submission, the `auth=pass` header and a
//! DKIM-Signature when the sender's domain has a key.

use crate::SmtpContext;
use crate::replies::{self, Reply};
use std::net::IpAddr;
use tern_filter::results::obscure_forged;
use tern_filter::{Disposition, Inbound, SpfTask};

/// The mailbox a DMARC quarantine files into (every account has one).
pub const JUNK: &str = "Junk";

/// A message that passed the filter: its new bytes and where local recipients file it.
pub struct Screened {
    /// The message with the filter's headers prepended.
    pub body: Vec<u8>,
    /// `Some("Junk")` for quarantined mail; `None` = INBOX.
    pub mailbox: Option<String>,
}

/// The transaction facts the MX checks need.
pub struct MxFacts<'a> {
    /// The client.
    pub ip: IpAddr,
    /// Its EHLO/HELO name.
    pub helo: &'a str,
    /// MAIL FROM, empty for `<>`.
    pub mail_from: &'a str,
    /// The domains of the accepted RCPT addresses.
    pub rcpt_domains: &'a [String],
}

/// The MX listener: judges the message; `Err` is the reply refusing it.
pub async fn inbound(
    ctx: &SmtpContext,
    facts: MxFacts<'_>,
    spf: Option<SpfTask>,
    body: Vec<u8>,
) -> Result<Screened, Reply> {
    let filter = &ctx.filter;
    let spf = match spf {
        Some(task) => Some(task.finish().await),
        None => None,
    };
    let checks = filter.checks_for(facts.rcpt_domains.iter().map(String::as_str));
    let inbound = Inbound {
        ip: facts.ip,
        helo: facts.helo,
        mail_from: facts.mail_from,
        message: &body,
    };
    let verdict = filter.verify(inbound, spf.as_ref(), checks).await;
    let mailbox = match verdict.disposition {
        Disposition::Accept => None,
        Disposition::Junk => {
            tracing::info!(from = %facts.mail_from, "DMARC quarantine: filed to Junk");
            Some(JUNK.to_string())
        }
        Disposition::Reject(text) => {
            tracing::info!(from = %facts.mail_from, "DMARC reject: {text}");
            return Err(replies::dmarc_rejected(text));
        }
    };
    let mut message = verdict.header(filter.hostname()).into_bytes();
    message.extend_from_slice(&obscure_forged(&body, filter.hostname()));
    Ok(Screened {
        body: message,
        mailbox,
    })
}

/// The submission listeners: records the authentication and signs with the MAIL FROM
/// domain's DKIM key when it has one. Signing problems never stop the message: it leaves
/// unsigned, with a warning in the log.
pub async fn submitted(ctx: &SmtpContext, user: &str, mail_from: &str, body: Vec<u8>) -> Vec<u8> {
    let filter = &ctx.filter;
    let mut message = filter.submission_header(user).into_bytes();
    message.extend_from_slice(&obscure_forged(&body, filter.hostname()));
    let Some((_, domain)) = mail_from.rsplit_once('@') else {
        return message;
    };
    let key = match ctx.directory.dkim_key(domain).await {
        Ok(Some(key)) => key,
        Ok(None) => return message,
        Err(e) => {
            tracing::warn!(%domain, error = %e, "DKIM key lookup failed; sending unsigned");
            return message;
        }
    };
    match tern_filter::sign::sign(&message, &key) {
        Ok(signature) => {
            let mut signed = signature.into_bytes();
            signed.extend_from_slice(&message);
            signed
        }
        Err(e) => {
            tracing::warn!(error = %e, "sending unsigned");
            message
        }
    }
}
