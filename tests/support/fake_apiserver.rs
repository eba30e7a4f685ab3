//! An in-process Kubernetes API server for tests: the real HTTP list/watch protocol
//! on 127.0.0.1:0, well enough for kube-rs's real client and watcher, over objects of
//! any group/version/resource held in memory (`store.rs`).
//!
//! - `GET /api/v1/{resource}`, `/api/v1/namespaces/{ns}/{resource}`,
//!   `/apis/{group}/{version}/...` alike: lists (`{"kind": "XList", "metadata":
//!   {"resourceVersion"}, "items"}`) and, with `watch=true`, newline-delimited events
//!   from `resourceVersion` on, `BOOKMARK`s when asked for, `timeoutSeconds`,
//!   `sendInitialEvents`, and an `ERROR` event with a 410 `Status` when the version is
//!   older than the kept history (see `compact`).
//! - Metadata-only requests (`Accept: ...;as=PartialObjectMetadata...`) get
//!   `PartialObjectMetadata` objects.
//! - Objects: GET, POST (create), PUT (replace, with resourceVersion conflicts), PATCH
//!   (merge, strategic treated as merge, server-side apply as merge-or-create), DELETE,
//!   and the `/status` subresource; label and field selectors (equality-based).
//! - As Kubernetes does: `creationTimestamp`, `generation` (moving with the spec only)
//!   and, on a Namespace, the label `kubernetes.io/metadata.name: <name>`.
//! - `/version`, `/api`, `/apis` for discovery.
//!
//! Tests drive it synchronously: `apply`, `delete`, `compact`, `close_watches`.

mod store;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use store::{merge_patch, selects, selects_fields, Failure, Key, Store};
pub use store::{plural, resource_of};
use watch::watch;

type Shared = Arc<Mutex<Store>>;

