use super::*;

const PUBLISHED: i32 = 4;
const WITHDRAWN: i32 = 5;

fn doc(id: &str, title: &str, body: &str) -> PolicyDoc {
    PolicyDoc {
        policy_id: id.into(),
        version: 1,
        title: title.into(),
        body: body.into(),
        department: "区科委".into(),
        tags: vec!["housing".into()],
        status: PUBLISHED,
        ..PolicyDoc::default()
    }
}

fn library(docs: impl IntoIterator<Item = PolicyDoc>) -> Library {
    let library = Library::new().expect("library");
    for doc in docs {
        library.upsert(doc).expect("upsert");
    }
    library.commit().expect("commit");
    library
}

fn search(library: &Library, text: &str) -> Found {
    library
        .search(&Query {
            text: text.into(),
            ..Query::default()
        })
        .expect("search")
}

fn ids(found: &Found) -> Vec<&str> {
    found.hits.iter().map(|h| h.policy_id.as_str()).collect()
}

#[test]
fn chinese_words_are_found_inside_a_title() {
    let library = library([
        doc("p1", "关于加强杨浦区人才公寓建设的实施意见", "全文见附件。"),
        doc("p2", "杨浦区稳岗补贴申领指南", "企业可在一网通办申请。"),
    ]);
    for query in ["人才公寓", "人才 公寓", "公寓", "实施意见"] {
        let found = search(&library, query);
        assert_eq!(ids(&found), ["p1"], "{query}");
        assert_eq!(found.total, 1);
    }
    assert_eq!(ids(&search(&library, "稳岗补贴")), ["p2"]);
    // Every word must match: 人才 is in p1 only, 补贴 in p2 only.
    assert!(search(&library, "人才 补贴").hits.is_empty());
}

#[test]
fn a_title_match_ranks_above_a_body_only_match() {
    let library = library([
        doc(
            "body",
            "杨浦区促进消费若干措施",
            "对符合条件的企业给予专项资金支持，鼓励开展专精特新培育。",
        ),
        doc(
            "title",
            "杨浦区专精特新企业培育办法",
            "对符合条件的企业给予专项资金支持。",
        ),
    ]);
    let found = search(&library, "专精特新");
    assert_eq!(ids(&found), ["title", "body"]);
    assert!(found.hits[0].score > found.hits[1].score);
}

#[test]
fn upsert_replaces_and_remove_takes_out() {
    let library = library([doc("p1", "人才公寓申请指南", "第一版")]);
    let mut revised = doc("p1", "人才公寓申请指南（修订）", "第二版，新增稳岗补贴内容");
    revised.version = 2;
    library.upsert(revised).expect("upsert");
    library
        .upsert(doc("p2", "人才公寓配租通知", ""))
        .expect("upsert");
    library.commit().expect("commit");
    let found = search(&library, "人才公寓");
    assert_eq!(found.total, 2);
    let p1: Vec<&Hit> = found.hits.iter().filter(|h| h.policy_id == "p1").collect();
    assert_eq!(p1.len(), 1);
    assert_eq!(p1[0].version, 2);
    assert_eq!(ids(&search(&library, "稳岗补贴")), ["p1"]);
    assert_eq!(library.len(), 2);

    library.remove("p1").expect("remove");
    // Not yet committed: still there.
    assert_eq!(search(&library, "人才公寓").total, 2);
    library.commit().expect("commit");
    assert_eq!(ids(&search(&library, "人才公寓")), ["p2"]);
    assert_eq!(library.len(), 1);
}

