//! The store as the controller uses it, off the async workers: each call is a SQLite
//! read or a `synchronous=FULL` write, so it runs on tokio's blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::{info, warn};

use crate::desired::Desired;
use crate::ingest::Document;
use crate::model::{ResourceKey, Rollout};

/// Every saved release state by Rollout key: (spec fingerprint, state).
pub(super) async fn rollouts(desired: &Arc<Desired>) -> BTreeMap<String, (String, String)> {
    let saved = blocking(desired, |d| d.store().rollouts()).await;
    saved
        .unwrap_or_default()
        .into_iter()
        .map(|(k, spec, state)| (k, (spec, state)))
        .collect()
}

/// Saves a release's state with the fingerprint of its spec (a failure is logged).
pub(super) async fn save(desired: &Arc<Desired>, key: &ResourceKey, spec: &str, state: String) {
    let (name, spec) = (key.to_string(), spec.to_string());
    let saved = blocking(desired, move |d| {
        d.store().save_rollout(&name, &spec, &state)
    })
    .await;
    if let Err(e) = saved {
        warn!(rollout = %key, "cannot save the release state: {e}");
    }
}

/// Stores a traffic step as a new revision of its target: the revision, or `None`
/// when it could not be stored (logged).
pub(super) async fn apply_step(
    desired: &Arc<Desired>,
    rollout: &Rollout,
    next: Document,
) -> Option<u64> {
    match blocking(desired, move |d| d.apply(vec![next])).await {
        Ok(outcome) => {
            info!(rollout = %rollout.key, revision = outcome.revision, "traffic step stored");
            Some(outcome.revision)
        }
        Err(e) => {
            warn!(rollout = %rollout.key, "cannot store the traffic step: {e}");
            None
        }
    }
}

/// Runs `work` on the blocking pool; a panic in it is carried on here.
async fn blocking<T, F>(desired: &Arc<Desired>, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce(&Desired) -> T + Send + 'static,
{
    let desired = desired.clone();
    crate::desired::blocking(move || work(&desired)).await
}
