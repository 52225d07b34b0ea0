//! Email that mail providers trust, end to end against tansu, Redis and smtp-sink: every
//! message is `multipart/alternative`, DKIM-signed (verified here against the public key,
//! independently of the signer), and carries an RFC 8058 one-click unsubscribe link whose
//! token the profiler's `UnsubscribeByToken` honours for exactly its recipient and
//! subscription; and an SMTP 5xx for the recipient ends as `DELIVERY_STATE_UNDELIVERABLE`.

use std::{
    net::TcpListener as StdListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use ed25519_dalek::pkcs8::{EncodePrivateKey as _, spki::der::pem::LineEnding};
use prost::Message as _;
use tonic::Code;
use tonic_types::StatusExt as _;
use zhida_bus::Topic;
use zhida_proto::{
    events::v1::{
        Channel, DeliveryState, DeliveryStatusChanged, Profile, Subscription, profile::Details,
    },
    notification::v1::GetDeliveryStatusRequest,
    profile::v1::{
        GetProfileRequest, ListSubscriptionsRequest, UnsubscribeByTokenRequest, Unsubscribed,
        UpsertProfileRequest,
    },
};

use crate::{
    dkim,
    helpers::{
        Mail, NewPolicy, Server, TestEnv, UNSUBSCRIBE_BASE_URL, UNSUBSCRIBE_KEY_ID, citizen,
        count_records, eventually, mail_for, publish,
    },
};

const DOMAIN: &str = "yangpu.example.gov.cn";
const SELECTOR: &str = "zhida-test";

/// A header of a stored message, unfolded.
fn header(mail: &Mail, name: &str) -> Option<String> {
    let (headers, _) = mailparse::parse_headers(&mail.raw).ok()?;
    headers
        .iter()
        .rev()
        .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
        .map(|h| h.get_value())
}

/// The token of the message's `List-Unsubscribe: <https://…/u/TOKEN>`.
fn token(mail: &Mail) -> String {
    let link = header(mail, "List-Unsubscribe").expect("List-Unsubscribe");
    link.trim()
        .strip_prefix(&format!("<{UNSUBSCRIBE_BASE_URL}"))
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or_else(|| panic!("not <{UNSUBSCRIBE_BASE_URL}TOKEN>: {link}"))
        .to_string()
}

fn subscribed(mut profile: Profile, id: &str) -> Profile {
    profile.subscriptions[0].id = id.into();
    profile
}

fn graduate(mut profile: Profile, language: &str) -> Profile {
    if let Some(Details::Citizen(c)) = &mut profile.details {
        c.groups = vec!["高校毕业生".into()];
        c.language = language.into();
    }
    profile
}

/// The ids of `subject`'s subscriptions, sorted.
async fn subscriptions(server: &Server, subject: &str) -> Vec<String> {
    let mut ids: Vec<String> = server
        .profiles()
        .await
        .list_subscriptions(ListSubscriptionsRequest {
            subject_id: subject.into(),
        })
        .await
        .expect("listed")
        .into_inner()
        .subscriptions
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.sort();
    ids
}

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_multipart_mail_unsubscribes_exactly_its_recipient_and_subscription_in_one_click() {
    let env = TestEnv::new("email").await;
    // The district's DKIM key: the notifier reads the file, the test keeps the public half.
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("dkim.pem");
    std::fs::write(
        &key_file,
        key.to_pkcs8_pem(LineEnding::LF).expect("pem").as_bytes(),
    )
    .expect("key written");
    let key_file = key_file.display().to_string();
    // The record a district publishes, as the notifier writes it, names the same key.
    let record = zhida_notifier::Dkim::load(&zhida_notifier::DkimConfig {
        domain: DOMAIN.into(),
        selector: SELECTOR.into(),
        key_file: key_file.clone(),
        key_pem: None,
    })
    .expect("the key loads")
    .dns_record()
    .to_string();
    let public = dkim::public_key(&record).expect("an Ed25519 DKIM record");
    assert_eq!(public, key.verifying_key());
    assert!(
        record.starts_with(&format!("{SELECTOR}._domainkey.{DOMAIN} IN TXT \"v=DKIM1;")),
        "{record}"
    );
    let server = Server::start_with(
        "all",
        &env,
        &[
            ("ZHIDA_SMTP__DKIM__DOMAIN", DOMAIN),
            ("ZHIDA_SMTP__DKIM__SELECTOR", SELECTOR),
            ("ZHIDA_SMTP__DKIM__KEY_FILE", &key_file),
        ],
    )
    .await;
    let mut profiles = server.profiles().await;

    // Wang has two subscriptions; Zhang has one with the same id as Wang's first (ids are
    // unique per profile only); Zhao is reached by the audience alone, in English.
    let mut wang = subscribed(
        citizen(&env, "wang", "王芳", &["employment"], true),
        "s-jobs",
    );
    wang.subscriptions.push(Subscription {
        id: "s-housing".into(),
        tags: vec!["housing".into()],
        channels: vec![Channel::Email as i32],
        ..Subscription::default()
    });
    let zhang = subscribed(
        citizen(&env, "zhang", "张伟", &["employment"], true),
        "s-jobs",
    );
    let zhao = graduate(citizen(&env, "zhao", "赵敏", &[], true), "en");
    for profile in [&wang, &zhang, &zhao] {
        profiles
            .upsert_profile(UpsertProfileRequest {
                profile: Some(profile.clone()),
            })
            .await
            .expect("upsert");
    }
    publish(
        &server,
        NewPolicy {
            request_id: format!("rsj-{}", env.id),
            title: "高校毕业生就业见习补贴 <限时>".into(),
            body: "离校2年内未就业高校毕业生参加就业见习的，按规定给予见习补贴 & 社保补贴。".into(),
            tags: vec!["employment".into()],
            department: "区人力资源社会保障局".into(),
            service_url: "https://zwdt.sh.gov.cn/".into(),
            audience: r#"{"citizen": {"groups": ["高校毕业生"]}}"#.into(),
            urgent: false,
            valid_until: None,
        },
    )
    .await;

    let suffix = format!(".{}@example.cn", env.id);
    eventually("three emails", Duration::from_secs(30), || {
        mail_for(&suffix).len() >= 3
    })
    .await;
    let mail = mail_for(&suffix);
    let of = |who: &str| {
        let address = env.address(who);
        mail.iter()
            .find(|m| m.envelope_to == address)
            .unwrap_or_else(|| panic!("{who}'s email"))
    };

    for m in &mail {
        // Signed, and the signature holds for what arrived.
        let verified = dkim::verify(&m.raw, &public)
            .unwrap_or_else(|e| panic!("DKIM: {e}\n{}", String::from_utf8_lossy(&m.raw)));
        assert_eq!(
            (verified.domain.as_str(), verified.selector.as_str()),
            (DOMAIN, SELECTOR)
        );
        for signed in [
            "from",
            "subject",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert!(
                verified.headers.iter().any(|h| h == signed),
                "{signed}: {verified:?}"
            );
        }
        // multipart/alternative: plain text and an HTML part with every value escaped.
        assert!(
            m.body.contains("按规定给予见习补贴 & 社保补贴"),
            "{}",
            m.body
        );
        assert!(
            m.html.contains("见习补贴 &amp; 社保补贴")
                && m.html.contains("就业见习补贴 &lt;限时&gt;"),
            "{}",
            m.html
        );
        assert!(
            m.html.contains(&format!(
                "<a href=\"{UNSUBSCRIBE_BASE_URL}{UNSUBSCRIBE_KEY_ID}."
            )),
            "{}",
            m.html
        );
        assert_eq!(
            header(m, "List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
    }
    assert_eq!(
        header(of("zhao"), "X-Zhida-Template").as_deref(),
        Some("policy-published.v1.en")
    );
    assert!(
        of("zhao").body.starts_with("Dear 赵敏,"),
        "{}",
        of("zhao").body
    );
    assert_eq!(
        header(of("wang"), "X-Zhida-Template").as_deref(),
        Some("policy-published.v1.zh")
    );

    // The verifier is not a rubber stamp: a changed body, or another unsubscribe link
    // under the same signature, fails.
    let raw = &of("wang").raw;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n" || w.starts_with(b"\n\n"))
        .expect("a body");
    let mut changed_body = raw.clone();
    changed_body.insert(end + 4, b'X');
    assert!(dkim::verify(&changed_body, &public).is_err());
    let (wang_token, zhang_token) = (token(of("wang")), token(of("zhang")));
    let swapped = String::from_utf8_lossy(raw).replace(&wang_token, &zhang_token);
    assert!(
        dkim::verify(swapped.as_bytes(), &public)
            .expect_err("the link is signed")
            .contains("signature"),
    );

    // A token changed in one character, or forged with another key, is refused.
    let mut altered = wang_token.clone();
    let middle = altered.len() / 2;
    let flipped = if &altered[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    altered.replace_range(middle..=middle, flipped);
    let forged = zhida_unsubscribe::UnsubscribeConfig {
        base_url: UNSUBSCRIBE_BASE_URL.into(),
        keys: vec![zhida_unsubscribe::KeyConfig {
            id: UNSUBSCRIBE_KEY_ID.into(),
            secret: "not-the-districts-secret-but-long-enough".into(),
        }],
    }
    .keyring()
    .expect("keyring")
    .sign(&zhida_unsubscribe::Scope::new(
        &zhang.subject_id,
        Channel::Email,
        ["s-jobs"],
    ))
    .expect("signs");
    for bad in [altered, forged, String::new()] {
        let status = profiles
            .unsubscribe_by_token(UnsubscribeByTokenRequest { token: bad.clone() })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}: {status:?}");
        assert_eq!(bad_fields(&status), ["token"]);
        assert!(
            !status.message().contains(&bad) || bad.is_empty(),
            "{status:?}"
        );
    }

    // Wang's link removes Wang's s-jobs, and nothing else.
    let answer = profiles
        .unsubscribe_by_token(UnsubscribeByTokenRequest {
            token: wang_token.clone(),
        })
        .await
        .expect("unsubscribed")
        .into_inner();
    assert_eq!(answer.unsubscribed, Unsubscribed::Subscriptions as i32);
    assert_eq!(answer.channel, Channel::Email as i32);
    assert_eq!(
        subscriptions(&server, &wang.subject_id).await,
        ["s-housing"]
    );
    assert_eq!(
        subscriptions(&server, &zhang.subject_id).await,
        ["s-jobs"],
        "a token for Wang cannot unsubscribe Zhang, even from a subscription with the same id"
    );
    // One click twice: nothing left to remove.
    let again = profiles
        .unsubscribe_by_token(UnsubscribeByTokenRequest { token: wang_token })
        .await
        .expect("idempotent")
        .into_inner();
    assert_eq!(again.unsubscribed, Unsubscribed::Nothing as i32);

    // Zhao came by the audience alone: the link withdraws the email consent.
    let answer = profiles
        .unsubscribe_by_token(UnsubscribeByTokenRequest {
            token: token(of("zhao")),
        })
        .await
        .expect("unsubscribed")
        .into_inner();
    assert_eq!(answer.unsubscribed, Unsubscribed::Consent as i32);
    let zhao_now = profiles
        .get_profile(GetProfileRequest {
            subject_id: zhao.subject_id.clone(),
        })
        .await
        .expect("profile")
        .into_inner()
        .profile
        .expect("profile");
    assert!(
        zhao_now
            .contacts
            .iter()
            .all(|c| c.channel != Channel::Email as i32 || !c.consent),
        "{:?}",
        zhao_now.contacts
    );
}

/// An smtp-sink that answers every RCPT TO with a 5xx, on a port of its own; stopped
/// when dropped.
struct RejectingSink {
    child: Child,
    port: u16,
}

impl RejectingSink {
    async fn start() -> Self {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let mut command = Command::new("/usr/sbin/smtp-sink");
        if root {
            // smtp-sink insists on dropping privileges when started as root.
            command.args(["-u", "root"]);
        }
        let child = command
            .args([
                "-f",
                "RCPT",
                "-B",
                "550 5.1.1 Recipient address rejected: User unknown",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .arg("16")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("smtp-sink starts (deploy/servers.sh installs it)");
        let sink = Self { child, port };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "smtp-sink never listened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sink
    }
}

impl Drop for RejectingSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_smtp_5xx_for_the_recipient_ends_as_undeliverable_and_is_not_retried() {
    let sink = RejectingSink::start().await;
    let env = TestEnv::new("bounce").await;
    let port = sink.port.to_string();
    let server = Server::start_with("all", &env, &[("ZHIDA_SMTP__PORT", &port)]).await;
    let li = citizen(&env, "li", "李强", &["elderly-care"], true);
    server
        .profiles()
        .await
        .upsert_profile(UpsertProfileRequest {
            profile: Some(li.clone()),
        })
        .await
        .expect("upsert");
    let policy_id = publish(
        &server,
        NewPolicy {
            request_id: format!("mzj-{}", env.id),
            title: "老年人助餐服务补贴".into(),
            body: "本区户籍老年人在社区长者食堂用餐可享补贴。".into(),
            tags: vec!["elderly-care".into()],
            department: "区民政局".into(),
            ..NewPolicy::default()
        },
    )
    .await;

    let is_undeliverable = |bytes: &[u8]| {
        DeliveryStatusChanged::decode(bytes).is_ok_and(|s| {
            s.policy_id == policy_id && s.state == DeliveryState::Undeliverable as i32
        })
    };
    let reported = count_records(
        &env,
        Topic::DeliveryStatus,
        1,
        Duration::from_secs(30),
        is_undeliverable,
    )
    .await;
    assert_eq!(reported, 1, "the bounce is reported as UNDELIVERABLE");
    let status = server
        .notifications()
        .await
        .get_delivery_status(GetDeliveryStatusRequest {
            policy_id: policy_id.clone(),
            recipient_id: li.subject_id.clone(),
            channel: Channel::Email as i32,
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.state, DeliveryState::Undeliverable as i32);
    assert!(status.detail.contains("550"), "{}", status.detail);
    assert!(
        !status.detail.contains(&env.address("li")),
        "no address in clear: {}",
        status.detail
    );
    // Recorded once, not retried: no second status for this delivery arrives.
    let statuses = count_records(
        &env,
        Topic::DeliveryStatus,
        2,
        Duration::from_secs(3),
        |b| DeliveryStatusChanged::decode(b).is_ok_and(|s| s.policy_id == policy_id),
    )
    .await;
    assert_eq!(statuses, 1);
}

/// A DKIM key that cannot be used stops the notifier at start, naming the key's setting and
/// never echoing the file.
#[test]
fn a_bad_dkim_key_stops_the_notifier_at_start_naming_smtp_dkim_key_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("dkim.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LW5vdC1hLWtleQ==\n-----END PRIVATE KEY-----\n",
    )
    .expect("written");
    let missing = dir.path().join("missing.pem");
    for (key_file, fails) in [
        (&garbage, "neither an Ed25519 nor an RSA"),
        (&missing, "cannot read"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zhida"))
            .args(["serve", "notifier"])
            .env("ZHIDA_KAFKA__BROKERS", "127.0.0.1:1")
            .env("ZHIDA_AUTH__MODE", "off")
            .env("ZHIDA_KAFKA__CREATE_TOPICS", "false")
            .env("ZHIDA_STORE__BACKEND", "memory")
            .env("ZHIDA_GRPC__LISTEN", "127.0.0.1:0")
            .env(
                "ZHIDA_UNSUBSCRIBE__KEYS",
                format!(
                    "[{{id=\"{UNSUBSCRIBE_KEY_ID}\",secret=\"{}\"}}]",
                    crate::helpers::UNSUBSCRIBE_SECRET
                ),
            )
            .env("ZHIDA_SMTP__DKIM__DOMAIN", DOMAIN)
            .env("ZHIDA_SMTP__DKIM__SELECTOR", SELECTOR)
            .env("ZHIDA_SMTP__DKIM__KEY_FILE", key_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("zhida runs");
        // It must stop by itself; one that serves instead fails the test, not hangs it.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the notifier started with an unusable DKIM key");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr read");
        assert!(!status.success(), "{stderr}");
        assert!(
            stderr.contains("smtp.dkim.key_file") && stderr.contains(fails),
            "{stderr}"
        );
        assert!(
            !stderr.contains("c2VjcmV0"),
            "the key file is not echoed: {stderr}"
        );
    }
}
