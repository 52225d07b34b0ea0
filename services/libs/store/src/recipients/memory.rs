//! [`PolicyRecipients`] in process memory, for the embedded default (`zhida demo`,
//! single-process `serve`).

use std::{
    collections::{BTreeMap, HashSet},
    sync::Mutex,
};

use async_trait::async_trait;

use super::{PolicyRecipients, Recipient};
use crate::Result;

#[derive(Default)]
struct State {
    /// Policy id → `recipient|channel` → entry.
    policies: BTreeMap<String, BTreeMap<String, Recipient>>,
    withdrawn: HashSet<String>,
    /// Policy id → (version, revision).
    revisions: BTreeMap<String, (u32, Vec<u8>)>,
}

/// [`PolicyRecipients`] in a mutex-guarded map.
#[derive(Default)]
pub struct MemoryPolicyRecipients {
    state: Mutex<State>,
}

#[async_trait]
impl PolicyRecipients for MemoryPolicyRecipients {
    async fn add(&self, policy_id: &str, recipient: &Recipient) -> Result<bool> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .policies
            .entry(policy_id.to_string())
            .or_default()
            .entry(recipient.member())
            .or_insert_with(|| recipient.clone());
        Ok(state.withdrawn.contains(policy_id))
    }

    async fn list(&self, policy_id: &str) -> Result<Vec<Recipient>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state
            .policies
            .get(policy_id)
            .map(|entries| entries.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn remove_recipient(&self, recipient_id: &str) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for entries in state.policies.values_mut() {
            entries.retain(|_, r| r.recipient_id != recipient_id);
        }
        state.policies.retain(|_, entries| !entries.is_empty());
        Ok(())
    }

    async fn withdraw(&self, policy_id: &str) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.withdrawn.insert(policy_id.to_string());
        Ok(())
    }

    async fn is_withdrawn(&self, policy_id: &str) -> Result<bool> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state.withdrawn.contains(policy_id))
    }

    async fn revise(&self, policy_id: &str, version: u32, revision: &[u8]) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let kept = state.revisions.get(policy_id).map_or(0, |(v, _)| *v);
        if version > kept {
            state
                .revisions
                .insert(policy_id.to_string(), (version, revision.to_vec()));
        }
        Ok(())
    }

    async fn latest(&self, policy_id: &str) -> Result<Option<(u32, Vec<u8>)>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state.revisions.get(policy_id).cloned())
    }
}
