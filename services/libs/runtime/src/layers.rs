//! Cross-cutting work around every RPC, as tower services the gRPC host puts in front of
//! the handlers, so no handler repeats it:
//!
//! - [`RpcSpan`]: one span per call with OpenTelemetry's RPC fields (`rpc.system`,
//!   `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), continuing the caller's trace
//!   when its metadata carries a W3C `traceparent`;
//! - [`WhenReady`]: a component that is still loading (e.g. replaying a table) holds calls
//!   until it is ready, and answers `UNAVAILABLE` if that takes longer than [`READY_WAIT`].

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::watch;
use tonic::{Status, body::Body, server::NamedService};
use tower_service::Service;
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How long a call waits for a loading component before answering `UNAVAILABLE`.
pub const READY_WAIT: Duration = Duration::from_secs(5);

/// Wraps the whole router: see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RpcSpanLayer;

impl<S> tower_layer::Layer<S> for RpcSpanLayer {
    type Service = RpcSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcSpan { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RpcSpan<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for RpcSpan<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = rpc_span(&request);
        // The clone that was polled ready serves this call; the fresh one waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                tracing::Span::current().record("rpc.grpc.status_code", status_code(&response));
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The gRPC status code of an answer as a layer sees it: unary errors come back
/// trailers-only, with the status in the headers; a success carries it in the trailers,
/// after the layers have let go, so no `grpc-status` header means OK (0).
pub(crate) fn status_code<B>(response: &http::Response<B>) -> i32 {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0)
}

/// `/zhida.profile.v1.ProfileService/Subscribe` → a span for that service and method.
fn rpc_span<B>(request: &http::Request<B>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let span = tracing::info_span!(
        "rpc",
        otel.name = path,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        enduser.id = Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    // Without a valid `traceparent` the context is empty and the span starts a trace.
    let _ = span.set_parent(parent);
    span
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// A tonic service whose calls wait until `ready` is true; see the module docs.
#[derive(Clone)]
pub struct WhenReady<S> {
    inner: S,
    ready: watch::Receiver<bool>,
    wait: Duration,
}

impl<S> WhenReady<S> {
    /// Holds calls to `inner` up to [`READY_WAIT`] until `ready` is true.
    pub fn new(inner: S, ready: watch::Receiver<bool>) -> Self {
        Self {
            inner,
            ready,
            wait: READY_WAIT,
        }
    }
}

impl<S: NamedService> NamedService for WhenReady<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for WhenReady<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (mut ready, wait) = (self.ready.clone(), self.wait);
        Box::pin(async move {
            if !*ready.borrow_and_update() {
                let waited = tokio::time::timeout(wait, ready.wait_for(|r| *r)).await;
                if !matches!(waited, Ok(Ok(_))) {
                    let status = Status::unavailable(format!(
                        "{} is still loading its state; retry",
                        S::NAME
                    ));
                    return Ok(status.into_http());
                }
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    /// Answers every call with 200 and an empty body.
    #[derive(Clone)]
    struct Echo;

    impl NamedService for Echo {
        const NAME: &'static str = "test.Echo";
    }

    impl Service<http::Request<Body>> for Echo {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            std::future::ready(Ok(http::Response::new(Body::default())))
        }
    }

    fn status(response: &http::Response<Body>) -> Option<Code> {
        Status::from_header_map(response.headers()).map(|s| s.code())
    }

    #[tokio::test]
    async fn a_loading_service_holds_calls_until_ready_then_answers_unavailable() {
        let (ready_tx, ready) = watch::channel(false);
        let mut service = WhenReady {
            wait: Duration::from_millis(200),
            ..WhenReady::new(Echo, ready)
        };
        let call = || http::Request::new(Body::default());

        // Not ready within the wait: UNAVAILABLE.
        let response = service.call(call()).await.expect("infallible");
        assert_eq!(status(&response), Some(Code::Unavailable));

        // Becomes ready while a call waits: the call goes through.
        let waiting = tokio::spawn(service.call(call()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready_tx.send_replace(true);
        let response = waiting.await.expect("joined").expect("infallible");
        assert_eq!(status(&response), None);
        assert_eq!(response.status(), http::StatusCode::OK);
    }
}
