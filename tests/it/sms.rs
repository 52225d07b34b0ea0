//! SMS end to end against the SMSC simulator (`deploy/smsc`, two "providers" on two
//! ports, started by `deploy/servers.sh`): the template and signature on the wire, one SMS
//! per subscriber, receipts as statuses, failover, throttling, quiet hours, and a
//! `kill -9` mid-batch. Each test binds with system_ids of its own, so the simulator's
//! modes, counters and dump lines are the test's own.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use prost::Message as _;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use zhida_bus::{Group, Producer, Topic};
use zhida_proto::{
    events::v1::{
        Channel, Contact, DeliveryRequested, DeliveryState, DeliveryStatusChanged, Profile,
    },
    profile::v1::UpsertProfileRequest,
};

use crate::helpers::{
    NewPolicy, Server, TestEnv, citizen, count_records, publish, recorded_deliveries,
    wait_until_consumed,
};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run via deploy/test.sh"))
}

/// The simulator's two providers, bound with this test's own system_ids.
struct Smsc {
    /// `(host:port, port, system_id)` of provider a and b.
    providers: [(String, u16, String); 2],
}

impl Smsc {
    fn new(env: &TestEnv) -> Self {
        let addrs: Vec<String> = var("ZHIDA_TEST_SMPP")
            .split(',')
            .map(|a| a.trim().to_string())
            .collect();
        assert!(addrs.len() >= 2, "ZHIDA_TEST_SMPP lists two providers");
        let tag = &env.id[env.id.len() - 8..];
        let provider = |n: usize, letter: char| {
            let port = addrs[n]
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("host:port");
            (addrs[n].clone(), port, format!("t{letter}-{tag}"))
        };
        Self {
            providers: [provider(0, 'a'), provider(1, 'b')],
        }
    }

    /// A config file with both providers (weights 1 and `standby_weight`), the given
    /// quiet hours and a 1 s cool-down for a failing provider; its path.
    fn config(
        &self,
        dir: &tempfile::TempDir,
        quiet: (&str, &str),
        rate: u32,
        standby_weight: u32,
    ) -> String {
        let mut toml = format!(
            "[sms]\nlink_base = \"https://zc.yangpu.example.gov.cn/p/\"\n\
             [sms.quiet_hours]\nstart = \"{}\"\nend = \"{}\"\n\
             [sms.health]\ncool_down = \"1s\"\n",
            quiet.0, quiet.1
        );
        for (n, (addr, _, system_id)) in self.providers.iter().enumerate() {
            let weight = if n == 0 { 1 } else { standby_weight };
            toml.push_str(&format!(
                "[[sms.providers]]\nname = \"smsc-{n}\"\naddress = \"{addr}\"\n\
                 system_id = \"{system_id}\"\npassword = \"secret\"\nweight = {weight}\n\
                 rate_per_second = {rate}\nsource_addr = \"10690000{n}\"\n"
            ));
        }
        let path = dir.path().join("zhida.toml");
        std::fs::write(&path, toml).expect("config written");
        path.to_string_lossy().into_owned()
    }

    /// `POST /mode` for provider `n`.
    async fn mode(&self, n: usize, mode: &str, count: Option<u32>) {
        let (_, port, system_id) = &self.providers[n];
        let mut body = serde_json::json!({"port": port, "system_id": system_id, "mode": mode});
        if let Some(count) = count {
            body["count"] = count.into();
        }
        control("POST", "/mode", Some(body)).await;
    }

    /// `GET /stats` of provider `n`.
    async fn stats(&self, n: usize) -> Value {
        let (_, port, system_id) = &self.providers[n];
        control(
            "GET",
            &format!("/stats?port={port}&system_id={system_id}"),
            None,
        )
        .await
    }

