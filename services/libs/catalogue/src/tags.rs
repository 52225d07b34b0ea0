//! The policy tag catalogue (work plan item 18, 政策标签目录): the topics a policy is filed
//! under and citizens and enterprises subscribe to, seen from the demand side. The
//! publisher checks policies and serves it (`ListTags`); the profiler checks subscriptions
//! and drafts against it.
//!
//! The catalogue is data: an operator creates, renames and retires tags, each change a
//! [`TagDefinition`] on the compacted `tags` topic that every service replays into its own
//! [`Tags`] ([`Tags::apply`]) and shares between its tasks as [`SharedTags`]. A retired tag
//! stays in the catalogue ([`Tags::contains`]), so subscriptions made before it was retired
//! stay readable, but it takes no new policies or subscriptions ([`Tags::is_active`]).
//! The tags built into this release ([`built_in`], [`seed_definitions`]) seed an empty
//! topic. [`check_tag_id`] and [`check_tag_name`] are what an operator's input must pass.

use std::{
    fmt,
    sync::{Arc, PoisonError, RwLock},
};

/// One tag: its id, as policies and subscriptions carry it, its name for people, and
/// whether it is retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Lower-case words joined by `-`, e.g. `employment` ([`check_tag_id`]).
    pub tag: String,
    /// 名称, e.g. 就业创业 ([`check_tag_name`]).
    pub name: String,
    /// Retired: existing subscriptions to it stay readable, new ones (and new policies
    /// filed under it) are refused.
    pub retired: bool,
}

/// One record of the `tags` topic (`TagDefined`): the whole tag as it now is, so the
/// latest definition of an id is the tag.
pub type TagDefinition = Tag;

/// The catalogue's tags, in the order clients show them: the tags built into the release
/// in its order, then tags created since, by id. An order that depends on nothing but the
/// tags, so every replica has the same whatever order the topic's partitions deliver
/// their records in, and compaction (which moves a tag's latest record to where it was
/// written) changes nothing. Displayed as the ids of its active tags separated by
/// spaces, for error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// The catalogue of `tags` applied one after the other ([`Tags::apply`]).
    pub fn new(tags: Vec<Tag>) -> Self {
        let mut catalogue = Self::default();
        for tag in tags {
            catalogue.apply(tag);
        }
        catalogue
    }

    /// The tags built into this release: the seed of an empty `tags` topic.
    pub fn built_in() -> Self {
        built_in()
    }

    /// Takes `definition` as the latest word on its tag: a new id is added in its place
    /// (see [`Tags`]), a known one takes the definition's name and retirement (so renaming
    /// keeps its id, and the subscriptions that name it follow it). Nothing is ever
    /// removed; un-retiring is applying a definition with `retired: false` (the publisher
    /// does not offer it, but a replica takes whatever the topic says last).
    pub fn apply(&mut self, definition: TagDefinition) {
        match self
            .0
            .binary_search_by(|t| order(&t.tag).cmp(&order(&definition.tag)))
        {
            Ok(at) => self.0[at] = definition,
            Err(at) => self.0.insert(at, definition),
        }
    }

    /// Whether `tag` is in the catalogue, retired or not (exactly: ids are case-sensitive).
    /// What reading old subscriptions needs.
    pub fn contains(&self, tag: &str) -> bool {
        self.get(tag).is_some()
    }

    /// Whether `tag` is in the catalogue and not retired: what a new subscription, draft or
    /// policy needs.
    pub fn is_active(&self, tag: &str) -> bool {
        self.get(tag).is_some_and(|t| !t.retired)
    }

    /// The tag with id `tag`, retired or not.
    pub fn get(&self, tag: &str) -> Option<&Tag> {
        self.0.iter().find(|t| t.tag == tag)
    }

    /// Every tag, retired ones included, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    /// The tags that are not retired, in order.
    pub fn active(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter().filter(|t| !t.retired)
    }

    /// How many tags there are, retired ones included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none at all (an unseeded catalogue).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, tag) in self.active().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&tag.tag)?;
        }
        Ok(())
    }
}

