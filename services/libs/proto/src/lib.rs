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
