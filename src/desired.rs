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

use crate::gateway_api::NamespaceLabels;
use crate::ingest::{self, Document, Errors};
use crate::model::{Config, ResourceKey};
use crate::resource_set;
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

/// The one way async code reaches the store: `f` (a call on [`Desired`] that writes
/// SQLite with `synchronous=FULL`, or reads it) runs on a blocking thread, never on an
/// async worker that xDS streams and `/healthz` share. A panic in `f` is re-raised.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("a store call was cancelled: {e}"),
        },
    }
}

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
    /// Services discovered outside the documents (Kubernetes): not stored, not
    /// revisions, but part of every config built.
    discovered: Mutex<Discovered>,
    /// The labels of the cluster's namespaces (Kubernetes; empty without), which
    /// Gateway API listeners' `from: Selector` match: like `discovered`, part of every
    /// config built and not stored.
    namespaces: Mutex<NamespaceLabels>,
    published: watch::Sender<Published>,
}

/// Discovered services by host.
pub type Discovered = BTreeMap<String, crate::model::Service>;

impl Desired {
    /// Loads the newest stored revision (or an empty set), with the services and
    /// namespace labels already discovered (empty without Kubernetes).
    pub fn open(
        store: Store,
        discovered: Discovered,
        namespaces: NamespaceLabels,
    ) -> Result<Desired> {
        let (revision, documents) = match store.latest()? {
            Some(rev) => (rev.info.revision, rev.documents),
            None => (0, Vec::new()),
        };
        let docs = to_documents(&documents)?;
        let config = build(&docs, &discovered, &namespaces)?;
        Ok(Desired {
            store,
            current: Mutex::new(docs),
            discovered: Mutex::new(discovered),
            namespaces: Mutex::new(namespaces),
            published: watch::channel(Published { revision, config }).0,
        })
    }

    /// The configuration of the revision before the published one, if it is stored and
    /// valid: what proxies may still hold when coalmine starts again.
    pub fn previous_config(&self) -> Option<Arc<Config>> {
        let revision = self.published.borrow().revision;
        let stored = self.store.before(revision).ok()??;
        let docs = to_documents(&stored.documents).ok()?;
        build(&docs, &self.discovered(), &self.namespaces()).ok()
    }

    /// The store, for state that lives beside the revisions (release progress).
    pub fn store(&self) -> &Store {
        &self.store
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
        plan(&current, merged(&current, docs), &self.inputs())
    }

    /// Replaces the discovered services and publishes the config they give, under the
    /// same revision: endpoints moving is not a change of the stored configuration.
    /// A service that disappeared while a route still names it stays, without
    /// endpoints, so the route answers 503 instead of the whole set going invalid.
    pub fn set_discovered(&self, services: Discovered) -> Result<()> {
        let docs = self.lock();
        let mut discovered = self.discovered.lock().expect("discovered poisoned");
        let namespaces = self.namespaces();
        let config = match build(&docs, &services, &namespaces) {
            Ok(config) => {
                *discovered = services;
                config
            }
            Err(_) => {
                let mut kept = services;
                for (host, old) in discovered.iter() {
                    kept.entry(host.clone())
                        .or_insert_with(|| crate::model::Service {
                            endpoints: Vec::new(),
                            ..old.clone()
                        });
                }
                let config = build(&docs, &kept, &namespaces)?;
                *discovered = kept;
                config
            }
        };
        let revision = self.published.borrow().revision;
        self.published.send_replace(Published { revision, config });
        Ok(())
    }

    fn discovered(&self) -> Discovered {
        self.discovered.lock().expect("discovered poisoned").clone()
    }

    /// Replaces the namespace labels. The config they give is published under the same
    /// revision when the current documents still validate with them; when not (a route
    /// a selector no longer admits), the labels are kept all the same and the caller
    /// (`k8s::resources`, which judged the cluster's objects with them) replaces the
    /// documents next.
    pub fn set_namespaces(&self, namespaces: NamespaceLabels) -> Result<()> {
        let docs = self.lock();
        let mut held = self.namespaces.lock().expect("namespaces poisoned");
        *held = namespaces;
        let config = build(&docs, &self.discovered(), &held)?;
        let revision = self.published.borrow().revision;
        self.published.send_replace(Published { revision, config });
        Ok(())
    }

    fn namespaces(&self) -> NamespaceLabels {
        self.namespaces.lock().expect("namespaces poisoned").clone()
    }

