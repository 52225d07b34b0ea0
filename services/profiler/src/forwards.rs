//! The `relay.forwards` handler ("政府+"): an association or park forwards a relayed
//! policy to its member enterprises, and the profiler, which holds their profiles, turns
//! the forward into delivery requests on the same path as a direct push.
//!
//! The members reached are the subscriber's: its registered members and (when the relay
//! says so) the enterprises whose profile names it in `enterprise.parks` (a park) or
//! `enterprise.associations` (an association); of these, every one (`all_members`) or those
//! the forward lists. Each member gets the requests a match of its profile by the policy's
//! audience would give (see [`Directory::forwarded`]), with `forward` set and the forward as
//! the reason. The notifier dedups them against every earlier delivery of the policy to
//! the member on the channel (a direct push, another forward) and reports
//! `ALREADY_RECEIVED` instead of sending. Event ids are derived from the forward, member
//! and channel, so a redelivered forward requests the same deliveries again.

use std::{collections::BTreeSet, sync::Arc};

use tokio::sync::watch;
use zhida_bus::{Event as _, HandleError, Handler, Producer, Record};
use zhida_proto::events::v1::{
    DeliveryRequested, PolicyPublished, RelayForward, RelayForwardRequested, RelaySubscriberKind,
};
use zhida_store::DeliveryKey;

use crate::{
    directory::{Directory, Recipient, Target},
    document,
    matcher::{delivery_request, request_all},
    replica::Replica,
};

pub(crate) struct Forwards {
    pub replica: Arc<Replica>,
    pub producer: Producer,
    /// True once the `profiles` replay caught up: before, members would be missed.
    pub caught_up: watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl Handler for Forwards {
    async fn handle(&self, record: &Record) -> Result<(), HandleError> {
        if record.meta.ty != RelayForwardRequested::TYPE {
            tracing::debug!(ty = record.meta.ty, "not a forward; passed over");
            return Ok(());
        }
        let event: RelayForwardRequested = record.decode()?;
        let (forward, policy, field) = checked(&event).map_err(HandleError::permanent)?;
        let (forward, policy) = (forward.clone(), policy.clone());
        if !*self.caught_up.borrow() {
            return Err(HandleError::transient(
                "profile index is still replaying the profiles topic",
            ));
        }
        let replica = self.replica.clone();
        let planned = {
            let (forward, policy) = (forward.clone(), policy.clone());
            tokio::task::spawn_blocking(move || {
                replica
                    .with_directory(|directory| plan(directory, &event, &forward, &policy, field))
            })
            .await
            .map_err(HandleError::transient)?
        };
        tracing::info!(
            policy_id = policy.policy_id,
            forward_id = forward.forward_id,
            subscriber_id = forward.subscriber_id,
            members = planned.members,
            deliveries = planned.recipients.len(),
            not_members = planned.not_members,
            without_profile = planned.without_profile,
            "forward resolved"
        );
        request_all(
            &self.producer,
            planned.recipients.iter().map(|r| {
                let key = DeliveryKey {
                    policy_id: policy.policy_id.clone(),
                    recipient_id: r.subject_id.clone(),
                    channel: r.channel,
                };
                let id = format!("{}|{}", forward.forward_id, key.encoded());
                let request = DeliveryRequested {
                    forward: Some(forward.clone()),
                    ..delivery_request(&policy, r)
                };
                (id, request)
            }),
        )
        .await
    }
}

/// The forward, its policy and the profile field naming subscribers of the forward's kind
/// (when members come from profiles), once the event is known to be whole; why not,
/// otherwise (dead-lettered: a retry cannot mend it).
fn checked(
    event: &RelayForwardRequested,
) -> Result<(&RelayForward, &PolicyPublished, Option<&'static str>), String> {
    let Some(forward) = &event.forward else {
        return Err("RelayForwardRequested without its forward".into());
    };
    if !zhida_runtime::ids::is_identifier(&forward.forward_id, 128) {
        return Err("forward_id must be 1–128 of A-Z a-z 0-9 _ . : -".into());
    }
    if forward.subscriber_id.is_empty() {
        return Err(format!(
            "forward {} without subscriber_id",
            forward.forward_id
        ));
    }
    let Some(policy) = &event.policy else {
        return Err(format!("forward {} without its policy", forward.forward_id));
    };
    if policy.policy_id.is_empty() {
        return Err(format!(
            "forward {} of a policy without id",
            forward.forward_id
        ));
    }
    if !event.members_from_profiles {
        return Ok((forward, policy, None));
    }
    match RelaySubscriberKind::try_from(event.subscriber_kind) {
        Ok(RelaySubscriberKind::Association) => Ok((forward, policy, Some("associations"))),
        Ok(RelaySubscriberKind::Park) => Ok((forward, policy, Some("parks"))),
        _ => Err(format!(
            "forward {} takes members from profiles but names no subscriber kind",
            forward.forward_id
        )),
    }
}

/// The reason a forwarded delivery gives, shown to the member: "经 {subscriber} 转发",
/// with "：{note}" when the subscriber wrote one.
pub(crate) fn reason(forward: &RelayForward) -> String {
    let name = if forward.subscriber_name.trim().is_empty() {
        &forward.subscriber_id
    } else {
        forward.subscriber_name.trim()
    };
    let note = forward.note.trim();
    if note.is_empty() {
        format!("经 {name} 转发")
    } else {
        format!("经 {name} 转发：{note}")
    }
}

/// Who a forward reaches, before profiles are looked up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Members {
    /// Member subject ids, each once.
    pub reach: BTreeSet<String>,
    /// Listed ids that are not members of the subscriber.
    pub not_members: usize,
}

