//! The runtime every Zhida service shares: layered configuration, telemetry, graceful
//! shutdown, a gRPC host with health and reflection, and the mapping of errors to `Status`.

pub mod audit;
pub mod auth;
pub mod config;
pub mod district;
pub mod grpc;
pub mod ids;
pub mod layers;
pub mod limits;
pub mod shutdown;
pub mod telemetry;
pub mod tls;

pub use config::Config;
pub use grpc::{Component, FieldViolations, Host, serve};
pub use shutdown::Shutdown;
