//! The filter's error type.

/// What can go wrong outside the checks themselves (a failing check is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// `[dns] servers` is malformed, or the system resolver configuration cannot be read.
    #[error("DNS resolver: {0}")]
    Resolver(String),
    /// A DKIM key could not be generated, parsed or used.
    #[error("DKIM key of {domain}: {reason}")]
    Key {
        /// The signing domain.
        domain: String,
        /// What failed.
        reason: String,
    },
    /// The message could not be signed (for example it has no From header).
    #[error("DKIM signing for {domain} failed: {reason}")]
    Sign {
        /// The signing domain.
        domain: String,
        /// What failed.
        reason: String,
    },
}
