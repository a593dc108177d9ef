//! Argon2id password hashing (argon2 crate defaults, PHC strings) run on the blocking pool,
//! since one hash costs tens of milliseconds of CPU and would stall an async worker.

use crate::DirectoryError;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// Hashes `password` into an Argon2id PHC string with a fresh random salt.
pub(crate) async fn hash(password: &str) -> Result<String, DirectoryError> {
    let password = password.to_string();
    hashing(move || hash_blocking(&password))
        .await
        .unwrap_or_else(|| Err(DirectoryError::Hash("the hashing task failed".into())))
}

/// Checks `password` against `stored`, or against a dummy hash when there is no account, so
/// that an unknown user costs as much time as a wrong password (no user-enumeration oracle).
pub(crate) async fn verify(password: &str, stored: Option<String>) -> bool {
    let password = password.to_string();
    let task = hashing(move || match stored {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            // The dummy is hashed once per process; whatever the outcome, the answer is "no".
            if let Some(dummy) = dummy_hash() {
                verify_blocking(&password, dummy);
            }
            false
        }
    });
    task.await.unwrap_or(false)
}

/// Runs one Argon2 computation on the blocking pool, at most one per core at a time: each holds
/// a 19 MiB buffer, and a login storm must queue here rather than spread hundreds of buffers
/// over the pool's threads (the allocator keeps them, and the CPU is the limit anyway).
/// `None` when the task panicked.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _slot = slots.acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
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
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
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
        assert!(verify("correct horse", Some(stored.clone())).await);
        assert!(!verify("wrong horse", Some(stored)).await);
    }

    #[tokio::test]
    async fn unknown_user_and_garbage_hash_fail() {
        assert!(!verify("anything", None).await);
        assert!(!verify("anything", Some("not a phc string".into())).await);
    }

    #[tokio::test]
    async fn salts_differ() {
        assert_ne!(hash("pw").await.unwrap(), hash("pw").await.unwrap());
    }
}
