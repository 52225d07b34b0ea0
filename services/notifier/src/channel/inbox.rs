//! The "两页" inbox: every citizen and enterprise has one (their personal / enterprise
//! page), addressed by subject id, so it needs no contact and no consent. A notice becomes
//! one [`InboxItem`] in the [`Inbox`] store, once per policy; a digest adds each of its
//! policies as its own item (a page needs no bundling).

use std::sync::Arc;

use async_trait::async_trait;
use zhida_proto::{
    Timestamp,
    events::v1::{Channel as Kind, DeliveryRequested, Notice},
    notification::v1::InboxItem,
};
use zhida_store::Inbox as InboxStore;

use super::{Attempt, Channel};

/// Characters of the policy text an item shows before "…".
const SUMMARY_CHARS: usize = 120;

pub struct Inbox {
    store: Arc<dyn InboxStore>,
    max_items: usize,
}

impl Inbox {
    pub fn new(store: Arc<dyn InboxStore>, max_items: usize) -> Self {
        Self { store, max_items }
    }
}

/// The item `request` puts on the recipient's page (its cursor and read flag come from the
/// store when it is read). A notice about a policy received earlier is an item of its own,
/// about the same policy, whose title says what happened ("政策已更新：…", "政策已撤回：…")
/// and whose summary is what changed, or why it was withdrawn.
pub fn item(request: &DeliveryRequested, received_at: Timestamp) -> InboxItem {
    let (title, text) = match Notice::try_from(request.notice) {
        Ok(Notice::Revision) => (
            format!("政策已更新：{}", request.title),
            &request.change_summary,
        ),
        Ok(Notice::Withdrawal) => (
            format!("政策已撤回：{}", request.title),
            &request.change_summary,
        ),
        _ => (request.title.clone(), &request.body),
    };
    InboxItem {
        cursor: String::new(),
        policy_id: request.policy_id.clone(),
        title,
        summary: summary(text),
        department: request.department.clone(),
        service_url: request.service_url.clone(),
        reason: request.reason.clone(),
        read: false,
        received_at: Some(received_at),
        item_id: crate::notice::channel_key(request, Kind::Inbox).policy_id,
    }
}

/// The opening of `body`, on one line, at most [`SUMMARY_CHARS`] characters.
fn summary(body: &str) -> String {
    let flat: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if flat.chars().count() <= SUMMARY_CHARS {
        return flat;
    }
    let mut short: String = flat.chars().take(SUMMARY_CHARS - 1).collect();
    short.push('…');
    short
}

impl Inbox {
    async fn put(&self, request: &DeliveryRequested) -> Attempt {
        let payload = prost::Message::encode_to_vec(&item(request, zhida_proto::timestamp_now()));
        match self
            .store
            .add(
                &request.recipient_id,
                // The delivery's ledger policy id: a notice is an item beside the policy's.
                &crate::notice::channel_key(request, Kind::Inbox).policy_id,
                &payload,
                self.max_items,
            )
            .await
        {
            Ok(true) => Attempt::Sent {
                detail: "in the inbox".into(),
            },
            // Added by an earlier attempt whose outcome was not recorded.
            Ok(false) => Attempt::Sent {
                detail: "already in the inbox".into(),
            },
            Err(error) => Attempt::Retry {
                detail: error.to_string(),
            },
        }
    }
}

#[async_trait]
impl Channel for Inbox {
    fn kind(&self) -> Kind {
        Kind::Inbox
    }

    async fn send(&self, request: &DeliveryRequested) -> Attempt {
        self.put(request).await
    }

    async fn send_digest(&self, _digest_id: &str, requests: &[DeliveryRequested]) -> Attempt {
        for request in requests {
            if let Attempt::Retry { detail } = self.put(request).await {
                return Attempt::Retry { detail };
            }
        }
        Attempt::Sent {
            detail: format!("{} items in the inbox", requests.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use zhida_store::MemoryInbox;

    use super::*;

    fn request(policy: &str, body: &str) -> DeliveryRequested {
        DeliveryRequested {
            policy_id: policy.into(),
            recipient_id: "c-1".into(),
            title: "杨浦区2023年高校毕业生就业见习补贴申领指南".into(),
            body: body.into(),
            reason: "该政策面向：citizen.groups = \"高校毕业生\"".into(),
            ..DeliveryRequested::default()
        }
    }

    #[tokio::test]
    async fn a_notice_becomes_one_item_on_the_page_however_often_it_is_sent() {
        let store = Arc::new(MemoryInbox::default());
        let inbox = Inbox::new(store.clone(), 10);
        let notice = request("p-1", "第一条\n\n申请条件：……");
        assert!(matches!(inbox.send(&notice).await, Attempt::Sent { .. }));
        assert!(matches!(inbox.send(&notice).await, Attempt::Sent { .. }));
        let page = store.list("c-1", None, 10).await.expect("list");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.unread, 1);
        let item: InboxItem =
            prost::Message::decode(page.items[0].payload.as_slice()).expect("an InboxItem");
        assert_eq!(item.policy_id, "p-1");
        assert_eq!(item.summary, "第一条 申请条件：……");
        assert_eq!(item.reason, notice.reason);
    }

    #[tokio::test]
    async fn a_notice_is_an_item_of_its_own_that_says_what_happened() {
        let store = Arc::new(MemoryInbox::default());
        let inbox = Inbox::new(store.clone(), 10);
        let policy = request("p-1", "正文");
        let revision = DeliveryRequested {
            notice: Notice::Revision as i32,
            version: 2,
            change_summary: "补贴标准提高".into(),
            ..policy.clone()
        };
        let withdrawal = DeliveryRequested {
            notice: Notice::Withdrawal as i32,
            change_summary: "上位政策废止".into(),
            ..policy.clone()
        };
        for request in [&policy, &revision, &revision, &withdrawal] {
            assert!(matches!(inbox.send(request).await, Attempt::Sent { .. }));
        }
        let page = store.list("c-1", None, 10).await.expect("list");
        let items: Vec<InboxItem> = page
            .items
            .iter()
            .map(|i| prost::Message::decode(i.payload.as_slice()).expect("an InboxItem"))
            .collect();
        let titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "政策已撤回：杨浦区2023年高校毕业生就业见习补贴申领指南",
                "政策已更新：杨浦区2023年高校毕业生就业见习补贴申领指南",
                "杨浦区2023年高校毕业生就业见习补贴申领指南",
            ],
            "newest first, each once"
        );
        assert_eq!(items[0].summary, "上位政策废止");
        assert_eq!(items[1].summary, "补贴标准提高");
        assert!(items.iter().all(|i| i.policy_id == "p-1"));
        let ids: Vec<&str> = items.iter().map(|i| i.item_id.as_str()).collect();
        assert_eq!(ids, ["p-1#withdrawn", "p-1#rev2", "p-1"]);
    }

    #[test]
    fn a_long_text_is_summarised_on_one_line() {
        let long = "政策".repeat(100);
        let short = summary(&long);
        assert_eq!(short.chars().count(), SUMMARY_CHARS);
        assert!(short.ends_with('…'));
        assert_eq!(summary("a\r\nb\u{7}"), "a b");
    }
}
