use super::*;

fn screen() -> Screen {
    Screen::new(&[]).expect("no words is a valid configuration")
}

/// `(kind, matched text)` of each finding of `text`, in order.
fn found(text: &str) -> Vec<(Kind, String)> {
    found_with(&screen(), text)
}

fn found_with(screen: &Screen, text: &str) -> Vec<(Kind, String)> {
    let chars: Vec<char> = text.chars().collect();
    screen
        .scan("body", text)
        .into_iter()
        .map(|f| (f.kind, chars[f.start..f.end].iter().collect()))
        .collect()
}

fn one(kind: Kind, s: &str) -> Vec<(Kind, String)> {
    vec![(kind, s.to_owned())]
}

// Test data computed independently of this crate (a short Python script).
/// Valid IDs; the second also passes Luhn, the third is GB 11643's own example.
const IDS: [&str; 4] = [
    "310110199003071237",
    "310110200002294565",
    "11010519491231002X",
    "310101198506150016",
];
/// `310110199003071237` with a wrong check digit, failing Luhn.
const WRONG_ID: &str = "310110199003071234";
/// `310110199003071237` with a wrong check digit that passes Luhn.
const WRONG_ID_LUHN: &str = "310110199003071230";
/// Luhn-valid cards of 19, 16, 18 and 16 digits.
const CARDS: [&str; 4] = [
    "6222021234567890128",
    "6228480012345671",
    "621483012345678902",
    "4111111111111111",
];
/// Valid credit codes: two published examples, two computed.
const CODES: [&str; 4] = [
    "91350100M000100Y43",
    "91110000802100433B",
    "91310110MA1FL0B2XM",
    "52310110MJ5012345Y",
];

#[test]
fn resident_id_check_follows_gb_11643() {
    for id in IDS {
        assert!(checks::resident_id_valid(id), "{id}");
    }
    assert!(checks::resident_id_valid("11010519491231002x"));
    assert!(!checks::resident_id_valid(WRONG_ID));
    assert!(!checks::resident_id_valid(WRONG_ID_LUHN));
    assert!(!checks::resident_id_valid("31011019900307123"), "17 chars");
    assert!(
        !checks::resident_id_valid("3101101990030712370"),
        "19 chars"
    );
    assert!(!checks::resident_id_valid("3101101990030712X7"), "X inside");
    assert!(!checks::resident_id_valid(
        "３１０１１０１９９００３０７１２３７"
    ));
    assert!(!checks::resident_id_valid(""));
}

