//! Yangpu's closed lists for profile fields, as built into this release; reached through
//! [`Catalogue::yangpu`](crate::Catalogue::yangpu).

/// The district's streets (杨浦区街道).
pub(crate) const YANGPU_STREETS: [&str; 12] = [
    "定海路街道",
    "平凉路街道",
    "江浦路街道",
    "四平路街道",
    "控江路街道",
    "长白新村街道",
    "延吉新村街道",
    "殷行街道",
    "大桥街道",
    "五角场街道",
    "新江湾城街道",
    "长海路街道",
];

/// Groups the district's policies address (citizen `groups`).
pub(crate) const GROUPS: [&str; 8] = [
    "高校毕业生",
    "失业人员",
    "退役军人",
    "农民工",
    "老年人",
    "残疾人",
    "低保对象",
    "新就业形态劳动者",
];

/// Household registration (citizen `hukou`).
pub(crate) const HUKOU: [&str; 4] = ["本区", "本市", "外省市", "境外"];

/// Enterprise size classes (国统字〔2017〕213号).
pub(crate) const SIZES: [&str; 4] = ["大", "中", "小", "微"];

/// Recognised enterprise qualifications.
pub(crate) const QUALIFICATIONS: [&str; 8] = [
    "高新技术企业",
    "专精特新",
    "专精特新小巨人",
    "科技型中小企业",
    "创新型中小企业",
    "技术先进型服务企业",
    "瞪羚企业",
    "独角兽企业",
];
