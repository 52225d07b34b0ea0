//! What audience rules and subscription filters see: JSON documents in the proto3 JSON
//! mapping (field names as in the `.proto`), written out by hand because a full replay
//! builds one per profile (a reflective transcode costs several times more). A test holds
//! them equal to the reflective mapping.
//!
//! A profile's document leaves out what identifies or reaches a person or firm: audience
//! rules describe groups. A policy's document leaves out its body and its own audience.

use serde_json::{Map, Value, json};
use zhida_proto::events::v1::{PolicyPublished, Profile, SubjectKind, profile::Details};

/// The document an audience rule is matched against.
pub fn profile(p: &Profile) -> Value {
    let mut doc = Map::new();
    if let Ok(kind) = SubjectKind::try_from(p.kind)
        && kind != SubjectKind::Unspecified
    {
        doc.insert("kind".into(), json!(kind.as_str_name()));
    }
    put_str(&mut doc, "street", &p.street);
    match &p.details {
        Some(Details::Citizen(c)) => {
            let mut m = Map::new();
            if c.birth_year != 0 {
                m.insert("birth_year".into(), json!(c.birth_year));
            }
            put_list(&mut m, "groups", &c.groups);
            put_str(&mut m, "hukou", &c.hukou);
            put_str(&mut m, "language", &c.language);
            doc.insert("citizen".into(), Value::Object(m));
        }
        Some(Details::Enterprise(e)) => {
            let mut m = Map::new();
            put_str(&mut m, "industry", &e.industry);
            put_str(&mut m, "size", &e.size);
            put_str(&mut m, "registered_on", &e.registered_on);
            if e.registered_capital != 0.0 {
                m.insert("registered_capital".into(), json!(e.registered_capital));
            }
            if e.employees != 0 {
                m.insert("employees".into(), json!(e.employees));
            }
            put_list(&mut m, "qualifications", &e.qualifications);
            put_list(&mut m, "parks", &e.parks);
            put_list(&mut m, "associations", &e.associations);
            doc.insert("enterprise".into(), Value::Object(m));
        }
        None => {}
    }
    Value::Object(doc)
}

/// The document a subscription filter is matched against.
pub fn policy(p: &PolicyPublished) -> Value {
    let mut doc = Map::new();
    put_str(&mut doc, "policy_id", &p.policy_id);
    put_str(&mut doc, "title", &p.title);
    put_list(&mut doc, "tags", &p.tags);
    put_str(&mut doc, "department", &p.department);
    if let Some(at) = &p.published_at {
        doc.insert("published_at".into(), json!(at.to_string()));
    }
    put_str(&mut doc, "service_url", &p.service_url);
    Value::Object(doc)
}

fn put_str(doc: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        doc.insert(key.into(), json!(value));
    }
}

fn put_list(doc: &mut Map<String, Value>, key: &str, values: &[String]) {
    if !values.is_empty() {
        doc.insert(key.into(), json!(values));
    }
}

#[cfg(test)]
mod tests {
    use zhida_proto::{
        Timestamp,
        events::v1::{Channel, Citizen, Contact, Enterprise, Subscription},
        json,
    };

    use super::*;

    fn reflective(name: &str, message: &impl prost::Message, drop: &[&str]) -> Value {
        let mut value = json::to_value(name, message).expect("serialises");
        let object = value.as_object_mut().expect("an object");
        for key in drop {
            if let Some((outer, inner)) = key.split_once('.') {
                if let Some(Value::Object(o)) = object.get_mut(outer) {
                    o.remove(inner);
                }
            } else {
                object.remove(*key);
            }
        }
        value
    }

    const PROFILE_PRIVATE: [&str; 5] = [
        "subject_id",
        "display_name",
        "contacts",
        "subscriptions",
        "enterprise.credit_code",
    ];

    #[test]
    fn profile_documents_are_the_proto_json_mapping_without_private_fields() {
        let enterprise = Profile {
            subject_id: "ent-1".into(),
            kind: SubjectKind::Enterprise as i32,
            display_name: "某公司".into(),
            street: "五角场街道".into(),
            contacts: vec![Contact {
                channel: Channel::Email as i32,
                address: "hr@example.cn".into(),
                consent: true,
                ..Contact::default()
            }],
            subscriptions: vec![Subscription {
                tags: vec!["tech-innovation".into()],
                ..Subscription::default()
            }],
            details: Some(Details::Enterprise(Enterprise {
                credit_code: "91310110MA1FL0B2X0".into(),
                industry: "I6513".into(),
                size: "小".into(),
                registered_on: "2021-06-01".into(),
                registered_capital: 1234.5,
                employees: 35,
                qualifications: vec!["高新技术企业".into()],
                parks: vec![],
                associations: vec!["assoc-software".into()],
            })),
        };
        let citizen = Profile {
            subject_id: "c-1".into(),
            kind: SubjectKind::Citizen as i32,
            display_name: "张三".into(),
            street: "殷行街道".into(),
            details: Some(Details::Citizen(Citizen {
                birth_year: 1999,
                groups: vec!["高校毕业生".into()],
                hukou: "外省市".into(),
                language: String::new(),
            })),
            ..Profile::default()
        };
        let bare = Profile {
            kind: SubjectKind::Citizen as i32,
            details: Some(Details::Citizen(Citizen::default())),
            ..Profile::default()
        };
        for p in [enterprise, citizen, bare, Profile::default()] {
            assert_eq!(
                profile(&p),
                reflective("zhida.events.v1.Profile", &p, &PROFILE_PRIVATE),
                "{p:?}"
            );
        }
    }

    #[test]
    fn policy_documents_are_the_proto_json_mapping_without_body_and_audience() {
        let p = PolicyPublished {
            policy_id: "p-1".into(),
            title: "关于促进高校毕业生就业的若干措施".into(),
            body: "……".into(),
            tags: vec!["employment".into(), "graduates".into()],
            department: "区人力资源和社会保障局".into(),
            published_at: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            service_url: "https://zwdt.sh.gov.cn/".into(),
            audience: r#"{"citizen": {"groups": ["高校毕业生"]}}"#.into(),
            urgent: false,
            version: 2,
            summary: "摘要".into(),
            document_number: "杨府发〔2023〕5号".into(),
            ..PolicyPublished::default()
        };
        // Filters see the fields they always saw: the library's content (version, summary,
        // document number, validity, attachments, interpretation, FAQs) is not for them.
        assert_eq!(
            policy(&p),
            reflective(
                "zhida.events.v1.PolicyPublished",
                &p,
                &["body", "audience", "version", "summary", "document_number"]
            )
        );
    }
}
