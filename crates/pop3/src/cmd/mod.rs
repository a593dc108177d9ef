//! Command handlers, one file per command family; each file is named after its commands.
//!
//! - [`capa`]: the CAPA command.
//! - [`stls`]: the STLS command.
//! - [`auth`]: USER, PASS and AUTH PLAIN, and the login they share.
//! - [`list`]: STAT, LIST and UIDL.
//! - [`retr`]: RETR and TOP.
//! - [`dele`]: DELE, RSET and NOOP.
//! - [`quit`]: QUIT and the UPDATE state.
//!
//! The session has already checked that a command is allowed in the current state; the
//! dispatcher only hands each handler the state it works on.

pub mod auth;
pub mod capa;
pub mod dele;
pub mod list;
pub mod quit;
pub mod retr;
pub mod stls;

use crate::backend::Backend;
use crate::error::Pop3Error;
use crate::proto::{Command, Phase};
use crate::replies;
use crate::session::{Flow, Session, State};

/// Runs `command`, which the state gate allowed in `state`.
pub async fn dispatch<B: Backend>(
    s: &mut Session<'_, B>,
    state: &mut State<B::Account>,
    command: Command,
) -> Result<Flow, Pop3Error> {
    match state {
        State::Authorization(auth) => {
            let step = match command {
                Command::Capa => return Ok(capa::capa(s, Phase::Authorization).await?),
                Command::Stls => return stls::stls(s, auth).await,
                Command::User(name) => return Ok(auth::user(s, auth, name)),
                Command::Pass(password) => auth::pass(s, auth, password).await?,
                Command::Auth { mechanism, initial } => {
                    auth::auth(s, auth, mechanism, initial).await?
                }
                Command::Quit => return Ok(quit::quit(s)),
                _ => return Ok(wrong_state(s)),
            };
            Ok(match step {
                auth::Step::Stay => Flow::Continue,
                auth::Step::Close => Flow::Close,
                auth::Step::LoggedIn(maildrop) => {
                    *state = State::Transaction(maildrop);
                    Flow::Continue
                }
            })
        }
        State::Transaction(maildrop) => match command {
            Command::Capa => Ok(capa::capa(s, Phase::Transaction).await?),
            Command::Stat => Ok(list::stat(s, maildrop)),
            Command::List(msg) => Ok(list::list(s, maildrop, msg).await?),
            Command::Uidl(msg) => Ok(list::uidl(s, maildrop, msg).await?),
            Command::Retr(msg) => retr::retr(s, maildrop, msg).await,
            Command::Top { msg, lines } => retr::top(s, maildrop, msg, lines).await,
            Command::Dele(msg) => Ok(dele::dele(s, maildrop, msg)),
            Command::Rset => Ok(dele::rset(s, maildrop)),
            Command::Noop => Ok(dele::noop(s)),
            Command::Quit => Ok(quit::quit_and_update(s, maildrop).await),
            _ => Ok(wrong_state(s)),
        },
    }
}

/// Unreachable behind the state gate; answers as the gate would rather than panic.
fn wrong_state<B: Backend>(s: &mut Session<'_, B>) -> Flow {
    s.send(&replies::WRONG_STATE);
    Flow::Continue
}