/// The catalogue one process keeps up to date (from the `tags` topic) and its tasks read:
/// cheap to clone, every clone the same catalogue. The lock is held only inside these
/// methods, never across an `.await`.
#[derive(Debug, Clone, Default)]
pub struct SharedTags(Arc<RwLock<Tags>>);

impl SharedTags {
    /// A shared catalogue starting as `tags`.
    pub fn new(tags: Tags) -> Self {
        Self(Arc::new(RwLock::new(tags)))
    }

    /// A copy of the catalogue as it is now, to check a whole request against one version.
    pub fn snapshot(&self) -> Tags {
        self.read(Tags::clone)
    }

    /// [`Tags::is_active`] on the catalogue as it is now.
    pub fn is_active(&self, tag: &str) -> bool {
        self.read(|tags| tags.is_active(tag))
    }

    /// [`Tags::contains`] on the catalogue as it is now.
    pub fn contains(&self, tag: &str) -> bool {
        self.read(|tags| tags.contains(tag))
    }

    /// Whether the catalogue has no tag at all (the topic was never seeded).
    pub fn is_empty(&self) -> bool {
        self.read(Tags::is_empty)
    }

    /// [`Tags::apply`].
    pub fn apply(&self, definition: TagDefinition) {
        self.write(|tags| tags.apply(definition));
    }

    /// Applies `definition` only when its id is not in the catalogue yet, in one step;
    /// answers whether it did. For a seeder that wrote the seed itself: a definition the
    /// topic delivered meanwhile is newer than the seed and stays.
    pub fn apply_if_absent(&self, definition: TagDefinition) -> bool {
        self.write(|tags| {
            let absent = !tags.contains(&definition.tag);
            if absent {
                tags.apply(definition);
            }
            absent
        })
    }

