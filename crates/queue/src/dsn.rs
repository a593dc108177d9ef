//! Delivery status notifications (RFC 3464): the `multipart/report` a sender gets when a
//! message could not be delivered (or is delayed). Pure: it builds bytes from a [`Report`].
//!
//! The parts: a human explanation, the machine-readable `message/delivery-status`, and the
//! original message's header (`text/rfc822-headers`, RFC 6522) — not its body, so a bounce
//! never carries a large or harmful payload back.

use chrono::{DateTime, Utc};
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use tern_core::DeliveryId;

/// Which notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DsnKind {
    /// The message will not be delivered (Action: failed).
    Failed,
    /// Still trying (Action: delayed).
    Delayed,
}

impl DsnKind {
    /// A stable name, also used to derive the DSN's transaction id.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DsnKind::Failed => "failed",
            DsnKind::Delayed => "delayed",
        }
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecipientStatus {
    /// The address as given by the sender.
    pub address: String,
    /// RFC 3463 status, e.g. `5.1.1`.
    pub status: String,
    /// The reply that settled it, as an SMTP reply line (`550 5.1.1 No such user`).
    pub diagnostic: String,
    /// The MX host that answered, if one did.
    pub remote_mta: Option<String>,
}

/// Everything a DSN says.
#[derive(Debug, Clone)]
pub(crate) struct Report<'a> {
    /// Failed or delayed.
    pub kind: DsnKind,
    /// Our host name (Reporting-MTA, MAILER-DAEMON's domain).
    pub reporting_mta: &'a str,
    /// The original transaction.
    pub original_id: DeliveryId,
    /// The original envelope sender, who gets the report.
    pub original_sender: &'a str,
    /// Unix seconds the original was accepted.
    pub arrival: i64,
    /// Unix seconds of the report.
    pub now: i64,
    /// Until when a delayed message is retried.
    pub retry_until: Option<i64>,
    /// One entry per recipient reported on.
    pub recipients: Vec<RecipientStatus>,
    /// The original message's header section.
    pub original_headers: &'a [u8],
    /// This DSN's own transaction id (also its Message-ID).
    pub id: DeliveryId,
}

/// The subject line of a failure report (the spec, and Postfix's wording).
pub(crate) const FAILED_SUBJECT: &str = "Undelivered Mail Returned to Sender";
/// The subject line of a delay report.
pub(crate) const DELAYED_SUBJECT: &str = "Delayed Mail (still being retried)";

fn rfc822(ts: i64) -> String {
    DateTime::<Utc>::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// Keeps header values on one line and free of control characters.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn human_text(r: &Report<'_>) -> String {
    let mut text = format!(
        "This is the mail system at host {}.\r\n\r\n",
        r.reporting_mta
    );
    match r.kind {
        DsnKind::Failed => text.push_str(
            "I'm sorry to have to inform you that your message could not\r\n\
             be delivered to one or more recipients. It is attached below.\r\n",
        ),
        DsnKind::Delayed => {
            let hours = (r.now - r.arrival).max(0) / 3600;
            text.push_str(&format!(
                "Your message could not be delivered for {hours} hour(s) so far.\r\n\
                 It will be retried until {}.\r\n\
                 This is a warning only; you do not need to send it again.\r\n",
                r.retry_until
                    .map(rfc822)
                    .unwrap_or_else(|| "it expires".into())
            ));
        }
    }
    text.push_str("\r\n");
    for rcpt in &r.recipients {
        text.push_str(&format!(
            "<{}>: {}\r\n",
            clean(&rcpt.address),
            clean(&rcpt.diagnostic)
        ));
    }
    text
}

fn delivery_status(r: &Report<'_>) -> String {
    let mut status = format!(
        "Reporting-MTA: dns; {}\r\nX-Tern-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        r.reporting_mta,
        r.original_id,
        rfc822(r.arrival)
    );
    // The Action field's values are the kinds' names.
    let action = r.kind.name();
    for rcpt in &r.recipients {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: {action}\r\nStatus: {}\r\n",
            clean(&rcpt.address),
            clean(&rcpt.status)
        ));
        if let Some(mta) = &rcpt.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {}\r\n", clean(mta)));
        }
        status.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\nLast-Attempt-Date: {}\r\n",
            clean(&rcpt.diagnostic),
            rfc822(r.now)
        ));
        if let (DsnKind::Delayed, Some(until)) = (r.kind, r.retry_until) {
            status.push_str(&format!("Will-Retry-Until: {}\r\n", rfc822(until)));
        }
    }
    status
}

