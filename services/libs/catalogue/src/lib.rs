//! The district's reference data in one value: the closed lists a profile's fields take
//! (streets, citizen groups, hukou, enterprise sizes and qualifications), the GB/T 4754-2017
//! industry table, and the policy tag catalogue.
//!
//! Nothing here is a global: a service builds one [`Catalogue`] at start and passes it (or
//! the part it needs) to whatever validates against it. The tag catalogue is no longer
//! code: operators manage it on the `tags` topic, each service replays that into its
//! [`SharedTags`] (the tags built in here only seed an empty topic: [`seed_definitions`]).
//!
//! Pure: no I/O and no dependencies, so the audience rules and the benches can use it too.

pub mod industry;
mod subjects;
mod tags;
mod terms;

pub use industry::Industries;
pub use tags::{
    SharedTags, Tag, TagDefinition, Tags, check_tag_id, check_tag_name, seed_definitions,
};
pub use terms::Terms;

/// Everything the district's validation checks values against.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// The district's streets (杨浦区街道): the only values of a profile's `street`.
    pub streets: Terms,
    /// Groups the district's policies address (citizen `groups`).
    pub groups: Terms,
    /// Household registration (citizen `hukou`).
    pub hukou: Terms,
    /// Enterprise size classes (国统字〔2017〕213号).
    pub sizes: Terms,
    /// Recognised enterprise qualifications: a closed list, so a typo cannot silently drop
    /// an enterprise out of every audience that selects on it.
    pub qualifications: Terms,
    /// GB/T 4754-2017 国民经济行业分类, for enterprise `industry` and the `industry` rule
    /// operator.
    pub industries: Industries,
    /// The policy tag catalogue (政策标签目录) as built into this release: what policies
    /// are filed under and subscriptions follow. Services follow the `tags` topic instead
    /// ([`SharedTags`]); this is its seed, kept until every service reads the topic.
    pub tags: Tags,
}

impl Catalogue {
    /// Yangpu district's reference data, as built into this release.
    pub fn yangpu() -> Self {
        Self {
            streets: Terms::new(&subjects::YANGPU_STREETS),
            groups: Terms::new(&subjects::GROUPS),
            hukou: Terms::new(&subjects::HUKOU),
            sizes: Terms::new(&subjects::SIZES),
            qualifications: Terms::new(&subjects::QUALIFICATIONS),
            industries: Industries::gbt4754_2017(),
            tags: tags::built_in(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yangpu_has_its_twelve_streets_and_rejects_others() {
        let catalogue = Catalogue::yangpu();
        assert_eq!(catalogue.streets.len(), 12);
        assert!(catalogue.streets.contains("五角场街道"));
        assert!(!catalogue.streets.contains("五角场"), "whole names only");
        assert!(!catalogue.streets.contains("南京东路街道"), "Huangpu's");
        assert!(catalogue.groups.contains("高校毕业生"));
        assert!(catalogue.hukou.contains("外省市"));
        assert!(catalogue.sizes.contains("微"));
        assert!(!catalogue.sizes.contains("特大"));
        assert!(catalogue.qualifications.contains("专精特新小巨人"));
        assert!(catalogue.industries.contains("I6513"));
        assert!(catalogue.tags.contains("employment"));
    }

    #[test]
    fn every_closed_list_is_non_empty_and_without_repeats() {
        let catalogue = Catalogue::yangpu();
        for terms in [
            &catalogue.streets,
            &catalogue.groups,
            &catalogue.hukou,
            &catalogue.sizes,
            &catalogue.qualifications,
        ] {
            let values = terms.as_slice();
            assert!(!values.is_empty());
            for (i, value) in values.iter().enumerate() {
                assert!(
                    !value.trim().is_empty() && value.trim() == *value,
                    "{value:?}"
                );
                assert!(!values[..i].contains(value), "{value} twice");
            }
        }
    }
}
