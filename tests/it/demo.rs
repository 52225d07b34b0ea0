//! The first Quick start command: `zhida demo` runs on the embedded defaults alone: two
//! policies through review, publication, a revision and a withdrawal, and the "政府+"
//! relay: an association's webhook (verified), a park's pull, a forward down a tier, a
//! forward to members with one already reached, and the reach.

use std::process::Command;

#[test]
fn the_demo_delivers_both_sample_policies_on_embedded_defaults_and_exits_zero() {
    let out = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_zhida"))
        .args(["demo", "--out"])
        .arg(out.path())
        // Nothing from the real-server environment may leak into the embedded run.
        .env_remove("ZHIDA_TEST_KAFKA")
        .output()
        .expect("zhida demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sent = |icon: &str| {
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with(icon) && l.ends_with("DELIVERY_STATE_SENT"))
            .count()
    };
    assert_eq!(sent("✉"), 5, "emails: {stdout}");
    // Every audience match also reaches the person's page: 3 + 2.
    assert_eq!(sent("▤"), 5, "inbox items: {stdout}");
    // 王芳 and 陈静 subscribed by SMS, 张伟 and 智造科技 are in an audience with a mobile.
    assert_eq!(sent("✆"), 4, "SMS: {stdout}");
    // The review gate caught the caseworker's details in the first draft, masked.
    assert!(
        stdout.contains("the review gate found 3 thing(s)")
            && stdout.contains("139****5678")
            && !stdout.contains("13912345678")
            && !stdout.contains("110101199003074258"),
        "{stdout}"
    );
    assert!(stdout.contains("approved by reviewer:*"), "{stdout}");
    assert!(
        stdout.contains("published: version 2 (PolicyRevised)"),
        "{stdout}"
    );
    // Who was told what: each of the 9 deliveries of the revised policy got one update
    // notice (email, SMS, inbox), each of the 5 of the withdrawn one a withdrawal notice.
    let told = |marks: &[&str]| {
        stdout
            .lines()
            .skip_while(|l| !l.starts_with("Who was told what"))
            .take_while(|l| !l.is_empty())
            .filter(|l| marks.iter().any(|m| l.contains(m)))
            .count()
    };
    assert_eq!(told(&["政策已更新", "Policy updated"]), 9, "{stdout}");
    // Two more than before the relay: the forwarded email and inbox item are withdrawn too.
    assert_eq!(told(&["政策已撤回", "Policy withdrawn"]), 7, "{stdout}");
    assert!(
        stdout.contains("陈静                      ▤ 杨浦区2023年高校毕业生就业见习补贴申领指南"),
        "the citizen without email consent still has it on her page: {stdout}"
    );
    // 政府+: the association's webhook verified by its receiver, the park's pull, the
    // forward down a tier, the forward to members with the dedup, the reach, the feeds.
    for expected in [
        "policy.relayed 杨浦区支持科技型中小企业创新发展若干措施 — signature verified ✓",
        "park-chuangzhi, by PullFeed: 1 item(s)",
        "[forwarded] 杨浦区2023年高校毕业生就业见习补贴申领指南 — 区人力资源社会保障局 (version 1, now published); forwarded by park-chuangzhi",
        "上海云帆软件有限公司 — not in the audience: sent now",
        "创智天地数字服务有限公司 — already had it (pushed directly): nothing sent",
        "1     assoc-yangpu-software  relayed     webhook  2          1        1          0",
        "2     park-chuangzhi-b1  forwarded   pull",
        "[withdrawn] 杨浦区支持科技型中小企业创新发展若干措施 — 区科委 (version 1, now withdrawn)",
        "[revised] 杨浦区2023年高校毕业生就业见习补贴申领指南 — 区人力资源社会保障局 (version 2, now published)",
    ] {
        assert!(stdout.contains(expected), "{expected} in {stdout}");
    }
    assert!(!stdout.contains("INVALID"), "{stdout}");
    assert_eq!(
        stdout
            .matches("上海云帆软件有限公司      ✉ 杨浦区支持科技型中小企业创新发展若干措施")
            .count(),
        1,
        "the forward reached the member once: {stdout}"
    );
    assert!(
        stdout.contains("SearchPolicies(\"见习补贴\") finds 1")
            && stdout.contains("<em>见习补贴</em>"),
        "{stdout}"
    );
    let emails = std::fs::read_dir(out.path())
        .expect("out dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
        .count();
    // 5 of the policies, 1 forwarded, 3 revision and 3 withdrawal notices.
    assert_eq!(emails, 12);

    // Every email is signed with the key dkim-dns.txt publishes, and carries the one-click
    // unsubscribe headers and both parts.
    let record = std::fs::read_to_string(out.path().join("dkim-dns.txt")).expect("dkim-dns.txt");
    assert!(
        record.starts_with(
            "zhida-demo._domainkey.yangpu.example.gov.cn IN TXT \"v=DKIM1; k=ed25519; p="
        ),
        "{record}"
    );
    let public = crate::dkim::public_key(record.trim()).expect("an Ed25519 record");
    for entry in std::fs::read_dir(out.path()).expect("out dir").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let raw = std::fs::read(&path).expect("eml");
        let text = String::from_utf8_lossy(&raw);
        let verified = crate::dkim::verify(&raw, &public)
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
        assert!(
            verified
                .headers
                .iter()
                .any(|h| h == "list-unsubscribe-post"),
            "{verified:?}"
        );
        assert!(
            text.contains("\r\nList-Unsubscribe: <https://zhida.yangpu.example.gov.cn/u/demo."),
            "{text}"
        );
        assert!(
            text.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: multipart/alternative;"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/html; charset=utf-8"),
            "{text}"
        );
    }
    assert!(stdout.contains("v=DKIM1; k=ed25519; p="), "{stdout}");

    let sms = std::fs::read_to_string(out.path().join("sms.jsonl")).expect("sms.jsonl");
    let sms: Vec<serde_json::Value> = sms
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    // 4 of the policies, 3 revision and 1 withdrawal notices.
    assert_eq!(sms.len(), 8, "{sms:?}");
    for m in &sms {
        let to = m["to"].as_str().expect("to");
        assert!(to.starts_with("86") && to.contains("****"), "masked: {to}");
        assert_eq!(m["signature"], "【杨浦区政务】");
        let template = m["template"].as_str().expect("template");
        assert!(
            [
                "policy-published.v1",
                "policy-revised.v1",
                "policy-withdrawn.v1"
            ]
            .contains(&template),
            "an approved template: {m}"
        );
        let text = m["text"].as_str().expect("text");
        assert!(text.starts_with("【杨浦区政务】"), "{text}");
        assert!(
            text.contains("https://zc.yangpu.example.gov.cn/p/pol-"),
            "a link, not the body: {text}"
        );
        let segments = m["segments"].as_u64().expect("segments");
        assert!((1..=3).contains(&segments), "within sms.max_segments: {m}");
        assert!(m["params"]["title"].is_string(), "{m}");
    }
    assert_eq!(
        sms.iter().filter(|m| m["language"] == "en").count(),
        2,
        "张伟 reads English (the policy and its update): {sms:?}"
    );
    assert!(
        !stdout.contains("13800138001"),
        "numbers are never printed in clear"
    );
}
