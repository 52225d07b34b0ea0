//! CloudEvents (Kafka protocol binding, binary mode) around protobuf payloads.
//!
//! The record value is the protobuf-encoded message; attributes travel as headers:
//! `ce_specversion`, `ce_id`, `ce_type`, `ce_source`, `ce_time`, `content-type`, and the
//! W3C `traceparent` (plus `tracestate` when present).

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::message::{Header, Headers, OwnedHeaders};

use crate::topics::Topic;

/// Header names, in one place.
pub mod headers {
    pub const SPEC_VERSION: &str = "ce_specversion";
    pub const ID: &str = "ce_id";
    pub const TYPE: &str = "ce_type";
    pub const SOURCE: &str = "ce_source";
    pub const TIME: &str = "ce_time";
    pub const CONTENT_TYPE: &str = "content-type";
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    /// Dead-letter headers: why, and where the record came from.
    pub const DLQ_REASON: &str = "zhida_dlq_reason";
    pub const DLQ_TOPIC: &str = "zhida_dlq_topic";
    pub const DLQ_PARTITION: &str = "zhida_dlq_partition";
    pub const DLQ_OFFSET: &str = "zhida_dlq_offset";
    pub const DLQ_GROUP: &str = "zhida_dlq_group";
}

pub(crate) const PROTOBUF: &str = "application/protobuf";

/// A protobuf message that travels on one topic as one CloudEvents type.
pub trait Event: prost::Message + Default + Sized {
    /// The CloudEvents `type`, the protobuf full name.
    const TYPE: &'static str;
    const TOPIC: Topic;
}

macro_rules! event {
    ($ty:ident, $topic:expr) => {
        impl Event for zhida_proto::events::v1::$ty {
            const TYPE: &'static str = concat!("zhida.events.v1.", stringify!($ty));
            const TOPIC: Topic = $topic;
        }
    };
}
event!(PolicyPublished, Topic::PolicyEvents);
event!(PolicyRevised, Topic::PolicyEvents);
event!(PolicyWithdrawn, Topic::PolicyEvents);
event!(PolicyExpired, Topic::PolicyEvents);
event!(PolicyRecorded, Topic::PolicyEvents);
event!(ProfileUpserted, Topic::Profiles);
event!(DeliveryRequested, Topic::DeliveryRequests);
event!(DeliveryStatusChanged, Topic::DeliveryStatus);
event!(AuditRecorded, Topic::Audit);
event!(TagDefined, Topic::Tags);
event!(RelayForwardRequested, Topic::RelayForwards);

/// CloudEvents attributes of a record, as read from its headers.
#[derive(Debug, Clone, Default)]
pub struct EventMeta {
    pub id: String,
    pub ty: String,
    pub source: String,
    pub time: String,
    pub content_type: String,
    /// Every header (including the above), for propagation and dead-lettering.
    pub headers: HashMap<String, Vec<u8>>,
}

impl EventMeta {
    /// The attributes in a record's `headers` (as librdkafka hands them over), every header
    /// kept. Public for the fuzz target that feeds it hostile headers (`fuzz/`).
    pub fn from_headers<H: Headers>(headers: Option<&H>) -> Self {
        let mut all = HashMap::new();
        if let Some(headers) = headers {
            for header in headers.iter() {
                all.insert(
                    header.key.to_string(),
                    header.value.unwrap_or_default().to_vec(),
                );
            }
        }
        let text = |k: &str| {
            all.get(k)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        Self {
            id: text(headers::ID),
            ty: text(headers::TYPE),
            source: text(headers::SOURCE),
            time: text(headers::TIME),
            content_type: text(headers::CONTENT_TYPE),
            headers: all,
        }
    }

    /// The remote parent context carried in `traceparent`, if any.
    pub fn trace_context(&self) -> opentelemetry::Context {
        opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(&self.headers))
        })
    }
}

struct HeaderExtractor<'a>(&'a HashMap<String, Vec<u8>>);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Builds the binary-mode headers for a new event, injecting the current trace context
/// ([`zhida_runtime::telemetry::current_context`]).
pub(crate) fn new_headers(id: &str, ty: &str, source: &str) -> OwnedHeaders {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: headers::SPEC_VERSION,
            value: Some("1.0"),
        })
        .insert(Header {
            key: headers::ID,
            value: Some(id),
        })
        .insert(Header {
            key: headers::TYPE,
            value: Some(ty),
        })
        .insert(Header {
            key: headers::SOURCE,
            value: Some(source),
        })
        .insert(Header {
            key: headers::TIME,
            value: Some(&time),
        })
        .insert(Header {
            key: headers::CONTENT_TYPE,
            value: Some(PROTOBUF),
        });
    let mut injected = TraceInjector(Vec::new());
    let context = zhida_runtime::telemetry::current_context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut injected));
    for (key, value) in injected.0 {
        headers = headers.insert(Header {
            key: &key,
            value: Some(&value),
        });
    }
    headers
}

struct TraceInjector(Vec<(String, String)>);

impl Injector for TraceInjector {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}