#[test]
fn resident_id_needs_a_real_birth_date() {
    // Each body below gets its correct check digit, so only the date can fail.
    let with_check = |body: &str| {
        "0123456789X"
            .chars()
            .map(|c| format!("{body}{c}"))
            .find(|id| {
                let sum: u32 = id[..17]
                    .bytes()
                    .zip([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
                    .map(|(d, w)| u32::from(d - b'0') * w)
                    .sum();
                b"10X98765432"[(sum % 11) as usize] == id.as_bytes()[17]
            })
            .expect("one of the eleven is right")
    };
    for (body, valid) in [
        ("31011020000229456", true),  // 2000 is a leap year
        ("31011019000229456", false), // 1900 is not
        ("31011020240229456", true),
        ("31011020230229456", false),
        ("31011019901301456", false), // month 13
        ("31011019900001456", false), // month 0
        ("31011019900431456", false), // 31 April
        ("31011019900100456", false), // day 0
        ("31011018991231456", false), // before 1900
        ("31011021010101456", false), // after 2100
        ("31011021001231456", true),
    ] {
        let id = with_check(body);
        assert_eq!(checks::resident_id_valid(&id), valid, "{id}");
    }
}

#[test]
fn luhn() {
    for card in CARDS {
        assert!(checks::luhn_valid(card), "{card}");
    }
    assert!(checks::luhn_valid("79927398713"));
    assert!(!checks::luhn_valid("79927398710"));
    assert!(!checks::luhn_valid("6222021234567890127"));
    assert!(!checks::luhn_valid("0"), "too short");
    assert!(!checks::luhn_valid(""));
    assert!(!checks::luhn_valid("4111 1111 1111 1111"), "digits only");
    assert!(!checks::luhn_valid("411111111111111a"));
}

#[test]
fn credit_code_check_follows_gb_32100() {
    for code in CODES {
        assert!(checks::credit_code_valid(code), "{code}");
    }
    assert!(
        !checks::credit_code_valid("91350100M000100Y44"),
        "wrong check"
    );
    assert!(!checks::credit_code_valid("91350100M000100Y4"), "17 chars");
    assert!(
        !checks::credit_code_valid("91350100m000100y43"),
        "lower case"
    );
    assert!(
        !checks::credit_code_valid("B1350100M000100Y43"),
        "B registers nothing"
    );
    assert!(
        !checks::credit_code_valid("913501O0M000100Y43"),
        "division code is digits"
    );
    assert!(
        !checks::credit_code_valid("91350100M0001I0Y43"),
        "I is no code char"
    );
    assert!(!checks::credit_code_valid("913501００M000100Y43"));
}

#[test]
fn finds_resident_ids_in_chinese_text() {
    for id in IDS {
        let text = format!("申请人身份证号{id}，请核对。");
        let findings = screen().scan("body", &text);
        assert_eq!(findings.len(), 1, "{text}: {findings:?}");
        let f = &findings[0];
        assert_eq!((f.kind, f.start, f.end), (Kind::ResidentId, 7, 25), "{id}");
    }
    assert_eq!(
        found("身份证：11010519491231002x。"),
        one(Kind::ResidentId, "11010519491231002x")
    );
    assert_eq!(
        found("ID:310110199003071237\n"),
        one(Kind::ResidentId, "310110199003071237")
    );
}

#[test]
fn wrong_id_check_digit_is_no_id_and_no_card_unless_luhn_passes() {
    assert_eq!(found(&format!("编号{WRONG_ID}号")), vec![]);
    // 18 digits is a card length: a Luhn-valid one is shown as a possible card.
    assert_eq!(
        found(&format!("编号{WRONG_ID_LUHN}号")),
        one(Kind::BankCard, WRONG_ID_LUHN)
    );
    // A valid ID that also passes Luhn is reported once, as an ID.
    assert!(checks::luhn_valid(IDS[1]));
    assert_eq!(found(IDS[1]), one(Kind::ResidentId, IDS[1]));
}

#[test]
fn ids_inside_longer_runs_are_not_flagged() {
    let id = IDS[0];
    for text in [
        format!("1{id}"),
        format!("{id}9"),
        format!("{id}X"),
        format!("X{id}"),
        format!("0.{id}"),
        format!("{id}.5"),
        "110105194912310021X".to_owned(),
    ] {
        // (19 digits may still be a card, when they pass Luhn.)
        let kinds: Vec<Kind> = found(&text).into_iter().map(|(k, _)| k).collect();
        assert!(!kinds.contains(&Kind::ResidentId), "{text}");
    }
}

#[test]
fn finds_mobiles_in_their_written_forms() {
    for (text, matched) in [
        ("联系电话13812345678。", "13812345678"),
        ("联系电话：138-1234-5678", "138-1234-5678"),
        ("联系电话 138 1234 5678 张老师", "138 1234 5678"),
        ("+8613912345678", "+8613912345678"),
        ("8613912345678", "8613912345678"),
        ("008619912345678", "008619912345678"),
        ("请拨+86 138 1234 5678", "+86 138 1234 5678"),
        ("请拨+86-13812345678", "+86-13812345678"),
        ("请拨0086 13812345678", "0086 13812345678"),
        ("请拨(+86) 138-1234-5678", "(+86) 138-1234-5678"),
        ("Tel13812345678", "13812345678"),
        ("１３８１２３４５６７８", "１３８１２３４５６７８"),
        ("１３８－１２３４－５６７８", "１３８－１２３４－５６７８"),
        ("热线10086 13812345678", "13812345678"),
    ] {
        assert_eq!(found(text), one(Kind::Mobile, matched), "{text}");
    }
    assert_eq!(
        found("13812345678、15912345678"),
        vec![
            (Kind::Mobile, "13812345678".to_owned()),
            (Kind::Mobile, "15912345678".to_owned())
        ]
    );
    assert_eq!(
        found("办公室021-65432100 手机13812345678"),
        one(Kind::Mobile, "13812345678")
    );
}

#[test]
fn phone_like_dates_hotlines_and_landlines_are_not_mobiles() {
    for text in [
        "20230512",
        "2023-05-12 13:30",
        "13/05/2023",
        "2023年5月12日13时30分",
        "13:30-17:00",
        "热线12345",
        "市民热线 12345 或 10086",
        "021-65432100",
        "(021) 6543 2100",
        "021 6543 2100",
        "12812345678",       // 12x is no mobile prefix
        "1381234567",        // ten digits
        "138123456789",      // twelve
        "138-1234-56789",    // last group too long
        "138-1234 5678",     // mixed separators
        "138-1234-5678-9",   // runs on
        "1-138-1234-5678",   // runs on before
        "金额0.13812345678", // a fraction
        "13812345678.5元",   // a decimal
        "8613812345678901",  // 16 digits, fails Luhn
        "20230512133000",    // a timestamp
    ] {
        assert_eq!(found(text), vec![], "{text}");
    }
}

#[test]
fn finds_bank_cards_but_not_other_long_numbers() {
    for card in CARDS {
        assert_eq!(
            found(&format!("账号{card}。")),
            one(Kind::BankCard, card),
            "{card}"
        );
    }
    for text in [
        "卡号 6222 0212 3456 7890 128",
        "卡号 6222-0212-3456-7890-128",
        "卡号 6228 4800 1234 5671",
        "卡号 ６２２８ ４８００ １２３４ ５６７１",
    ] {
        let matched: String = text.chars().skip(3).collect();
        assert_eq!(found(text), one(Kind::BankCard, &matched), "{text}");
    }
    for text in [
        "6222021234567890127",      // Luhn fails
        "62220212345678901280",     // 20 digits
        "622202123456789",          // 15 digits
        "6222 0212 3456 7890 1281", // fits the grouping, 20 digits
        "6222 0212 3456 7890 12 8", // runs on
        "1 6228 4800 1234 5671",    // runs on before
        "6228 4800 1234 5671 0",    // runs on after
        "6228-4800 1234 5671",      // mixed separators
        "62284 800 1234 5671",      // not groups of four
        "6228480012345671X",        // ID-shaped
        "第6228480012345671.5号",   // a decimal
    ] {
        assert_eq!(found(text), vec![], "{text}");
    }
}

#[test]
fn finds_emails_without_swallowing_chinese_punctuation() {
    for (text, matched) in [
        ("请发送至zhang.san@example.com。", "zhang.san@example.com"),
        (
            "邮箱：li_si+policy@mail.yangpu.gov.cn，谢谢",
            "li_si+policy@mail.yangpu.gov.cn",
        ),
        ("(wang@example.org)", "wang@example.org"),
        ("mailto:wang@example.org.", "wang@example.org"),
        ("..wang@example.org", "wang@example.org"),
        (
            "ｗａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "ｗａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        ),
        ("13812345678@163.com", "13812345678@163.com"),
    ] {
        assert_eq!(found(text), one(Kind::Email, matched), "{text}");
    }
    for text in [
        "@example.com",
        "wang@",
        "wang@localhost",
        "wang@example.c",
        "wang@example.123",
        "wang@-example.com",
        "wang@example..com",
        "zhang[at]example.com",
        "张三@example.com",
        "价格@100元",
    ] {
        assert_eq!(found(text), vec![], "{text}");
    }
    assert_eq!(
        found("a@example.com,b@example.com"),
        vec![
            (Kind::Email, "a@example.com".to_owned()),
            (Kind::Email, "b@example.com".to_owned())
        ]
    );
}

#[test]
fn finds_valid_credit_codes_only() {
    for code in CODES {
        assert_eq!(
            found(&format!("上海某某科技有限公司（统一社会信用代码：{code}）")),
            one(Kind::CreditCode, code),
            "{code}"
        );
    }
    for text in [
        "91350100M000100Y44",  // wrong check
        "91350100m000100y43",  // lower case
        "X91350100M000100Y43", // runs on
        "91350100M000100Y43A",
        "91310110MA1G8XXX0Y", // invalid characters
    ] {
        assert_eq!(found(text), vec![], "{text}");
    }
}

#[test]
fn one_stretch_of_text_is_one_kind() {
    let both = "31011019900708000X";
    assert!(checks::resident_id_valid(both) && checks::credit_code_valid(both));
    assert_eq!(found(&format!("号码{both}。")), one(Kind::ResidentId, both));
    let numeric_code = "913101107923355452";
    assert!(checks::credit_code_valid(numeric_code) && checks::luhn_valid(numeric_code));
    assert_eq!(
        found(&format!("代码{numeric_code}。")),
        one(Kind::CreditCode, numeric_code)
    );
}

#[test]
fn forbidden_words_all_occurrences_case_insensitive_longest_first() {
    let screen = Screen::new(&[
        "内部资料".into(),
        "内部".into(),
        " Secret ".into(),
        "aba".into(),
        "ＳＥＣＲＥＴ".into(),
    ])
    .expect("valid words");
    let text = "内部资料，内部。SECRET secret Ｓｅｃｒｅｔ ababa";
    let findings = screen.scan("title", text);
    let got: Vec<(usize, usize)> = findings.iter().map(|f| (f.start, f.end)).collect();
    assert_eq!(
        got,
        vec![
            (0, 4),
            (5, 7),
            (8, 14),
            (15, 21),
            (22, 28),
            (29, 32),
            (31, 34)
        ]
    );
    assert!(findings.iter().all(|f| f.kind == Kind::ForbiddenWord));
    assert_eq!(findings[0].excerpt, "****，**。****** *…");
}

#[test]
fn forbidden_words_are_validated_and_deduplicated() {
    let err = Screen::new(&["内部".into(), "  ".into()]).expect_err("blank word");
    assert!(err.starts_with("forbidden_words[1]:"), "{err}");
    assert!(Screen::new(&["".into()]).is_err());
    let screen = Screen::new(&["ab".into(), "AB".into(), "ａｂ".into()]).expect("valid");
    assert_eq!(found_with(&screen, "xAbx").len(), 1);
    assert_eq!(found_with(&Screen::default(), "内部资料"), vec![]);
}

#[test]
fn offsets_are_chars_of_the_original_text() {
    let text = "😀，申请人：13812345678";
    let f = &screen().scan("body", text)[0];
    assert_eq!((f.start, f.end), (6, 17));
    let chars: Vec<char> = text.chars().collect();
    assert_eq!(
        chars[f.start..f.end].iter().collect::<String>(),
        "13812345678"
    );
}

#[test]
fn excerpts_mask_the_match_and_keep_context() {
    let text = "第一行\n申请人张三，手机号码为138-1234-5678，身份证号11010519491231002X，卡号6222021234567890128，邮箱zhang.san@example.com。\n结束";
    let findings = screen().scan("body", text);
    let by_kind = |k: Kind| {
        findings
            .iter()
            .find(|f| f.kind == k)
            .map(|f| f.excerpt.as_str())
            .expect("found")
    };
    assert_eq!(
        by_kind(Kind::Mobile),
        "… 申请人张三，手机号码为138****5678，身份证号*******…"
    );
    assert_eq!(
        by_kind(Kind::ResidentId),
        "…*******，身份证号1101**********002X，卡号*********…"
    );
    assert_eq!(
        by_kind(Kind::BankCard),
        "…*********，卡号6222***********0128，邮箱*********…"
    );
    assert_eq!(
        by_kind(Kind::Email),
        "…*********，邮箱z***@example.com。 结束"
    );
    for f in &findings {
        for clear in [
            "13812345678",
            "1234-5678",
            "11010519491231002X",
            "6222021234567890128",
            "zhang.san",
        ] {
            assert!(!f.excerpt.contains(clear), "{f:?}");
        }
    }
    let short = screen().scan("title", "13812345678");
    assert_eq!(short[0].excerpt, "138****5678");
    let prefixed = screen().scan("title", "+86 138 1234 5678");
    assert_eq!(prefixed[0].excerpt, "+86 138****5678");
    let code = screen().scan("title", "代码91350100M000100Y43");
    assert_eq!(code[0].excerpt, "代码9135**********0Y43");
    let short_local = screen().scan("title", "a@example.com");
    assert_eq!(short_local[0].excerpt, "***@example.com");
}

#[test]
fn finding_ids_name_field_kind_and_start() {
    let findings = screen().scan("attachments[1].text", "电话13812345678");
    assert_eq!(findings[0].id(), "attachments[1].text:mobile:2");
    assert_eq!(findings[0].field, "attachments[1].text");
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "resident_id",
            "mobile",
            "bank_card",
            "email",
            "credit_code",
            "forbidden_word"
        ]
    );
    assert_eq!(Kind::BankCard.to_string(), "bank_card");
    assert!(Kind::Email.is_personal() && !Kind::CreditCode.is_personal());
}

