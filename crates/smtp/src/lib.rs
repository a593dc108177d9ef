//! tern-smtp (being written).
