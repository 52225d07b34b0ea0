//! A profile as UpsertProfile receives it (protobuf bytes of `Profile`, as a caller may
//! send any), through the profiler's validation (`zhida_profiler::validate`: every field,
//! every subscription and its filter rule) against the Yangpu catalogue and its built-in
//! tags, one of them retired (checked against no stored profile). Validation must
//! answer, never panic; a profile it accepts must be usable: its audience document is
//! built, its subscriptions get ids, and the accepted profile survives a round trip.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use zhida_catalogue::{Catalogue, Tags};
use zhida_proto::events::v1::Profile;

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(Catalogue::yangpu);
static TAGS: LazyLock<Tags> = LazyLock::new(|| {
    let mut tags = Tags::built_in();
    let mut retired = tags.get("housing").expect("a built-in tag").clone();
    retired.retired = true;
    tags.apply(retired);
    tags
});

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = Profile::decode(data) else {
        return;
    };
    match zhida_profiler::validate(Some(&profile), "2026-11-27", &CATALOGUE, &TAGS, None) {
        Ok(()) => {
            let document = zhida_profiler::document::profile(&profile);
            assert!(document.is_object());
            for subscription in &profile.subscriptions {
                assert!(zhida_profiler::subscription_id(subscription).starts_with("sub-"));
            }
            let bytes = profile.encode_to_vec();
            let again = Profile::decode(bytes.as_slice()).expect("round trip");
            assert_eq!(again.encode_to_vec(), bytes);
        }
        Err(violations) => assert!(!violations.is_empty(), "an error without a violation"),
    }
});
