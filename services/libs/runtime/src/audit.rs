//! The audit trail: every call of a state-changing RPC (a write
//! [`Class`](crate::limits::Class) in [`crate::auth::RPC_ACCESS`]) is recorded with who
//! made it (the [`Principal`]'s key), what (the RPC's path), when, and how it ended (the
//! gRPC status code; for a write stream, `ImportProfiles`, how it opened), and handed to an
//! [`AuditSink`]; the binary drains the sink into the `audit` topic. No personal data:
//! the principal is a kind and an id, the request body is never looked at.
//!
//! Recording never holds a call up: the sink is a bounded queue, and a full one drops the
//! record with a warning (the queue is drained continuously; a broker outage long enough
//! to fill it is visible in the logs).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::sync::mpsc;
use tonic::body::Body;
use tower_service::Service;

use crate::{auth::Principal, limits::class};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One state-changing call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// `kind:id`, or `anonymous` for a call without a principal (refused before
    /// authentication, or `auth.mode = "off"`).
    pub principal: String,
    /// `/package.Service/Method`.
    pub rpc: String,
    /// The gRPC status code answered (0 = OK).
    pub code: i32,
    /// When it was answered, in milliseconds since the epoch.
    pub at_millis: i64,
    /// The call's W3C trace id, if it had one.
    pub trace_id: String,
}

/// Where the host sends audit entries.
#[derive(Clone, Debug)]
pub struct AuditSink(mpsc::Sender<AuditEntry>);

/// Entries held for the drain before new ones are dropped.
pub const AUDIT_QUEUE: usize = 10_000;

/// A sink and the receiver that drains it.
pub fn channel() -> (AuditSink, mpsc::Receiver<AuditEntry>) {
    let (tx, rx) = mpsc::channel(AUDIT_QUEUE);
    (AuditSink(tx), rx)
}

impl AuditSink {
    fn record(&self, entry: AuditEntry) {
        if let Err(error) = self.0.try_send(entry) {
            tracing::warn!(%error, "audit queue full or closed: an audit record was dropped");
        }
    }
}

/// Records the write calls passing through it into the sink (none: records nothing).
#[derive(Clone, Debug)]
pub struct AuditLayer(pub Option<AuditSink>);

impl<S> tower_layer::Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Audit {
            inner,
            sink: self.0.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Audit<S> {
    inner: S,
    sink: Option<AuditSink>,
}

impl<S, B> Service<http::Request<B>> for Audit<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // Only writes are recorded: reads pass without a look at their headers.
        let record = self
            .sink
            .clone()
            .filter(|_| class(request.uri().path()).is_write())
            .map(|sink| {
                let principal = request
                    .extensions()
                    .get::<Principal>()
                    .map_or_else(|| "anonymous".to_string(), Principal::key);
                let trace_id = request
                    .headers()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split('-').nth(1))
                    .unwrap_or_default()
                    .to_string();
                (sink, principal, request.uri().path().to_string(), trace_id)
            });
        Box::pin(async move {
            let response = inner.call(request).await?;
            if let Some((sink, principal, path, trace_id)) = record {
                sink.record(AuditEntry {
                    principal,
                    rpc: path,
                    code: crate::layers::status_code(&response),
                    at_millis: chrono::Utc::now().timestamp_millis(),
                    trace_id,
                });
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tower_layer::Layer as _;

    use super::*;
    use crate::auth::Kind;

    /// Answers PERMISSION_DENIED for paths ending in `Denied`, else 200.
    #[derive(Clone)]
    struct Answer;

    impl Service<http::Request<Body>> for Answer {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            std::future::ready(Ok(
                tonic::Status::permission_denied("no").into_http::<Body>()
            ))
        }
    }

    #[tokio::test]
    async fn writes_are_recorded_with_principal_and_outcome_and_reads_are_not() {
        let (sink, mut rx) = channel();
        let mut service = AuditLayer(Some(sink)).layer(Answer);
        let call = |path: &str, principal: Option<Principal>| {
            let mut request = http::Request::builder()
                .uri(path)
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .body(Body::default())
                .expect("request");
            if let Some(p) = principal {
                request.extensions_mut().insert(p);
            }
            request
        };
        let department = Principal {
            kind: Kind::Department,
            id: "区科委".into(),
            scopes: BTreeSet::new(),
        };
        service
            .call(call(
                "/zhida.policy.v1.PolicyService/CreateDraft",
                Some(department),
            ))
            .await
            .expect("infallible");
        service
            .call(call("/zhida.profile.v1.ProfileService/GetProfile", None))
            .await
            .expect("infallible");
        let entry = rx.try_recv().expect("the write was recorded");
        assert_eq!(entry.principal, "department:区科委");
        assert_eq!(entry.rpc, "/zhida.policy.v1.PolicyService/CreateDraft");
        assert_eq!(entry.code, tonic::Code::PermissionDenied as i32);
        assert_eq!(entry.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(rx.try_recv().is_err(), "reads are not audited");
    }
}
