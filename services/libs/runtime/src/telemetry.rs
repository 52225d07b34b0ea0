//! Tracing setup: human or JSON logs, and OpenTelemetry spans whose context travels in
//! Kafka `traceparent` headers. A tracer provider is always installed, so trace ids exist
//! and propagate even when no OTLP endpoint is configured; spans are exported only when
//! `telemetry.otlp_endpoint` is set.
//!
//! **Logging and tracing are filtered separately.** Each layer has its own filter on the
//! one `Registry` (per-layer filtering), so raising `telemetry.log_filter` to `warn` or
//! `error` makes the logs quiet without removing the spans whose context is injected into
//! every record: a trace still links a policy to each of its deliveries.
//!
//! - The log layer takes what `telemetry.log_filter` enables, and only that.
//! - The OpenTelemetry layer takes, whatever the log filter says (`traced`):
//!   - every span at `INFO` and above of Zhida's own crates (targets `zhida` and
//!     `zhida_*`): the span the gRPC host opens for every call and the consume span of
//!     each record, which are the spans whose context reaches `traceparent`. `DEBUG` and `TRACE` spans and the spans
//!     of libraries (tonic, h2, rdkafka, …) are not created for tracing;
//!   - every event at `WARN` and above, from any crate, as an event on the span it happens
//!     in; quieter events are left to the logs.
//!
//! A span the log filter enables but the trace filter does not (a `DEBUG` span, or a
//! library's span under `log_filter = "debug"`) is logged but has no trace context of its
//! own; [`current_context`], which the bus injects into each record, then gives the
//! context of the innermost traced span around it.

use opentelemetry::{
    KeyValue, global,
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::{Level, Metadata, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{FilterFn, LevelFilter},
    fmt::MakeWriter,
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::config::TelemetryConfig;

/// Flushes pending spans when dropped (or on [`Telemetry::shutdown`]).
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Installs the global subscriber and propagator. Call once, early in `main`.
    pub fn init(service: &str, config: &TelemetryConfig) -> anyhow::Result<Self> {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let resource = Resource::builder()
            .with_attributes([KeyValue::new("service.name", format!("zhida-{service}"))])
            .build();
        let mut builder = SdkTracerProvider::builder().with_resource(resource);
        if let Some(endpoint) = &config.otlp_endpoint {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            builder = builder.with_batch_exporter(exporter);
        }
        let provider = builder.build();
        global::set_tracer_provider(provider.clone());
        subscriber(config, &provider, std::io::stdout)?.try_init()?;
        Ok(Self { provider })
    }

    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("telemetry shutdown: {e}");
        }
    }
}

/// The OpenTelemetry context to propagate from here: the current span's, or, when the
/// current span is one only the logs take (see the module docs), the innermost traced
/// span's, which the OpenTelemetry layer makes current while it is entered. Empty outside
/// every traced span.
pub fn current_context() -> opentelemetry::Context {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        context
    } else {
        opentelemetry::Context::current()
    }
}

/// The registry with its two independently filtered layers: logs to `writer` as
/// `config.log_filter` says, spans to `provider` as [`traced`] says.
fn subscriber<W>(
    config: &TelemetryConfig,
    provider: &SdkTracerProvider,
    writer: W,
) -> anyhow::Result<impl Subscriber + Send + Sync + 'static>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let log_filter = EnvFilter::try_new(&config.log_filter)
        .map_err(|e| anyhow::anyhow!("telemetry.log_filter: {e}"))?;
    let logs = if config.log_json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_writer(writer)
            .boxed()
    };
    // The hint keeps the global max level at INFO at least, so `tracing`'s level
    // short-circuit never discards a span the trace filter wants.
    let trace_filter = FilterFn::new(traced).with_max_level_hint(LevelFilter::INFO);
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("zhida"))
        .with_filter(trace_filter);
    Ok(Registry::default()
        .with(logs.with_filter(log_filter))
        .with(traces))
}

/// Whether the OpenTelemetry layer takes a span or event, independently of the log filter:
/// spans of Zhida's own crates at `INFO` and above, and events at `WARN` and above.
fn traced(metadata: &Metadata<'_>) -> bool {
    if metadata.is_span() {
        is_zhida(metadata.target()) && *metadata.level() <= Level::INFO
    } else {
        *metadata.level() <= Level::WARN
    }
}

/// Targets of Zhida's crates: `zhida` (the binary) and `zhida_*` (the libraries and
/// services), with their modules.
fn is_zhida(target: &str) -> bool {
    target
        .strip_prefix("zhida")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::") || rest.starts_with('_'))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
        }
    }

    fn quiet() -> TelemetryConfig {
        TelemetryConfig {
            log_filter: "error".into(),
            ..TelemetryConfig::default()
        }
    }

    #[test]
    fn spans_have_a_trace_context_when_the_log_filter_only_lets_errors_through() {
        let provider = SdkTracerProvider::builder().build();
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = subscriber(&quiet(), &provider, move || writer.clone()).expect("valid");
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("consume", messaging.system = "kafka");
            let _entered = span.enter();
            tracing::info!("not logged at error");
            tracing::error!("logged at error");
            let context = span.context();
            let context = context.span();
            assert!(
                context.span_context().is_valid(),
                "an INFO span of a zhida crate is traced under log_filter=error"
            );
            let library = tracing::info_span!(target: "h2::proto", "library");
            assert!(
                !library.context().span().span_context().is_valid(),
                "library spans are not traced"
            );
        });
        let text = logs.text();
        assert!(text.contains("logged at error"), "{text}");
        assert!(
            !text.contains("not logged"),
            "the log filter still applies: {text}"
        );
    }

    #[test]
    fn records_in_a_span_only_the_logs_take_carry_the_traced_span_around_it() {
        let provider = SdkTracerProvider::builder().build();
        let config = TelemetryConfig {
            log_filter: "debug".into(),
            ..TelemetryConfig::default()
        };
        let subscriber = subscriber(&config, &provider, std::io::sink).expect("valid");
        tracing::subscriber::with_default(subscriber, || {
            assert!(
                !current_context().span().span_context().is_valid(),
                "no context outside every span"
            );
            let traced = tracing::info_span!("consume");
            let _traced = traced.enter();
            let logged = tracing::debug_span!("detail");
            let _logged = logged.enter();
            assert!(
                !logged.context().span().span_context().is_valid(),
                "a DEBUG span is not traced"
            );
            let expected = traced.context().span().span_context().clone();
            let context = current_context();
            assert_eq!(context.span().span_context(), &expected);
        });
    }

    #[test]
    fn zhida_targets_are_the_binary_and_its_crates_only() {
        assert!(is_zhida("zhida"));
        assert!(is_zhida("zhida::demo"));
        assert!(is_zhida("zhida_bus::consumer"));
        assert!(!is_zhida("zhidan"));
        assert!(!is_zhida("tonic::transport"));
    }
}
