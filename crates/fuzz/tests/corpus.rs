//! Every fuzz target over its checked-in corpus and regressions, then a short seeded mutation
//! run (`TERN_FUZZ_MUTATIONS` inputs per target, 3000 by default; 0 skips it). A failing input
//! is saved under the test's temporary directory and named in the failure.

// One test binary: each links the whole server and instantiates the link's serde code.
#[path = "support/link_seeds.rs"]
mod link_seeds;

use std::path::{Path, PathBuf};
use tern_fuzz::mutate::{Rng, hash, mutate};
use tern_fuzz::{TARGETS, Target};

/// `fuzz/` at the top of the repository.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted (a missing directory has none).
fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => return Vec::new(),
    };
    files.retain(|p| p.is_file());
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Runs `target` on `input`; on a panic saves the input and fails naming it and `origin`.
fn check(name: &str, target: Target, input: &[u8], origin: &str) {
    if std::panic::catch_unwind(|| target(input)).is_err() {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{:016x}", hash(input)));
        let _ = std::fs::write(&path, input);
        panic!(
            "{name} failed on {origin}; input saved as {}",
            path.display()
        );
    }
}

fn run_target(name: &str) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a known target");
    let corpus = inputs(&fuzz_dir().join("corpus").join(name));
    let regressions = inputs(&fuzz_dir().join("regressions").join(name));
    assert!(!corpus.is_empty(), "fuzz/corpus/{name} is empty");
    for (path, bytes) in corpus.iter().chain(&regressions) {
        check(name, target, bytes, &path.display().to_string());
    }
    let mutations: usize = std::env::var("TERN_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng::new(name);
    let seeds: Vec<&[u8]> = corpus.iter().map(|(_, b)| b.as_slice()).collect();
    for i in 0..mutations {
        let mut input = seeds[rng.below(seeds.len())].to_vec();
        let other = seeds[rng.below(seeds.len())];
        mutate(&mut rng, &mut input, other, 4096);
        check(name, target, &input, &format!("mutation {i}"));
    }
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_target(stringify!($name));
            }
        )*
        #[test]
        fn every_target_is_tested() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in TARGETS {
                assert!(tested.contains(name), "{name} has no test");
            }
        }
    };
}

targets!(
    smtp_command,
    smtp_data,
    imap_command,
    pop3,
    proxy,
    link_frame,
    mime
);