    /// What every config is built with besides the documents.
    fn inputs(&self) -> (Discovered, NamespaceLabels) {
        (self.discovered(), self.namespaces())
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
        let plan = plan(&current, next(&current)?, &self.inputs())?;
        if plan.changed.is_empty() {
            return Ok(Outcome {
                revision: self.published.borrow().revision,
                changed: Vec::new(),
            });
        }
        let values: Vec<serde_json::Value> =
            plan.documents.values().map(|d| d.value.clone()).collect();
        let summary = summary(verb, &plan.changed);
        let info = self.store.append(&summary, &values).inspect_err(|e| {
            // Nothing changed: the served revision stays, and the operator learns why.
            let lost = self.published.borrow().revision + 1;
            tracing::error!(revision = lost, change = %summary, "the change was not stored: {e}");
        })?;
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
    (discovered, namespaces): &(Discovered, NamespaceLabels),
) -> Result<Plan> {
    let config = build(&next, discovered, namespaces)?;
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

fn build(
    docs: &BTreeMap<ResourceKey, Document>,
    discovered: &Discovered,
    namespaces: &NamespaceLabels,
) -> Result<Arc<Config>> {
    let list: Vec<Document> = docs.values().cloned().collect();
    resource_set::build_config_with(&list, discovered, namespaces)
        .map(Arc::new)
        .map_err(Error::Invalid)
}

fn to_documents(values: &[serde_json::Value]) -> Result<BTreeMap<ResourceKey, Document>> {
    let text = serde_json::to_string(values).expect("JSON values always serialize");
    let docs = ingest::parse_documents(&text).map_err(Error::Invalid)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, EndpointHealth, Kind, Resolution, Service, ServicePort};

    const ROUTE: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: ["*"]
  http:
  - route:
    - destination: {host: web.default.svc.cluster.local}
"#;

    fn mk_service(endpoints: &[&str]) -> Service {
        Service {
            host: "web.default.svc.cluster.local".into(),
            source: ResourceKey::new(Kind::ServiceEntry, "default", "web"),
            ports: vec![ServicePort {
                number: 80,
                name: "http".into(),
                protocol: "HTTP".into(),
                target_port: Some(8080),
            }],
            resolution: Resolution::Static,
            endpoints: endpoints
                .iter()
                .map(|a| Endpoint {
                    address: a.to_string(),
                    ports: Default::default(),
                    labels: Default::default(),
                    health: EndpointHealth::Healthy,
                    weight: 1,
                })
                .collect(),
        }
    }

    fn mk_desired(dir: &tempfile::TempDir) -> Desired {
        let discovered =
            Discovered::from([(mk_service(&[]).host.clone(), mk_service(&["10.0.0.1"]))]);
        Desired::open(
            Store::open(dir.path(), 10).unwrap(),
            discovered,
            Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn discovered_endpoints_publish_without_a_revision() {
        let dir = tempfile::tempdir().unwrap();
        let desired = mk_desired(&dir);
        let docs = ingest::parse_documents(ROUTE).unwrap();
        assert_eq!(desired.apply(docs).unwrap().revision, 1);
        let svc = mk_service(&["10.0.0.1", "10.0.0.2"]);
        desired
            .set_discovered(Discovered::from([(svc.host.clone(), svc)]))
            .unwrap();
        let published = desired.published();
        assert_eq!(published.revision, 1);
        let endpoints = &published.config.services["web.default.svc.cluster.local"].endpoints;
        assert_eq!(endpoints.len(), 2);
        assert_eq!(desired.revisions().unwrap().len(), 1);
    }

    #[test]
    fn a_vanished_service_that_a_route_names_stays_without_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let desired = mk_desired(&dir);
        desired
            .apply(ingest::parse_documents(ROUTE).unwrap())
            .unwrap();
        desired.set_discovered(Discovered::new()).unwrap();
        let config = desired.published().config;
        let svc = &config.services["web.default.svc.cluster.local"];
        assert!(svc.endpoints.is_empty());
        assert_eq!(svc.ports[0].number, 80);
    }

    #[test]
    fn a_rejected_change_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let desired = mk_desired(&dir);
        let bad = ROUTE.replace("web.default.svc.cluster.local", "nowhere");
        let err = desired
            .apply(ingest::parse_documents(&bad).unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert_eq!(desired.published().revision, 0);
        assert!(desired.revisions().unwrap().is_empty());
    }

    /// A Gateway with a `from: Selector` listener (team: web) on 8080 and an `All` one
    /// on 9090, and a route of namespace `shop` on both.
    const SELECTED: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  gatewayClassName: coalmine
  listeners:
  - {name: web, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: web}}}}}
  - {name: open, port: 9090, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: shop}
spec:
  parentRefs: [{name: edge, namespace: default}]
  rules: [{backendRefs: [{name: web, namespace: default, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: shop, namespace: default}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]
  to: [{group: "", kind: Service}]
"#;

    #[test]
    fn namespace_labels_publish_without_a_revision() {
        let dir = tempfile::tempdir().unwrap();
        let svc = mk_service(&["10.0.0.1"]);
        let discovered = Discovered::from([(svc.host.clone(), svc)]);
        let web = NamespaceLabels::from([(
            "shop".to_string(),
            [("team".to_string(), "web".to_string())].into(),
        )]);
        let store = Store::open(dir.path(), 10).unwrap();
        let desired = Desired::open(store, discovered, web.clone()).unwrap();
        let docs = ingest::parse_documents(SELECTED).unwrap();
        assert_eq!(desired.apply(docs).unwrap().revision, 1);
        let ports = |d: &Desired| -> Vec<u32> {
            let config = d.published().config;
            config.virtual_services[0]
                .listeners
                .iter()
                .map(|l| l.port)
                .collect()
        };
        assert_eq!(ports(&desired), [8080, 9090]);
        // shop loses its label: the route stays on the All listener only.
        desired.set_namespaces(NamespaceLabels::new()).unwrap();
        assert_eq!(ports(&desired), [9090]);
        assert_eq!(desired.published().revision, 1);
        desired.set_namespaces(web).unwrap();
        assert_eq!(ports(&desired), [8080, 9090]);
        assert_eq!(desired.revisions().unwrap().len(), 1);
    }
}
