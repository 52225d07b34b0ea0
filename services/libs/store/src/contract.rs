//! Contract tests both implementations of each store must pass. They are plain async
//! functions so the integration tests can run them against memory and against Redis; each
//! store keeps its own beside its implementations (`<store>/contract.rs`).

pub use crate::{
    digest::contract::*, feed::contract::*, inbox::contract::*, keys::contract::*,
    lease::contract::*, ledger::contract::*, receipt::contract::*, recipients::contract::*,
    relay::contract::*,
};
