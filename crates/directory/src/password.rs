//! Argon2id password hashing (argon2 crate defaults, PHC strings), run on the hashing threads
//! (`hashers`).
//!
//! Verification (every login) fills its hashing thread's own 19 MiB block buffer instead of a
//! fresh allocation: mapping, zero-filling and unmapping 19 MiB per login was a fifth of the CPU
//! of an IMAP login load (page faults in a perf profile).

use crate::DirectoryError;
use crate::hashers::{self, HashError, Lane};
use argon2::password_hash::phc::{Output, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
use std::cell::RefCell;
use std::sync::OnceLock;

/// The largest block buffer a thread keeps for reuse (4 x the default 19 MiB); a stored hash
/// with a larger memory cost is verified with a buffer of its own.
const MAX_POOLED_BLOCKS: usize = 4 * Params::DEFAULT_M_COST as usize;

/// Hashes `password` into an Argon2id PHC string with a fresh random salt.
pub(crate) async fn hash(password: &str) -> Result<String, DirectoryError> {
    let password = password.to_string();
    match hashers::run(Lane::Known, move || hash_blocking(&password)).await {
        Ok(hashed) => hashed,
        Err(HashError::Busy) => Err(DirectoryError::Hash("too many logins in progress".into())),
        Err(HashError::Failed) => Err(DirectoryError::Hash("the hashing task failed".into())),
    }
}

/// Checks `password` against `stored`, or against a dummy hash when there is no account, so
/// that an unknown user costs as much time as a wrong password (no user-enumeration oracle).
/// `Err(Busy)`: the hashing queue's `lane` is full; `Err(Failed)`: the check itself failed.
pub(crate) async fn verify(
    password: &str,
    stored: Option<String>,
    lane: Lane,
) -> Result<bool, HashError> {
    let password = password.to_string();
    let task = hashers::run(lane, move || match stored {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            // The dummy is hashed once per process; whatever the outcome, the answer is "no".
            if let Some(dummy) = dummy_hash() {
                verify_blocking(&password, dummy);
            }
            false
        }
    });
    task.await
}

fn hash_blocking(password: &str) -> Result<String, DirectoryError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| DirectoryError::Hash(e.to_string()))
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    // A stored hash that does not parse verifies nothing: the account cannot log in until its
    // password is set again, which is safer than guessing at the format.
    let Some(check) = Check::parse(hash) else {
        return false;
    };
    let blocks = check.params.block_count();
    if blocks > MAX_POOLED_BLOCKS {
        return check.matches(password.as_bytes(), &mut vec![Block::default(); blocks]);
    }
    thread_local! {
        static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    }
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        check.matches(password.as_bytes(), &mut memory[..blocks])
    })
}

/// A parsed PHC string: what to compute and what it must equal.
struct Check {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Salt,
    expected: Output,
}

impl Check {
    fn parse(hash: &str) -> Option<Check> {
        let parsed = PasswordHash::new(hash).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        Some(Check {
            algorithm,
            version,
            params,
            salt: parsed.salt?,
            expected: parsed.hash?,
        })
    }

    /// Whether `password` hashes to the expected output (compared in constant time).
    fn matches(&self, password: &[u8], memory: &mut [Block]) -> bool {
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let Some(out) = buffer.get_mut(..self.expected.len()) else {
            return false;
        };
        let argon2 = Argon2::new(self.algorithm, self.version, self.params.clone());
        argon2
            .hash_password_into_with_memory(password, &self.salt, out, memory)
            .is_ok()
            && Output::new(out).is_ok_and(|computed| computed == self.expected)
    }
}

/// A hash with the same parameters as real ones, for the unknown-user path.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| hash_blocking("tern-dummy-password").ok())
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let stored = hash("correct horse").await.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert_eq!(
            verify("correct horse", Some(stored.clone()), Lane::Clean).await,
            Ok(true)
        );
        assert_eq!(
            verify("wrong horse", Some(stored), Lane::Suspect).await,
            Ok(false)
        );
    }

    #[tokio::test]
    async fn unknown_user_and_garbage_hash_fail() {
        assert_eq!(verify("anything", None, Lane::Clean).await, Ok(false));
        assert_eq!(
            verify("anything", Some("not a phc string".into()), Lane::Clean).await,
            Ok(false)
        );
    }

    fn hash_with(algorithm: Algorithm, version: Version, m_cost: u32, password: &str) -> String {
        let params = Params::new(m_cost, 1, 1, None).unwrap();
        Argon2::new(algorithm, version, params)
            .hash_password(password.as_bytes())
            .unwrap()
            .to_string()
    }

    #[test]
    fn pooled_buffers_verify_hashes_of_every_size_and_kind() {
        // Interleaved, so a reused buffer is sometimes larger than the hash needs and holds
        // blocks of another computation.
        let default = hash_blocking("pw-default").unwrap();
        let small = hash_with(Algorithm::Argon2id, Version::V0x13, 64, "pw-small");
        let argon2i_v10 = hash_with(Algorithm::Argon2i, Version::V0x10, 256, "pw-old");
        let huge = hash_with(
            Algorithm::Argon2id,
            Version::V0x13,
            MAX_POOLED_BLOCKS as u32 + 8,
            "pw-huge",
        );
        for _ in 0..2 {
            assert!(verify_blocking("pw-default", &default));
            assert!(verify_blocking("pw-small", &small));
            assert!(!verify_blocking("pw-default", &small));
            assert!(verify_blocking("pw-old", &argon2i_v10));
            assert!(!verify_blocking("pw-small", &argon2i_v10));
            assert!(verify_blocking("pw-huge", &huge));
            assert!(!verify_blocking(
                "pw-default",
                &default.replace("$argon2id$", "$argon2i$")
            ));
        }
        assert!(!verify_blocking("pw-huge", &huge[..huge.len() - 4]));
    }

    #[tokio::test]
    async fn salts_differ() {
        assert_ne!(hash("pw").await.unwrap(), hash("pw").await.unwrap());
    }
}
