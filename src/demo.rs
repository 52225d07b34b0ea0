//! `zhida demo`: the whole system in one process on the embedded defaults (librdkafka's
//! in-process mock cluster, in-memory stores, email as `.eml` files), driven over gRPC like
//! a real client: seed profiles, preview the audience, publish two policies, wait until
//! every expected email was sent, and print who got what.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use rdkafka::mocking::MockCluster;
use tokio::net::TcpListener;
use tonic::transport::Channel as GrpcChannel;
use zhida_bus::{Topic, Topics};
use zhida_notifier::{NotifierConfig, SmtpMode};
use zhida_proto::{
    events::v1::{
        Channel, Citizen, Contact, DeliveryState, Enterprise, Profile, SubjectKind, Subscription,
        profile::Details,
    },
    notification::v1::{
        GetDeliveryStatusRequest, notification_service_client::NotificationServiceClient,
    },
    policy::v1::{PublishPolicyRequest, policy_service_client::PolicyServiceClient},
    profile::v1::{
        PolicyDraft, PreviewAudienceRequest, UpsertProfileRequest,
        profile_service_client::ProfileServiceClient,
    },
    relay::v1::{PullFeedRequest, relay_service_client::RelayServiceClient},
};
use zhida_runtime::{
    Config, Shutdown,
    config::{Sections, StoreBackend},
    telemetry::Telemetry,
};

use crate::Service;

