//! tern-pop3 (being written).
