//! Bulk import against a real broker and Redis: `zhida import --file` (the CLI a directory
//! system's load would run) and the `ImportProfiles` stream under it. Per-line errors name
//! the line and the field, the imported profiles are readable and matched, a second import
//! of the same file appends nothing, and only a directory's token may import.

use std::{process::Command, time::Duration};

use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer as _},
};
use tonic::Code;
use zhida_bus::Topic;
use zhida_proto::{
    events::v1::Profile,
    profile::v1::{GetProfileRequest, ImportProfilesRequest, PolicyDraft, PreviewAudienceRequest},
};
use zhida_runtime::auth::Kind;

use crate::{
    helpers::{Server, TestEnv, bearer, citizen, token},
    profiles::fields,
};

/// Citizens of 五角场街道 `<prefix>-<i>-<test id>`, each with an email address.
fn citizens(env: &TestEnv, prefix: &str, n: usize) -> Vec<Profile> {
    (1..=n)
        .map(|i| citizen(env, &format!("{prefix}-{i}"), "王芳", &[], true))
        .collect()
}

fn json_line(profile: &Profile) -> String {
    zhida_proto::json::to_value("zhida.events.v1.Profile", profile)
        .expect("a profile's JSON")
        .to_string()
}

/// Records on `topic` so far (the sum of its partitions' ends).
async fn records(env: &TestEnv, topic: Topic) -> i64 {
    let (brokers, topic) = (env.kafka.brokers.clone(), env.topic(topic));
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("consumer");
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .expect("metadata");
        metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .map(|p| zhida_bus::log_end(&brokers, &topic, p.id()).expect("end"))
            .sum()
    })
    .await
    .expect("watermarks looked up")
}

/// How many profiles of the profiler's directory are in 五角场街道.
async fn in_wujiaochang(server: &Server) -> u64 {
    server
        .profiles()
        .await
        .preview_audience(PreviewAudienceRequest {
            sample_size: 1,
            policy: Some(PolicyDraft {
                audience: r#"{"street": ["五角场街道"]}"#.into(),
                department: "区人社局".into(),
                title: "稳就业".into(),
                ..PolicyDraft::default()
            }),
        })
        .await
        .expect("preview")
        .into_inner()
        .audience_matches
}

