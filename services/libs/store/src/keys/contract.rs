//! The contract every [`SubjectKeys`] passes.

use zhida_proto::events::v1::Channel;

use super::SubjectKeys;

/// A key is created once, found until destroyed, and a subject created again gets a new
/// one that does not open what the old one sealed.
pub async fn subject_keys_are_created_once_and_destroyed(keys: &dyn SubjectKeys) {
    assert_eq!(keys.find("c-1").await.expect("find"), None);
    let first = keys.create("c-1").await.expect("create");
    assert_eq!(keys.create("c-1").await.expect("create"), first, "kept");
    assert_eq!(keys.find("c-1").await.expect("find"), Some(first.clone()));
    let other = keys.create("c-2").await.expect("create");
    assert_ne!(other, first, "one key per subject");

    let sealed = first.seal("c-1", Channel::Email, "wang.fang@example.cn");
    keys.destroy("c-1").await.expect("destroy");
    assert_eq!(keys.find("c-1").await.expect("find"), None, "destroyed");
    keys.destroy("c-1")
        .await
        .expect("destroying twice is no error");
    assert_eq!(
        keys.find("c-2").await.expect("find"),
        Some(other),
        "only that subject's key"
    );

    let again = keys.create("c-1").await.expect("create");
    assert_ne!(again, first, "a profile created again gets a new key");
    assert!(
        again.open("c-1", Channel::Email, &sealed).is_err(),
        "the new key does not open what the destroyed one sealed"
    );
}

/// Two replicas (`a` and `b`, over the same keys) creating a subject's key at once end with
/// one key, the one stored first, and every caller gets it.
pub async fn racing_replicas_create_one_subject_key(a: &dyn SubjectKeys, b: &dyn SubjectKeys) {
    for round in 0..20 {
        let subject = format!("c-race-{round}");
        let (one, two, three, four) = tokio::join!(
            a.create(&subject),
            b.create(&subject),
            a.create(&subject),
            b.create(&subject)
        );
        let created = [one, two, three, four].map(|key| key.expect("create"));
        assert!(
            created.iter().all(|key| *key == created[0]),
            "round {round}: {created:?}"
        );
        assert_eq!(
            a.find(&subject).await.expect("find"),
            Some(created[0].clone())
        );
    }
}
