//! The gRPC host: one tonic server carrying the routes of one or more [`Component`]s, plus
//! `grpc.health.v1` and server reflection, with the components' background tasks beside it.
//! `zhida serve notifier` hosts one component; `zhida serve all` and the demo host four.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures::FutureExt as _;
use tokio::net::TcpListener;
use tonic::{Code, Status, server::NamedService, service::RoutesBuilder};
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    layers::{RpcSpanLayer, WhenReady},
    shutdown::Shutdown,
};

type Task = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
/// Adds a service to the routes; held back until ready when given a readiness signal.
type Register = Box<dyn FnOnce(&mut RoutesBuilder, Option<Ready>) + Send>;
type Ready = tokio::sync::watch::Receiver<bool>;

/// A service's gRPC routes and its background tasks (consumers), ready to be hosted.
pub struct Component {
    name: &'static str,
    grpc_services: Vec<&'static str>,
    registers: Vec<Register>,
    tasks: Vec<(&'static str, Task)>,
    /// Every signal the component is ready on (all must turn true).
    ready: Vec<tokio::sync::watch::Receiver<bool>>,
}

impl Component {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            grpc_services: Vec::new(),
            registers: Vec::new(),
            tasks: Vec::new(),
            ready: Vec::new(),
        }
    }

    /// Reports the component's services (and the process) NOT_SERVING until `ready` turns
    /// true, e.g. until a replayed table caught up, so readiness probes hold traffic back;
    /// calls that arrive meanwhile wait for it ([`WhenReady`]). Called more than once, the
    /// component is ready once every signal is.
    pub fn ready_when(mut self, ready: tokio::sync::watch::Receiver<bool>) -> Self {
        self.ready.push(ready);
        self
    }

    /// Adds a tonic service; it is reported SERVING by the health service while up.
    pub fn grpc<S>(mut self, service: S) -> Self
    where
        S: tower_service::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.grpc_services.push(S::NAME);
        self.registers
            .push(Box::new(move |routes, ready| match ready {
                Some(ready) => {
                    routes.add_service(WhenReady::new(service, ready));
                }
                None => {
                    routes.add_service(service);
                }
            }));
        self
    }

    /// Adds a background task. A task that returns an error stops the whole process
    /// (the orchestrator restarts it), because a dead consumer must not look healthy.
    pub fn task(
        mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Self {
        self.tasks.push((name, Box::pin(task)));
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// What the gRPC host puts around every handler, from the shared configuration: who may
/// call (`[auth]`), how much (`[grpc]` limits), over what (`[grpc.tls]`), and where the
/// audit trail goes (none: not recorded).
#[derive(Debug, Clone)]
pub struct Host {
    pub auth: crate::auth::AuthConfig,
    pub limits: crate::limits::LimitsConfig,
    pub audit: Option<crate::audit::AuditSink>,
    pub tls: Option<crate::tls::TlsConfig>,
}

impl Host {
    /// The host `config` describes, recording no audit trail.
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            auth: config.auth.clone(),
            limits: config.grpc.limits(),
            audit: None,
            tls: config.grpc.tls.clone(),
        }
    }

    /// The same host, recording every write call into `sink`.
    pub fn audited(self, sink: crate::audit::AuditSink) -> Self {
        Self {
            audit: Some(sink),
            ..self
        }
    }
}

