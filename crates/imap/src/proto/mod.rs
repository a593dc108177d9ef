//! The IMAP protocol, pure: command types and their parser, sequence sets, search keys and
//! the string encoding of responses. No I/O, no storage.

pub mod command;
pub mod encode;
pub mod lexer;
pub mod mutf7;
pub mod search;
pub mod seqset;

pub use command::{Command, FetchItem, ListArgs, Section, StatusItem, StoreOp, Tagged, parse};
pub use lexer::{ParseError, trailing_literal};
pub use seqset::SeqSet;
