//! Generated protobuf types and gRPC stubs for every Zhida contract.
//!
//! The `.proto` sources live in the top-level `proto/` directory; this crate is the only
//! place that compiles them. Adapters in each service convert between these wire types and
//! their domain types, so prost types stay at the edges.

#![allow(clippy::all, missing_docs)]

/// Event payloads carried in CloudEvents over Kafka.
pub mod events {
    pub mod v1 {
        tonic::include_proto!("zhida.events.v1");
    }
}

/// The publisher's PolicyService.
pub mod policy {
    pub mod v1 {
        tonic::include_proto!("zhida.policy.v1");
    }
}

/// The profiler's ProfileService.
pub mod profile {
    pub mod v1 {
        tonic::include_proto!("zhida.profile.v1");
    }
}

/// The relay's RelayService.
pub mod relay {
    pub mod v1 {
        tonic::include_proto!("zhida.relay.v1");
    }
}

/// The notifier's NotificationService.
pub mod notification {
    pub mod v1 {
        tonic::include_proto!("zhida.notification.v1");
    }
}

/// Encoded `FileDescriptorSet` of all Zhida protos, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/zhida_descriptor.bin"));

pub use prost_types::Timestamp;

/// Every RPC of every Zhida service as its gRPC path, `/zhida.policy.v1.PolicyService/
/// Publish`, read from [`FILE_DESCRIPTOR_SET`]: what per-RPC tables (access rules,
/// limits) are checked against.
pub fn rpc_paths() -> Vec<String> {
    let pool = prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set compiled by build.rs decodes");
    let mut paths = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            paths.push(format!("/{}/{}", service.full_name(), method.name()));
        }
    }
    paths
}

/// The current time as a protobuf `Timestamp` (the Unix epoch if the clock is before it).
pub fn timestamp_now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}

/// The proto3 JSON mapping of Zhida messages, with field names as written in the `.proto`
/// files (`subject_id`, not `subjectId`; both are accepted when reading), driven by
/// [`FILE_DESCRIPTOR_SET`] so it can never drift from the wire types.
pub mod json {
    use std::sync::LazyLock;

    use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

    static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
        DescriptorPool::decode(super::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set compiled by build.rs decodes")
    });

    /// Why a JSON text is not the message it should be.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    pub struct JsonError(String);

    fn descriptor(name: &str) -> Result<prost_reflect::MessageDescriptor, JsonError> {
        POOL.get_message_by_name(name)
            .ok_or_else(|| JsonError(format!("unknown message type {name}")))
    }

    /// Parses `text` as the message `name` (e.g. `zhida.events.v1.Profile`). Unknown
    /// fields and enum values are errors.
    pub fn parse<M: prost::Message + Default>(name: &str, text: &str) -> Result<M, JsonError> {
        let descriptor = descriptor(name)?;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let dynamic = DynamicMessage::deserialize(descriptor, &mut deserializer)
            .map_err(|e| JsonError(e.to_string()))?;
        deserializer.end().map_err(|e| JsonError(e.to_string()))?;
        dynamic
            .transcode_to::<M>()
            .map_err(|e| JsonError(e.to_string()))
    }

    /// `message` (of type `name`) as JSON, default-valued fields omitted.
    pub fn to_value<M: prost::Message>(
        name: &str,
        message: &M,
    ) -> Result<serde_json::Value, JsonError> {
        let mut dynamic = DynamicMessage::new(descriptor(name)?);
        dynamic
            .transcode_from(message)
            .map_err(|e| JsonError(e.to_string()))?;
        let options = SerializeOptions::new()
            .use_proto_field_name(true)
            .skip_default_fields(true);
        dynamic
            .serialize_with_options(serde_json::value::Serializer, &options)
            .map_err(|e| JsonError(e.to_string()))
    }
}