    /// Every accepted submit of this test at provider `n`, as the simulator dumped it.
    fn submits(&self, n: usize) -> Vec<Value> {
        let (_, port, system_id) = &self.providers[n];
        let file = format!("{}/{port}.jsonl", var("ZHIDA_TEST_SMS_DUMP"));
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let quoted = format!("\"{system_id}\"");
        text.lines()
            .filter(|l| l.contains(&quoted))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["system_id"] == system_id.as_str())
            .collect()
    }

    /// Every accepted submit of this test, at either provider.
    fn all_submits(&self) -> Vec<Value> {
        let mut all = self.submits(0);
        all.extend(self.submits(1));
        all
    }

    /// The SMS as handsets would show them: `(destination, text)`, the segments of a
    /// concatenated message joined in order (a message starts at its first segment).
    fn messages(&self) -> Vec<(String, String)> {
        // (text, segments received, segments expected), in the order they started.
        let mut messages: Vec<(String, String, u64, u64)> = Vec::new();
        // (destination, reference) -> the message its segments join.
        let mut open: HashMap<(String, u64), usize> = HashMap::new();
        for n in 0..2 {
            for submit in self.submits(n) {
                let to = submit["destination_addr"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let text = submit["text"].as_str().unwrap_or("").to_string();
                let udh = &submit["udh"];
                let total = udh["total"].as_u64().unwrap_or(1);
                match (udh["ref"].as_u64(), udh["seq"].as_u64()) {
                    (Some(reference), Some(seq)) if seq > 1 => {
                        if let Some(&i) = open.get(&(to.clone(), reference)) {
                            messages[i].1.push_str(&text);
                            messages[i].2 += 1;
                        }
                    }
                    (Some(reference), _) => {
                        open.insert((to.clone(), reference), messages.len());
                        messages.push((to, text, 1, total));
                    }
                    _ => messages.push((to, text, 1, 1)),
                }
            }
        }
        // A message whose later segments are still on their way is not one yet (segments of
        // concurrent deliveries interleave).
        messages
            .into_iter()
            .filter(|(_, _, got, total)| got >= total)
            .map(|(to, text, _, _)| (to, text))
            .collect()
    }

    /// Messages per destination number.
    fn per_number(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (to, _) in self.messages() {
            *counts.entry(to).or_default() += 1;
        }
        counts
    }
}

/// One HTTP/1.1 exchange with the simulator's control API; its JSON answer.
async fn control(method: &str, path: &str, body: Option<Value>) -> Value {
    let base = var("ZHIDA_TEST_SMSC_CONTROL");
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect(host).await.expect("SMSC control API");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    let (head, json) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{method} {path}: {head}");
    serde_json::from_str(json).expect("JSON answer")
}

/// Polls `check` until it holds, at most `within`.
async fn until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh mobile number 139…`suffix` (11 digits).
fn mobile(suffix: &str) -> String {
    let digits: String = uuid::Uuid::new_v4()
        .as_u128()
        .to_string()
        .chars()
        .take(8 - suffix.len())
        .collect();
    format!("139{digits}{suffix}")
}

/// A citizen subscribed to `employment` by SMS at `number`, in `language`.
fn sms_subscriber(env: &TestEnv, id: &str, number: &str, language: &str) -> Profile {
    let mut profile = citizen(env, id, id, &["employment"], false);
    profile.contacts = vec![Contact {
        channel: Channel::Sms as i32,
        address: number.into(),
        consent: true,
        ..Contact::default()
    }];
    profile.subscriptions[0].channels = vec![Channel::Sms as i32];
    if let Some(zhida_proto::events::v1::profile::Details::Citizen(c)) = &mut profile.details {
        c.language = language.into();
    }
    profile
}

fn policy(env: &TestEnv, n: u32, urgent: bool) -> NewPolicy {
    NewPolicy {
        request_id: format!("sms-{n}-{}", env.id),
        title: format!("杨浦区稳就业专项补贴申领通知（第{n}批）"),
        body: "正文不进入短信：短信只含标题、部门和链接。".into(),
        tags: vec!["employment".into()],
        department: "区人力资源社会保障局".into(),
        service_url: "https://zwdt.sh.gov.cn/".into(),
        audience: String::new(),
        urgent,
        valid_until: None,
    }
}

