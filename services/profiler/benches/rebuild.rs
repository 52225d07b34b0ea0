//! `just bench-rebuild`: what a profiler replica does with the compacted `profiles` topic at
//! start and with each policy, without the broker: decode every `ProfileUpserted` record
//! and apply it to the [`Directory`] (profile store, audience index, subscription index),
//! then resolve policies to their full recipient list with reasons, as the matcher does
//! before it emits delivery requests.
//!
//! `BENCH_PROFILES` (default 1,000,000) and `BENCH_ROUNDS` (default 5) scale it. Records
//! carry their addresses sealed, as the profiler writes them (the replay holds them so, no
//! key needed); `BENCH_CLEAR=1` writes them in clear instead, as before addresses were
//! sealed, for comparison.
//!
//! Memory is the RSS growth of the replay, per profile, beside the 400 B target (issue 9),
//! split into the audience index, the subscription index and the profile store (the rest):
//! after the replay each index is built again alone, kept, and its own RSS growth measured.

use std::time::{Duration, Instant};

use prost::Message as _;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde_json::json;
use zhida_audience::{Index, Rule, Subscription as Indexed, Subscriptions};
use zhida_catalogue::{Catalogue, Tags};
use zhida_profiler::{Directory, Target, document};
use zhida_proto::events::v1::{
    Channel, Citizen, Contact, Enterprise, Frequency, Profile, ProfileUpserted, SubjectKind,
    Subscription, profile::Details,
};
use zhida_seal::DataKey;

/// The issue's target: a replica's memory per profile, all included.
const TARGET_BYTES: u64 = 400;

const SEED: u64 = 20_231_120;
const INDUSTRIES: [&str; 8] = [
    "I6513", "I6520", "M7320", "M7520", "F5191", "L7212", "C3911", "E4813",
];