#[test]
fn set_status_keeps_the_content() {
    let mut original = doc(
        "p1",
        "高校毕业生就业见习补贴",
        "离校2年内未就业高校毕业生。",
    );
    original.summary = "见习补贴的申领".into();
    original.interpretation = "解读：见习期最长12个月".into();
    original.faqs = vec![("谁可以申请？".into(), "离校未就业的毕业生".into())];
    original.valid_from = Some(100);
    original.valid_until = None;
    let library = library([original.clone()]);
    // Upserted and changed before any commit: set_status commits first.
    library.upsert(original.clone()).expect("upsert");
    library.set_status("p1", WITHDRAWN).expect("status");
    library
        .set_status("unknown", WITHDRAWN)
        .expect("unknown is left alone");
    library.commit().expect("commit");
    let found = search(&library, "就业见习");
    assert_eq!(found.total, 1);
    assert_eq!(found.hits[0].status, WITHDRAWN);
    let searcher = library.reader.searcher();
    let address = library
        .address_of(&searcher, "p1")
        .expect("find")
        .expect("p1");
    let stored: TantivyDocument = searcher.doc(address).expect("doc");
    let expected = PolicyDoc {
        status: WITHDRAWN,
        ..original
    };
    assert_eq!(library.read_document(&stored), expected);
}

#[test]
fn validity_filters_with_open_bounds() {
    let mut old = doc("old", "人才公寓租金补贴（2020版）", "");
    old.valid_from = Some(1_000);
    old.valid_until = Some(2_000);
    let mut current = doc("current", "人才公寓租金补贴（2024版）", "");
    current.valid_from = Some(3_000);
    let open = doc("open", "人才公寓管理办法", "");
    let library = library([old, current, open]);
    let at = |t: i64| {
        let found = library
            .search(&Query {
                text: "人才公寓".into(),
                limit: 10,
                valid_at: Some(t),
            })
            .expect("search");
        let mut ids: Vec<String> = found.hits.into_iter().map(|h| h.policy_id).collect();
        ids.sort();
        ids
    };
    assert_eq!(at(500), ["open"]);
    assert_eq!(at(1_000), ["old", "open"]);
    assert_eq!(at(2_000), ["old", "open"]);
    assert_eq!(at(2_500), ["open"]);
    assert_eq!(at(i64::MAX - 1), ["current", "open"]);
    assert_eq!(search(&library, "人才公寓").total, 3);
}

#[test]
fn highlights_mark_the_match_and_escape_the_rest() {
    let library = library([doc(
        "p1",
        "人才公寓申请<script>alert(1)</script>",
        "本办法适用于<b>杨浦区</b>范围内的人才公寓。其他内容与此无关。",
    )]);
    let found = search(&library, "人才公寓");
    let highlights = &found.hits[0].highlights;
    let fields: Vec<&str> = highlights.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["title", "body"]);
    let title = &highlights[0].1;
    assert!(title.contains("<em>人才公寓</em>"), "{title}");
    assert!(title.contains("&lt;script&gt;"), "{title}");
    assert!(!title.contains("<script>"), "{title}");
    let body = &highlights[1].1;
    assert!(body.contains("<em>人才公寓</em>"), "{body}");
    assert!(body.contains("&lt;b&gt;"), "{body}");
}

#[test]
fn long_fields_are_highlighted_in_a_short_fragment() {
    let filler = "本区将持续优化营商环境，提升公共服务水平。".repeat(30);
    let body = format!("{filler}符合条件的企业可申请稳岗补贴。{filler}");
    let library = library([doc("p1", "营商环境若干措施", &body)]);
    let found = search(&library, "稳岗补贴");
    let (field, fragment) = &found.hits[0].highlights[0];
    assert_eq!(field, "body");
    assert!(fragment.contains("<em>稳岗补贴</em>"), "{fragment}");
    assert!(fragment.chars().count() <= 140, "{fragment}");
}

