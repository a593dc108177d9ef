//! Storage errors: I/O and corruption, never a deterministic refusal (see `Rejection`).

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB failed.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value did not decode.
    #[error("corrupt value under key {key}: {reason}")]
    Corrupt {
        /// Hex of the key.
        key: String,
        /// Decoder message.
        reason: String,
    },
    /// A column family is missing (the DB was not created by Tern).
    #[error("missing column family {0}")]
    MissingColumnFamily(&'static str),
}
