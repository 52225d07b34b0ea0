//! The policy tag catalogue (work plan item 18, 政策标签目录): the topics a policy is filed
//! under and citizens and enterprises subscribe to, seen from the demand side. The
//! publisher checks policies and serves it (`ListTags`); the profiler checks subscriptions
//! and drafts against it.
//!
//! Today the tags are built into the release, and adding one is a code change reviewed
//! like any other contract change. [`Tags`] owns its entries so that they can come from
//! elsewhere (an operator-managed `tags` topic) without changing its users.

use std::fmt;

/// One tag: its id, as policies and subscriptions carry it, and its name for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Lower-case words joined by `-`, e.g. `employment`.
    pub tag: String,
    /// 名称, e.g. 就业创业.
    pub name: String,
}

/// The catalogue's tags, in the order clients show them. Displayed as the tag ids
/// separated by spaces, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// The catalogue of `tags`, in that order.
    pub fn new(tags: Vec<Tag>) -> Self {
        Self(tags)
    }

    /// Whether `tag` is in the catalogue (exactly: ids are case-sensitive).
    pub fn contains(&self, tag: &str) -> bool {
        self.0.iter().any(|t| t.tag == tag)
    }

    /// Every tag, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    /// How many tags there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, tag) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&tag.tag)?;
        }
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

/// The tags built into this release.
pub(crate) fn built_in() -> Tags {
    Tags::new(
        BUILT_IN
            .iter()
            .map(|(tag, name)| Tag {
                tag: tag.to_string(),
                name: name.to_string(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique_lowercase_words() {
        let tags = built_in();
        let all: Vec<&Tag> = tags.iter().collect();
        assert_eq!(all.len(), BUILT_IN.len());
        for (i, Tag { tag, name }) in all.iter().copied().enumerate() {
            assert!(
                tag.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{tag}"
            );
            assert!(!name.is_empty());
            assert!(!all[..i].iter().any(|t| t.tag == *tag), "{tag} twice");
        }
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
}
