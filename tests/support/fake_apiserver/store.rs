//! The fake API server's state: objects of any group/version/resource held in memory,
//! one resourceVersion counter for all of them (as etcd has), the event history that
//! watches resume from, and its compaction (what makes a too-old watch get 410).
//! No HTTP here; `fake_apiserver.rs` speaks the protocol on top of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, watch};

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// One change, as watches stream it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    /// `api/v1/services`, `apis/discovery.k8s.io/v1/endpointslices`, ...
    pub resource: String,
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub object: Value,
}

/// An error answer: HTTP status, reason and message (a Kubernetes `Status`).
#[derive(Debug, Clone)]
pub struct Failure(pub u16, pub &'static str, pub String);

impl Failure {
    pub fn status(&self) -> Value {
        status_object(self.0, self.1, &self.2)
    }
}

pub fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

pub struct Store {
    pub rv: u64,
    /// Watches may resume from this resourceVersion or later; older ones get 410.
    pub floor: u64,
    objects: BTreeMap<String, BTreeMap<Key, Value>>,
    /// Resource → (apiVersion, kind), learned from the objects applied.
    pub kinds: BTreeMap<String, (String, String)>,
    history: Vec<Arc<Change>>,
    pub changes: broadcast::Sender<Arc<Change>>,
    /// Bumped to close every open watch.
    pub closer: watch::Sender<u64>,
    uid: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            rv: 1,
            floor: 1,
            objects: BTreeMap::new(),
            kinds: BTreeMap::new(),
            history: Vec::new(),
            changes: broadcast::channel(4096).0,
            closer: watch::channel(0).0,
            uid: 0,
        }
    }
}

/// `api/v1/pods` for `v1` `Pod`; `apis/apps/v1/deployments` for `apps/v1` `Deployment`.
pub fn resource_of(api_version: &str, kind: &str) -> String {
    let prefix = if api_version.contains('/') {
        "apis"
    } else {
        "api"
    };
    format!("{prefix}/{api_version}/{}", plural(kind))
}

/// The resource name of a kind: lower case, plural (`Endpoints` stays, `y` → `ies`).
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower == "endpoints" {
        lower
    } else if lower.ends_with('y') && !lower.ends_with("ay") && !lower.ends_with("ey") {
        format!("{}ies", &lower[..lower.len() - 1])
    } else if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

