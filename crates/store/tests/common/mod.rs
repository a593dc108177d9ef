//! A replica for the integration tests: a real RocksDB in a temporary directory, with commands
//! applied the way the Raft state machine applies them.

use tern_core::GroupId;
use tern_store::{Command, Db, Reader, Response};

/// One replica's database.
pub struct Replica {
    _dir: tempfile::TempDir,
    db: Db,
    /// The log index of the last command applied.
    index: std::cell::Cell<u64>,
}

impl Replica {
    /// An empty replica.
    pub fn new() -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        Replica {
            _dir: dir,
            db,
            index: Default::default(),
        }
    }

    /// Applies `command` to `group` as the next log entry and writes the result.
    pub fn apply(&self, group: GroupId, command: &Command) -> Response {
        self.index.set(self.index.get() + 1);
        let (response, batch) =
            tern_store::apply::apply(&self.db, group, self.index.get(), command).unwrap();
        self.db.write(batch, false).unwrap();
        response
    }

    /// The database.
    #[allow(dead_code)] // not every test binary uses it
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// A reader of `group`'s applied state.
    pub fn reader(&self, group: GroupId) -> Reader {
        Reader::new(self.db.clone(), group)
    }
}