/// The members `event` reaches: its registered `members`, and `naming` (the enterprises
/// whose profile names the subscriber, when `members_from_profiles`); all of them with
/// `all_members`, else those of `member_ids` that are members.
pub(crate) fn members(event: &RelayForwardRequested, naming: &[String]) -> Members {
    let mut all: BTreeSet<&str> = event.members.iter().map(String::as_str).collect();
    if event.members_from_profiles {
        all.extend(naming.iter().map(String::as_str));
    }
    if event.all_members {
        return Members {
            reach: all.into_iter().map(str::to_string).collect(),
            not_members: 0,
        };
    }
    let listed: BTreeSet<&str> = event.member_ids.iter().map(String::as_str).collect();
    let reach: BTreeSet<String> = listed
        .iter()
        .filter(|id| all.contains(*id))
        .map(|id| id.to_string())
        .collect();
    Members {
        not_members: listed.len() - reach.len(),
        reach,
    }
}

/// The deliveries of a forward.
#[derive(Debug, Default)]
struct Planned {
    recipients: Vec<Recipient>,
    /// Members reached.
    members: usize,
    not_members: usize,
    /// Members without a profile, or whose profile is not an enterprise's.
    without_profile: usize,
}

/// The deliveries of `event` (its `forward` and `policy` given apart) over `directory`;
/// `field` is the profile field naming the subscriber, when members come from profiles.
fn plan(
    directory: &Directory,
    event: &RelayForwardRequested,
    forward: &RelayForward,
    policy: &PolicyPublished,
    field: Option<&str>,
) -> Planned {
    let naming = field.map_or_else(Vec::new, |field| {
        directory.naming(field, &forward.subscriber_id)
    });
    let members = members(event, &naming);
    // Who is reached is the forward's choice; tags and document only pick the
    // subscriptions whose channels and unsubscribe links the deliveries carry.
    let target = Target {
        tags: policy.tags.clone(),
        audience: None,
        document: document::policy(policy),
    };
    let reason = reason(forward);
    let mut planned = Planned {
        not_members: members.not_members,
        ..Planned::default()
    };
    for id in &members.reach {
        match directory.forwarded(id, &target, &reason) {
            Some(recipients) => {
                planned.members += 1;
                planned.recipients.extend(recipients);
            }
            None => planned.without_profile += 1,
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use zhida_bus::Topic;
    use zhida_catalogue::Industries;
    use zhida_proto::events::v1::{
        Channel, Citizen, Contact, Enterprise, Frequency, Profile, SubjectKind, Subscription,
        profile::Details,
    };

    use super::*;

    fn forward() -> RelayForward {
        RelayForward {
            forward_id: "f-1".into(),
            subscriber_id: "assoc-soft".into(),
            subscriber_name: "杨浦区软件行业协会".into(),
            note: String::new(),
        }
    }

    fn event(member_ids: &[&str], members: &[&str]) -> RelayForwardRequested {
        RelayForwardRequested {
            forward: Some(forward()),
            policy: Some(PolicyPublished {
                policy_id: "p-1".into(),
                title: "软件企业奖励".into(),
                tags: vec!["tech-innovation".into()],
                department: "区科委".into(),
                version: 2,
                ..PolicyPublished::default()
            }),
            member_ids: member_ids.iter().map(|s| s.to_string()).collect(),
            members: members.iter().map(|s| s.to_string()).collect(),
            subscriber_kind: RelaySubscriberKind::Association as i32,
            ..RelayForwardRequested::default()
        }
    }

    fn ids(members: &Members) -> Vec<&str> {
        members.reach.iter().map(String::as_str).collect()
    }

    #[test]
    fn listed_members_are_reached_and_non_members_ignored_or_all_members_with_all() {
        let listed = event(&["e-1", "e-3", "e-9", "e-1"], &["e-1", "e-2", "e-3"]);
        let m = members(&listed, &[]);
        assert_eq!(ids(&m), ["e-1", "e-3"]);
        assert_eq!(m.not_members, 1, "e-9 is not a member; e-1 counts once");
        let all = RelayForwardRequested {
            all_members: true,
            ..listed.clone()
        };
        let m = members(&all, &["e-7".into()]);
        assert_eq!(ids(&m), ["e-1", "e-2", "e-3"], "member_ids ignored");
        assert_eq!(m.not_members, 0);
        // Profiles naming the subscriber count only when the relay says so.
        let from_profiles = RelayForwardRequested {
            members_from_profiles: true,
            ..all
        };
        let m = members(&from_profiles, &["e-7".into(), "e-2".into()]);
        assert_eq!(ids(&m), ["e-1", "e-2", "e-3", "e-7"]);
        let listed_from_profiles = RelayForwardRequested {
            all_members: false,
            member_ids: vec!["e-7".into(), "e-8".into()],
            ..from_profiles
        };
        let m = members(&listed_from_profiles, &["e-7".into()]);
        assert_eq!(ids(&m), ["e-7"]);
        assert_eq!(m.not_members, 1);
    }

    fn enterprise(id: &str, parks: &[&str], associations: &[&str]) -> Profile {
        Profile {
            subject_id: id.into(),
            kind: SubjectKind::Enterprise as i32,
            display_name: format!("{id} 有限公司"),
            street: "五角场街道".into(),
            contacts: vec![Contact {
                channel: Channel::Email as i32,
                sealed_address: vec![1, 2, 3],
                consent: true,
                ..Contact::default()
            }],
            details: Some(Details::Enterprise(Enterprise {
                industry: "I6513".into(),
                parks: parks.iter().map(|s| s.to_string()).collect(),
                associations: associations.iter().map(|s| s.to_string()).collect(),
                ..Enterprise::default()
            })),
            ..Profile::default()
        }
    }

    fn directory() -> Directory {
        let mut d = Directory::new(Industries::gbt4754_2017());
        // Names the association in its profile.
        d.upsert(enterprise("e-assoc", &[], &["assoc-soft"]));
        // Names a park of the same id: not a member of the association.
        d.upsert(enterprise("e-park", &["assoc-soft"], &[]));
        // A registered member, with a digest subscription covering the policy by email and
        // no consent to SMS.
        let mut registered = enterprise("e-reg", &[], &[]);
        registered.subscriptions.push(Subscription {
            id: "s-1".into(),
            tags: vec!["tech-innovation".into()],
            channels: vec![Channel::Email as i32],
            frequency: Frequency::DailyDigest as i32,
            ..Subscription::default()
        });
        registered.contacts.push(Contact {
            channel: Channel::Sms as i32,
            sealed_address: vec![4],
            consent: false,
            ..Contact::default()
        });
        d.upsert(registered);
        // A citizen listed as a member: not an enterprise, not reached.
        d.upsert(Profile {
            subject_id: "c-1".into(),
            kind: SubjectKind::Citizen as i32,
            details: Some(Details::Citizen(Citizen::default())),
            ..Profile::default()
        });
        d
    }

    fn plan_of(d: &Directory, event: &RelayForwardRequested) -> Planned {
        let (forward, policy, field) = checked(event).expect("whole");
        plan(d, event, forward, policy, field)
    }

    #[test]
    fn members_by_profile_are_those_naming_the_subscriber_in_the_field_of_its_kind() {
        let d = directory();
        let mut all = RelayForwardRequested {
            all_members: true,
            members_from_profiles: true,
            ..event(&[], &["e-reg", "c-1", "gone"])
        };
        let planned = plan_of(&d, &all);
        let reached: BTreeSet<&str> = planned
            .recipients
            .iter()
            .map(|r| r.subject_id.as_str())
            .collect();
        assert_eq!(reached, BTreeSet::from(["e-assoc", "e-reg"]));
        assert_eq!(planned.members, 2);
        assert_eq!(planned.without_profile, 2, "the citizen, and no profile");
        all.subscriber_kind = RelaySubscriberKind::Park as i32;
        let planned = plan_of(&d, &all);
        let reached: BTreeSet<&str> = planned
            .recipients
            .iter()
            .map(|r| r.subject_id.as_str())
            .collect();
        assert_eq!(reached, BTreeSet::from(["e-park", "e-reg"]));
        // Without members_from_profiles, the registered members only.
        all.members_from_profiles = false;
        let planned = plan_of(&d, &all);
        assert!(planned.recipients.iter().all(|r| r.subject_id == "e-reg"));
    }

    #[test]
    fn a_member_gets_what_a_match_of_its_profile_gives_with_the_forward_as_reason() {
        let d = directory();
        let mut e = event(&["e-reg"], &["e-reg"]);
        if let Some(f) = &mut e.forward {
            f.note = "  请会员企业及时申报  ".into();
        }
        let planned = plan_of(&d, &e);
        let got: Vec<(Channel, Frequency, &str, &[u8])> = planned
            .recipients
            .iter()
            .map(|r| {
                (
                    r.channel,
                    r.frequency,
                    r.subscription_id.as_str(),
                    r.sealed_address.as_slice(),
                )
            })
            .collect();
        // As the audience reaches a profile: at once, on email (consented) and the page;
        // not SMS (no consent). The subscription covering email is named for its
        // unsubscribe link.
        assert_eq!(
            got,
            [
                (
                    Channel::Email,
                    Frequency::Immediate,
                    "s-1",
                    &[1u8, 2, 3][..]
                ),
                (Channel::Inbox, Frequency::Immediate, "", &[][..]),
            ]
        );
        assert!(
            planned
                .recipients
                .iter()
                .all(|r| r.reason == "经 杨浦区软件行业协会 转发：请会员企业及时申报"),
            "{planned:?}"
        );
    }

    #[test]
    fn forwards_that_cannot_be_handled_are_dead_lettered() {
        let whole = event(&["e-1"], &["e-1"]);
        assert_eq!(checked(&whole).map(|(_, _, field)| field), Ok(None));
        let broken = [
            RelayForwardRequested {
                forward: None,
                ..whole.clone()
            },
            RelayForwardRequested {
                policy: None,
                ..whole.clone()
            },
            RelayForwardRequested {
                forward: Some(RelayForward {
                    forward_id: "f|1".into(),
                    ..forward()
                }),
                ..whole.clone()
            },
            RelayForwardRequested {
                members_from_profiles: true,
                subscriber_kind: RelaySubscriberKind::Unspecified as i32,
                ..whole.clone()
            },
        ];
        for event in broken {
            assert!(checked(&event).is_err(), "{event:?}");
        }
        let record = Record::typed(
            Topic::RelayForwards,
            RelayForwardRequested::TYPE,
            "p-1",
            vec![0xff, 0xff],
        );
        assert!(matches!(
            record.decode::<RelayForwardRequested>(),
            Err(HandleError::Permanent(_))
        ));
        assert_eq!(
            reason(&RelayForward {
                subscriber_name: String::new(),
                ..forward()
            }),
            "经 assoc-soft 转发"
        );
    }
}
