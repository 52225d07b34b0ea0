//! Graceful shutdown: the first SIGTERM/SIGINT cancels a token that every task watches
//! (stop intake, drain, commit); a second signal exits at once.

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// What a service needs to stop well: a token saying "stop taking new work", and a tracker
/// of the tasks that must finish before the process exits.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    pub token: CancellationToken,
    pub tracker: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the token on the first SIGTERM or SIGINT; exits with 130 on the second.
    pub fn cancel_on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let token = self.token.clone();
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!("shutdown requested; draining (signal again to force)");
            token.cancel();
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::warn!("second signal: exiting without draining");
            std::process::exit(130);
        });
        Ok(())
    }
}
