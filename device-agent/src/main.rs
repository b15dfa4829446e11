//! `rzts-agent`: the RZTS device agent.
//!
//! Exit codes: 0 done; 1 the server refused (bad code, rejected report); 2 bad
//! arguments, state or network.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use rzts_device_agent::collect::{self, Options};
use rzts_device_agent::posture::to_pretty_json;
use rzts_device_agent::state::StateDir;
use rzts_device_agent::{enroll, report, run, AgentError};

/// RZTS device agent: enrol this device with a one-time code, then report its
/// security posture (signed with the device's own key) to the decision server and
/// answer login pages that ask which enrolled device they run on.
#[derive(Debug, Parser)]
#[command(name = "rzts-agent", version, about)]
struct Cli {
    /// State directory (key, configuration, sequence counter; mode 0600). Default:
    /// $RZTS_AGENT_STATE_DIR, else /var/lib/rzts-agent as root, else
    /// ~/.local/state/rzts-agent.
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enrol this device: generate its key pair and register it with the server
    /// using the code from `rzts device enroll`.
    Enroll {
        /// The decision server's URL, e.g. `https://rzts.example.co.jp`.
        #[arg(long)]
        server: String,
        /// The one-time code.
        #[arg(long)]
        code: String,
        /// Enrol again with a new key even if this device is enrolled.
        #[arg(long)]
        force: bool,
    },
    /// Report periodically (and at once when the posture changes) and serve the
    /// loopback attestation endpoint, until Ctrl-C or SIGTERM.
    Run {
        /// Report period in seconds (default from agent.toml: 300).
        #[arg(long)]
        interval: Option<u64>,
        /// Attestation endpoint address (loopback only; default 127.0.0.1:47615).
        #[arg(long)]
        attest_listen: Option<SocketAddr>,
        /// Do not serve the attestation endpoint.
        #[arg(long)]
        no_attest: bool,
    },
    /// Collect and send one signed report now.
    Report {
        /// Send one report and exit (the only mode; `run` reports periodically).
        #[arg(long)]
        once: bool,
    },
    /// Print the posture this device would report, as JSON (no network).
    Collect {
        /// Also print details that are not reported (kernel, why values are unknown).
        #[arg(long)]
        details: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let state = StateDir::new(cli.state_dir.unwrap_or_else(StateDir::default_dir));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(dispatch(state, cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                AgentError::Refused { .. } => 1,
                _ => 2,
            })
        }
    }
}

async fn dispatch(state: StateDir, command: Command) -> Result<(), AgentError> {
    let collector: Arc<dyn collect::Collector> = Arc::from(collect::for_this_os());
    match command {
        Command::Enroll {
            server,
            code,
            force,
        } => {
            let c = enroll::enroll(&state, &server, &code, force).await?;
            println!(
                "enrolled as device {} (owner {}); state in {}",
                c.device_id,
                c.owner,
                state.path().display()
            );
            let first = run::collect(collector, Options::default()).await?;
            let a = report::report_once(&state, &first.posture).await?;
            println!("first posture report accepted (seq {})", a.seq);
        }
        Command::Run {
            interval,
            attest_listen,
            no_attest,
        } => {
            let mut c = state.load_config()?;
            c.interval_secs = interval.unwrap_or(c.interval_secs);
            c.attest_listen = attest_listen.unwrap_or(c.attest_listen);
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                wait_for_signal().await;
                let _ = tx.send(true);
            });
            run::run(state, c, collector, !no_attest, rx).await?;
        }
        Command::Report { once: _ } => {
            let config = state.load_config()?;
            let c = run::collect(
                collector,
                Options {
                    location: config.location,
                },
            )
            .await?;
            let a = report::report_once(&state, &c.posture).await?;
            println!("report accepted: device {} seq {}", a.device_id, a.seq);
        }
        Command::Collect { details } => {
            let location = state.load_config().map(|c| c.location).unwrap_or(false);
            let c = run::collect(collector, Options { location }).await?;
            if details {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&c).unwrap_or_else(|_| "{}".into())
                );
            } else {
                println!("{}", to_pretty_json(&c.posture));
            }
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
