//! `zhida audience --profiles FILE --rule FILE`: the offline audience preview.

use std::{path::Path, process::Command};

fn run(dir: &Path, profiles: &str, rule: &str) -> (i32, String, String) {
    std::fs::write(dir.join("profiles.jsonl"), profiles).expect("write profiles");
    std::fs::write(dir.join("rule.json"), rule).expect("write rule");
    let output = Command::new(env!("CARGO_BIN_EXE_zhida"))
        .arg("audience")
        .arg("--profiles")
        .arg(dir.join("profiles.jsonl"))
        .arg("--rule")
        .arg(dir.join("rule.json"))
        .output()
        .expect("zhida audience runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn enterprise_line(id: &str, street: &str, industry: &str) -> String {
    let code = zhida_profiler::credit_code("91310110MA1H7N8P2").expect("valid body");
    format!(
        r#"{{"subject_id": "{id}", "kind": "SUBJECT_KIND_ENTERPRISE", "display_name": "某公司", "street": "{street}", "enterprise": {{"credit_code": "{code}", "industry": "{industry}", "size": "微"}}}}"#
    )
}

#[test]
fn prints_the_matched_ids_and_rejects_bad_input_saying_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Proto field names and their lowerCamelCase JSON names are both accepted; a later
    // line for the same subject replaces the earlier one, as on the profiles topic.
    let profiles = [
        r#"{"subject_id": "c-1", "kind": "SUBJECT_KIND_CITIZEN", "display_name": "王芳", "street": "五角场街道", "citizen": {"birth_year": 2001, "groups": ["高校毕业生"]}}"#.to_string(),
        r#"{"subjectId": "c-2", "kind": "SUBJECT_KIND_CITIZEN", "displayName": "李强", "street": "五角场街道", "citizen": {"birthYear": 1948}}"#.to_string(),
        String::new(),
        enterprise_line("e-1", "五角场街道", "I6513"),
        enterprise_line("e-2", "殷行街道", "I6513"),
        r#"{"subject_id": "c-2", "kind": "SUBJECT_KIND_CITIZEN", "display_name": "李强", "street": "殷行街道"}"#.to_string(),
    ]
    .join("\n");
    let (code, stdout, stderr) = run(
        dir.path(),
        &profiles,
        r#"{"street": ["五角场街道"], "$or": [{"citizen": {"birth_year": [{"numeric": [">=", 1998]}]}}, {"enterprise": {"industry": [{"industry": "I65"}]}}]}"#,
    );
    assert_eq!((code, stdout.as_str()), (0, "c-1\ne-1\n"), "{stderr}");

    let (code, stdout, stderr) = run(dir.path(), &profiles, r#"{"street": "五角场街道"}"#);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("rule.json: $.street: must be a list"),
        "{stderr}"
    );

    let bad_line = format!(
        "{profiles}\n{}",
        enterprise_line("e-3", "南京路街道", "I6510")
    );
    let (code, _, stderr) = run(dir.path(), &bad_line, r#"{"street": ["五角场街道"]}"#);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("profiles.jsonl:7: profile.enterprise.industry: ")
            && stderr.contains("profile.street: "),
        "{stderr}"
    );

    let (code, _, stderr) = run(
        dir.path(),
        r#"{"subject_id": "x", "kind": "SUBJECT_KIND_ROBOT"}"#,
        r#"{"street": ["五角场街道"]}"#,
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("profiles.jsonl:1: not a Profile: unrecognized enum value"),
        "{stderr}"
    );
}

/// `zhida keys generate` then `zhida token issue`: a deployment can start without other
/// tools, and the token verifies against the public key the first command wrote.
#[test]
fn keys_generate_and_token_issue_make_a_token_the_servers_accept() {
    use zhida_runtime::auth::{AuthConfig, KeyConfig, Kind};
    let dir = tempfile::tempdir().expect("tempdir");
    let zhida = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_zhida"))
            .args(args)
            .env_remove("ZHIDA_CONFIG")
            .output()
            .expect("zhida runs")
    };
    let out = dir.path().to_str().expect("utf-8 path");
    let generated = zhida(&["keys", "generate", "--id", "k7", "--out", out]);
    assert!(generated.status.success(), "{generated:?}");
    let private = dir.path().join("k7.pem");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&private)
        .expect("private key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the private key is the owner's only");
    // Never overwritten.
    assert!(
        !zhida(&["keys", "generate", "--id", "k7", "--out", out])
            .status
            .success()
    );

    let key = private.to_str().expect("utf-8");
    let issued = zhida(&[
        "token",
        "issue",
        "--kind",
        "department",
        "--id",
        "区科委",
        "--ttl",
        "30d",
        "--key",
        key,
        "--key-id",
        "k7",
    ]);
    assert!(issued.status.success(), "{issued:?}");
    let token = String::from_utf8(issued.stdout).expect("utf-8");
    let verifier = AuthConfig {
        keys: vec![KeyConfig {
            id: "k7".into(),
            public_key: None,
            public_key_file: Some(dir.path().join("k7.pub.pem")),
        }],
        ..AuthConfig::default()
    }
    .verifier()
    .expect("the public key loads");
    let principal = verifier.verify(token.trim()).expect("the token verifies");
    assert_eq!(principal.kind, Kind::Department);
    assert_eq!(principal.id, "区科委");
    assert!(principal.has("policy:publish"));

    for (bad, says) in [
        (vec!["--kind", "king", "--id", "x"], "unknown kind"),
        (
            vec!["--kind", "subject", "--id", "c-1", "--scopes", "root"],
            "unknown scope",
        ),
    ] {
        let mut args = vec!["token", "issue", "--key", key, "--key-id", "k7"];
        args.extend(bad);
        let output = zhida(&args);
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}
