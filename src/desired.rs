//! The desired configuration: the current revision's documents, and the only ways to
//! change them (apply, delete, replace, restore), each one stored revision.
//!
//! A change is planned in full (merged, parsed, validated as a whole set) before
//! anything is written; a rejected change writes nothing and publishes nothing. One
//! lock serializes changes, so revisions follow one another.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::istio::{self, Document, Errors};
use crate::model::{Config, ResourceKey};
use crate::store::{self, RevisionInfo, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(Errors),
    #[error("{0} not found")]
    NotFound(String),
    #[error("revision {0} not found")]
    NoRevision(u64),
    #[error(transparent)]
    Store(#[from] store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The configuration streams should serve, with the revision it came from.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub revision: u64,
    pub config: Arc<Config>,
}

/// What a change did, resource by resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    /// `VirtualService default/web`.
    pub resource: String,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Configured,
    Deleted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Deleted => "deleted",
        }
    }
}

/// A validated change, not yet written.
#[derive(Debug, Clone)]
pub struct Plan {
    pub documents: BTreeMap<ResourceKey, Document>,
    pub config: Arc<Config>,
    pub changed: Vec<Change>,
}

/// The result of a change: the revision now current, and what changed (nothing, when
/// the change was a no-op and no revision was made).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub revision: u64,
    pub changed: Vec<Change>,
}

#[derive(Debug)]
pub struct Desired {
    store: Store,
    current: Mutex<BTreeMap<ResourceKey, Document>>,
    published: watch::Sender<Published>,
}

impl Desired {
    /// Loads the newest stored revision (or an empty set).
    pub fn open(store: Store) -> Result<Desired> {
        let (revision, documents) = match store.latest()? {
            Some(rev) => (rev.info.revision, rev.documents),
            None => (0, Vec::new()),
        };
        let docs = to_documents(&documents)?;
        let config = build(&docs)?;
        Ok(Desired {
            store,
            current: Mutex::new(docs),
            published: watch::channel(Published { revision, config }).0,
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<Published> {
        self.published.subscribe()
    }

    pub fn published(&self) -> Published {
        self.published.borrow().clone()
    }

    pub fn documents(&self) -> Vec<Document> {
        self.lock().values().cloned().collect()
    }

    pub fn get(&self, key: &ResourceKey) -> Option<Document> {
        self.lock().get(key).cloned()
    }

    pub fn revisions(&self) -> Result<Vec<RevisionInfo>> {
        Ok(self.store.list()?)
    }

    /// What applying `docs` (created or replaced by key) would do.
    pub fn plan_apply(&self, docs: Vec<Document>) -> Result<Plan> {
        let current = self.lock().clone();
        plan(&current, merged(&current, docs))
    }

    /// Applies `docs` as one revision.
    pub fn apply(&self, docs: Vec<Document>) -> Result<Outcome> {
        self.change(|current| Ok(merged(current, docs)), "apply")
    }

    /// Removes resources as one revision; every key must exist.
    pub fn delete(&self, keys: &[ResourceKey]) -> Result<Outcome> {
        self.change(
            |current| {
                let mut next = current.clone();
                for key in keys {
                    if next.remove(key).is_none() {
                        return Err(Error::NotFound(key.to_string()));
                    }
                }
                Ok(next)
            },
            "delete",
        )
    }

    /// Makes `docs` the whole set (the `--config` path is authoritative this way).
    pub fn replace_all(&self, docs: Vec<Document>, summary: &str) -> Result<Outcome> {
        self.change(
            |_| Ok(docs.into_iter().map(|d| (d.key.clone(), d)).collect()),
            summary,
        )
    }

    /// Makes a new revision equal to a stored one.
    pub fn restore(&self, revision: u64) -> Result<Outcome> {
        let stored = self
            .store
            .get(revision)?
            .ok_or(Error::NoRevision(revision))?;
        let docs = to_documents(&stored.documents)?;
        self.change(|_| Ok(docs), &format!("restore revision {revision}"))
    }

    fn change(
        &self,
        next: impl FnOnce(&BTreeMap<ResourceKey, Document>) -> Result<BTreeMap<ResourceKey, Document>>,
        verb: &str,
    ) -> Result<Outcome> {
        let mut current = self.lock();
        let plan = plan(&current, next(&current)?)?;
        if plan.changed.is_empty() {
            return Ok(Outcome {
                revision: self.published.borrow().revision,
                changed: Vec::new(),
            });
        }
        let values: Vec<serde_json::Value> =
            plan.documents.values().map(|d| d.value.clone()).collect();
        let info = self.store.append(&summary(verb, &plan.changed), &values)?;
        *current = plan.documents;
        self.published.send_replace(Published {
            revision: info.revision,
            config: plan.config,
        });
        Ok(Outcome {
            revision: info.revision,
            changed: plan.changed,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ResourceKey, Document>> {
        self.current.lock().expect("desired state poisoned")
    }
}

fn merged(
    current: &BTreeMap<ResourceKey, Document>,
    docs: Vec<Document>,
) -> BTreeMap<ResourceKey, Document> {
    let mut next = current.clone();
    for doc in docs {
        next.insert(doc.key.clone(), doc);
    }
    next
}

fn plan(
    current: &BTreeMap<ResourceKey, Document>,
    next: BTreeMap<ResourceKey, Document>,
) -> Result<Plan> {
    let config = build(&next)?;
    let mut changed = Vec::new();
    for (key, doc) in &next {
        match current.get(key) {
            None => changed.push(Change {
                resource: key.to_string(),
                action: Action::Created,
            }),
            Some(old) if old.value != doc.value => changed.push(Change {
                resource: key.to_string(),
                action: Action::Configured,
            }),
            Some(_) => {}
        }
    }
    for key in current.keys().filter(|k| !next.contains_key(*k)) {
        changed.push(Change {
            resource: key.to_string(),
            action: Action::Deleted,
        });
    }
    Ok(Plan {
        documents: next,
        config,
        changed,
    })
}

fn build(docs: &BTreeMap<ResourceKey, Document>) -> Result<Arc<Config>> {
    let list: Vec<Document> = docs.values().cloned().collect();
    istio::build_config(&list, &BTreeMap::new())
        .map(Arc::new)
        .map_err(Error::Invalid)
}

fn to_documents(values: &[serde_json::Value]) -> Result<BTreeMap<ResourceKey, Document>> {
    let text = serde_json::to_string(values).expect("JSON values always serialize");
    let docs = istio::parse_documents(&text).map_err(Error::Invalid)?;
    Ok(docs.into_iter().map(|d| (d.key.clone(), d)).collect())
}

/// `apply: created VirtualService default/web, configured ...`, shortened past a few.
fn summary(verb: &str, changed: &[Change]) -> String {
    let mut parts: Vec<String> = changed
        .iter()
        .take(4)
        .map(|c| format!("{} {}", c.action.as_str(), c.resource))
        .collect();
    if changed.len() > 4 {
        parts.push(format!("and {} more", changed.len() - 4));
    }
    format!("{verb}: {}", parts.join(", "))
}