/// A running fake API server; stops with its runtime on drop.
pub struct FakeApiServer {
    port: u16,
    store: Shared,
    requests: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct App {
    store: Shared,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeApiServer {
    pub fn start() -> FakeApiServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fake apiserver runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound").port();
        let app = App {
            store: Arc::default(),
            requests: Arc::default(),
        };
        let router = axum::Router::new().fallback(handle).with_state(app.clone());
        runtime.spawn(async move { axum::serve(listener, router).await });
        FakeApiServer {
            port,
            store: app.store,
            requests: app.requests,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Writes a kubeconfig pointing at this server (plain HTTP) into `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  \
             cluster: {{server: \"{}\"}}\nusers:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  \
             context: {{cluster: fake, user: fake, namespace: default}}\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Creates or replaces `obj` (its `apiVersion` and `kind` name the resource; the
    /// namespace defaults to `default` unless it is cluster-scoped: a Namespace or a
    /// GatewayClass); returns it as stored.
    pub fn apply(&self, mut obj: Value) -> Value {
        let resource = resource_of(
            obj["apiVersion"].as_str().expect("apiVersion"),
            obj["kind"].as_str().expect("kind"),
        );
        let cluster_scoped = obj["kind"] == "Namespace" || obj["kind"] == "GatewayClass";
        if obj["metadata"]["namespace"].is_null() && !cluster_scoped {
            obj["metadata"]["namespace"] = json!("default");
        }
        obj["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
        self.lock().put(&resource, obj, None).expect("apply")
    }

    /// Applies every document of a YAML stream (see [`FakeApiServer::apply`]).
    pub fn apply_yaml(&self, text: &str) {
        for value in coalmine::yaml::documents(text).expect("test YAML") {
            self.apply(value);
        }
    }

    /// A `coalmine serve --kubernetes` replica against this server, named `name` (its
    /// Lease identity), with a 3 s Lease; its kubeconfig goes into `dir`.
    pub fn replica(&self, dir: &Path, name: &str) -> super::Coalmine {
        let kubeconfig = self.kubeconfig(dir).display().to_string();
        super::Coalmine::start_bare_env(
            &["--kubernetes"],
            &[
                ("KUBECONFIG", &kubeconfig),
                ("POD_NAME", name),
                ("POD_NAMESPACE", "default"),
                ("COALMINE_LEASE_DURATION", "3s"),
            ],
        )
    }

    /// Who holds the `coalmine-leader` Lease in `default`.
    pub fn lease_holder(&self) -> Option<String> {
        let lease = self.get(
            "apis/coordination.k8s.io/v1/leases",
            "default",
            "coalmine-leader",
        )?;
        lease["spec"]["holderIdentity"].as_str().map(str::to_string)
    }

    /// Deletes `namespace/name` of `resource` (`api/v1/services`, ...); whether it was there.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> bool {
        let key = (namespace.to_string(), name.to_string());
        self.lock().delete(resource, &key).is_some()
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.lock().get(resource, &(namespace.into(), name.into()))
    }

    pub fn list(&self, resource: &str) -> Vec<Value> {
        self.lock().list(resource, None).1
    }

    /// Drops the watch history, so watches resuming from any version handed out so far
    /// get `410 Gone`; with `close_watches`, the open ones end now and come back.
    pub fn compact(&self, close_watches: bool) {
        self.lock().compact(close_watches);
    }

    /// Ends every open watch (clients resume from their last version).
    pub fn close_watches(&self) {
        self.lock().closer.send_modify(|g| *g += 1);
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Every request so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap()
    }
}

/// What a path names.
struct Target {
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse_target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => (format!("api/{v}"), rest),
        ["apis", g, v, rest @ ..] => (format!("apis/{g}/{v}"), rest),
        _ => return None,
    };
    let s = |x: &&str| Some(x.to_string());
    let (namespace, resource, name, status) = match rest {
        ["namespaces", ns, res, tail @ ..] => (
            s(ns),
            *res,
            tail.first().and_then(s),
            tail.get(1) == Some(&"status"),
        ),
        [res, tail @ ..] if !res.is_empty() => (
            None,
            *res,
            tail.first().and_then(s),
            tail.get(1) == Some(&"status"),
        ),
        _ => return None,
    };
    let resource = format!("{prefix}/{resource}");
    Some(Target {
        resource,
        namespace,
        name,
        status,
    })
}

async fn handle(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let line = format!(
        "{method} {}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    app.requests.lock().unwrap().push(line);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let meta_only = header("accept").contains("as=PartialObjectMetadata");
    match uri.path().trim_end_matches('/') {
        "/version" => {
            return json_response(
                200,
                json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-fake"}),
            )
        }
        "/api" => {
            return json_response(
                200,
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
            )
        }
        "/apis" => return json_response(200, api_groups(&app.store.lock().unwrap())),
        _ => {}
    }
    let Some(t) = parse_target(uri.path()) else {
        return failure(Failure(
            404,
            "NotFound",
            format!("no route for {}", uri.path()),
        ));
    };
    let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    if method == Method::GET && t.name.is_none() && is_watch {
        return watch(app.store, t, query, meta_only);
    }
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        let text = String::from_utf8_lossy(&body);
        let parsed = serde_json::from_slice(&body).map_err(|e| e.to_string());
        match parsed.or_else(|_| coalmine::yaml::value(&text).map_err(|e| e.to_string())) {
            Ok(v) => v,
            Err(e) => return failure(Failure(400, "BadRequest", format!("invalid body: {e}"))),
        }
    };
    let mut st = app.store.lock().unwrap();
    let key: Key = (
        t.namespace.clone().unwrap_or_default(),
        t.name.clone().unwrap_or_default(),
    );
    let result = match (method.clone(), t.name.is_some()) {
        (Method::GET, false) => {
            let (rv, items) = st.list(&t.resource, t.namespace.as_deref());
            let items: Vec<Value> = items.into_iter().filter(|o| matches(&query, o)).collect();
            return json_response(200, list_body(&st, &t.resource, rv, items, meta_only));
        }
        (Method::GET, true) => st
            .get(&t.resource, &key)
            .ok_or_else(|| not_found(&t))
            .map(ok),
        (Method::POST, false) => {
            let mut obj = body;
            if let Some(ns) = &t.namespace {
                obj["metadata"]["namespace"] = json!(ns);
            }
            st.put(&t.resource, obj, Some(true)).map(created)
        }
        (Method::PUT, true) => {
            let mut obj = body;
            if t.status {
                let Some(mut old) = st.get(&t.resource, &key) else {
                    return failure(not_found(&t));
                };
                old["status"] = obj["status"].take();
                old["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"].take();
                obj = old;
            }
            st.put(&t.resource, obj, Some(false)).map(ok)
        }
        (Method::PATCH, true) => {
            let apply = header("content-type").contains("apply-patch");
            let old = st.get(&t.resource, &key);
            match (old, apply) {
                (None, false) => Err(not_found(&t)),
                (old, _) => {
                    let new = old.is_none();
                    let mut obj = old.unwrap_or_else(|| json!({"metadata": {}}));
                    let mut patch = body;
                    if t.status {
                        patch = json!({"status": patch["status"].take()});
                    }
                    merge_patch(&mut obj, &patch);
                    obj["metadata"]["name"] = json!(key.1);
                    if let Some(ns) = &t.namespace {
                        obj["metadata"]["namespace"] = json!(ns);
                    }
                    let rv_given = patch["metadata"]["resourceVersion"].is_string();
                    if !rv_given {
                        obj["metadata"]
                            .as_object_mut()
                            .map(|m| m.remove("resourceVersion"));
                    }
                    let r = st.put(&t.resource, obj, Some(new));
                    r.map(if new { created } else { ok })
                }
            }
        }
        (Method::DELETE, true) => st
            .delete(&t.resource, &key)
            .ok_or_else(|| not_found(&t))
            .map(ok),
        _ => Err(Failure(
            405,
            "MethodNotAllowed",
            format!("{method} not allowed here"),
        )),
    };
    match result {
        Ok((status, obj)) => json_response(status, shape(obj, meta_only)),
        Err(f) => failure(f),
    }
}

fn ok(obj: Value) -> (u16, Value) {
    (200, obj)
}

fn created(obj: Value) -> (u16, Value) {
    (201, obj)
}

fn not_found(t: &Target) -> Failure {
    let name = t.name.clone().unwrap_or_default();
    Failure(
        404,
        "NotFound",
        format!("{} {name:?} not found", t.resource),
    )
}

fn matches(query: &HashMap<String, String>, obj: &Value) -> bool {
    let labels = query
        .get("labelSelector")
        .is_none_or(|s| selects(s, &obj["metadata"]["labels"]));
    labels
        && query
            .get("fieldSelector")
            .is_none_or(|s| selects_fields(s, obj))
}

/// The object as the client asked for it: whole, or its metadata only.
fn shape(obj: Value, meta_only: bool) -> Value {
    if meta_only {
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
    } else {
        obj
    }
}

fn list_body(st: &Store, resource: &str, rv: u64, items: Vec<Value>, meta_only: bool) -> Value {
    let (api_version, kind) = match (meta_only, st.kinds.get(resource)) {
        (true, _) => (
            "meta.k8s.io/v1".to_string(),
            "PartialObjectMetadataList".to_string(),
        ),
        (false, Some((v, k))) => (v.clone(), format!("{k}List")),
        (false, None) => ("v1".to_string(), "List".to_string()),
    };
    let items: Vec<Value> = items.into_iter().map(|o| shape(o, meta_only)).collect();
    json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv.to_string()}, "items": items})
}

fn api_groups(st: &Store) -> Value {
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for resource in st.kinds.keys() {
        if let ["apis", g, v, _] = resource.split('/').collect::<Vec<_>>().as_slice() {
            groups
                .entry(g.to_string())
                .or_default()
                .push(format!("{g}/{v}"));
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(name, mut versions)| {
            versions.dedup();
            let vs: Vec<Value> = versions
                .iter()
                .map(|gv| json!({"groupVersion": gv, "version": gv.split('/').nth(1)}))
                .collect();
            json!({"name": name, "versions": vs, "preferredVersion": vs[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn json_response(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).expect("valid status");
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn failure(f: Failure) -> Response {
    json_response(f.0, f.status())
}
