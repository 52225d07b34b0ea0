//! `zhida demo`: the whole system in one process on the embedded defaults (librdkafka's
//! in-process mock cluster, in-memory stores, email as `.eml` files), driven over gRPC like
//! a real client: seed profiles, preview the audience, publish two policies, wait until
//! every expected email, SMS and inbox item was delivered, print who got what on which
//! channel and why, and each person's inbox (their "两页" page). SMS go to
//! `<out>/sms.jsonl`, one JSON line each (number masked), as they would be submitted.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use rdkafka::mocking::MockCluster;
use tokio::net::TcpListener;
use tonic::{codegen::InterceptedService, transport::Channel as GrpcChannel};
use unicode_width::UnicodeWidthStr as _;
use zhida_bus::{Topic, Topics};
use zhida_notifier::{DkimConfig, NotifierConfig, SmsMode, SmtpMode};
use zhida_proto::{
    events::v1::{
        Channel, Citizen, Contact, DeliveryState, Enterprise, FindingKind, Interpretation, Policy,
        PolicyContent, PolicyStatus, Profile, RelaySubscriberKind, ReviewFinding, SubjectKind,
        Subscription, profile::Details,
    },
    notification::v1::{
        GetDeliveryStatusRequest, ListInboxRequest, inbox_service_client::InboxServiceClient,
        notification_service_client::NotificationServiceClient,
    },
    policy::v1::{
        CreateDraftRequest, CreateTagRequest, Decision, GetPolicyRequest, ListTagsRequest,
        PublishRequest, ReviewRequest, ReviseRequest, SearchPoliciesRequest,
        SubmitForReviewRequest, UpdateDraftRequest, WithdrawRequest,
        policy_service_client::PolicyServiceClient,
    },
    profile::v1::{
        ExplainMatchRequest, PolicyDraft, PreviewAudienceResponse, UpsertProfileRequest,
        profile_service_client::ProfileServiceClient,
    },
    relay::v1::{
        FeedEvent, FeedItem, ForwardRequest, GetRelayReachRequest, PullFeedRequest,
        PutSubscriberRequest, Subscriber, Webhook, relay_service_client::RelayServiceClient,
    },
};
use zhida_runtime::{
    Config, Shutdown,
    auth::{Bearer, Kind, Signer},
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
    // One process signs and checks the one-click unsubscribe links: a key that lives in
    // memory for the run is enough.
    config.unsubscribe = config.unsubscribe.clone().with_generated_key("demo");
    // Every call carries a token, as in production: the demo holds its own signing key
    // for the run and issues each caller (departments, the portal, an association) one.
    let (signing_key, public_key) = zhida_runtime::auth::generate_key();
    config.auth.keys = vec![zhida_runtime::auth::KeyConfig {
        id: "demo".into(),
        public_key: Some(public_key),
        public_key_file: None,
    }];
    let signer = zhida_runtime::auth::Signer::new(&config.auth, "demo", &signing_key)
        .map_err(anyhow::Error::msg)?;
    // The association's webhook receiver, on loopback with a CA made for the run: the relay
    // trusts that CA and may reach 127.0.0.1 (its SSRF guard refuses loopback otherwise).
    std::fs::create_dir_all(&out)?;
    let receiver = crate::webhook_receiver::Receiver::start("assoc-yangpu-software").await?;
    let ca_file = out.join(WEBHOOK_CA_FILE);
    std::fs::write(&ca_file, &receiver.ca_pem)?;
    config.relay.webhooks.allow_networks = vec!["127.0.0.1/32".into()];
    config.relay.webhooks.extra_root_certs = vec![ca_file];
    config.validate()?;
    let mut notifier = NotifierConfig::default();
    notifier.smtp.mode = SmtpMode::File;
    notifier.smtp.file_dir = out.display().to_string();
    notifier.sms.mode = SmsMode::File;
    notifier.sms.file = out.join(SMS_FILE).display().to_string();
    // The demo runs at any hour: no quiet hours, or a night run would show SMS held.
    notifier.sms.quiet_hours.start = "00:00".into();
    notifier.sms.quiet_hours.end = "00:00".into();
    // Every email is DKIM-signed with an Ed25519 key made for this run (never written);
    // its public half goes to dkim-dns.txt as the TXT record a district would publish.
    notifier.smtp.dkim = Some(DkimConfig {
        domain: DKIM_DOMAIN.into(),
        selector: DKIM_SELECTOR.into(),
        key_file: String::new(),
        key_pem: Some(zhida_notifier::generate_ed25519_pem()),
    });
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
            if path.extension().is_some_and(|e| e == "eml" || e == "json")
                || path.file_name().is_some_and(|n| n == SMS_FILE)
            {
                std::fs::remove_file(path)?;
            }
        }
    }

    let dkim_record = match &notifier.smtp.dkim {
        Some(dkim) => zhida_notifier::Dkim::load(dkim)?.dns_record().to_string(),
        None => bail!("the demo signs its email"),
    };
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join(DKIM_FILE), format!("{dkim_record}\n"))?;

    let shutdown = Shutdown::new();
    let listener = TcpListener::bind(&config.grpc.listen).await?;
    let addr = listener.local_addr()?;
    let config = crate::with_local_profiler(Service::All, &config, addr);
    let components = crate::components(Service::All, &config, &notifier, &shutdown).await?;
    let server = tokio::spawn(zhida_runtime::serve(
        components,
        listener,
        shutdown.clone(),
        zhida_runtime::Host::from_config(&config),
    ));

    let result = drive(&format!("http://{addr}"), &out, &signer, &receiver).await;
    shutdown.token.cancel();
    let drained = tokio::time::timeout(config.shutdown_grace, server).await;
    telemetry.shutdown();
    result?;
    drained.context("services did not stop within the grace period")???;
    println!(
        "\nemails are DKIM-signed (Ed25519, a key made for this run) and carry one-click \
         unsubscribe links (RFC 8058);\nthe DNS record a district would publish for the key \
         is in {}:\n  {dkim_record}",
        out.join(DKIM_FILE).display()
    );
    println!(
        "\ndone in {:.1} s; emails are in {}/",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// The SMS the demo "sends", one JSON line each.
const SMS_FILE: &str = "sms.jsonl";
/// Where the demo's DKIM public key is written, as a DNS TXT record.
const DKIM_FILE: &str = "dkim-dns.txt";
/// The CA of the demo's webhook receiver, which the relay trusts for the run.
const WEBHOOK_CA_FILE: &str = "webhook-ca.pem";
/// The demo's association (webhook), park (pull) and the park's building operator (a tier).
const ASSOCIATION: &str = "assoc-yangpu-software";
const PARK: &str = "park-chuangzhi";
const PARK_TIER: &str = "park-chuangzhi-b1";
/// The demo's signing domain (that of `smtp.from`) and selector.
const DKIM_DOMAIN: &str = "yangpu.example.gov.cn";
const DKIM_SELECTOR: &str = "zhida-demo";

fn email(address: &str) -> Contact {
    Contact {
        channel: Channel::Email as i32,
        address: address.into(),
        consent: true,
        ..Contact::default()
    }
}

fn mobile(number: &str) -> Contact {
    Contact {
        channel: Channel::Sms as i32,
        address: number.into(),
        consent: true,
        ..Contact::default()
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

/// `subscription` on other channels.
fn on(channels: &[Channel], subscription: Subscription) -> Subscription {
    Subscription {
        channels: channels.iter().map(|c| *c as i32).collect(),
        ..subscription
    }
}

/// `profile` also reachable at `contact`.
fn with(contact: Contact, mut profile: Profile) -> Profile {
    profile.contacts.push(contact);
    profile
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
        // Employment news by email and by SMS.
        with(
            mobile("13800138001"),
            citizen(
                "c-wjc-0001",
                "王芳",
                "五角场街道",
                email("wang.fang@example.cn"),
                graduate(2001),
                vec![on(
                    &[Channel::Email, Channel::Sms],
                    subscription(&["employment", "graduates"], ""),
                )],
            ),
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
        // No consent to email, but to SMS.
        with(
            mobile("13900139003"),
            citizen(
                "c-kjl-0003",
                "陈静",
                "控江路街道",
                Contact {
                    consent: false,
                    ..email("chen.jing@example.cn")
                },
                graduate(2000),
                vec![on(
                    &[Channel::Email, Channel::Sms],
                    subscription(&["employment"], ""),
                )],
            ),
        ),
        // No subscription at all: reached by the first policy's audience rule alone, on
        // every channel he consented to, in English.
        with(
            mobile("+8613700137004"),
            citizen(
                "c-dhl-0004",
                "张伟",
                "定海路街道",
                email("zhang.wei@example.cn"),
                Citizen {
                    language: "en".into(),
                    ..graduate(2002)
                },
                vec![],
            ),
        ),
        with(
            mobile("13600136005"),
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
        // Outside every audience (a medium firm): reached only when its association
        // forwards a policy to its members ("政府+").
        enterprise(
            "e-cbx-0003",
            "上海云帆软件有限公司",
            "长白新村街道",
            email("office@yunfan.example.cn"),
            Enterprise {
                credit_code: credit_code("MA1K5R6T8"),
                industry: "I6513".into(),
                size: "中".into(),
                registered_on: "2016-03-22".into(),
                registered_capital: 2000.0,
                employees: 180,
                qualifications: vec![],
                parks: vec![],
                associations: vec![ASSOCIATION.into()],
            },
            vec![],
        ),
    ]
}

/// One policy the demo takes through the lifecycle: its department, idempotency key and
/// content; `flawed_body`, when set, is what the department first drafts (with personal
/// data the review gate must catch) before it fixes the text.
struct Spec {
    request_id: &'static str,
    department: &'static str,
    content: PolicyContent,
    flawed_body: Option<&'static str>,
}

fn policies() -> Vec<Spec> {
    vec![
        Spec {
            request_id: "demo-rsj-2023-graduates",
            department: "区人力资源社会保障局",
            content: PolicyContent {
                title: "杨浦区2023年高校毕业生就业见习补贴申领指南".into(),
                summary: "离校2年内未就业高校毕业生参加就业见习的，按月给予见习补贴。".into(),
                body: "离校2年内未就业高校毕业生参加就业见习的，按规定给予见习补贴；吸纳见习人员的单位可申请带教费补贴。咨询电话：12333。".into(),
                tags: vec!["employment".into(), "graduates".into()],
                document_number: "杨人社规〔2023〕2号".into(),
                service_url: "https://zwdt.sh.gov.cn/".into(),
                audience: r#"{"citizen": {"groups": ["高校毕业生"], "birth_year": [{"numeric": [">=", 1998]}]}}"#.into(),
                interpretation: Some(Interpretation {
                    title: "一图读懂就业见习补贴".into(),
                    text: "谁能申请？离校2年内未就业的高校毕业生。补贴标准？按本市最低工资标准的80%按月发放。".into(),
                    ..Interpretation::default()
                }),
                ..PolicyContent::default()
            },
            flawed_body: Some(
                "离校2年内未就业高校毕业生参加就业见习的，按规定给予见习补贴。经办人：李明，手机13912345678，身份证号110101199003074258，邮箱liming@example.cn。",
            ),
        },
        Spec {
            request_id: "demo-kw-2023-sme",
            department: "区科委",
            content: PolicyContent {
                title: "杨浦区支持科技型中小企业创新发展若干措施".into(),
                summary: "新认定科技型中小企业一次性奖励，研发投入分档补贴。".into(),
                body: "对新认定的科技型中小企业给予一次性奖励，对研发投入给予分档补贴。".into(),
                tags: vec!["tech-innovation".into(), "sme".into()],
                document_number: "杨科委规〔2023〕1号".into(),
                audience: r#"{"enterprise": {"size": ["小", "微"], "$or": [{"qualifications": ["科技型中小企业"]}, {"industry": [{"industry": "I65"}]}]}}"#.into(),
                ..PolicyContent::default()
            },
            flawed_body: None,
        },
    ]
}

/// A bearer token for `kind`/`id` with the kind's default scopes, valid for the run.
fn bearer(signer: &Signer, kind: Kind, id: &str) -> anyhow::Result<Bearer> {
    let token = signer
        .issue(kind, id, &Default::default(), Duration::from_secs(3600))
        .map_err(anyhow::Error::msg)?;
    Ok(Bearer::new(&token)?)
}

type Publisher = PolicyServiceClient<InterceptedService<GrpcChannel, Bearer>>;

/// The review gate's findings, one line each.
fn print_findings(findings: &[ReviewFinding]) {
    for f in findings {
        let kind = FindingKind::try_from(f.kind).map_or("?", |k| k.as_str_name());
        println!(
            "    ⚑ {} in {} at {}..{}: {}",
            kind.trim_start_matches("FINDING_KIND_").to_lowercase(),
            f.field,
            f.start,
            f.end,
            f.excerpt
        );
    }
}

/// Takes `spec` from a draft to published: drafted (flawed first, where it is), fixed,
/// submitted by the department, approved by a district reviewer (who sees the audience),
/// published. Answers the policy and the approval's audience preview.
async fn release(
    spec: &Spec,
    department: &mut Publisher,
    reviewer: &mut Publisher,
) -> anyhow::Result<(Policy, PreviewAudienceResponse)> {
    println!(
        "\n{} drafts 《{}》 ({})\n  tags {:?}\n  audience {}",
        spec.department,
        spec.content.title,
        spec.content.document_number,
        spec.content.tags,
        spec.content.audience
    );
    let first = PolicyContent {
        body: spec.flawed_body.unwrap_or(&spec.content.body).to_string(),
        ..spec.content.clone()
    };
    let mut policy = department
        .create_draft(CreateDraftRequest {
            request_id: spec.request_id.into(),
            content: Some(first),
            ..CreateDraftRequest::default()
        })
        .await?
        .into_inner();
    println!(
        "  draft {} (generation {}): the review gate found {} thing(s)",
        policy.policy_id,
        policy.generation,
        policy.findings.len()
    );
    print_findings(&policy.findings);
    if !policy.findings.is_empty() {
        // Submitting and approving now would be refused; the department fixes the text.
        policy = department
            .update_draft(UpdateDraftRequest {
                policy_id: policy.policy_id.clone(),
                expected_generation: policy.generation,
                content: Some(spec.content.clone()),
            })
            .await?
            .into_inner();
        println!(
            "  fixed (UpdateDraft, generation {}): {} finding(s) left",
            policy.generation,
            policy.findings.len()
        );
    }
    policy = department
        .submit_for_review(SubmitForReviewRequest {
            policy_id: policy.policy_id.clone(),
            expected_generation: policy.generation,
        })
        .await?
        .into_inner();
    println!("  submitted for review by {}", policy.submitted_by);
    let review = reviewer
        .review(ReviewRequest {
            policy_id: policy.policy_id.clone(),
            expected_generation: policy.generation,
            decision: Decision::Approve as i32,
            comment: "同意发布".into(),
            acknowledge_findings: vec![],
        })
        .await?
        .into_inner();
    policy = review.policy.context("approved policy")?;
    let preview = review
        .audience
        .and_then(|a| a.preview)
        .context("the reviewer sees the audience")?;
    let per_channel: Vec<String> = preview
        .by_channel
        .iter()
        .map(|c| format!("{} {}", channel_name(c.channel), c.deliveries))
        .collect();
    println!(
        "  approved by {}: the audience right now is {} recipients ({}; {} by the rule, {} by subscription)",
        policy.reviewed_by,
        preview.recipients,
        per_channel.join(", "),
        preview.audience_matches,
        preview.subscription_matches
    );
    policy = department
        .publish(PublishRequest {
            policy_id: policy.policy_id.clone(),
            expected_generation: policy.generation,
            publish_at: None,
        })
        .await?
        .into_inner();
    println!(
        "  published: version {} (PolicyPublished on policy.events)",
        policy.live_version
    );
    Ok((policy, preview))
}

fn channel_name(channel: i32) -> &'static str {
    match Channel::try_from(channel) {
        Ok(Channel::Email) => "email",
        Ok(Channel::Sms) => "SMS",
        Ok(Channel::Inbox) => "inbox",
        _ => "?",
    }
}

async fn drive(
    endpoint: &str,
    out: &std::path::Path,
    signer: &Signer,
    receiver: &crate::webhook_receiver::Receiver,
) -> anyhow::Result<()> {
    let channel = GrpcChannel::from_shared(endpoint.to_string())?
        .connect()
        .await?;
    // The "两页" portal manages profiles and serves pages and delivery states; each
    // department drafts its own policies, a district reviewer approves them; an operator
    // keeps the tag catalogue; an association reads the feed.
    let portal = bearer(signer, Kind::Directory, "yangpu-portal")?;
    let mut profiles = ProfileServiceClient::with_interceptor(channel.clone(), portal.clone());
    let mut notifications =
        NotificationServiceClient::with_interceptor(channel.clone(), portal.clone());
    let mut inbox = InboxServiceClient::with_interceptor(channel.clone(), portal);
    let relay_as = |kind, id| -> anyhow::Result<Relay> {
        Ok(RelayServiceClient::with_interceptor(
            channel.clone(),
            bearer(signer, kind, id)?,
        ))
    };
    let mut relay_ops = relay_as(Kind::Operator, "yangpu-ops")?;
    let mut association = relay_as(Kind::Subscriber, ASSOCIATION)?;
    let mut park = relay_as(Kind::Subscriber, PARK)?;
    let mut park_tier = relay_as(Kind::Subscriber, PARK_TIER)?;
    let mut reviewer = PolicyServiceClient::with_interceptor(
        channel.clone(),
        bearer(signer, Kind::Reviewer, "*")?,
    );
    let mut operator = PolicyServiceClient::with_interceptor(
        channel.clone(),
        bearer(signer, Kind::Operator, "yangpu-ops")?,
    );

    let tags = operator
        .list_tags(ListTagsRequest::default())
        .await?
        .into_inner()
        .tags;
    let added = operator
        .create_tag(CreateTagRequest {
            tag: "green-low-carbon".into(),
            name: "绿色低碳".into(),
        })
        .await?
        .into_inner();
    println!(
        "Tag catalogue (政策标签目录, the compacted `tags` topic): {} tags; the operator adds {} ({})",
        tags.len(),
        added.tag,
        added.name
    );

    let seed = seed();
    println!("\nSeeding {} profiles (千人千面 / 一业一档):", seed.len());
    for line in table("  ", &profile_rows(&seed)) {
        println!("{line}");
    }
    for p in &seed {
        profiles
            .upsert_profile(UpsertProfileRequest {
                profile: Some(p.clone()),
            })
            .await?;
    }

    register_relay(&mut relay_ops, receiver).await?;

    let mut released = Vec::new();
    for spec in policies() {
        let mut department = PolicyServiceClient::with_interceptor(
            channel.clone(),
            bearer(signer, Kind::Department, spec.department)?,
        );
        let (policy, preview) = release(&spec, &mut department, &mut reviewer).await?;
        let draft = PolicyDraft {
            tags: spec.content.tags.clone(),
            audience: spec.content.audience.clone(),
            department: spec.department.into(),
            title: spec.content.title.clone(),
            service_url: spec.content.service_url.clone(),
        };

        // Every seeded profile the policy concerns, in seed order: who got it and why, who
        // matched and got nothing, and whose subscription's filter kept it out.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut rows = Vec::new();
        for p in &seed {
            let explanation = profiles
                .explain_match(ExplainMatchRequest {
                    subject_id: p.subject_id.clone(),
                    policy: Some(draft.clone()),
                })
                .await?
                .into_inner();
            let email = zhida_notifier::redact(&p.contacts[0].address);
            let sms = p
                .contacts
                .iter()
                .find(|c| c.channel == Channel::Sms as i32)
                .map(|c| zhida_notifier::mask_mobile(&c.address))
                .unwrap_or_default();
            let samples: Vec<_> = preview
                .sample
                .iter()
                .filter(|s| s.subject_id == p.subject_id)
                .collect();
            for sample in &samples {
                let status_request = GetDeliveryStatusRequest {
                    policy_id: policy.policy_id.clone(),
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
                let state = DeliveryState::try_from(status.state).map_or("?", |s| s.as_str_name());
                let (icon, to) = match Channel::try_from(sample.channel) {
                    Ok(Channel::Inbox) => ("▤", "inbox (their page)"),
                    Ok(Channel::Sms) => ("✆", sms.as_str()),
                    _ => ("✉", email.as_str()),
                };
                rows.push(cells(&[icon, &p.display_name, to, state]));
            }
            // The reason once per person, whatever the channels.
            if let Some(sample) = samples.first() {
                rows.extend(note_rows(&sample.reason));
            }
            if samples.is_empty() && explanation.matched {
                rows.push(cells(&["✗", &p.display_name, &email, "not sent"]));
                rows.extend(note_rows(&explanation.reason));
                rows.extend(note_rows("not sent: no contact with consent"));
            }
            // Subscriptions to one of the policy's tags whose filter the policy fails.
            for s in p.subscriptions.iter().filter(|s| !s.filter.is_empty()) {
                let tags: Vec<&str> = s
                    .tags
                    .iter()
                    .filter(|t| spec.content.tags.contains(t))
                    .map(String::as_str)
                    .collect();
                if tags.is_empty() || !explanation.subscription_ids.is_empty() {
                    continue;
                }
                if !explanation.matched {
                    rows.push(cells(&["-", &p.display_name, &email, "not matched"]));
                }
                rows.extend(note_rows(&format!(
                    "not by its subscription to {}: only if {}",
                    tags.join(", "),
                    s.filter
                )));
            }
        }
        for line in table("  ", &rows) {
            println!("{line}");
        }
        released.push((spec, department, policy, preview.deliveries));
    }

    let graduates = released[0].2.policy_id.clone();
    let sme = released[1].2.policy_id.clone();
    let told_before_relay = told(out, &mut inbox, &seed).await?.len();
    relay_story(
        &mut relay_ops,
        &mut association,
        &mut park,
        &mut park_tier,
        receiver,
        &seed,
        (&graduates, &sme),
    )
    .await?;
    // What the association's forward sent (to a member outside the audience) is withdrawn
    // with the policy like a direct delivery.
    let forwarded_sends = told(out, &mut inbox, &seed).await?.len() - told_before_relay;

    // A revision reaches everyone who got version 1, once, on the channels they got it on;
    // a withdrawal tells earlier recipients and stops what was not sent yet.
    let told_before = told(out, &mut inbox, &seed).await?.len();
    let (spec, department, policy, first_deliveries) = &mut released[0];
    let mut revised_content = spec.content.clone();
    revised_content.body = revised_content
        .body
        .replace("按规定给予见习补贴", "按每人每月2690元给予见习补贴");
    let mut revised = department
        .revise(ReviseRequest {
            policy_id: policy.policy_id.clone(),
            expected_generation: policy.generation,
            content: Some(revised_content),
            change_summary: "见习补贴标准调整为每人每月2690元".into(),
        })
        .await?
        .into_inner();
    println!(
        "\n{} revises 《{}》: \"{}\" (a new version, reviewed like the first; version {} stays live meanwhile)",
        spec.department, spec.content.title, revised.change_summary, revised.live_version
    );
    revised = department
        .submit_for_review(SubmitForReviewRequest {
            policy_id: revised.policy_id.clone(),
            expected_generation: revised.generation,
        })
        .await?
        .into_inner();
    revised = reviewer
        .review(ReviewRequest {
            policy_id: revised.policy_id.clone(),
            expected_generation: revised.generation,
            decision: Decision::Approve as i32,
            comment: String::new(),
            acknowledge_findings: vec![],
        })
        .await?
        .into_inner()
        .policy
        .context("approved revision")?;
    revised = department
        .publish(PublishRequest {
            policy_id: revised.policy_id.clone(),
            expected_generation: revised.generation,
            publish_at: None,
        })
        .await?
        .into_inner();
    println!(
        "  published: version {} (PolicyRevised); each of the {} earlier deliveries gets one \"政策已更新\" notice",
        revised.live_version, first_deliveries
    );
    let expected = told_before + *first_deliveries as usize;
    wait_told(out, &mut inbox, &seed, expected).await?;

    let (spec, department, policy, second_deliveries) = &mut released[1];
    let withdrawn = department
        .withdraw(WithdrawRequest {
            policy_id: policy.policy_id.clone(),
            expected_generation: policy.generation,
            reason: "政策调整，以新发布的文件为准".into(),
        })
        .await?
        .into_inner();
    let earlier = *second_deliveries as usize + forwarded_sends;
    println!(
        "\n{} withdraws 《{}》: \"{}\"; each of the {earlier} earlier deliveries ({forwarded_sends} of them forwarded) gets one \"政策已撤回\" notice",
        spec.department, spec.content.title, withdrawn.withdrawal_reason
    );
    wait_told(out, &mut inbox, &seed, expected + earlier).await?;

    println!("\nWho was told what (per person: email, SMS, inbox items):");
    let mut rows = Vec::new();
    for (name, what) in told(out, &mut inbox, &seed).await? {
        rows.push(cells(&[&name, &what]));
    }
    for line in table("  ", &rows) {
        println!("{line}");
    }

    println!(
        "\n政府+ feeds after the revision and the withdrawal (each entry with its policy's status now):"
    );
    for (name, client) in [(ASSOCIATION, &mut association), (PARK, &mut park)] {
        let items = client
            .pull_feed(PullFeedRequest {
                limit: 50,
                ..PullFeedRequest::default()
            })
            .await?
            .into_inner()
            .items;
        println!("  {name}:");
        for item in &items {
            println!("    {}", feed_line(item));
        }
    }

    let mut library = PolicyServiceClient::new(channel.clone());
    let found = library
        .search_policies(SearchPoliciesRequest {
            query: "见习补贴".into(),
            limit: 5,
            valid_on: String::new(),
        })
        .await?
        .into_inner();
    println!(
        "\n公文库: SearchPolicies(\"见习补贴\") finds {}:",
        found.total
    );
    for hit in &found.hits {
        let status = PolicyStatus::try_from(hit.status)
            .map_or("?", |s| s.as_str_name())
            .trim_start_matches("POLICY_STATUS_")
            .to_lowercase();
        println!(
            "  {} v{} {} ({status}, score {:.2})",
            hit.title, hit.version, hit.department, hit.score
        );
        for h in hit.highlights.iter().take(2) {
            println!("    {}: {}", h.field, h.fragment);
        }
    }
    let versions = library
        .get_policy(GetPolicyRequest {
            policy_id: released[0].2.policy_id.clone(),
            version: 1,
        })
        .await?
        .into_inner();
    let first = versions.published.context("version 1")?;
    println!(
        "  GetPolicy(version 1) still reads the first version as published (versions {:?}): {}",
        versions.versions,
        first.body.chars().take(40).collect::<String>()
    );

    let emails = std::fs::read_dir(out)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .count();
    println!("\n{emails} emails written to {}/", out.display());
    let sms = std::fs::read_to_string(out.join(SMS_FILE)).unwrap_or_default();
    println!(
        "{} SMS written to {} (as they would be submitted):",
        sms.lines().count(),
        out.join(SMS_FILE).display()
    );
    for line in sms.lines() {
        let sms: serde_json::Value = serde_json::from_str(line)?;
        println!(
            "  ✆ {} [{} segment(s)] {}",
            sms["to"].as_str().unwrap_or_default(),
            sms["segments"],
            sms["text"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

type Relay = RelayServiceClient<InterceptedService<GrpcChannel, Bearer>>;

/// The district's operator registers an association (scoped by its industry, pushed to by
/// webhook, members from the enterprises' profiles), a park (scoped by a tag, pulls) and
/// the park's building operator (a child tier, fed by the park's forwards).
async fn register_relay(
    ops: &mut Relay,
    receiver: &crate::webhook_receiver::Receiver,
) -> anyhow::Result<()> {
    let put = |id: &str, kind, parent: &str, name: &str, scope: &str| Subscriber {
        id: id.into(),
        kind: kind as i32,
        parent_id: parent.into(),
        display_name: name.into(),
        scope: scope.into(),
        ..Subscriber::default()
    };
    let association = Subscriber {
        members_from_profiles: true,
        webhook: Some(Webhook {
            url: receiver.url.clone(),
            ..Webhook::default()
        }),
        ..put(
            ASSOCIATION,
            RelaySubscriberKind::Association,
            "",
            "杨浦区软件和信息服务业协会",
            r#"{"audience": {"industries": [{"industry": "I"}]}}"#,
        )
    };
    let registered = ops
        .put_subscriber(PutSubscriberRequest {
            subscriber: Some(association.clone()),
        })
        .await?
        .into_inner();
    receiver.set_secret(&registered.webhook_secret)?;
    for subscriber in [
        put(
            PARK,
            RelaySubscriberKind::Park,
            "",
            "创智天地园区",
            r#"{"tags": ["employment"]}"#,
        ),
        Subscriber {
            members: vec!["e-wjc-0002".into()],
            ..put(
                PARK_TIER,
                RelaySubscriberKind::Park,
                PARK,
                "创智天地一期楼宇运营方",
                "",
            )
        },
    ] {
        ops.put_subscriber(PutSubscriberRequest {
            subscriber: Some(subscriber),
        })
        .await?;
    }
    println!("\n政府+ relay: the operator registers who gets what (RelayService.PutSubscriber):");
    println!(
        "  {ASSOCIATION} 杨浦区软件和信息服务业协会: scope {}; webhook {} (secret whsec_…, verified by the receiver); members: enterprises naming it in their profile",
        association.scope, receiver.url
    );
    println!("  {PARK} 创智天地园区: scope {{\"tags\": [\"employment\"]}}; pulls its feed");
    println!("  └ {PARK_TIER} 创智天地一期楼宇运营方 (tier 2): gets what the park forwards");
    Ok(())
}

/// One line of a feed entry.
fn feed_line(item: &FeedItem) -> String {
    let status = PolicyStatus::try_from(item.status)
        .map_or("?", |s| s.as_str_name())
        .trim_start_matches("POLICY_STATUS_")
        .to_lowercase();
    let event = FeedEvent::try_from(item.event)
        .map_or("?", |e| e.as_str_name())
        .trim_start_matches("FEED_EVENT_")
        .to_lowercase();
    let mut line = format!(
        "[{event}] {} — {} (version {}, now {status})",
        item.title, item.department, item.version
    );
    if !item.forwarded_by.is_empty() {
        line.push_str(&format!(
            "; forwarded by {}: \"{}\"",
            item.forwarded_by, item.forward_note
        ));
    }
    line
}

/// The relay's part: the association's webhook and the park's pull, a forward down a tier,
/// a forward to members with one already reached directly, and the reach of the policy.
async fn relay_story(
    ops: &mut Relay,
    association: &mut Relay,
    park: &mut Relay,
    park_tier: &mut Relay,
    receiver: &crate::webhook_receiver::Receiver,
    seed: &[Profile],
    (graduates, sme): (&str, &str),
) -> anyhow::Result<()> {
    let name = |id: &str| {
        seed.iter()
            .find(|p| p.subject_id == id)
            .map_or(id.to_string(), |p| p.display_name.clone())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let received = loop {
        let received = receiver.received();
        if received.iter().any(|r| r.body["data"]["policyId"] == sme) {
            break received;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the association's webhook got nothing within 30 s: {received:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("\n政府+: each subscriber gets what its scope matches");
    println!("  {ASSOCIATION}, by webhook (Standard Webhooks, signed HMAC-SHA256):");
    for r in &received {
        println!(
            "    ← {} {} {} — signature {}",
            r.webhook_id,
            r.body["type"].as_str().unwrap_or_default(),
            r.body["data"]["title"].as_str().unwrap_or_default(),
            if r.verified {
                "verified ✓"
            } else {
                "INVALID"
            }
        );
    }
    let pulled = park
        .pull_feed(PullFeedRequest::default())
        .await?
        .into_inner()
        .items;
    println!("  {PARK}, by PullFeed: {} item(s)", pulled.len());
    for item in &pulled {
        println!("    {}", feed_line(item));
    }

    let note = "请楼宇内企业关注见习补贴申领。";
    park.forward(ForwardRequest {
        policy_id: graduates.into(),
        child_ids: vec![PARK_TIER.into()],
        note: note.into(),
        request_id: "demo-park-to-b1".into(),
        ..ForwardRequest::default()
    })
    .await?;
    let tier_feed = loop {
        let items = park_tier
            .pull_feed(PullFeedRequest::default())
            .await?
            .into_inner()
            .items;
        if !items.is_empty() {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("\n{PARK} forwards it down a tier; {PARK_TIER}'s feed:");
    for item in &tier_feed {
        println!("  {}", feed_line(item));
    }

    let forward = association
        .forward(ForwardRequest {
            policy_id: sme.into(),
            all_members: true,
            note: "请会员企业对照条件申报。".into(),
            request_id: "demo-assoc-members".into(),
            ..ForwardRequest::default()
        })
        .await?
        .into_inner();
    println!(
        "\n{ASSOCIATION} forwards 《杨浦区支持科技型中小企业创新发展若干措施》 to all its members (forward {}):",
        forward.forward_id
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let reach = loop {
        let reach = ops
            .get_relay_reach(GetRelayReachRequest {
                policy_id: sme.into(),
            })
            .await?
            .into_inner();
        let settled = reach.subscribers.iter().any(|s| {
            s.subscriber_id == ASSOCIATION
                && s.members_forwarded == 2
                && s.members_already_reached + s.members_delivered >= 2
        });
        if settled {
            break reach;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the forward did not settle within 30 s: {reach:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for s in &reach.subscribers {
        for m in &s.members {
            let what = match DeliveryState::try_from(m.state) {
                Ok(DeliveryState::AlreadyReceived) => {
                    "already had it (pushed directly): nothing sent, the forward recorded"
                }
                Ok(DeliveryState::Sent | DeliveryState::Delivered | DeliveryState::Read) => {
                    "not in the audience: sent now, \"经 杨浦区软件和信息服务业协会 转发\""
                }
                _ => "pending",
            };
            println!("  {} — {what}", name(&m.member_id));
        }
    }
    print_reach("杨浦区支持科技型中小企业创新发展若干措施", &reach);
    let tiers = ops
        .get_relay_reach(GetRelayReachRequest {
            policy_id: graduates.into(),
        })
        .await?
        .into_inner();
    print_reach("杨浦区2023年高校毕业生就业见习补贴申领指南", &tiers);
    Ok(())
}

/// `GetRelayReach` as a table: per subscriber, by tier.
fn print_reach(title: &str, reach: &zhida_proto::relay::v1::GetRelayReachResponse) {
    println!("\nGetRelayReach(《{title}》): reached → forwarded → delivered → read");
    let mut rows = vec![cells(&[
        "tier",
        "subscriber",
        "reached by",
        "taken",
        "forwarded",
        "already",
        "delivered",
        "read",
    ])];
    for s in &reach.subscribers {
        let by = FeedEvent::try_from(s.reached_by)
            .map_or("?", |e| e.as_str_name())
            .trim_start_matches("FEED_EVENT_")
            .to_lowercase();
        let taken: Vec<&str> = [
            (s.webhook_delivered, "webhook"),
            (s.pulled, "pull"),
            (s.streamed, "stream"),
        ]
        .into_iter()
        .filter(|(yes, _)| *yes)
        .map(|(_, how)| how)
        .collect();
        rows.push(cells(&[
            &s.tier.to_string(),
            &s.subscriber_id,
            &by,
            &taken.join("+"),
            &s.members_forwarded.to_string(),
            &s.members_already_reached.to_string(),
            &s.members_delivered.to_string(),
            &s.members_read.to_string(),
        ]));
    }
    for line in table("  ", &rows) {
        println!("{line}");
    }
}

/// Everything sent to the seeded people so far, as (name, "channel: what") pairs: the
/// emails' subjects (from the `.eml` files), the SMS texts (`sms.jsonl`) and the inbox
/// items' titles, per person in seed order.
async fn told(
    out: &std::path::Path,
    inbox: &mut InboxServiceClient<InterceptedService<GrpcChannel, Bearer>>,
    seed: &[Profile],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut emails: Vec<(std::time::SystemTime, String, String)> = Vec::new();
    for entry in std::fs::read_dir(out)?.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let Ok(mail) = mailparse::parse_mail(&bytes) else {
            continue;
        };
        let header = |name: &str| {
            mail.headers
                .iter()
                .find(|h| h.get_key().eq_ignore_ascii_case(name))
                .map(|h| h.get_value())
                .unwrap_or_default()
        };
        emails.push((
            entry.metadata()?.modified()?,
            header("To"),
            header("Subject"),
        ));
    }
    emails.sort();
    let sms = std::fs::read_to_string(out.join(SMS_FILE)).unwrap_or_default();
    let mut told = Vec::new();
    for p in seed {
        let address = &p.contacts[0].address;
        for (_, to, subject) in emails
            .iter()
            .filter(|(_, to, _)| to.contains(address.as_str()))
        {
            let _ = to;
            told.push((p.display_name.clone(), format!("✉ {subject}")));
        }
        if let Some(mobile) = p.contacts.iter().find(|c| c.channel == Channel::Sms as i32) {
            // Masked, in whichever form the number was written (`+86…`, `86…`, national).
            let national = |n: &str| {
                n.trim_start_matches('+')
                    .trim_start_matches("86")
                    .to_string()
            };
            let masked = national(&zhida_notifier::mask_mobile(&mobile.address));
            for line in sms.lines() {
                let sms: serde_json::Value = serde_json::from_str(line)?;
                if sms["to"].as_str().map(national) == Some(masked.clone()) {
                    let text = sms["text"].as_str().unwrap_or_default();
                    let short: String = text.chars().take(40).collect();
                    told.push((p.display_name.clone(), format!("✆ {short}…")));
                }
            }
        }
        let page = inbox
            .list_inbox(ListInboxRequest {
                recipient_id: p.subject_id.clone(),
                before_cursor: String::new(),
                limit: 50,
            })
            .await?
            .into_inner();
        for item in page.items.iter().rev() {
            told.push((p.display_name.clone(), format!("▤ {}", item.title)));
        }
    }
    Ok(told)
}

/// Waits until `expected` messages were sent to the seeded people (30 s at most).
async fn wait_told(
    out: &std::path::Path,
    inbox: &mut InboxServiceClient<InterceptedService<GrpcChannel, Bearer>>,
    seed: &[Profile],
    expected: usize,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let so_far = told(out, inbox, seed).await?;
        let count = so_far.len();
        if count >= expected {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{count} of {expected} messages sent within 30 s: {so_far:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The seeded profiles as table rows: id, name, street, and each subscription's tags, with
/// its filter (a rule on the policy) on the line below where it has one.
fn profile_rows(seed: &[Profile]) -> Vec<Vec<String>> {
    let mut rows = vec![cells(&["subject", "name", "street", "subscribes to"])];
    for p in seed {
        let mut row = vec![
            p.subject_id.clone(),
            p.display_name.clone(),
            p.street.clone(),
        ];
        if p.subscriptions.is_empty() {
            row.push("–".into());
            rows.push(row);
            continue;
        }
        for s in &p.subscriptions {
            row.push(s.tags.join(", "));
            rows.push(std::mem::replace(&mut row, vec![String::new(); 3]));
            if !s.filter.is_empty() {
                rows.push(cells(&["", "", "", &format!("if {}", s.filter)]));
            }
        }
    }
    rows
}

/// A note under a table row, in the second column: `text` wrapped at its `；` to fit
/// `NOTE_WIDTH` display columns, the first line marked with a dash.
fn note_rows(text: &str) -> Vec<Vec<String>> {
    wrap(text, NOTE_WIDTH)
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            vec![
                String::new(),
                format!("{} {line}", if i == 0 { "—" } else { " " }),
            ]
        })
        .collect()
}

/// Room for a note in a 100-column terminal: indent, marker column, gap, dash and space.
const NOTE_WIDTH: usize = 100 - 2 - 1 - 2 - 2;

/// Breaks `text` after its `；` into lines of at most `width` display columns where it can
/// (a piece longer than that keeps a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for piece in text.split_inclusive('；') {
        match lines.last_mut() {
            Some(line) if line.width() + piece.width() <= width => line.push_str(piece),
            _ => lines.push(piece.to_string()),
        }
    }
    lines
}

fn cells(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

/// Lays `rows` out in columns for a terminal: each cell is padded to its column's width
/// plus `GAP` spaces, measured in display columns (a CJK character takes two), so every
/// column starts at the same display column on every line. A row's last cell is neither
/// padded nor counted in its column's width, so a long trailing note (a reason, a filter)
/// does not push the other rows' columns apart.
fn table(indent: &str, rows: &[Vec<String>]) -> Vec<String> {
    const GAP: usize = 2;
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        let leading = &row[..row.len().saturating_sub(1)];
        for (i, cell) in leading.iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(cell.width());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = indent.to_string();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', widths[i] - cell.width() + GAP));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The display column at which `cell` starts in `line`.
    fn column(line: &str, cell: &str) -> usize {
        let at = line.find(cell).expect("cell in line");
        line[..at].width()
    }

    #[test]
    fn columns_start_at_the_same_display_column_with_wide_and_narrow_text() {
        let rows = [
            cells(&[
                "e-wjc-0002",
                "创智天地数字服务有限公司",
                "五角场街道",
                "employment, sme",
            ]),
            cells(&["c-x-1", "Wang Fang", "Yinhang", "elderly-care"]),
            cells(&[
                "",
                "",
                "",
                "filter {\"department\": [\"区人力资源社会保障局\"]}",
            ]),
        ];
        let lines = table("  ", &rows);
        assert_eq!(lines.len(), 3);
        // Every column starts where the widest cell before it (创智天地…, 24 columns) ends,
        // plus the gap.
        assert_eq!(column(&lines[0], "创智天地"), 2 + 10 + 2);
        assert_eq!(column(&lines[1], "Wang Fang"), 2 + 10 + 2);
        assert_eq!(column(&lines[0], "五角场街道"), 14 + 24 + 2);
        assert_eq!(column(&lines[1], "Yinhang"), 14 + 24 + 2);
        assert_eq!(column(&lines[0], "employment"), 40 + 10 + 2);
        assert_eq!(column(&lines[1], "elderly-care"), 40 + 10 + 2);
        assert_eq!(column(&lines[2], "filter"), 40 + 10 + 2);
        // Padding is spaces only, and nothing trails the last cell.
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn a_trailing_cell_does_not_widen_its_column() {
        let rows = [
            cells(&["王芳", "DELIVERY_STATE_SENT"]),
            cells(&["", "您订阅了政策标签“employment”，一个很长的原因"]),
            cells(&["张伟", "x"]),
        ];
        let lines = table("", &rows);
        assert_eq!(lines[0], "王芳  DELIVERY_STATE_SENT");
        assert_eq!(column(&lines[1], "您订阅"), 6);
        assert_eq!(lines[2], "张伟  x");
    }

    #[test]
    fn a_note_wraps_after_its_semicolons_by_display_width() {
        // 该政策面向： is 12 columns, ；2: the first two pieces fit in 30, the third does not.
        let lines = wrap(
            "该政策面向：a >= 1；b = \"c\"；enterprise.size = \"微\"",
            30,
        );
        assert_eq!(
            lines,
            [
                "该政策面向：a >= 1；b = \"c\"；",
                "enterprise.size = \"微\""
            ]
        );
        assert!(lines.iter().all(|l| l.width() <= 30));
        // A piece wider than the line keeps a line of its own.
        assert_eq!(wrap("一二三四五六；七", 4), ["一二三四五六；", "七"]);
    }
}
