//! The tag catalogue (work plan item 18, 政策标签目录): the topics a policy is filed under
//! and citizens and enterprises subscribe to, seen from the demand side. The publisher owns
//! it; the profiler checks subscriptions against it, and `ListTags` serves it to clients.
//! Adding a tag is a code change reviewed like any other contract change.

/// `(tag, 名称)`, in the order clients show them.
pub const TAGS: [(&str, &str); 30] = [
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

/// Whether `tag` is in the catalogue.
pub fn is_tag(tag: &str) -> bool {
    TAGS.iter().any(|(t, _)| *t == tag)
}

/// The catalogue's tags, for error messages.
pub fn tag_list() -> String {
    TAGS.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique_lowercase_words() {
        for (i, (tag, name)) in TAGS.iter().enumerate() {
            assert!(
                tag.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{tag}"
            );
            assert!(!name.is_empty());
            assert!(!TAGS[..i].iter().any(|(t, _)| t == tag), "{tag} twice");
        }
        assert!(is_tag("employment"));
        assert!(!is_tag("Employment"));
    }
}
