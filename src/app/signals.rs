//! Ctrl-C and SIGTERM: the first stops taking rows and lets requests in flight finish (for at
//! most the grace period); a second, or the end of the grace period, stops at once.

use std::sync::Arc;

use crate::core::run_state::{Stop, StopReason};

/// First Ctrl-C or SIGTERM: stop taking rows and let requests in flight finish, for at most
/// `grace`. Second (or when the grace period is over): stop at once.
pub fn watch_signals(stop: Arc<Stop>, grace: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(signal) = wait_for_signal().await else {
            return;
        };
        let grace_text = humantime::format_duration(grace);
        match signal {
            // Whoever sent SIGTERM (systemd, cron, kill) cannot press Ctrl-C.
            Signal::Terminate => tracing::warn!(
                "terminated: finishing the requests in flight for up to {grace_text}"
            ),
            Signal::Interrupt => tracing::warn!(
                "interrupted: finishing the requests in flight, for up to {grace_text} (press Ctrl-C again to stop at once)"
            ),
        }
        stop.stop(StopReason::Interrupted);
        tokio::select! {
            r = wait_for_signal() => {
                if r.is_ok() {
                    tracing::warn!("interrupted again: stopping at once");
                }
            }
            _ = tokio::time::sleep(grace) => {
                tracing::warn!("the grace period is over: stopping at once");
            }
        }
        stop.abort(StopReason::Interrupted);
    })
}

/// Which signal asked the run to stop.
enum Signal {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

async fn wait_for_signal() -> std::io::Result<Signal> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| Signal::Interrupt),
            _ = term.recv() => Ok(Signal::Terminate),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| Signal::Interrupt)
    }
}
