//! The `tern` binary: parse the command line, set up logging, then either run a node or send
//! one admin command to a running node.

use anyhow::Result;
use clap::Parser;
use tern::cli::{Cli, Command, ConfigCommand};
use tokio_util::sync::CancellationToken;

/// The commented example printed by `tern config example` (its defaults are checked by a test).
const CONFIG_EXAMPLE: &str = include_str!("config_example.toml");

/// jemalloc gives freed memory back to the OS after a few seconds; glibc malloc kept every
/// thread arena's high-water mark (Argon2 buffers, large message bodies) for the process's life.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match &cli.command {
        Command::Config(ConfigCommand::Example) => {
            print!("{CONFIG_EXAMPLE}");
            Ok(())
        }
        Command::Serve(args) => {
            init_tracing();
            let config = cli.serve_config(args)?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                tern::run(config, shutdown).await
            })
        }
        _ => runtime.block_on(tern::cli::administer(&cli)),
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default `info`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_example_matches_the_defaults() {
        let parsed: tern_core::config::Config = toml::from_str(super::CONFIG_EXAMPLE).unwrap();
        let default = tern_core::config::Config::default();
        assert_eq!(
            toml::to_string(&parsed).unwrap(),
            toml::to_string(&default).unwrap()
        );
    }
}
