//! The simulator the tests run against (`deploy/smsc`, started by `deploy/servers.sh`):
//! where it listens, its control API, and the JSON lines it dumps. Every test binds with
//! its own `system_id`, so the simulator's modes and counters are the test's own.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use zhida_smpp::{Address, Config, Receipts, Session, Submit};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests via deploy/test.sh (or eval \"$(deploy/servers.sh env)\")")
    })
}

/// The first SMPP provider of the simulator.
pub struct Smsc {
    pub addr: String,
    pub port: u16,
    pub system_id: String,
}

impl Smsc {
    /// The first provider, with a fresh `system_id` for this test.
    pub fn new() -> Smsc {
        let addr = env("ZHIDA_TEST_SMPP")
            .split(',')
            .next()
            .expect("ZHIDA_TEST_SMPP lists an address")
            .trim()
            .to_owned();
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("ZHIDA_TEST_SMPP is host:port");
        let id = uuid::Uuid::new_v4().simple().to_string();
        Smsc {
            addr,
            port,
            system_id: format!("t-{}", &id[..12]),
        }
    }

    pub fn config(&self) -> Config {
        Config::new(&self.addr, &self.system_id, "secret".into())
    }

    pub async fn connect(&self) -> (Session, Receipts) {
        Session::connect(self.config())
            .await
            .expect("bind to the SMSC simulator")
    }

    /// `POST /mode` for this test's system_id on this port.
    pub async fn mode(&self, mode: &str, count: Option<u32>, after: Option<u32>) {
        let mut body =
            serde_json::json!({"port": self.port, "system_id": self.system_id, "mode": mode});
        if let Some(count) = count {
            body["count"] = count.into();
        }
        if let Some(after) = after {
            body["after"] = after.into();
        }
        control("POST", "/mode", Some(body)).await;
    }

    /// `GET /stats` for this test's system_id on this port.
    pub async fn stats(&self) -> Value {
        control(
            "GET",
            &format!("/stats?port={}&system_id={}", self.port, self.system_id),
            None,
        )
        .await
    }

    /// Accepted submits of this test, as the simulator dumped them, once there are `n`.
    pub async fn submits(&self, n: usize) -> Vec<Value> {
        let file = format!("{}/{}.jsonl", env("ZHIDA_TEST_SMS_DUMP"), self.port);
        eventually(&format!("{n} submits in {file}"), || async {
            let lines = self.lines(&file).await;
            (lines.len() >= n).then_some(lines)
        })
        .await
    }

    async fn lines(&self, file: &str) -> Vec<Value> {
        let text = tokio::fs::read_to_string(file).await.unwrap_or_default();
        // The dump holds every test's submits (and benchmarks'): parse only ours.
        let quoted = format!("\"{}\"", self.system_id);
        text.lines()
            .filter(|l| l.contains(&quoted))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["system_id"] == self.system_id.as_str())
            .collect()
    }
}

/// One HTTP/1.1 exchange with the simulator's control API; its JSON answer.
async fn control(method: &str, path: &str, body: Option<Value>) -> Value {
    let base = env("ZHIDA_TEST_SMSC_CONTROL");
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect(host)
        .await
        .unwrap_or_else(|e| panic!("SMSC control API at {base}: {e}"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    let (head, json) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{method} {path}: {head}\n{json}"
    );
    serde_json::from_str(json).expect("JSON answer")
}

/// Polls `check` until it gives a value, for at most 10 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh 13-digit mobile number (86139…) ending in `suffix` (give one, so that it
/// ends in 0000 or 4444 only when the test means it).
pub fn number(suffix: &str) -> String {
    let digits: String = uuid::Uuid::new_v4()
        .as_u128()
        .to_string()
        .chars()
        .rev()
        .take(8 - suffix.len())
        .collect();
    format!("86139{digits}{suffix}")
}

/// A plain UCS-2 submit to `to`, asking for a receipt.
pub fn submit(to: &str, text: &str) -> Submit {
    Submit {
        source: Address::alphanumeric("10690000"),
        destination: Address::international(to),
        data_coding: zhida_smpp::DATA_CODING_UCS2,
        esm_class: 0,
        registered_delivery: 1,
        short_message: zhida_smpp::encode_ucs2(text),
    }
}
