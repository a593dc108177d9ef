//! Which SMTP transactions carry the same message: the id a transaction commits under.
//!
//! A sender that never hears our `250` — a `451` after an outcome we could not learn, or a
//! connection that dropped after the final dot — sends the message again, and a real MTA keeps
//! trying for days. Every transaction commits under the id [`transaction_id`] derives from the
//! envelope and the message *as received*, so the retry meets the partition's `ACCEPTED` row
//! for that id: it is answered `250` with the first attempt's queue id and stored nothing
//! twice.
//!
//! The same message means, within `[storage] dedup_window_secs` (7 days by default, longer
//! than any sender's retry schedule):
//! - the same `MAIL FROM` address, byte for byte;
//! - the same set of accepted `RCPT TO` addresses, in any order (a repeated RCPT counts once);
//! - the same message bytes after dot-unstuffing, headers included: the sender's own
//!   Message-ID, Date and Received lines, before Tern adds its trace headers.
//!
//! Only a message that names itself — it carries a `Message-ID` header, as every MTA's
//! retries do (Postfix adds one at submission when the author did not) — is de-duplicated: two
//! transactions of identical bytes without one are not known to be the same message (test
//! traffic and monitoring probes send those), so each is stored (see [`names_itself`]).
//!
//! Not a duplicate: a retry for only some of the recipients (those the first attempt refused
//! were not delivered, so they are delivered now), a message re-composed by its author (a new
//! Message-ID or Date), the same bytes after the window, or a transaction whose first attempt
//! never committed (there is nothing to repeat). A message whose every recipient was over quota
//! is refused the same way on a retry inside the window only if that refusal had committed.

use tern_core::DeliveryId;

/// The id under which the transaction (`sender`, `recipients`, `message`) is committed; equal
/// for every attempt of the same message (see the module docs).
pub fn transaction_id<S: AsRef<str>>(sender: &str, recipients: &[S], message: &[u8]) -> DeliveryId {
    let mut recipients: Vec<&str> = recipients.iter().map(AsRef::as_ref).collect();
    recipients.sort_unstable();
    recipients.dedup();
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"tern-transaction-v1\0");
    field(&mut hasher, sender.as_bytes());
    hasher.update(&(recipients.len() as u64).to_be_bytes());
    for recipient in recipients {
        field(&mut hasher, recipient.as_bytes());
    }
    field(&mut hasher, message);
    let digest = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest.as_bytes()[..16]);
    DeliveryId(u128::from_be_bytes(first))
}

/// Whether `message` carries a `Message-ID` header (in its header section, any case): only
/// such a message is de-duplicated by [`transaction_id`].
pub fn names_itself(message: &[u8]) -> bool {
    message
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .any(|line| line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:"))
}

/// Hashes one length-prefixed field, so no two envelopes run together into the same input.
fn field(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"Message-ID: <1@a.example>\r\nSubject: hi\r\n\r\nbody\r\n";

    #[test]
    fn only_a_message_with_a_message_id_names_itself() {
        assert!(names_itself(MESSAGE));
        assert!(names_itself(
            b"Subject: a\r\nMESSAGE-ID: <x@y>\r\n\r\nbody\r\n"
        ));
        assert!(!names_itself(b"Subject: a\r\n\r\nbody\r\n"));
        // In the body it does not count; nor does a header that only starts alike.
        assert!(!names_itself(b"Subject: a\r\n\r\nMessage-ID: <x@y>\r\n"));
        assert!(!names_itself(b"Message-IDs: <x@y>\r\n\r\n"));
        assert!(!names_itself(b""));
    }

    #[test]
    fn the_same_transaction_gets_the_same_id_whatever_the_recipient_order() {
        let a = transaction_id("a@x.example", &["b@y.example", "c@y.example"], MESSAGE);
        let b = transaction_id(
            "a@x.example",
            &["c@y.example", "b@y.example", "c@y.example"],
            MESSAGE,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn any_difference_in_envelope_or_message_is_another_transaction() {
        let base = transaction_id("a@x.example", &["b@y.example"], MESSAGE);
        assert_ne!(base, transaction_id("", &["b@y.example"], MESSAGE));
        assert_ne!(
            base,
            transaction_id("a@x.example", &["c@y.example"], MESSAGE)
        );
        assert_ne!(
            base,
            transaction_id("a@x.example", &["b@y.example", "c@y.example"], MESSAGE)
        );
        let mut other = MESSAGE.to_vec();
        other[14] = b'2';
        assert_ne!(
            base,
            transaction_id("a@x.example", &["b@y.example"], &other)
        );
        // Fields are delimited: moving a byte from the sender to a recipient changes the id.
        assert_ne!(
            transaction_id("ab", &["c"], MESSAGE),
            transaction_id("a", &["bc"], MESSAGE)
        );
    }
}
