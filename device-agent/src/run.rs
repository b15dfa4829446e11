//! `rzts-agent run`: collect every minute, report when the posture changed or the
//! report period (default 5 minutes) has passed, and serve the loopback attestation
//! endpoint beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::collect::{Collector, Options};
use crate::posture::changed;
use crate::state::{AgentConfig, StateDir};
use crate::AgentError;

/// How often the posture is collected and compared with the last report.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// Collects once on a blocking thread.
pub async fn collect(
    collector: Arc<dyn Collector>,
    options: Options,
) -> Result<crate::collect::Collection, AgentError> {
    tokio::task::spawn_blocking(move || collector.collect(&options))
        .await
        .map_err(|e| AgentError::Usage(format!("collection failed: {e}")))
}

/// Runs with `config` (normally `agent.toml`, with command-line overrides) until
/// `shutdown` turns true. `attest` serves the attestation endpoint.
pub async fn run(
    state: StateDir,
    config: AgentConfig,
    collector: Arc<dyn Collector>,
    attest: bool,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let key = state.load_key()?;
    let server = if attest {
        let listener = crate::attest::bind(config.attest_listen)
            .await
            .map_err(|e| AgentError::Usage(format!("{}: {e}", config.attest_listen)))?;
        tracing::info!(addr = %config.attest_listen, "attestation endpoint listening");
        let attester = Arc::new(crate::attest::Attester {
            device_id: config.device_id.clone(),
            key: key.clone(),
            origins: config.attestation_origins.clone(),
        });
        Some(tokio::spawn(crate::attest::serve(
            listener,
            attester,
            shutdown.clone(),
        )))
    } else {
        None
    };
    let options = Options {
        location: config.location,
    };
    let period = Duration::from_secs(config.interval_secs.max(1));
    let mut last_sent: Option<Instant> = None;
    // Read once; kept up to date as reports are accepted.
    let mut last_posture = state.last_posture();
    loop {
        let c = collect(collector.clone(), options.clone()).await?;
        let due = last_sent.is_none_or(|t| t.elapsed() >= period);
        if due || changed(last_posture.as_ref(), &c.posture) {
            match crate::report::report_with(&state, &config, &key, &c.posture).await {
                Ok(a) => {
                    tracing::info!(seq = a.seq, "posture reported");
                    last_sent = Some(Instant::now());
                    last_posture = Some(c.posture);
                }
                Err(e) => tracing::warn!(error = %e, "report failed; retrying later"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY.min(period)) => {}
            _ = shutdown.changed() => break,
        }
    }
    if let Some(s) = server {
        let _ = s.await;
    }
    Ok(())
}
