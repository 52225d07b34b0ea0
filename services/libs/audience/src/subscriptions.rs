//! policy → subscriptions: every subscription sharing a tag with the policy whose own filter
//! (a [`Rule`] over the policy document) matches it. The policy's tags select candidates
//! from per-tag bitmaps; filters are interned, so each distinct filter among the
//! candidates is evaluated once per policy, and the subscriptions of a filter that fails
//! are subtracted from the candidates.

use std::collections::HashMap;

use roaring::RoaringBitmap;
use serde_json::Value;

use crate::Rule;

/// One subscription, as given to [`Subscriptions::replace`].
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Unique within its owner.
    pub id: String,
    /// The policy must carry at least one of them.
    pub tags: Vec<String>,
    /// The subscriber's own condition on the policy; `None` accepts every policy of the tags.
    pub filter: Option<Rule>,
}

/// A stored subscription, borrowed from the index.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub id: &'a str,
    pub tags: &'a [String],
    pub filter: Option<&'a Rule>,
}

#[derive(Debug)]
struct Entry {
    owner: Box<str>,
    id: Box<str>,
    tags: Vec<String>,
    filter: Option<u32>,
}

#[derive(Debug)]
struct Filter {
    rule: Rule,
    /// Subscriptions using it; the filter is dropped at zero.
    users: u32,
}

/// Subscriptions by tag, grouped by owner (a profile's subject id).
#[derive(Debug, Default)]
pub struct Subscriptions {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_owner: HashMap<Box<str>, Vec<u32>>,
    by_tag: HashMap<Box<str>, RoaringBitmap>,
    /// Slots whose subscription has a filter.
    filtered: RoaringBitmap,
    filters: Vec<Option<Filter>>,
    filter_ids: HashMap<Rule, u32>,
    free_filters: Vec<u32>,
}

/// A subscription that matched a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Matched<'a> {
    pub owner: &'a str,
    pub subscription: &'a str,
}

impl Subscriptions {
    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct filters.
    pub fn filters(&self) -> usize {
        self.filter_ids.len()
    }

    /// Replaces all subscriptions of `owner` (an empty list removes them).
    pub fn replace(&mut self, owner: &str, subscriptions: impl IntoIterator<Item = Subscription>) {
        self.remove_owner(owner);
        let mut slots = Vec::new();
        for subscription in subscriptions {
            let slot = self.free.pop().unwrap_or_else(|| {
                self.entries.push(None);
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 subscriptions")
            });
            for tag in &subscription.tags {
                match self.by_tag.get_mut(tag.as_str()) {
                    Some(set) => {
                        set.insert(slot);
                    }
                    None => {
                        self.by_tag
                            .insert(tag.as_str().into(), RoaringBitmap::from_iter([slot]));
                    }
                }
            }
            let filter = subscription.filter.map(|rule| self.intern(rule));
            if filter.is_some() {
                self.filtered.insert(slot);
            }
            self.entries[slot as usize] = Some(Entry {
                owner: owner.into(),
                id: subscription.id.into(),
                tags: subscription.tags,
                filter,
            });
            slots.push(slot);
        }
        if !slots.is_empty() {
            self.by_owner.insert(owner.into(), slots);
        }
    }

    fn intern(&mut self, rule: Rule) -> u32 {
        if let Some(id) = self.filter_ids.get(&rule) {
            if let Some(filter) = &mut self.filters[*id as usize] {
                filter.users += 1;
            }
            return *id;
        }
        let id = self.free_filters.pop().unwrap_or_else(|| {
            self.filters.push(None);
            u32::try_from(self.filters.len() - 1).expect("fewer than 2^32 filters")
        });
        self.filter_ids.insert(rule.clone(), id);
        self.filters[id as usize] = Some(Filter { rule, users: 1 });
        id
    }

    fn release(&mut self, id: u32) {
        let Some(filter) = &mut self.filters[id as usize] else {
            return;
        };
        filter.users -= 1;
        if filter.users == 0 {
            if let Some(filter) = self.filters[id as usize].take() {
                self.filter_ids.remove(&filter.rule);
            }
            self.free_filters.push(id);
        }
    }

    /// Removes every subscription of `owner`.
    pub fn remove_owner(&mut self, owner: &str) {
        let Some(slots) = self.by_owner.remove(owner) else {
            return;
        };
        for slot in slots {
            let Some(entry) = self.entries[slot as usize].take() else {
                continue;
            };
            for tag in &entry.tags {
                if let Some(set) = self.by_tag.get_mut(tag.as_str()) {
                    set.remove(slot);
                    if set.is_empty() {
                        self.by_tag.remove(tag.as_str());
                    }
                }
            }
            if let Some(filter) = entry.filter {
                self.filtered.remove(slot);
                self.release(filter);
            }
            self.free.push(slot);
        }
    }

    fn rule(&self, filter: Option<u32>) -> Option<&Rule> {
        let id = filter?;
        self.filters[id as usize].as_ref().map(|f| &f.rule)
    }