/// The DSN message (From MAILER-DAEMON, to the original sender).
pub(crate) fn build(r: &Report<'_>) -> Vec<u8> {
    let subject = match r.kind {
        DsnKind::Failed => FAILED_SUBJECT,
        DsnKind::Delayed => DELAYED_SUBJECT,
    };
    let headers = r.original_headers.to_vec();
    let headers_encoding = if headers.is_ascii() { "7bit" } else { "8bit" };
    let parts = vec![
        MimePart::new(ContentType::new("text/plain"), human_text(r)).header(
            "Content-Description",
            mail_builder::headers::raw::Raw::new("Notification"),
        ),
        MimePart::new(
            ContentType::new("message/delivery-status"),
            delivery_status(r).into_bytes(),
        )
        .transfer_encoding("7bit"),
        MimePart::new(ContentType::new("text/rfc822-headers"), headers)
            .transfer_encoding(headers_encoding),
    ];
    let report = ContentType::new("multipart/report").attribute("report-type", "delivery-status");
    MessageBuilder::new()
        .from((
            "Mail Delivery System",
            format!("MAILER-DAEMON@{}", r.reporting_mta).as_str(),
        ))
        .to(clean(r.original_sender))
        .subject(subject)
        .date(r.now)
        .message_id(format!("{}.{}@{}", r.id, r.kind.name(), r.reporting_mta))
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-replied"),
        )
        .body(MimePart::new(report, parts))
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders, PartType};

    fn report(kind: DsnKind) -> Report<'static> {
        Report {
            kind,
            reporting_mta: "mx.here.example",
            original_id: DeliveryId(0xabc),
            original_sender: "bob@here.example",
            arrival: 1_700_000_000,
            now: 1_700_003_600,
            retry_until: Some(1_700_432_000),
            recipients: vec![RecipientStatus {
                address: "user@far.example".into(),
                status: "5.1.1".into(),
                diagnostic: "550 5.1.1 <user@far.example>: Recipient address rejected".into(),
                remote_mta: Some("mx.far.example".into()),
            }],
            original_headers: b"Return-Path: <bob@here.example>\r\nSubject: hello\r\n\r\n",
            id: DeliveryId(0xdef),
        }
    }

    #[test]
    fn a_failure_report_parses_back_as_multipart_report() {
        let bytes = build(&report(DsnKind::Failed));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("report-type=delivery-status")
                || text.contains("report-type=\"delivery-status\"")
        );
        let msg = MessageParser::default().parse(&bytes).expect("parses");
        assert_eq!(msg.subject(), Some(FAILED_SUBJECT));
        let from = msg.from().and_then(|a| a.first()).and_then(|a| a.address());
        assert_eq!(from, Some("MAILER-DAEMON@mx.here.example"));
        let to = msg.to().and_then(|a| a.first()).and_then(|a| a.address());
        assert_eq!(to, Some("bob@here.example"));
        let ct = msg.content_type().expect("content type");
        assert_eq!(ct.ctype(), "multipart");
        assert_eq!(ct.subtype(), Some("report"));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        assert_eq!(msg.parts.len(), 4, "the container and three parts");

        let human = msg.body_text(0).expect("human part");
        assert!(human.contains("could not"));
        assert!(human.contains("<user@far.example>: 550 5.1.1"));

        let status = &msg.parts[2];
        let sct = status.content_type().expect("status content type");
        assert_eq!(
            (sct.ctype(), sct.subtype()),
            ("message", Some("delivery-status"))
        );
        let status_text = match &status.body {
            PartType::Text(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                String::from_utf8_lossy(b).into_owned()
            }
            PartType::Message(m) => String::from_utf8_lossy(m.raw_message()).into_owned(),
            other => panic!("unexpected delivery-status body {other:?}"),
        };
        for field in [
            "Reporting-MTA: dns; mx.here.example",
            "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000",
            "Final-Recipient: rfc822; user@far.example",
            "Action: failed",
            "Status: 5.1.1",
            "Remote-MTA: dns; mx.far.example",
            "Diagnostic-Code: smtp; 550 5.1.1 <user@far.example>: Recipient address rejected",
        ] {
            assert!(
                status_text.contains(field),
                "{field:?} missing from:\n{status_text}"
            );
        }
        let headers = &msg.parts[3];
        let hct = headers.content_type().expect("headers content type");
        assert_eq!(
            (hct.ctype(), hct.subtype()),
            ("text", Some("rfc822-headers"))
        );
        assert!(text.contains("Subject: hello"));
        assert!(!text.contains("Will-Retry-Until"));
    }

    #[test]
    fn a_delay_report_says_delayed_and_until_when() {
        let bytes = build(&report(DsnKind::Delayed));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("Subject: Delayed Mail (still being retried)"));
        assert!(text.contains("Action: delayed"));
        assert!(text.contains("Will-Retry-Until: "));
        assert!(text.contains("1 hour(s) so far"));
    }

    #[test]
    fn header_injection_through_an_address_is_neutralised() {
        let mut r = report(DsnKind::Failed);
        r.recipients[0].address = "x@y\r\nBcc: evil@example".into();
        let text = String::from_utf8(build(&r)).unwrap();
        assert!(!text.contains("\r\nBcc: evil"));
    }
}
