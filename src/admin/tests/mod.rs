//! Router tests (`oneshot`) for every endpoint: success, and each error class leaving
//! the stored revision where it was.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

use super::*;
use crate::ledger::ProxyRecord;
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::xds::NodeInfo;

const PETSTORE: &str = include_str!("../../../examples/weighted-canary.yaml");

struct Fixture {
    state: AdminState,
    _dir: tempfile::TempDir,
}

fn mk_fixture(token: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let desired = Arc::new(
        Desired::open(
            Store::open(dir.path(), 100).unwrap(),
            Default::default(),
            Default::default(),
        )
        .unwrap(),
    );
    let published = desired.published();
    let (_tx, snapshots) = watch::channel(Arc::new(Snapshot::new(
        published.config,
        published.revision,
    )));
    Fixture {
        state: AdminState {
            rollouts: Arc::new(crate::controller::Controller::new(
                desired.clone(),
                Arc::default(),
                Arc::default(),
            )),
            desired,
            ledger: Arc::default(),
            metrics: Arc::default(),
            snapshots,
            token: token.map(Arc::from),
            ready: Arc::new(AtomicBool::new(true)),
        },
        _dir: dir,
    }
}

async fn call(
    state: &AdminState,
    method: &str,
    uri: &str,
    body: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/yaml");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

fn revision(state: &AdminState) -> u64 {
    state.desired.published().revision
}

#[tokio::test]
async fn apply_creates_one_revision_and_a_repeat_creates_none() {
    let f = mk_fixture(None);
    let (status, body) = call(&f.state, "POST", "/api/v1/apply", PETSTORE, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], 1);
    assert_eq!(body["changed"].as_array().unwrap().len(), 3);
    assert_eq!(body["changed"][0]["action"], "created");
    let (status, body) = call(&f.state, "POST", "/api/v1/apply", PETSTORE, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["revision"], 1);
    assert!(body["changed"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn apply_accepts_json_bodies() {
    let f = mk_fixture(None);
    let docs: Vec<Value> = crate::yaml::documents(PETSTORE).unwrap();
    let (status, body) = call(
        &f.state,
        "POST",
        "/api/v1/apply",
        &serde_json::to_string(&docs).unwrap(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], 1);
}

#[tokio::test]
async fn bad_yaml_is_400_and_changes_nothing() {
    let f = mk_fixture(None);
    call(&f.state, "POST", "/api/v1/apply", PETSTORE, None).await;
    let (status, body) = call(&f.state, "POST", "/api/v1/apply", "kind: [unclosed", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!body["error"].as_str().unwrap().is_empty());
    assert_eq!(revision(&f.state), 1);
}

#[tokio::test]
async fn unknown_field_names_resource_and_field_and_changes_nothing() {
    let f = mk_fixture(None);
    call(&f.state, "POST", "/api/v1/apply", PETSTORE, None).await;
    let bad = PETSTORE.replace(
        "  - name: canary\n",
        "  - name: canary\n    mirrorPolicy: {}\n",
    );
    let (status, body) = call(&f.state, "POST", "/api/v1/apply", &bad, None).await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{status} {body}"
    );
    let detail = &body["details"][0];
    assert_eq!(
        detail["resource"], "VirtualService default/petstore",
        "{body}"
    );
    assert_eq!(detail["field"], "spec.http[0].mirrorPolicy", "{body}");
    assert_eq!(revision(&f.state), 1);
}

#[tokio::test]
async fn bad_reference_is_422_and_changes_nothing() {
    let f = mk_fixture(None);
    call(&f.state, "POST", "/api/v1/apply", PETSTORE, None).await;
    let bad = PETSTORE.replace("subset: v2}", "subset: v3}");
    let (status, body) = call(&f.state, "POST", "/api/v1/apply", &bad, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["details"][0]["field"], "spec.http[0].route[1].destination.subset",
        "{body}"
    );
    assert_eq!(revision(&f.state), 1);
    let (_, list) = call(&f.state, "GET", "/api/v1/revisions", "", None).await;
    assert_eq!(list["revisions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_weight_names_the_field() {
    let f = mk_fixture(None);
    let bad = PETSTORE.replacen("weight: 50", "weight: 150", 1);
    let (status, body) = call(&f.state, "POST", "/api/v1/apply", &bad, None).await;
    assert!(status.is_client_error(), "{status}");
    let fields: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert!(
        fields.iter().any(|f| f.starts_with("spec.http[0].route")),
        "{body}"
    );
    assert_eq!(revision(&f.state), 0);
}

#[tokio::test]
async fn wrong_or_missing_token_is_401_and_changes_nothing() {
    let f = mk_fixture(Some("s3cret"));
    for token in [None, Some("wrong")] {
        let (status, _) = call(&f.state, "POST", "/api/v1/apply", PETSTORE, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&f.state, "GET", "/api/v1/resources", "", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(revision(&f.state), 0);
    let (status, _) = call(&f.state, "POST", "/api/v1/apply", PETSTORE, Some("s3cret")).await;
    assert_eq!(status, StatusCode::OK);
    // Health, readiness and metrics stay open for probes and scrapers.
    assert_eq!(
        call(&f.state, "GET", "/healthz", "", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&f.state, "GET", "/readyz", "", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&f.state, "GET", "/metrics", "", None).await.0,
        StatusCode::OK
    );
}

/// A POST to `uri` with these extra headers; the status.
#[tokio::test]
async fn oversized_body_is_413_and_changes_nothing() {
    let f = mk_fixture(None);
    let huge = format!("{PETSTORE}\n# {}", "x".repeat(MAX_BODY_BYTES + 1));
    let (status, body) = call(&f.state, "POST", "/api/v1/apply", &huge, None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("larger than"));
    assert_eq!(revision(&f.state), 0);
}

#[tokio::test]
async fn dry_run_reports_envoy_changes_and_applies_nothing() {
    let f = mk_fixture(None);
    let (status, body) = call(
        &f.state,
        "POST",
        "/api/v1/apply?dryRun=true",
        PETSTORE,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dryRun"], true);
    let changes = body["changed"].as_array().unwrap();
    let has = |t: &str, name: &str| {
        changes
            .iter()
            .any(|c| c["type"] == t && c["name"] == name && c["action"] == "added")
    };
    assert!(has("Cluster", "outbound|80|v1|petstore"), "{body}");
    assert!(
        has("ClusterLoadAssignment", "outbound|80|v2|petstore"),
        "{body}"
    );
    assert!(
        changes.iter().any(|c| c["type"] == "RouteConfiguration"),
        "{body}"
    );
    assert_eq!(revision(&f.state), 0);
}

#[tokio::test]
async fn resources_get_list_and_delete() {
    let f = mk_fixture(None);
    call(&f.state, "POST", "/api/v1/apply", PETSTORE, None).await;
    let (status, list) = call(
        &f.state,
        "GET",
        "/api/v1/resources?kind=VirtualService",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["resources"].as_array().unwrap().len(), 1);
    assert_eq!(list["resources"][0]["status"]["state"], "Accepted");
    let (status, all) = call(&f.state, "GET", "/api/v1/resources", "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["resources"].as_array().unwrap().len(), 3);
    let (status, one) = call(
        &f.state,
        "GET",
        "/api/v1/resources/virtualservices/default/petstore",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["metadata"]["name"], "petstore");

    let (status, _) = call(
        &f.state,
        "GET",
        "/api/v1/resources/VirtualService/default/nope",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &f.state,
        "GET",
        "/api/v1/resources/Pod/default/petstore",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Deleting the DestinationRule would leave subsets undefined: rejected, nothing changes.
    let (status, body) = call(
        &f.state,
        "DELETE",
        "/api/v1/resources/DestinationRule/default/petstore",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(revision(&f.state), 1);
    let (status, body) = call(
        &f.state,
        "DELETE",
        "/api/v1/resources/VirtualService/default/petstore",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], 2);
    assert_eq!(body["changed"][0]["action"], "deleted");
    let (status, _) = call(
        &f.state,
        "DELETE",
        "/api/v1/resources/VirtualService/default/petstore",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(revision(&f.state), 2);
}

#[tokio::test]
async fn revisions_list_restore_and_status() {
    let f = mk_fixture(None);
    call(&f.state, "POST", "/api/v1/apply", PETSTORE, None).await;
    let switched =
        PETSTORE
            .replacen("weight: 50", "weight: 0", 1)
            .replacen("weight: 50", "weight: 100", 1);
    call(&f.state, "POST", "/api/v1/apply", &switched, None).await;
    let (status, list) = call(&f.state, "GET", "/api/v1/revisions", "", None).await;
    assert_eq!(status, StatusCode::OK);
    let revs = list["revisions"].as_array().unwrap();
    assert_eq!(revs.len(), 2);
    assert_eq!(revs[0]["revision"], 1);
    assert!(revs[0]["created"].as_str().unwrap().ends_with('Z'));
    assert!(!revs[1]["summary"].as_str().unwrap().is_empty());

    let (status, body) = call(&f.state, "POST", "/api/v1/revisions/1/restore", "", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], 3);
    let restored = f
        .state
        .desired
        .get(&ResourceKey::new(
            Kind::VirtualService,
            "default",
            "petstore",
        ))
        .unwrap();
    assert_eq!(restored.value["spec"]["http"][0]["route"][1]["weight"], 50);

    let (status, _) = call(&f.state, "POST", "/api/v1/revisions/99/restore", "", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(revision(&f.state), 3);

    let (status, body) = call(&f.state, "GET", "/api/v1/revisions/3/status", "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["proxies"], 0);
    let (status, _) = call(&f.state, "GET", "/api/v1/revisions/42/status", "", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

use crate::model::{Kind, ResourceKey};

#[tokio::test]
async fn proxies_and_config_dump_show_the_ledger() {
    let f = mk_fixture(None);
    let (status, body) = call(&f.state, "GET", "/api/v1/proxies", "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["proxies"].as_array().unwrap().is_empty());
    let node = NodeInfo {
        id: "gw-1".into(),
        cluster: "edge".into(),
        labels: [("app".to_string(), "gw".to_string())].into(),
        ..Default::default()
    };
    f.state.ledger.connect(ProxyRecord::new(node, 0));
    let (_, body) = call(&f.state, "GET", "/api/v1/proxies", "", None).await;
    assert_eq!(body["proxies"][0]["node"], "gw-1");
    assert_eq!(body["proxies"][0]["labels"]["app"], "gw");
    assert!(body["proxies"][0]["types"]["cds"].is_object());

    let (status, dump) = call(&f.state, "GET", "/api/v1/config_dump?node=gw-1", "", None).await;
    assert_eq!(status, StatusCode::OK, "{dump}");
    assert_eq!(dump["listeners"][0]["name"], "0.0.0.0_10000", "{dump}");
    assert!(dump["listeners"][0]["resource"]["@type"]
        .as_str()
        .unwrap()
        .ends_with("Listener"));
    let (status, _) = call(&f.state, "GET", "/api/v1/config_dump?node=nobody", "", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&f.state, "GET", "/api/v1/config_dump", "", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn openapi_document_lists_the_paths() {
    let f = mk_fixture(None);
    let (status, doc) = call(&f.state, "GET", "/api/v1/openapi.json", "", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/v1/apply",
        "/api/v1/proxies",
        "/api/v1/revisions/{revision}/restore",
        "/api/v1/config_dump",
    ] {
        assert!(doc["paths"][path].is_object(), "missing {path}");
    }
}

#[tokio::test]
async fn readyz_is_503_until_ready() {
    let f = mk_fixture(None);
    f.state
        .ready
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        call(&f.state, "GET", "/readyz", "", None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// A GET without a token, answered as raw text with its headers.
mod web;