/// Serves `components` on `listener` until `shutdown.token` is cancelled or a task fails,
/// then waits for the tasks to drain. The caller bounds the drain with its grace period.
pub async fn serve(
    components: Vec<Component>,
    listener: TcpListener,
    shutdown: Shutdown,
    host: Host,
) -> anyhow::Result<()> {
    let Host {
        auth,
        limits,
        audit,
        tls,
    } = host;
    // Before anything starts: without a key no call could be let in.
    let auth = crate::auth::AuthLayer::new(&auth)
        .map_err(|(key, reason)| anyhow::anyhow!("invalid configuration: {key}: {reason}"))?;
    // And without a usable certificate ([grpc.tls]) no client could connect.
    let server = crate::tls::builder(tls.as_ref())?;
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(zhida_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(zhida_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let mut routes = RoutesBuilder::default();
    routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    // Not a child of the shutdown token: it must say whether a task failed, not whether we stop.
    let failed = tokio_util::sync::CancellationToken::new();
    let mut names = Vec::new();
    // Components still loading; the process reports SERVING once none is.
    let loading = Arc::new(AtomicUsize::new(
        components.iter().filter(|c| !c.ready.is_empty()).count(),
    ));
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    for component in components {
        names.push(component.name);
        let ready = all_of(component.ready, &shutdown);
        for register in component.registers {
            register(&mut routes, ready.clone());
        }
        match ready {
            None => {
                for service in &component.grpc_services {
                    health
                        .set_service_status(*service, ServingStatus::Serving)
                        .await;
                }
            }
            Some(mut ready) => {
                for service in &component.grpc_services {
                    health
                        .set_service_status(*service, ServingStatus::NotServing)
                        .await;
                }
                let health = health.clone();
                let services = component.grpc_services.clone();
                let loading = loading.clone();
                let token = shutdown.token.clone();
                shutdown.tracker.spawn(async move {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        result = ready.wait_for(|ready| *ready) => if result.is_err() { return },
                    }
                    for service in services {
                        health
                            .set_service_status(service, ServingStatus::Serving)
                            .await;
                    }
                    if loading.fetch_sub(1, Ordering::SeqCst) == 1 && !token.is_cancelled() {
                        health.set_service_status("", ServingStatus::Serving).await;
                    }
                });
            }
        }
        for (task_name, task) in component.tasks {
            let token = shutdown.token.clone();
            let failed = failed.clone();
            let component_name = component.name;
            shutdown.tracker.spawn(async move {
                // A panic is a failure too: a consumer that died must not look healthy.
                let result = std::panic::AssertUnwindSafe(task)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| {
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "a panic".into());
                        Err(anyhow::anyhow!("panicked: {message}"))
                    });
                match result {
                    Ok(()) => tracing::debug!(
                        component = component_name,
                        task = task_name,
                        "task finished"
                    ),
                    Err(error) => {
                        tracing::error!(
                            component = component_name,
                            task = task_name,
                            error = format!("{error:#}"),
                            "task failed; shutting down"
                        );
                        failed.cancel();
                        token.cancel();
                    }
                }
            });
        }
    }
    if loading.load(Ordering::SeqCst) == 0 {
        health.set_service_status("", ServingStatus::Serving).await;
    }
    let transport = tls.as_ref().map_or("plaintext", |tls| tls.mode());
    tracing::info!(addr = %listener.local_addr()?, components = ?names, transport, "gRPC serving");

    let token = shutdown.token.clone();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    server
        .layer(RpcSpanLayer)
        .layer(auth)
        // After authentication: it records the principal, and the outcome of every
        // write, including those the limits refuse.
        .layer(crate::audit::AuditLayer(audit))
        // After authentication: it counts per principal.
        .layer(crate::limits::LimitsLayer::new(limits))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, async move {
            token.cancelled().await;
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
        })
        .await?;
    shutdown.tracker.close();
    shutdown.tracker.wait().await;
    if failed.is_cancelled() {
        anyhow::bail!("a background task failed; see the log above");
    }
    Ok(())
}

/// One signal that turns true once every one of `signals` has (none: no signal at all);
/// it never does if one of them is dropped first, or at shutdown.
fn all_of(
    mut signals: Vec<tokio::sync::watch::Receiver<bool>>,
    shutdown: &Shutdown,
) -> Option<tokio::sync::watch::Receiver<bool>> {
    if signals.len() <= 1 {
        return signals.pop();
    }
    let (all, ready) = tokio::sync::watch::channel(false);
    let token = shutdown.token.clone();
    shutdown.tracker.spawn(async move {
        let every = async {
            for mut signal in signals {
                if signal.wait_for(|ready| *ready).await.is_err() {
                    return;
                }
            }
            all.send_replace(true);
            // Held until nobody listens, so the receivers keep reading true.
            all.closed().await;
        };
        tokio::select! {
            _ = token.cancelled() => {}
            _ = every => {}
        }
    });
    Some(ready)
}

/// Collects field-level problems of a request and turns them into one
/// `INVALID_ARGUMENT` status with `google.rpc.BadRequest` details.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldViolations(Vec<(String, String)>);

impl FieldViolations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push((field.into(), description.into()));
    }

    /// A page size from a request: `default` for 0, else at most `max` (more is a
    /// violation of `field`, and 0 is returned).
    pub fn page_size(&mut self, field: &str, requested: u32, default: u32, max: u32) -> u32 {
        match requested {
            0 => default,
            n if n <= max => n,
            _ => {
                self.add(field, format!("at most {max}"));
                0
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn violations(&self) -> &[(String, String)] {
        &self.0
    }

    /// `Ok(())` when nothing was added, else the violations (which become one
    /// `INVALID_ARGUMENT` status, or a service's own error, with `?`).
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// `field: problem; field: problem`.
impl std::fmt::Display for FieldViolations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (field, description)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{field}: {description}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldViolations {}

impl From<FieldViolations> for Status {
    fn from(violations: FieldViolations) -> Self {
        let summary = violations.to_string();
        let mut details = ErrorDetails::new();
        for (field, description) in violations.0 {
            details.add_bad_request_violation(field, description);
        }
        Status::with_error_details(Code::InvalidArgument, summary, details)
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt as _;

    use super::*;

    #[test]
    fn a_page_size_defaults_when_zero_and_an_oversized_one_names_its_field() {
        let mut bad = FieldViolations::new();
        assert_eq!(bad.page_size("limit", 0, 20, 100), 20);
        assert_eq!(bad.page_size("limit", 100, 20, 100), 100);
        assert!(bad.is_empty());
        assert_eq!(bad.page_size("limit", 101, 20, 100), 0);
        let status = Status::from(bad.into_result().expect_err("too large"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "limit: at most 100");
        let details = status
            .get_details_bad_request()
            .expect("BadRequest details");
        assert_eq!(details.field_violations[0].field, "limit");
    }
}