#[test]
fn a_document_with_every_kind() {
    let screen = Screen::new(&["绝密".into()]).expect("valid");
    let text = format!(
        "关于发放补贴的通知（绝密）\n申请人：王五，身份证{}，手机+86 159 1234 5678，\
         银行卡6228 4800 1234 5671，邮箱wangwu@example.com；\
         申报单位：上海某某有限公司，统一社会信用代码{}。\
         办公室电话021-65432100，热线12345，受理时间2023-05-12 13:30，截止13/05/2023。\
         档案号{WRONG_ID}。",
        IDS[0], CODES[2]
    );
    let kinds: Vec<Kind> = screen.scan("body", &text).iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::ForbiddenWord,
            Kind::ResidentId,
            Kind::Mobile,
            Kind::BankCard,
            Kind::Email,
            Kind::CreditCode
        ]
    );
}

/// xorshift64*: deterministic garbage without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn never_panics_and_never_shows_a_match_in_clear() {
    let alphabet: Vec<char> =
        "0123456789０１２３４５６７８９13866XxX@@..--  +()ab张三，。\n\t😀\u{3000}－＠"
            .chars()
            .collect();
    let pieces = [IDS[2], CARDS[0], "13812345678", "z@ex.com", CODES[0], "密"];
    let screen = Screen::new(&["密".into(), "xx".into()]).expect("valid");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..rng.below(80) {
            if rng.below(8) == 0 {
                text.push_str(pieces[rng.below(pieces.len())]);
            } else {
                text.push(alphabet[rng.below(alphabet.len())]);
            }
        }
        let chars: Vec<char> = text.chars().collect();
        let findings = screen.scan("body", &text);
        for pair in findings.windows(2) {
            assert!(pair[0].start <= pair[1].start, "{text:?}");
        }
        for f in &findings {
            assert!(f.start < f.end && f.end <= chars.len(), "{text:?}: {f:?}");
            let matched: String = chars[f.start..f.end].iter().collect();
            // The excerpt is context, the mask, context; the mask never shows the match.
            let excerpt: Vec<char> = f.excerpt.chars().collect();
            let left = if f.start > 12 { 13 } else { f.start };
            let after = chars.len() - f.end;
            let right = if after > 12 { 13 } else { after };
            let mask: String = excerpt[left..excerpt.len() - right].iter().collect();
            if f.kind.is_personal() || f.kind == Kind::ForbiddenWord {
                assert!(!mask.contains(&matched), "{text:?}: {f:?}");
            }
            // Context shows the chars of every finding starred, never in clear.
            let (before, ellipsis) = (f.start.min(12), usize::from(f.start > 12));
            let shown = (f.start - before..f.start)
                .zip(&excerpt[ellipsis..])
                .chain((f.end..f.end + after.min(12)).zip(&excerpt[excerpt.len() - right..]));
            for (i, c) in shown {
                if findings.iter().any(|o| o.start <= i && i < o.end) {
                    assert_eq!(*c, '*', "{text:?}: {f:?} at {i}");
                }
            }
        }
    }
}

#[test]
fn scans_a_large_body() {
    let paragraph = format!(
        "为进一步优化营商环境，联系人手机13812345678，身份证{}，\
         邮箱a.b@example.com。日期2023-05-12，电话021-65432100。\n",
        IDS[0]
    );
    let body = paragraph.repeat(64 * 1024 / paragraph.len() + 1);
    let findings = Screen::new(&["营商".into()])
        .expect("valid")
        .scan("body", &body);
    let per_paragraph = 4;
    assert_eq!(
        findings.len(),
        per_paragraph * body.matches("为进一步").count()
    );
    let garbage = "1".repeat(64 * 1024) + &"@.".repeat(16 * 1024) + &"a".repeat(64 * 1024);
    assert_eq!(screen().scan("body", &garbage), vec![]);
}