    // A panic while holding the lock cannot leave `Tags` half-changed (`apply` is one
    // assignment or push), so a poisoned lock is still a consistent catalogue.
    fn read<T>(&self, f: impl FnOnce(&Tags) -> T) -> T {
        f(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut Tags) -> T) -> T {
        f(&mut self.0.write().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Why `id` cannot be a tag id, if it cannot: 2–40 characters, lower-case ASCII words
/// (`a-z`, `0-9`, the first starting with a letter) joined by single `-`, e.g.
/// `green-low-carbon`.
pub fn check_tag_id(id: &str) -> Result<(), String> {
    const RULE: &str = "2–40 characters: lower-case words of a-z and 0-9 joined by '-', \
                        starting with a letter (e.g. green-low-carbon)";
    let shaped = (2..=40).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.split('-').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if shaped { Ok(()) } else { Err(RULE.into()) }
}

/// Why `name` cannot be a tag's name, if it cannot: 1–20 characters, none of them control
/// characters, without leading or trailing white space (e.g. 就业创业).
pub fn check_tag_name(name: &str) -> Result<(), String> {
    let count = name.chars().count();
    if name.trim() != name {
        Err("no leading or trailing white space".into())
    } else if !(1..=20).contains(&count) {
        Err(format!("1–20 characters required, {count} given"))
    } else if name.chars().any(char::is_control) {
        Err("no control characters".into())
    } else {
        Ok(())
    }
}

/// `(tag, 名称)` built into this release, in the order clients show them.
const BUILT_IN: [(&str, &str); 30] = [
    ("employment", "就业创业"),
    ("graduates", "高校毕业生"),
    ("enterprise-support", "惠企政策"),
    ("tech-innovation", "科技创新"),
    ("sme", "中小企业"),
    ("talent", "人才服务"),
    ("business-environment", "营商环境"),
    ("digital-economy", "数字经济"),
    ("tax", "税费优惠"),
    ("finance", "金融服务"),
    ("foreign-trade", "外贸外资"),
    ("ip-protection", "知识产权"),
    ("social-security", "社会保障"),
    ("housing", "住房保障"),
    ("elderly-care", "养老服务"),
    ("childcare", "托育服务"),
    ("education", "教育"),
    ("healthcare", "医疗卫生"),
    ("disability", "助残服务"),
    ("veterans", "退役军人"),
    ("culture-tourism", "文化旅游"),
    ("sports", "体育健身"),
    ("urban-renewal", "城市更新"),
    ("community", "社区治理"),
    ("green-low-carbon", "绿色低碳"),
    ("transport", "交通出行"),
    ("public-safety", "公共安全"),
    ("legal-aid", "法律服务"),
    ("volunteering", "志愿服务"),
    ("charity", "慈善公益"),
];

/// Where tag `id` goes in a catalogue: a built-in tag at its place in the release, after
/// them any other by id.
fn order(id: &str) -> (usize, &str) {
    match BUILT_IN.iter().position(|(tag, _)| *tag == id) {
        Some(at) => (at, ""),
        None => (BUILT_IN.len(), id),
    }
}

/// The tags built into this release, none retired: the seed of an empty `tags` topic.
pub(crate) fn built_in() -> Tags {
    Tags::new(seed_definitions())
}

/// The definitions a service writes to an empty `tags` topic: the tags built into this
/// release ([`Tags::built_in`]), in order, none retired.
pub fn seed_definitions() -> Vec<TagDefinition> {
    BUILT_IN
        .iter()
        .map(|(tag, name)| Tag {
            tag: tag.to_string(),
            name: name.to_string(),
            retired: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn define(tag: &str, name: &str, retired: bool) -> TagDefinition {
        TagDefinition {
            tag: tag.into(),
            name: name.into(),
            retired,
        }
    }

    fn ids(tags: impl Iterator<Item = impl std::ops::Deref<Target = Tag>>) -> Vec<String> {
        tags.map(|t| t.tag.clone()).collect()
    }

    #[test]
    fn tags_are_unique_lowercase_words_with_valid_names() {
        let tags = built_in();
        let all: Vec<&Tag> = tags.iter().collect();
        assert_eq!(all.len(), BUILT_IN.len());
        for (i, Tag { tag, name, retired }) in all.iter().copied().enumerate() {
            assert_eq!(check_tag_id(tag), Ok(()), "{tag}");
            assert_eq!(check_tag_name(name), Ok(()), "{name}");
            assert!(!retired, "{tag}");
            assert!(!all[..i].iter().any(|t| t.tag == *tag), "{tag} twice");
        }
        assert_eq!(Tags::built_in(), Tags::new(seed_definitions()));
    }

    #[test]
    fn unknown_tags_are_rejected_and_the_list_names_every_tag() {
        let tags = built_in();
        assert!(tags.contains("employment"));
        assert!(!tags.contains("Employment"));
        assert!(!tags.contains("blockchain"));
        let listed = tags.to_string();
        assert!(listed.starts_with("employment graduates enterprise-support "));
        assert_eq!(listed.split(' ').count(), tags.len());
    }

    #[test]
    fn applying_creates_renames_in_place_and_retires_without_removing() {
        let mut tags = Tags::default();
        assert!(tags.is_empty());
        tags.apply(define("housing", "住房保障", false));
        tags.apply(define("night-economy", "夜间经济", false));
        tags.apply(define("employment", "就业创业", false));
        tags.apply(define("ai", "人工智能", false));
        // Built-in tags in the release's order, then new ones by id: whatever the order
        // the records came in.
        assert_eq!(
            ids(tags.iter()),
            ["employment", "housing", "ai", "night-economy"]
        );
        tags.apply(define("tax", "税费优惠", false));
        assert_eq!(
            ids(tags.iter()),
            ["employment", "tax", "housing", "ai", "night-economy"]
        );
        tags = Tags::new(
            tags.iter()
                .filter(|t| t.tag != "ai" && t.tag != "night-economy")
                .cloned()
                .collect(),
        );

        // A rename keeps the tag's place and id, so subscriptions naming it follow it.
        tags.apply(define("housing", "安居保障", false));
        assert_eq!(ids(tags.iter()), ["employment", "tax", "housing"]);
        assert_eq!(
            tags.get("housing").map(|t| t.name.as_str()),
            Some("安居保障")
        );
        assert!(tags.is_active("housing"));

        // Retired: still there for old subscriptions, not active for new ones.
        tags.apply(define("housing", "安居保障", true));
        assert_eq!(tags.len(), 3);
        assert!(tags.contains("housing"));
        assert!(!tags.is_active("housing"));
        assert_eq!(ids(tags.active()), ["employment", "tax"]);
        assert_eq!(
            tags.to_string(),
            "employment tax",
            "errors list active tags"
        );

        // A definition is the whole tag: the latest one wins, retired or not.
        tags.apply(define("housing", "住房", false));
        assert!(tags.is_active("housing"));
        assert_eq!(tags.get("housing").map(|t| t.name.as_str()), Some("住房"));
        assert_eq!(ids(tags.iter()), ["employment", "tax", "housing"]);

        assert!(!tags.contains("sports") && !tags.is_active("sports"));
    }

    #[test]
    fn replaying_a_log_twice_or_in_another_order_gives_the_same_catalogue() {
        // A replica replays the topic from the start; a seed written twice by racing
        // replicas, or a definition delivered again, changes nothing; partitions delivered
        // in another order, neither.
        let log = [
            define("employment", "就业创业", false),
            define("housing", "住房保障", false),
            define("employment", "就业创业", false),
            define("housing", "住房保障", true),
            define("sports", "体育健身", false),
        ];
        let mut once = Tags::default();
        log.iter().cloned().for_each(|d| once.apply(d));
        let mut twice = once.clone();
        log.iter().cloned().for_each(|d| twice.apply(d));
        assert_eq!(once, twice);
        assert_eq!(ids(once.iter()), ["employment", "housing", "sports"]);
        assert_eq!(ids(once.active()), ["employment", "sports"]);
        let mut reversed = Tags::default();
        // Each tag's own records keep their order (one key, one partition).
        for tag in ["sports", "housing", "employment"] {
            log.iter()
                .filter(|d| d.tag == tag)
                .cloned()
                .for_each(|d| reversed.apply(d));
        }
        assert_eq!(reversed, once);
    }

    #[test]
    fn shared_tags_are_one_catalogue_across_clones() {
        let shared = SharedTags::default();
        let other = shared.clone();
        assert!(shared.is_empty());
        other.apply(define("employment", "就业创业", false));
        assert!(shared.is_active("employment"));
        other.apply(define("employment", "就业创业", true));
        assert!(shared.contains("employment") && !shared.is_active("employment"));
        let snapshot = shared.snapshot();
        other.apply(define("tax", "税费优惠", false));
        assert!(!snapshot.contains("tax"), "a snapshot does not change");
        assert!(shared.contains("tax"));

        // The seeder's own application never undoes what the topic said meanwhile.
        assert!(!shared.apply_if_absent(define("employment", "就业创业", false)));
        assert!(!shared.is_active("employment"));
        assert!(shared.apply_if_absent(define("housing", "住房保障", false)));
        assert!(shared.is_active("housing"));
    }

    #[test]
    fn operator_ids_are_lower_case_words() {
        for good in [
            "tax",
            "green-low-carbon",
            "industry-4-0",
            "ai",
            "a1",
            &"a".repeat(40),
        ] {
            assert_eq!(check_tag_id(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a",
            "Tax",
            "-tax",
            "tax-",
            "green--low",
            "4g",
            "tax_credit",
            "税费",
            "tax credit",
            &"a".repeat(41),
        ] {
            assert!(check_tag_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn operator_names_are_short_printable_and_trimmed() {
        for good in ["就业创业", "税", "Tax & finance", &"名".repeat(20)] {
            assert_eq!(check_tag_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            " 就业",
            "就业 ",
            "  ",
            "就\n业",
            "就\u{7}业",
            &"名".repeat(21),
        ] {
            assert!(check_tag_name(bad).is_err(), "{bad:?}");
        }
    }
}
