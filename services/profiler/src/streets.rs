//! The district's streets (杨浦区街道), the only valid values of a profile's `street`.

pub const YANGPU_STREETS: [&str; 12] = [
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

pub fn is_street(street: &str) -> bool {
    YANGPU_STREETS.contains(&street)
}
