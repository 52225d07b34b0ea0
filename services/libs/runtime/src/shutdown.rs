//! Graceful shutdown: the first SIGTERM/SIGINT cancels a token that every task watches
//! (stop intake, drain, commit); a second signal completes [`Shutdown::forced`], on which
//! the binary exits at once (with 130). A library never ends the process itself.

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// What a service needs to stop well: a token saying "stop taking new work", and a tracker
/// of the tasks that must finish before the process exits.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    pub token: CancellationToken,
    pub tracker: TaskTracker,
    /// Cancelled by a second signal: stop without draining.
    forced: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the token on the first SIGTERM or SIGINT; completes [`Shutdown::forced`] on
    /// the second.
    pub fn cancel_on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (token, forced) = (self.token.clone(), self.forced.clone());
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!("shutdown requested; draining (signal again to force)");
            token.cancel();
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::warn!("second signal: exiting without draining");
            forced.cancel();
        });
        Ok(())
    }

    /// Completes when a second signal asked to stop without draining: the caller stops
    /// waiting for anything and exits (the `zhida` binary with 130).
    pub async fn forced(&self) {
        self.forced.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn signal_self(signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    #[tokio::test]
    async fn the_first_signal_cancels_the_token_and_the_second_forces() {
        let shutdown = Shutdown::new();
        shutdown.cancel_on_signals().expect("signal handlers");
        signal_self("-TERM");
        tokio::time::timeout(Duration::from_secs(10), shutdown.token.cancelled())
            .await
            .expect("the first signal cancels the token");
        let forced = shutdown.forced();
        tokio::pin!(forced);
        assert!(
            futures::poll!(&mut forced).is_pending(),
            "one signal drains, it does not force"
        );
        signal_self("-INT");
        tokio::time::timeout(Duration::from_secs(10), forced)
            .await
            .expect("the second signal forces");
    }
}
