//! End-to-end tests of the `zhida` binary against real servers: a Kafka-protocol broker,
//! Redis and an SMTP server that keeps what it receives (started by `deploy/servers.sh`,
//! found through `ZHIDA_TEST_*`). Every test runs its own processes with its own topic,
//! group and key prefixes and its own recipients, so tests run in parallel.

mod auth;
mod cli;
mod crash;
mod demo;
mod digest;
mod dkim;
mod e2e;
mod email;
mod forwards;
mod helpers;
mod import;
mod inbox;
mod lifecycle;
mod limits;
mod notices;
mod personal_data;
mod profiles;
mod relay;
mod serve;
mod sms;
mod tags;
mod tls;
mod trace;
mod webhook_peer;
