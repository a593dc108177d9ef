//! What the directory hands to sessions: account summaries and recipient resolutions.

use tern_core::AccountId;

/// What a session knows about an authenticated or addressed account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The account.
    pub id: AccountId,
    /// Its normalised address (also the login name).
    pub address: String,
    /// Quota in bytes, 0 = unlimited.
    pub quota: u64,
}

/// One final recipient after alias expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A local account.
    Local(AccountInfo),
    /// An address outside our domains (an alias may point there).
    Remote(String),
}

/// What an RCPT address resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Deliver to these (at least one; duplicates removed).
    Deliver(Vec<Recipient>),
    /// The domain is ours but nobody has this address (SMTP 550 5.1.1).
    UnknownUser,
    /// The domain is not ours (relay: only for authenticated senders).
    NotLocal,
}