#[test]
fn interpretation_and_faqs_are_searched() {
    let mut policy = doc("p1", "杨浦区政策汇编", "详见正文。");
    policy.interpretation = "政策解读：创业担保贷款最高可贷50万元".into();
    policy.faqs = vec![(
        "灵活就业人员能否参保？".into(),
        "可以，按灵活就业人员参保办法办理".into(),
    )];
    let library = library([policy]);
    let found = search(&library, "创业担保贷款");
    assert_eq!(ids(&found), ["p1"]);
    assert_eq!(found.hits[0].highlights[0].0, "interpretation");
    let found = search(&library, "灵活就业 参保");
    assert_eq!(ids(&found), ["p1"]);
    assert_eq!(found.hits[0].highlights[0].0, "faqs");
}

#[test]
fn ascii_is_case_insensitive() {
    let library = library([doc("p1", "AI创新券申领指南", "支持企业使用GPU算力")]);
    assert_eq!(ids(&search(&library, "ai")), ["p1"]);
    assert_eq!(ids(&search(&library, "gpu")), ["p1"]);
    let found = search(&library, "GPU");
    assert!(found.hits[0].highlights[0].1.contains("<em>GPU</em>"));
}

#[test]
fn hostile_queries_never_panic() {
    let library = library([doc("p1", "人才公寓申请指南", "AND OR NOT")]);
    let invalid = |text: &str| {
        matches!(
            library.search(&Query {
                text: text.into(),
                ..Query::default()
            }),
            Err(SearchError::Invalid(_))
        )
    };
    for text in ["", "   ", "\"", "((", "））", "*:?", "\u{0}", "！？。"] {
        assert!(invalid(text), "{text:?} should be invalid");
    }
    assert!(invalid(&"人".repeat(10_000)));
    assert!(invalid(&"人".repeat(MAX_QUERY_CHARS + 1)));
    // Syntax characters are only punctuation: the words around them are searched.
    for text in [
        "\"人才公寓",
        "(人才 AND 公寓",
        "title:人才",
        "人才~2",
        "人才^10",
        "[a TO z]",
        "AND",
        "-人才",
        "人才*",
    ] {
        let found = library.search(&Query {
            text: text.into(),
            ..Query::default()
        });
        assert!(found.is_ok(), "{text:?}: {found:?}");
    }
    assert_eq!(ids(&search(&library, "\"人才公寓\"")), ["p1"]);
    assert_eq!(ids(&search(&library, "AND")), ["p1"]);
    assert!(
        library
            .search(&Query {
                text: "人".repeat(MAX_QUERY_CHARS),
                limit: usize::MAX,
                valid_at: Some(i64::MIN),
            })
            .is_ok()
    );
}

#[test]
fn limit_caps_the_hits_but_not_the_total() {
    let library = library((0..15).map(|i| doc(&format!("p{i:02}"), "人才公寓配租通知", "")));
    let found = search(&library, "人才公寓");
    assert_eq!(found.hits.len(), DEFAULT_LIMIT);
    assert_eq!(found.total, 15);
    let found = library
        .search(&Query {
            text: "人才公寓".into(),
            limit: 3,
            valid_at: None,
        })
        .expect("search");
    assert_eq!(found.hits.len(), 3);
}

#[test]
fn library_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Library>();
}

#[test]
fn highlights_of_long_texts_with_nested_words_stay_in_bounds() {
    // Search mode cuts 区人力资源社会保障局 into nested, out-of-order words; highlighting
    // across fragment boundaries of such text once sliced out of bounds.
    let sentence =
        "每年3月底前，区人力资源社会保障局会同区财政局对上一年度资金使用情况开展绩效评价。";
    let library = library([doc("p1", "区人力资源社会保障局通知", &sentence.repeat(20))]);
    for query in [
        "人力资源",
        "社会保障 财政局",
        "绩效评价 资金",
        "区人力资源社会保障局",
        "保障局",
    ] {
        let found = search(&library, query);
        assert_eq!(ids(&found), ["p1"], "{query}");
        let body = found.hits[0]
            .highlights
            .iter()
            .find(|(field, _)| field == "body")
            .map(|(_, fragment)| fragment.as_str())
            .unwrap_or_default();
        assert!(body.contains("<em>"), "{query}: {body}");
    }
}