pub fn key_of(obj: &Value) -> Key {
    let meta = &obj["metadata"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (s(&meta["namespace"]), s(&meta["name"]))
}

impl Store {
    pub fn get(&self, resource: &str, key: &Key) -> Option<Value> {
        self.objects.get(resource)?.get(key).cloned()
    }

    /// Objects of `resource` (in `namespace` when given), and the current version.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> (u64, Vec<Value>) {
        let objects = self
            .objects
            .get(resource)
            .into_iter()
            .flat_map(|m| m.iter());
        let items = objects
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v.clone())
            .collect();
        (self.rv, items)
    }

    /// Creates (`must_exist` false) or replaces `obj`; a replace that names a
    /// resourceVersion other than the stored one conflicts, as in Kubernetes.
    pub fn put(
        &mut self,
        resource: &str,
        mut obj: Value,
        create: Option<bool>,
    ) -> Result<Value, Failure> {
        let key = key_of(&obj);
        if key.1.is_empty() {
            return Err(Failure(
                422,
                "Invalid",
                "metadata.name: Required value".into(),
            ));
        }
        let old = self.get(resource, &key);
        let what = format!("{resource} {:?} {:?}", key.0, key.1);
        match (&old, create) {
            (Some(_), Some(true)) => {
                return Err(Failure(
                    409,
                    "AlreadyExists",
                    format!("{what} already exists"),
                ))
            }
            (None, Some(false)) => {
                return Err(Failure(404, "NotFound", format!("{what} not found")))
            }
            _ => {}
        }
        let given = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(old) = &old {
            let stored = old["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            if create == Some(false) && !given.is_empty() && given != stored {
                let msg = format!(
                    "Operation cannot be fulfilled on {what}: the object has been modified"
                );
                return Err(Failure(409, "Conflict", msg));
            }
        }
        self.rv += 1;
        self.uid += 1;
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        meta.insert("resourceVersion".into(), json!(self.rv.to_string()));
        let old_meta = old.as_ref().map(|o| &o["metadata"]);
        let keep = |field: &str, fresh: Value| old_meta.map(|m| m[field].clone()).unwrap_or(fresh);
        meta.insert(
            "uid".into(),
            keep("uid", json!(format!("fake-uid-{}", self.uid))),
        );
        // As in Kubernetes: set by the server when the object is created (to the
        // second), whatever the client sent.
        let now = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
        meta.insert(
            "creationTimestamp".into(),
            keep("creationTimestamp", json!(now.to_string())),
        );
        // As in Kubernetes: the generation moves only when the spec (anything but
        // metadata and status) changes, never on a status write.
        let body = |o: &Value| {
            let mut o = o.as_object().cloned().unwrap_or_default();
            o.remove("metadata");
            o.remove("status");
            o
        };
        let old_generation = old_meta.and_then(|m| m["generation"].as_u64());
        let generation = match (&old, old_generation) {
            (Some(old), Some(g)) if body(old) == body(&obj) => g,
            _ => old_generation.unwrap_or(0) + 1,
        };
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        meta.insert("generation".into(), json!(generation));
        // As in Kubernetes: every Namespace is labelled with its name.
        if resource == "api/v1/namespaces" {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("kubernetes.io/metadata.name".into(), json!(key.1));
            }
        }
        if let (Some(api_version), Some(kind)) = (obj["apiVersion"].as_str(), obj["kind"].as_str())
        {
            self.kinds
                .insert(resource.to_string(), (api_version.into(), kind.into()));
        }
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        self.objects
            .entry(resource.into())
            .or_default()
            .insert(key, obj.clone());
        self.record(resource, kind, obj.clone());
        Ok(obj)
    }

    pub fn delete(&mut self, resource: &str, key: &Key) -> Option<Value> {
        let mut obj = self.objects.get_mut(resource)?.remove(key)?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(resource, "DELETED", obj.clone());
        Some(obj)
    }

    fn record(&mut self, resource: &str, kind: &'static str, object: Value) {
        let change = Arc::new(Change {
            rv: self.rv,
            resource: resource.into(),
            namespace: key_of(&object).0,
            kind,
            object,
        });
        self.history.push(change.clone());
        let _ = self.changes.send(change);
    }

    /// The changes after `rv`, to resume a watch; `Err` (410) when history no longer
    /// reaches back that far.
    pub fn since(&self, rv: u64) -> Result<Vec<Arc<Change>>, Failure> {
        if rv < self.floor {
            let msg = format!("too old resource version: {rv} ({})", self.floor);
            return Err(Failure(410, "Expired", msg));
        }
        Ok(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// Drops the history: a watch resuming from any version handed out so far gets
    /// 410 Gone and must relist. With `close_watches`, open watches end now.
    pub fn compact(&mut self, close_watches: bool) {
        self.rv += 1;
        self.floor = self.rv;
        self.history.clear();
        if close_watches {
            self.closer.send_modify(|g| *g += 1);
        }
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("object");
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            merge_patch(target.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Whether `labels` satisfy an equality-based selector (`a=b,c!=d,e,!f`).
pub fn selects(selector: &str, labels: &Value) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            let label = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
            if let Some((k, v)) = term.split_once("!=") {
                label(k) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                label(k) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                label(k).is_none()
            } else {
                label(term).is_some()
            }
        })
}

/// Whether `obj` satisfies a field selector on `metadata.name` / `metadata.namespace`.
pub fn selects_fields(selector: &str, obj: &Value) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let Some((field, want)) = term.split_once('=') else {
            return true;
        };
        let (field, negate) = match field.strip_suffix('!') {
            Some(f) => (f, true),
            None => (field.trim_end_matches('='), false),
        };
        let path: Vec<&str> = field.split('.').collect();
        let got = path
            .iter()
            .fold(obj, |v, p| &v[*p])
            .as_str()
            .unwrap_or_default();
        (got == want) != negate
    })
}
