//! Tracing setup: human or JSON logs, and OpenTelemetry spans whose context travels in
//! Kafka `traceparent` headers. A tracer provider is always installed, so trace ids exist
//! and propagate even when no OTLP endpoint is configured; spans are exported only when
//! `telemetry.otlp_endpoint` is set.

use opentelemetry::{KeyValue, global, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

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
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("zhida"));
        let filter = EnvFilter::try_new(&config.log_filter)
            .map_err(|e| anyhow::anyhow!("telemetry.log_filter: {e}"))?;
        let registry = tracing_subscriber::registry().with(filter).with(otel);
        if config.log_json {
            registry
                .with(tracing_subscriber::fmt::layer().json())
                .try_init()?;
        } else {
            registry
                .with(tracing_subscriber::fmt::layer().with_target(false))
                .try_init()?;
        }
        Ok(Self { provider })
    }

    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("telemetry shutdown: {e}");
        }
    }
}
