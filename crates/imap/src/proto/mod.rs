//! The IMAP protocol, pure: command types and their parser, sequence sets, search keys and
//! the string encoding of responses. No I/O, no storage.
//!
//! - [`command`]: the [`Command`] enum and its parser [`parse`].
//! - [`lexer`]: atoms, strings, literals and lists, byte by byte.
//! - [`seqset`]: sequence sets (`1:*`, `$`).
//! - [`search`]: SEARCH keys and RETURN options.
//! - [`sort`]: SORT criteria and THREAD algorithms.
//! - [`encode`]: quoting and literals for responses.
//! - [`mutf7`]: modified UTF-7 mailbox names (RFC 3501 §5.1.3).

pub mod command;
pub mod encode;
pub mod lexer;
pub mod mutf7;
pub mod search;
pub mod seqset;
pub mod sort;

pub use command::{
    Command, FetchItem, ListArgs, Qresync, Section, StatusItem, StoreOp, Tagged, parse,
};
pub use lexer::{ParseError, trailing_literal};
pub use seqset::SeqSet;