pub async fn run(out: PathBuf) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let cluster = MockCluster::new(1).context("starting the in-process Kafka cluster")?;
    let mut config = Config::default();
    config.kafka.brokers = cluster.bootstrap_servers();
    config.kafka.create_topics = false;
    config.store.backend = StoreBackend::Memory;
    config.grpc.listen = "127.0.0.1:0".into();
    config.telemetry.log_filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    config.validate()?;
    let mut notifier = NotifierConfig::default();
    notifier.smtp.mode = SmtpMode::File;
    notifier.smtp.file_dir = out.display().to_string();
    notifier.validate()?;
    let telemetry = Telemetry::init("demo", &config.telemetry)?;

    let topics = Topics::new(&config.kafka);
    for topic in Topic::ALL {
        for name in [topics.name(topic), topics.dead_letter(topic)] {
            cluster.create_topic(&name, config.kafka.partitions, 1)?;
        }
    }
    // Fresh output each run, so the listing below is this run's mail.
    if out.exists() {
        for entry in std::fs::read_dir(&out)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "eml" || e == "json") {
                std::fs::remove_file(path)?;
            }
        }
    }

    let shutdown = Shutdown::new();
    let listener = TcpListener::bind(&config.grpc.listen).await?;
    let addr = listener.local_addr()?;
    let components = crate::components(Service::All, &config, &notifier, &shutdown).await?;
    let server = tokio::spawn(zhida_runtime::serve(components, listener, shutdown.clone()));

    let result = drive(&format!("http://{addr}"), &out).await;
    shutdown.token.cancel();
    let drained = tokio::time::timeout(config.shutdown_grace, server).await;
    telemetry.shutdown();
    result?;
    drained.context("services did not stop within the grace period")???;
    println!(
        "\ndone in {:.1} s; emails are in {}/",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

fn email(address: &str) -> Contact {
    Contact {
        channel: Channel::Email as i32,
        address: address.into(),
        consent: true,
    }
}

fn subscription(tags: &[&str], filter: &str) -> Subscription {
    Subscription {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        channels: vec![Channel::Email as i32],
        filter: filter.into(),
        ..Subscription::default()
    }
}

fn citizen(
    id: &str,
    name: &str,
    street: &str,
    contact: Contact,
    details: Citizen,
    subscriptions: Vec<Subscription>,
) -> Profile {
    Profile {
        subject_id: id.into(),
        kind: SubjectKind::Citizen as i32,
        display_name: name.into(),
        street: street.into(),
        contacts: vec![contact],
        subscriptions,
        details: Some(Details::Citizen(details)),
    }
}

fn enterprise(
    id: &str,
    name: &str,
    street: &str,
    contact: Contact,
    details: Enterprise,
    subscriptions: Vec<Subscription>,
) -> Profile {
    Profile {
        subject_id: id.into(),
        kind: SubjectKind::Enterprise as i32,
        display_name: name.into(),
        street: street.into(),
        contacts: vec![contact],
        subscriptions,
        details: Some(Details::Enterprise(details)),
    }
}

/// A valid unified social credit code of a Yangpu (310110) company.
fn credit_code(organisation: &str) -> String {
    zhida_profiler::credit_code(&format!("91310110{organisation}")).expect("17 code characters")
}

fn graduate(birth_year: u32) -> Citizen {
    Citizen {
        birth_year,
        groups: vec!["高校毕业生".into()],
        hukou: "外省市".into(),
        language: "zh".into(),
    }
}

/// Citizens and enterprises of Yangpu's streets.
fn seed() -> Vec<Profile> {
    vec![
        citizen(
            "c-wjc-0001",
            "王芳",
            "五角场街道",
            email("wang.fang@example.cn"),
            graduate(2001),
            vec![subscription(&["employment", "graduates"], "")],
        ),
        citizen(
            "c-yx-0002",
            "李强",
            "殷行街道",
            email("li.qiang@example.cn"),
            Citizen {
                birth_year: 1948,
                groups: vec!["老年人".into()],
                hukou: "本区".into(),
                ..Citizen::default()
            },
            vec![subscription(&["elderly-care"], "")],
        ),
        citizen(
            "c-kjl-0003",
            "陈静",
            "控江路街道",
            Contact {
                consent: false,
                ..email("chen.jing@example.cn")
            },
            graduate(2000),
            vec![subscription(&["employment"], "")],
        ),
        // No subscription at all: reached by the first policy's audience rule alone.
        citizen(
            "c-dhl-0004",
            "张伟",
            "定海路街道",
            email("zhang.wei@example.cn"),
            graduate(2002),
            vec![],
        ),
        enterprise(
            "e-xjwc-0001",
            "上海杨浦智造科技有限公司",
            "新江湾城街道",
            email("hr@zhizao.example.cn"),
            Enterprise {
                credit_code: credit_code("MA1G2K3L4"),
                industry: "C3911".into(),
                size: "小".into(),
                registered_on: "2019-04-16".into(),
                registered_capital: 800.0,
                employees: 46,
                qualifications: vec!["科技型中小企业".into()],
                parks: vec!["park-xinjiangwan".into()],
                associations: vec![],
            },
            vec![],
        ),
        enterprise(
            "e-wjc-0002",
            "创智天地数字服务有限公司",
            "五角场街道",
            email("office@chuangzhi.example.cn"),
            Enterprise {
                credit_code: credit_code("MA1H7N8P2"),
                industry: "I6513".into(),
                size: "微".into(),
                registered_on: "2022-09-01".into(),
                registered_capital: 100.0,
                employees: 9,
                qualifications: vec![],
                parks: vec!["park-chuangzhi".into()],
                associations: vec!["assoc-yangpu-software".into()],
            },
            // Employment news, but only what the human-resources bureau issues.
            vec![subscription(
                &["employment", "sme"],
                r#"{"department": ["区人力资源社会保障局"]}"#,
            )],
        ),
    ]
}

fn policies() -> Vec<PublishPolicyRequest> {
    vec![
        PublishPolicyRequest {
            request_id: "demo-rsj-2023-graduates".into(),
            title: "杨浦区2023年高校毕业生就业见习补贴申领指南".into(),
            body: "离校2年内未就业高校毕业生参加就业见习的，按规定给予见习补贴；吸纳见习人员的单位可申请带教费补贴。".into(),
            tags: vec!["employment".into(), "graduates".into()],
            department: "区人力资源社会保障局".into(),
            service_url: "https://zwdt.sh.gov.cn/".into(),
            audience: r#"{"citizen": {"groups": ["高校毕业生"], "birth_year": [{"numeric": [">=", 1998]}]}}"#.into(),
        },
        PublishPolicyRequest {
            request_id: "demo-kw-2023-sme".into(),
            title: "杨浦区支持科技型中小企业创新发展若干措施".into(),
            body: "对新认定的科技型中小企业给予一次性奖励，对研发投入给予分档补贴。".into(),
            tags: vec!["tech-innovation".into(), "sme".into()],
            department: "区科委".into(),
            service_url: String::new(),
            audience: r#"{"enterprise": {"size": ["小", "微"], "$or": [{"qualifications": ["科技型中小企业"]}, {"industry": [{"industry": "I65"}]}]}}"#.into(),
        },
    ]
}

async fn drive(endpoint: &str, out: &std::path::Path) -> anyhow::Result<()> {
    let channel = GrpcChannel::from_shared(endpoint.to_string())?
        .connect()
        .await?;
    let mut profiles = ProfileServiceClient::new(channel.clone());
    let mut publisher = PolicyServiceClient::new(channel.clone());
    let mut notifications = NotificationServiceClient::new(channel.clone());
    let mut relay = RelayServiceClient::new(channel);

    let seed = seed();
    println!("Seeding {} profiles (千人千面 / 一业一档):", seed.len());
    for p in &seed {
        let tags: Vec<&str> = p
            .subscriptions
            .iter()
            .flat_map(|s| s.tags.iter().map(String::as_str))
            .collect();
        println!(
            "  {:<12} {:<26} {:<8} {}",
            p.subject_id,
            p.display_name,
            p.street,
            if tags.is_empty() {
                "no subscriptions".to_string()
            } else {
                format!("subscribes to {tags:?}")
            }
        );
        profiles
            .upsert_profile(UpsertProfileRequest {
                profile: Some(p.clone()),
            })
            .await?;
    }

    for request in policies() {
        println!(
            "\n{} publishes 《{}》\n  tags {:?}, audience {}",
            request.department, request.title, request.tags, request.audience
        );
        let preview = profiles
            .preview_audience(PreviewAudienceRequest {
                policy: Some(PolicyDraft {
                    tags: request.tags.clone(),
                    audience: request.audience.clone(),
                    department: request.department.clone(),
                    title: request.title.clone(),
                    service_url: request.service_url.clone(),
                }),
                sample_size: 100,
            })
            .await?
            .into_inner();
        println!(
            "  audience preview: {} profiles match the rule, {} subscriptions match; {} recipients, {} deliveries",
            preview.audience_matches,
            preview.subscription_matches,
            preview.recipients,
            preview.deliveries
        );
        let published = publisher
            .publish_policy(request.clone())
            .await?
            .into_inner();
        println!(
            "  published as {} (policy.events partition {} offset {})",
            published.policy_id, published.partition, published.offset
        );

        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for sample in &preview.sample {
            let status_request = GetDeliveryStatusRequest {
                policy_id: published.policy_id.clone(),
                recipient_id: sample.subject_id.clone(),
                channel: sample.channel,
            };
            let status = loop {
                let status = notifications
                    .get_delivery_status(status_request.clone())
                    .await?
                    .into_inner();
                if status.state != DeliveryState::Unspecified as i32 {
                    break status;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("no delivery to {} within 30 s", sample.subject_id);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let who = seed.iter().find(|p| p.subject_id == sample.subject_id);
            println!(
                "  ✉ {:<26} {:<28} {} — {}",
                who.map_or("?", |p| p.display_name.as_str()),
                who.map_or_else(String::new, |p| zhida_notifier::redact(
                    &p.contacts[0].address
                )),
                DeliveryState::try_from(status.state).map_or("?", |s| s.as_str_name()),
                sample.reason,
            );
        }
    }

    let feed = relay
        .pull_feed(PullFeedRequest {
            after_cursor: String::new(),
            limit: 50,
        })
        .await?
        .into_inner();
    println!(
        "\n政府+ relay feed for associations and parks: {} items",
        feed.items.len()
    );
    for item in &feed.items {
        println!("  [{}] {} — {}", item.cursor, item.title, item.department);
    }
    let emails = std::fs::read_dir(out)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .count();
    println!("\n{emails} emails written to {}/", out.display());
    Ok(())
}