/// The SMS statuses of `policy_id` on `delivery.status` as (recipient, state), once
/// `expected` different ones were read (events are at-least-once with stable ids:
/// consumers, like this, count each (delivery, state) once).
async fn statuses(env: &TestEnv, policy_id: &str, expected: usize) -> Vec<(String, DeliveryState)> {
    let seen = Mutex::new(std::collections::BTreeSet::new());
    count_records(
        env,
        Topic::DeliveryStatus,
        expected,
        Duration::from_secs(30),
        |bytes| match DeliveryStatusChanged::decode(bytes) {
            Ok(s) if s.policy_id == policy_id && s.channel == Channel::Sms as i32 => {
                let state = DeliveryState::try_from(s.state).unwrap_or_default();
                seen.lock()
                    .expect("lock")
                    .insert((s.recipient_id, state as i32))
            }
            _ => false,
        },
    )
    .await;
    seen.into_inner()
        .expect("lock")
        .into_iter()
        .map(|(r, s)| (r, DeliveryState::try_from(s).unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_subscriber_gets_one_templated_sms_receipts_become_statuses_and_providers_fail_over() {
    let env = TestEnv::new("sms").await;
    let smsc = Smsc::new(&env);
    let dir = tempfile::tempdir().expect("tempdir");
    // Never quiet: "00:00" to "00:00". Provider b is a standby: a takes everything while
    // it is healthy, so where each message went is known.
    let config = smsc.config(&dir, ("00:00", "00:00"), 200, 0);
    let server = Server::start_with("all", &env, &[("ZHIDA_CONFIG", config.as_str())]).await;
    let mut profiles = server.profiles().await;

    let (zh, en, refused, undeliv) = (mobile("1"), mobile("2"), mobile("0000"), mobile("4444"));
    let people = [
        sms_subscriber(&env, "zh", &zh, "zh"),
        sms_subscriber(&env, "en", &en, "en"),
        sms_subscriber(&env, "refused", &refused, "zh"),
        sms_subscriber(&env, "undeliv", &undeliv, "zh"),
    ];
    for profile in &people {
        profiles
            .upsert_profile(UpsertProfileRequest {
                profile: Some(profile.clone()),
            })
            .await
            .expect("upsert");
    }
    let first = publish(&server, policy(&env, 1, false)).await;

    // Three accepted (the 0000 number is refused by the SMSC), each once.
    until("three SMS", Duration::from_secs(30), || {
        smsc.messages().len() >= 3
    })
    .await;
    let messages = smsc.messages();
    let text_to = |number: &str| -> Vec<String> {
        messages
            .iter()
            .filter(|(to, _)| *to == format!("86{number}"))
            .map(|(_, text)| text.clone())
            .collect()
    };
    let link = format!("https://zc.yangpu.example.gov.cn/p/{first}");
    assert_eq!(
        text_to(&zh),
        [format!(
            "【杨浦区政务】区人力资源社会保障局发布了《杨浦区稳就业专项补贴申领通知（第1批）》，详情：{link}"
        )],
        "the zh template, signature first, the body left out"
    );
    let english = text_to(&en);
    assert_eq!(english.len(), 1, "{english:?}");
    assert!(
        english[0].starts_with("【杨浦区政务】区人力资源社会保障局 published")
            && english[0].ends_with(&link),
        "the en template: {english:?}"
    );
    assert!(text_to(&refused).is_empty());
    for s in &smsc.all_submits() {
        assert_eq!(s["data_coding"], 8, "UCS-2");
        assert_eq!(s["registered_delivery"], 1, "a receipt is asked for");
        assert!(
            s["udh"].is_null() || s["udh"]["total"] == 2,
            "concatenated within the segment limit: {s}"
        );
    }

    // SENT for the accepted, DELIVERED or UNDELIVERABLE from their receipts; the refused
    // number is UNDELIVERABLE at once, not retried.
    let states = statuses(&env, &first, 7).await;
    let of = |id: &str| -> Vec<DeliveryState> {
        let mut s: Vec<DeliveryState> = states
            .iter()
            .filter(|(r, _)| *r == format!("{id}-{}", env.id))
            .map(|(_, s)| *s)
            .collect();
        s.sort_by_key(|s| *s as i32);
        s
    };
    assert_eq!(of("zh"), [DeliveryState::Sent, DeliveryState::Delivered]);
    assert_eq!(of("en"), [DeliveryState::Sent, DeliveryState::Delivered]);
    assert_eq!(of("refused"), [DeliveryState::Undeliverable]);
    assert_eq!(
        of("undeliv"),
        [DeliveryState::Sent, DeliveryState::Undeliverable]
    );

    assert_eq!(smsc.submits(1).len(), 0, "the standby had nothing to do");

    // Provider a is down (binds refused, its connection dropped): everything goes through
    // the standby b, which throttles its first submits: that slows the sender but fails
    // nothing.
    smsc.mode(0, "drop", None).await;
    smsc.mode(1, "throttle", Some(3)).await;
    let at_a = smsc.submits(0).len();
    let second = one_more_each(&smsc, &server, &env, 2, [&zh, &en, &undeliv]).await;
    assert_eq!(smsc.submits(0).len(), at_a, "nothing reached provider a");
    let b = smsc.stats(1).await;
    assert!(
        b["submits_throttled"].as_u64() >= Some(3),
        "b throttled: {b}"
    );
    let states = statuses(&env, &second, 4).await;
    assert!(
        !states.iter().any(|(_, s)| *s == DeliveryState::Failed),
        "throttling failed nothing: {states:?}"
    );

    // Provider a is back but fails every submit (ESME_RSYSERR): each message it fails
    // moves on to b.
    smsc.mode(0, "refuse", None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // a's cool-down ends
    let at_a = smsc.submits(0).len();
    one_more_each(&smsc, &server, &env, 3, [&zh, &en, &undeliv]).await;
    assert_eq!(smsc.submits(0).len(), at_a, "a accepted nothing");
    let a = smsc.stats(0).await;
    assert!(a["submits_refused"].as_u64() >= Some(1), "a was tried: {a}");
    smsc.mode(0, "normal", None).await;
}

/// Publishes policy `n` and waits until each of `numbers` got exactly one more SMS; the
/// policy id.
async fn one_more_each(
    smsc: &Smsc,
    server: &Server,
    env: &TestEnv,
    n: u32,
    numbers: [&String; 3],
) -> String {
    let before = smsc.per_number();
    let count = |counts: &HashMap<String, usize>, number: &str| {
        counts.get(&format!("86{number}")).copied().unwrap_or(0)
    };
    let policy_id = publish(server, policy(env, n, false)).await;
    until("one more SMS each", Duration::from_secs(60), || {
        let now = smsc.per_number();
        numbers
            .iter()
            .all(|number| count(&now, number) > count(&before, number))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = smsc.per_number();
    for number in numbers {
        assert_eq!(
            count(&after, number),
            count(&before, number) + 1,
            "exactly one more SMS to {number}"
        );
    }
    policy_id
}

/// District time of day `seconds` from now, `HH:MM:SS`.
fn district_time_in(seconds: i64) -> String {
    let t = (zhida_runtime::district::unix_now() + 8 * 3600 + seconds).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_hours_hold_sms_until_they_end_except_urgent_ones() {
    let env = TestEnv::new("quiet").await;
    let smsc = Smsc::new(&env);
    let dir = tempfile::tempdir().expect("tempdir");
    // Quiet from a minute ago until 25 s from now.
    let quiet = (district_time_in(-60), district_time_in(25));
    let config = smsc.config(&dir, (&quiet.0, &quiet.1), 200, 1);
    let server = Server::start_with("all", &env, &[("ZHIDA_CONFIG", config.as_str())]).await;
    let started = Instant::now();
    let number = mobile("3");
    server
        .profiles()
        .await
        .upsert_profile(UpsertProfileRequest {
            profile: Some(sms_subscriber(&env, "night", &number, "zh")),
        })
        .await
        .expect("upsert");
    publish(&server, policy(&env, 1, false)).await;
    let urgent = publish(&server, policy(&env, 2, true)).await;

    // The urgent one goes out in quiet hours; the other waits.
    until("the urgent SMS", Duration::from_secs(20), || {
        !smsc.messages().is_empty()
    })
    .await;
    let first = smsc.messages();
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].1.contains(&urgent), "{first:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the test needs the quiet hours still on here"
    );

    // When they end, the held one goes out, once.
    until("the held SMS", Duration::from_secs(60), || {
        smsc.messages().len() >= 2
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(20),
        "held until the quiet hours ended"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smsc.messages().len(), 2, "the held SMS went out once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notifier_killed_mid_batch_sends_every_sms_and_repeats_none_that_completed() {
    const REQUESTS: usize = 300;
    /// Deliveries the notifier handles at once (`kafka.max_in_flight`).
    const IN_FLIGHT: usize = 16;
    let env = TestEnv::new("smskill").await;
    let smsc = Smsc::new(&env);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = smsc.config(&dir, ("00:00", "00:00"), 100, 1);
    let producer = Producer::new(&env.kafka, "/test").expect("producer");
    let numbers: Vec<String> = (0..REQUESTS)
        .map(|i| format!("1391{:07}", i + 1000))
        .collect();
    let request = |i: usize| DeliveryRequested {
        policy_id: format!("pol-{}", env.id),
        recipient_id: format!("r{i:03}"),
        channel: Channel::Sms as i32,
        address: numbers[i].clone(),
        title: "长者食堂运营补贴".into(),
        department: "区民政局".into(),
        reason: "您订阅了政策标签“elderly-care”".into(),
        ..DeliveryRequested::default()
    };
    let sends = (0..REQUESTS).map(|i| {
        let (producer, request) = (producer.clone(), request(i));
        async move { producer.emit(&request.recipient_id, &request).await }
    });
    for result in futures::future::join_all(sends).await {
        result.expect("request produced");
    }

    let in_flight = IN_FLIGHT.to_string();
    let settings = [
        ("ZHIDA_CONFIG", config.as_str()),
        ("ZHIDA_KAFKA__MAX_IN_FLIGHT", in_flight.as_str()),
    ];
    let mut notifier = Server::start_with("notifier", &env, &settings).await;
    until("the first SMS", Duration::from_secs(30), || {
        smsc.messages().len() >= 20
    })
    .await;
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 64);
    tokio::time::sleep(Duration::from_millis(jitter)).await;
    notifier.kill_9();
    let at_kill = smsc.messages().len();
    assert!(
        at_kill < REQUESTS,
        "the kill must land mid-batch ({at_kill})"
    );

    // What the ledger holds as done at the kill must never go out again.
    let policy_id = format!("pol-{}", env.id);
    let recipients = (0..REQUESTS).map(|i| format!("r{i:03}"));
    let recorded = recorded_deliveries(&env, &policy_id, recipients, Channel::Sms).await;
    let recorded: HashSet<String> = (0..REQUESTS)
        .filter(|i| recorded.contains(&format!("r{i:03}")))
        .map(|i| format!("86{}", numbers[i]))
        .collect();

    let _restarted = Server::start_with("notifier", &env, &settings).await;
    until("every SMS", Duration::from_secs(60), || {
        smsc.per_number().len() >= REQUESTS
    })
    .await;
    // Redelivered requests (a producer retry, a replay) send nothing again.
    for i in 0..5 {
        producer
            .emit(&format!("r{i:03}"), &request(i))
            .await
            .expect("produced again");
    }
    wait_until_consumed(
        &env,
        Group::Notifier,
        Topic::DeliveryRequests,
        Duration::from_secs(60),
    )
    .await;
    let counts = smsc.per_number();
    assert_eq!(counts.len(), REQUESTS, "every number got its SMS");
    // Only submits the kill cut short between the SMSC's answer and the ledger's record
    // can go out again (SMPP has no idempotency key), at most one per delivery in flight;
    // a delivery the ledger had recorded going out again would be a completed one repeated.
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let resent: Vec<_> = repeated
        .iter()
        .filter(|(number, _)| recorded.contains(number.as_str()))
        .collect();
    assert!(resent.is_empty(), "recorded, yet sent again: {resent:?}");
    assert!(
        repeated.len() <= IN_FLIGHT && repeated.iter().all(|(_, n)| **n == 2),
        "repeated: {repeated:?}"
    );
}
