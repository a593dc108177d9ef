//! tern-imap (being written).
