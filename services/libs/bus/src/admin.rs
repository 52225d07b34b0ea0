//! Creates the topics (and their dead-letter topics) a deployment needs.

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    types::RDKafkaErrorCode,
};
use zhida_runtime::config::KafkaConfig;

use crate::topics::{Topic, Topics};

/// Creates every [`Topic`] and its `.dlq` when missing; existing topics are left as they are.
pub async fn ensure_topics(config: &KafkaConfig) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = crate::client_config(config).create()?;
    let topics = Topics::new(config);
    let names: Vec<(String, bool)> = Topic::ALL
        .iter()
        .flat_map(|t| {
            [
                (topics.name(*t), t.compacted()),
                (topics.dead_letter(*t), false),
            ]
        })
        .collect();
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|(name, compacted)| {
            let topic = NewTopic::new(
                name,
                config.partitions,
                TopicReplication::Fixed(config.replication_factor),
            );
            if *compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}