/// A profile with its values drawn from `catalogue` (tags: the built-in ones, what a fresh
/// deployment's `tags` topic is seeded with), its address sealed under a key of its own
/// unless `clear`.
fn profile(rng: &mut StdRng, i: usize, catalogue: &Catalogue, clear: bool) -> Profile {
    let citizen = rng.random_bool(0.75);
    let n = rng.random_range(1..=3);
    let built_in = Tags::built_in();
    let all_tags: Vec<&str> = built_in.iter().map(|t| t.tag.as_str()).collect();
    let tags: Vec<&str> = all_tags.choose_multiple(rng, n).copied().collect();
    let subscriptions = if rng.random_bool(0.1) {
        vec![Subscription {
            id: format!("sub-{i}"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            channels: vec![Channel::Email as i32],
            filter: if rng.random_bool(0.3) {
                r#"{"department": ["区科委"]}"#.into()
            } else {
                String::new()
            },
            frequency: if rng.random_bool(0.2) {
                Frequency::DailyDigest as i32
            } else {
                Frequency::Immediate as i32
            },
        }]
    } else {
        vec![]
    };
    let details = if citizen {
        let groups: Vec<String> = if rng.random_bool(0.3) {
            vec![
                catalogue
                    .groups
                    .as_slice()
                    .choose(rng)
                    .copied()
                    .unwrap_or("老年人")
                    .into(),
            ]
        } else {
            vec![]
        };
        Details::Citizen(Citizen {
            birth_year: rng.random_range(1931..=2010),
            groups,
            hukou: if rng.random_bool(0.6) {
                "本市"
            } else {
                "外省市"
            }
            .into(),
            language: "zh".into(),
        })
    } else {
        Details::Enterprise(Enterprise {
            credit_code: format!("91310110MA1{i:06}X"),
            industry: INDUSTRIES.choose(rng).copied().unwrap_or("I6513").into(),
            size: catalogue
                .sizes
                .as_slice()
                .choose(rng)
                .copied()
                .unwrap_or("微")
                .into(),
            registered_on: format!(
                "{}-{:02}-15",
                rng.random_range(2000..2025),
                rng.random_range(1..=12)
            ),
            registered_capital: rng.random_range(10..100_000) as f64,
            employees: rng.random_range(1..500),
            qualifications: if rng.random_bool(0.15) {
                vec![
                    catalogue
                        .qualifications
                        .as_slice()
                        .choose(rng)
                        .copied()
                        .unwrap_or("专精特新")
                        .into(),
                ]
            } else {
                vec![]
            },
            parks: vec![],
            associations: vec![],
        })
    };
    Profile {
        subject_id: format!("s{i:07}"),
        kind: if citizen {
            SubjectKind::Citizen
        } else {
            SubjectKind::Enterprise
        } as i32,
        display_name: format!("用户{i}"),
        street: catalogue
            .streets
            .as_slice()
            .choose(rng)
            .copied()
            .unwrap_or("五角场街道")
            .into(),
        contacts: vec![contact(i, rng.random_bool(0.9), clear)],
        subscriptions,
        details: Some(details),
    }
}

fn contact(i: usize, consent: bool, clear: bool) -> Contact {
    let (subject, address) = (format!("s{i:07}"), format!("user{i}@example.cn"));
    Contact {
        channel: Channel::Email as i32,
        consent,
        ..if clear {
            Contact {
                address,
                ..Contact::default()
            }
        } else {
            Contact {
                sealed_address: DataKey::generate().seal(&subject, Channel::Email, &address),
                ..Contact::default()
            }
        }
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// RSS growth of the audience index alone and of the subscription index alone, built from
/// `records` the way the directory builds them; each is kept until both are measured, so
/// the second does not reuse the first's pages.
fn breakdown(records: &[Vec<u8>], catalogue: &Catalogue) -> (u64, u64) {
    let profiles: Vec<Profile> = records
        .iter()
        .filter_map(|r| ProfileUpserted::decode(r.as_slice()).ok()?.profile)
        .collect();
    let before = rss_bytes();
    let mut audience = Index::default();
    for p in &profiles {
        audience.upsert(&p.subject_id, &document::profile(p), None);
    }
    let middle = rss_bytes();
    let mut subscriptions = Subscriptions::default();
    for p in &profiles {
        subscriptions.replace(
            &p.subject_id,
            p.subscriptions.iter().map(|s| Indexed {
                id: s.id.clone(),
                tags: s.tags.clone(),
                filter: (!s.filter.is_empty())
                    .then(|| Rule::parse(&s.filter, &catalogue.industries).expect("valid filter")),
            }),
        );
    }
    let after = rss_bytes();
    assert_eq!(audience.len(), profiles.len());
    (middle.saturating_sub(before), after.saturating_sub(middle))
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

const POLICIES: [(&str, &str, &str); 5] = [
    ("one street", "housing", r#"{"street": ["新江湾城街道"]}"#),
    (
        "graduates",
        "employment",
        r#"{"citizen": {"groups": ["高校毕业生"]}}"#,
    ),
    (
        "elderly locals",
        "elderly-care",
        r#"{"citizen": {"birth_year": [{"numeric": ["<=", 1950]}], "hukou": ["本市"]}}"#,
    ),
    (
        "small software firms",
        "tech-innovation",
        r#"{"enterprise": {"size": ["小", "微"], "industry": [{"industry": "I65"}]}}"#,
    ),
    (
        "new firms in two streets",
        "sme",
        r#"{"street": ["五角场街道", "殷行街道"], "enterprise": {"registered_on": [{"date": [">=", "2020-01-01"]}]}}"#,
    ),
];

fn main() {
    let profiles = env_or("BENCH_PROFILES", 1_000_000);
    let rounds = env_or("BENCH_ROUNDS", 5).max(1);
    let clear = env_or("BENCH_CLEAR", 0) == 1;
    let catalogue = Catalogue::yangpu();
    let mut rng = StdRng::seed_from_u64(SEED);
    let records: Vec<Vec<u8>> = (0..profiles)
        .map(|i| {
            ProfileUpserted {
                profile: Some(profile(&mut rng, i, &catalogue, clear)),
            }
            .encode_to_vec()
        })
        .collect();
    let bytes: usize = records.iter().map(Vec::len).sum();
    println!(
        "{profiles} ProfileUpserted records (seed {SEED}), {} MiB encoded, addresses {}",
        bytes >> 20,
        if clear { "in clear" } else { "sealed" }
    );

    let before = rss_bytes();
    let started = Instant::now();
    let mut directory = Directory::new(catalogue.industries.clone());
    for record in &records {
        let upserted = ProfileUpserted::decode(record.as_slice()).expect("encoded above");
        if let Some(profile) = upserted.profile {
            directory.upsert(profile);
        }
    }
    let took = started.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    let per_profile = |bytes: u64| bytes / profiles.max(1) as u64;
    println!(
        "replay into the directory: {:.2} s ({:.0} profiles/s); {} MiB = {} bytes/profile (profiles, contacts, both indexes; target <= {TARGET_BYTES})",
        took.as_secs_f64(),
        profiles as f64 / took.as_secs_f64(),
        grown >> 20,
        per_profile(grown),
    );
    let (audience, subscriptions) = breakdown(&records, &catalogue);
    println!(
        "  of which: audience index {} B, subscription index {} B, profile store (the rest) {} B per profile",
        per_profile(audience),
        per_profile(subscriptions),
        per_profile(grown.saturating_sub(audience + subscriptions)),
    );

    println!(
        "\n{:<26} {:>9} {:>10} | {:>9} {:>9}",
        "policy", "audience", "deliveries", "p50 ms", "max ms"
    );
    for (name, tag, rule) in POLICIES {
        let target = Target {
            tags: vec![tag.to_string()],
            audience: Some(Rule::parse(rule, &catalogue.industries).expect("valid rule")),
            document: json!({"tags": [tag], "department": "区科委"}),
        };
        let mut samples = Vec::new();
        let mut last = None;
        for _ in 0..rounds {
            let started = Instant::now();
            let resolution = directory.resolve(&target);
            samples.push(started.elapsed());
            last = Some(resolution);
        }
        samples.sort();
        let resolution = last.expect("at least one round");
        println!(
            "{:<26} {:>9} {:>10} | {:>9} {:>9}",
            name,
            resolution.audience_matches,
            resolution.recipients.len(),
            ms(samples[samples.len() / 2]),
            ms(samples[samples.len() - 1])
        );
    }
    println!(
        "\nresolve = audience rule + subscriptions + consent + a reason per recipient ({rounds} rounds)"
    );
}