    /// The subscriptions of `owner`.
    pub fn of(&self, owner: &str) -> impl Iterator<Item = Stored<'_>> {
        self.by_owner
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|slot| self.entries[*slot as usize].as_ref())
            .map(|entry| Stored {
                id: &entry.id,
                tags: &entry.tags,
                filter: self.rule(entry.filter),
            })
    }

    /// Subscriptions sharing a tag with the policy whose filter matches `policy` (the
    /// policy document), in no particular order.
    pub fn matching<'a>(&'a self, tags: &[String], policy: &Value) -> Vec<Matched<'a>> {
        let mut candidates = RoaringBitmap::new();
        for tag in tags {
            if let Some(set) = self.by_tag.get(tag.as_str()) {
                candidates |= set;
            }
        }
        // Each distinct filter among the candidates is decided once.
        let mut verdicts: HashMap<u32, bool> = HashMap::new();
        let mut rejected = RoaringBitmap::new();
        for slot in &candidates & &self.filtered {
            let Some(Entry {
                filter: Some(id), ..
            }) = &self.entries[slot as usize]
            else {
                continue;
            };
            let accepted = *verdicts.entry(*id).or_insert_with(|| {
                self.rule(Some(*id))
                    .is_some_and(|rule| rule.matches(policy))
            });
            if !accepted {
                rejected.insert(slot);
            }
        }
        candidates -= rejected;
        candidates
            .iter()
            .filter_map(|slot| self.entries[slot as usize].as_ref())
            .map(|entry| Matched {
                owner: &entry.owner,
                subscription: &entry.id,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
    use serde_json::json;

    use super::*;

    fn subscription(id: &str, tags: &[&str], filter: Option<&str>) -> Subscription {
        Subscription {
            id: id.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            filter: filter.map(|f| {
                Rule::parse(f, &zhida_catalogue::Industries::gbt4754_2017()).expect("valid filter")
            }),
        }
    }

    fn tags(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn a_subscription_matches_by_any_tag_and_its_own_filter() {
        let mut index = Subscriptions::default();
        index.replace(
            "alice",
            [
                subscription("jobs", &["employment", "graduates"], None),
                subscription(
                    "tech-from-kewei",
                    &["tech-innovation"],
                    Some(r#"{"department": ["区科委"]}"#),
                ),
            ],
        );
        index.replace(
            "bob",
            [subscription("all-tech", &["tech-innovation"], None)],
        );
        let policy = json!({"department": "区科委", "tags": ["tech-innovation"]});
        let matched = index.matching(&tags(&["tech-innovation"]), &policy);
        assert_eq!(
            matched,
            [
                Matched {
                    owner: "alice",
                    subscription: "tech-from-kewei"
                },
                Matched {
                    owner: "bob",
                    subscription: "all-tech"
                }
            ]
        );
        let other = json!({"department": "区人社局", "tags": ["tech-innovation"]});
        let matched = index.matching(&tags(&["tech-innovation"]), &other);
        assert_eq!(
            matched.len(),
            1,
            "alice's filter rejects another department"
        );
        assert!(index.matching(&tags(&["housing"]), &policy).is_empty());
    }

    #[test]
    fn replacing_and_removing_an_owner_updates_what_matches() {
        let mut index = Subscriptions::default();
        index.replace("alice", [subscription("a", &["employment"], None)]);
        index.replace("alice", [subscription("b", &["housing"], None)]);
        assert!(
            index
                .matching(&tags(&["employment"]), &json!({}))
                .is_empty()
        );
        assert_eq!(index.matching(&tags(&["housing"]), &json!({})).len(), 1);
        assert_eq!(index.of("alice").map(|s| s.id).collect::<Vec<_>>(), ["b"]);
        index.remove_owner("alice");
        assert!(index.is_empty());
        assert_eq!(index.filters(), 0, "no subscription uses a filter any more");
        assert!(index.matching(&tags(&["housing"]), &json!({})).is_empty());
        assert_eq!(index.of("alice").count(), 0);
    }

    #[test]
    fn matches_what_a_scan_of_every_subscription_finds() {
        const TAGS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
        const DEPARTMENTS: [&str; 3] = ["区科委", "区人社局", "区商务委"];
        let mut rng = StdRng::seed_from_u64(42);
        let mut index = Subscriptions::default();
        let mut all: HashMap<String, Vec<Subscription>> = HashMap::new();
        for round in 0..3 {
            for owner in 0..200 {
                let owner = format!("o{owner}");
                let subscriptions: Vec<Subscription> = (0..rng.random_range(0..3))
                    .map(|i| {
                        let n = rng.random_range(1..3);
                        let picked: Vec<&str> =
                            TAGS.choose_multiple(&mut rng, n).copied().collect();
                        let filter = rng.random_bool(0.4).then(|| {
                            format!(
                                r#"{{"department": ["{}"]}}"#,
                                DEPARTMENTS.choose(&mut rng).unwrap_or(&"x")
                            )
                        });
                        subscription(&format!("s{round}-{i}"), &picked, filter.as_deref())
                    })
                    .collect();
                index.replace(&owner, subscriptions.clone());
                all.insert(owner, subscriptions);
            }
        }
        assert!(
            index.filters() <= DEPARTMENTS.len(),
            "identical filters are interned, replaced ones released: {}",
            index.filters()
        );
        for _ in 0..50 {
            let n = rng.random_range(1..3);
            let policy_tags = tags(
                &TAGS
                    .choose_multiple(&mut rng, n)
                    .copied()
                    .collect::<Vec<_>>(),
            );
            let policy = json!({"department": DEPARTMENTS.choose(&mut rng), "tags": policy_tags});
            let mut expected: Vec<(String, String)> = all
                .iter()
                .flat_map(|(owner, subs)| subs.iter().map(move |s| (owner, s)))
                .filter(|(_, s)| s.tags.iter().any(|t| policy_tags.contains(t)))
                .filter(|(_, s)| s.filter.as_ref().is_none_or(|f| f.matches(&policy)))
                .map(|(owner, s)| (owner.clone(), s.id.clone()))
                .collect();
            expected.sort();
            let mut actual: Vec<(String, String)> = index
                .matching(&policy_tags, &policy)
                .iter()
                .map(|m| (m.owner.to_string(), m.subscription.to_string()))
                .collect();
            actual.sort();
            assert_eq!(actual, expected, "{policy}");
        }
    }
}