fn import(server: &Server, file: &std::path::Path, token: &str) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_zhida"))
        .args(["import", "--file"])
        .arg(file)
        .args(["--target", &server.url])
        .env("ZHIDA_TOKEN", token)
        .output()
        .expect("zhida import runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_imports_a_file_reporting_bad_lines_and_a_second_import_changes_nothing() {
    let env = TestEnv::new("import-cli").await;
    let server = Server::start("profiler", &env).await;
    let profiles = citizens(&env, "c", 3_000);
    let mut lines: Vec<String> = profiles.iter().map(json_line).collect();
    // Line 100: a street the district does not have; line 2,000: not JSON; line 2,500: an
    // address that is no email address.
    let mut bad_street = profiles[99].clone();
    bad_street.street = "南京路街道".into();
    lines[99] = json_line(&bad_street);
    lines[1_999] = r#"{"subject_id": "c-2000", "kind": "#.into();
    let mut bad_address = profiles[2_499].clone();
    bad_address.contacts[0].address = "not an address".into();
    lines[2_499] = json_line(&bad_address);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("profiles.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").expect("file written");
    let directory = token(Kind::Directory, "district-directory", &[]);

    let (code, stdout, stderr) = import(&server, &file, &directory);
    assert_eq!(code, 2, "lines were rejected\n{stdout}\n{stderr}");
    // Reported as found: a line that is not JSON by the CLI, the others by the server.
    let mut reported: Vec<&str> = stdout.lines().collect();
    reported.sort_by_key(|line| {
        line.split([' ', ':'])
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
    });
    assert_eq!(reported.len(), 3, "{stdout}");
    assert!(
        reported[0].starts_with("line 100: profile.street: "),
        "{stdout}"
    );
    assert!(reported[1].starts_with("line 2000: json: "), "{stdout}");
    assert!(
        reported[2].starts_with("line 2500: profile.contacts[0].address: "),
        "{stdout}"
    );
    assert!(
        stderr.contains("3000 lines read, 2997 imported, 0 unchanged, 3 rejected"),
        "{stderr}"
    );

    let mut client = server.profiles().await;
    for i in [0, 1_500, 2_999] {
        let stored = client
            .get_profile(GetProfileRequest {
                subject_id: profiles[i].subject_id.clone(),
            })
            .await
            .expect("imported")
            .into_inner()
            .profile
            .expect("a profile");
        assert_eq!(
            stored, profiles[i],
            "read back as imported, address in clear"
        );
    }
    let status = client
        .get_profile(GetProfileRequest {
            subject_id: profiles[99].subject_id.clone(),
        })
        .await
        .expect_err("line 100 was rejected");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(in_wujiaochang(&server).await, 2_997);

    let appended = records(&env, Topic::Profiles).await;
    assert!(appended >= 2_997, "{appended} records on profiles");
    let (code, stdout, stderr) = import(&server, &file, &directory);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "the same lines again: {stdout}");
    assert!(
        stderr.contains("3000 lines read, 0 imported, 2997 unchanged, 3 rejected"),
        "{stderr}"
    );
    assert_eq!(
        records(&env, Topic::Profiles).await,
        appended,
        "a second import appends nothing"
    );
    assert_eq!(in_wujiaochang(&server).await, 2_997);

    // A file without bad lines exits 0.
    std::fs::write(&file, json_line(&profiles[0])).expect("file written");
    let (code, _, stderr) = import(&server, &file, &directory);
    assert_eq!(code, 0, "{stderr}");
    // A subject's token may not import, even its own profile.
    let own = token(Kind::Subject, &profiles[0].subject_id, &[]);
    let (code, _, stderr) = import(&server, &file, &own);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("permission") || stderr.contains("Permission"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_answers_each_chunk_rejects_bad_profiles_alone_and_bounds_chunks() {
    let env = TestEnv::new("import-rpc").await;
    let server = Server::start("profiler", &env).await;
    let mut profiles = citizens(&env, "r", 2_500);
    profiles[1_200].display_name = String::new();
    let chunks: Vec<ImportProfilesRequest> = profiles
        .chunks(1_000)
        .enumerate()
        .map(|(i, chunk)| ImportProfilesRequest {
            first_sequence: 1 + 1_000 * i as u64,
            profiles: chunk.to_vec(),
        })
        .collect();
    let mut client = server.profiles().await;
    let answers: Vec<_> = client
        .import_profiles(futures::stream::iter(chunks.clone()))
        .await
        .expect("the stream opens")
        .into_inner()
        .collect_all()
        .await;
    /// An answer: its first sequence, imported, unchanged and (sequence, field) rejected.
    type Summary = (u64, u32, u32, Vec<(u64, String)>);
    let summary: Vec<Summary> = answers
        .iter()
        .map(|a| {
            (
                a.first_sequence,
                a.imported,
                a.unchanged,
                a.rejected
                    .iter()
                    .flat_map(|r| r.violations.iter().map(|v| (r.sequence, v.field.clone())))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 1_000, 0, vec![]),
            (
                1_001,
                999,
                0,
                vec![(1_201, "profile.display_name".to_string())]
            ),
            (2_001, 500, 0, vec![]),
        ]
    );
    assert_eq!(in_wujiaochang(&server).await, 2_499);

    // Again, and then a chunk over the cap: the earlier chunks are answered (unchanged),
    // then the stream ends with INVALID_ARGUMENT on `profiles`.
    let mut again = chunks[..2].to_vec();
    again.push(ImportProfilesRequest {
        first_sequence: 5_000,
        profiles: citizens(&env, "over", 1_001),
    });
    let mut answers = client
        .import_profiles(futures::stream::iter(again))
        .await
        .expect("the stream opens")
        .into_inner();
    for first in [1, 1_001] {
        let answer = answers
            .message()
            .await
            .expect("answered")
            .expect("an answer");
        assert_eq!(answer.first_sequence, first);
        assert_eq!(answer.imported, 0, "already stored");
    }
    let status = answers.message().await.expect_err("a chunk over the cap");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), vec!["profiles"]);

    // Only a directory may import: a subject (even of its own profile) and a subscriber
    // are refused.
    let own = profiles[0].subject_id.clone();
    for (kind, id) in [(Kind::Subject, own.as_str()), (Kind::Subscriber, "relay-1")] {
        let status = server
            .profiles_as(bearer(kind, id, &[]))
            .await
            .import_profiles(futures::stream::iter(chunks[..1].to_vec()))
            .await
            .map(|_| ())
            .expect_err("refused");
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{kind:?}: {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subject_whose_lease_another_writer_holds_is_waited_for_not_dropped() {
    let env = TestEnv::new("import-lease").await;
    let server = Server::start("profiler", &env).await;
    let profiles = citizens(&env, "l", 20);
    // Another writer (a replica mid-write) holds subject 7's lease for 1.5 s.
    let held = &profiles[6].subject_id;
    let _: () = redis::cmd("SET")
        .arg(format!("{}profile-writes:lease:{held}", env.key_prefix()))
        .arg("another-writer")
        .arg("PX")
        .arg(1_500)
        .query_async(&mut env.redis().await)
        .await
        .expect("lease taken");
    let started = std::time::Instant::now();
    let answers = server
        .profiles()
        .await
        .import_profiles(futures::stream::iter(vec![ImportProfilesRequest {
            first_sequence: 1,
            profiles: profiles.clone(),
        }]))
        .await
        .expect("the stream opens")
        .into_inner()
        .collect_all()
        .await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].imported, 20, "{answers:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1_000),
        "the held subject waited for its lease"
    );
    let stored = server
        .profiles()
        .await
        .get_profile(GetProfileRequest {
            subject_id: held.clone(),
        })
        .await
        .expect("written once its lease was free")
        .into_inner()
        .profile;
    assert_eq!(stored.as_ref(), Some(&profiles[6]));
}

/// Every answer of a stream, which must end without an error.
trait CollectAll {
    async fn collect_all(self) -> Vec<zhida_proto::profile::v1::ImportProfilesResponse>;
}

impl CollectAll for tonic::Streaming<zhida_proto::profile::v1::ImportProfilesResponse> {
    async fn collect_all(mut self) -> Vec<zhida_proto::profile::v1::ImportProfilesResponse> {
        let mut all = Vec::new();
        while let Some(answer) = self.message().await.expect("no error") {
            all.push(answer);
        }
        all
    }
}
