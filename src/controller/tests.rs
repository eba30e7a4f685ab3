//! The controller's seams under a webhook that blocks until the test lets it answer:
//! status reads do not wait for a release's IO, a command on that release does, and an
//! outcome that went stale (its Rollout deleted meanwhile) is not written.

use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{saved, Command, Controller};
use crate::desired::Desired;
use crate::ingest::parse_documents;
use crate::model::{Kind, ResourceKey};
use crate::rollout::Phase;
use crate::store::Store;

/// A confirm-rollout webhook: tells `arrived` of each call, then answers 200 once
/// `answer` is sent.
struct Gate {
    url: String,
    arrived: mpsc::Receiver<()>,
    answer: Option<oneshot::Sender<()>>,
}

async fn gate() -> Gate {
    let (arrived_tx, arrived) = mpsc::channel(8);
    let (answer, answer_rx) = oneshot::channel::<()>();
    let answer_rx = Arc::new(Mutex::new(Some(answer_rx)));
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move || {
            let (arrived_tx, answer_rx) = (arrived_tx.clone(), answer_rx.clone());
            async move {
                let _ = arrived_tx.send(()).await;
                if let Some(rx) = answer_rx.lock().await.take() {
                    let _ = rx.await;
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Gate {
        url,
        arrived,
        answer: Some(answer),
    }
}

fn docs(webhook: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: petstore}}
spec:
  hosts: [petstore.default.svc.cluster.local]
  ports: [{{number: 80, name: http}}]
  resolution: STATIC
  endpoints: [{{address: 10.0.0.1, labels: {{v: '1'}}}}, {{address: 10.0.0.2, labels: {{v: '2'}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: petstore}}
spec:
  host: petstore
  subsets: [{{name: v1, labels: {{v: '1'}}}}, {{name: v2, labels: {{v: '2'}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: petstore}}
spec:
  hosts: [petstore.example.com]
  http: [{{route: [{{destination: {{host: petstore, subset: v1}}}}]}}]
---
apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {{name: petstore}}
spec:
  target: {{kind: VirtualService, name: petstore}}
  stable: {{host: petstore, subset: v1}}
  canary: {{host: petstore, subset: v2}}
  analysis:
    stepWeight: 20
    webhooks: [{{name: gate, type: confirm-rollout, url: '{webhook}'}}]
"
    )
}

struct Fixture {
    desired: Arc<Desired>,
    controller: Arc<Controller>,
    key: ResourceKey,
    _dir: tempfile::TempDir,
}

fn fixture(webhook: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 100).unwrap();
    let desired = Arc::new(Desired::open(store, Default::default(), Default::default()).unwrap());
    desired
        .apply(parse_documents(&docs(webhook)).unwrap())
        .unwrap();
    let controller = Arc::new(Controller::new(
        desired.clone(),
        Arc::default(),
        Arc::default(),
    ));
    Fixture {
        desired,
        controller,
        key: ResourceKey::new(Kind::Rollout, "default", "petstore"),
        _dir: dir,
    }
}

/// Starts the release (its confirm-rollout webhook called) in a task of its own.
fn start(f: &Fixture) -> tokio::task::JoinHandle<()> {
    let (controller, config) = (f.controller.clone(), f.desired.published().config);
    tokio::spawn(async move { controller.sync(&config.rollouts).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_do_not_wait_for_a_release_in_flight() {
    let mut gate = gate().await;
    let f = fixture(&gate.url);
    let sync = start(&f);
    gate.arrived.recv().await.expect("the webhook is called");

    // The release's work is in flight (the webhook has not answered).
    let status = f
        .controller
        .status(&f.key)
        .now_or_never()
        .expect("a status read completes while the release's IO is in flight")
        .expect("the Rollout has a status");
    assert_eq!(status.phase, Phase::Initializing);
    // A command on that release waits for its work: the two never interleave.
    let pause = f.controller.command(&f.key, Command::Pause).now_or_never();
    assert!(pause.is_none(), "a command waits for the release's work");

    gate.answer.take().unwrap().send(()).unwrap();
    sync.await.unwrap();
    let status = f.controller.status(&f.key).await.unwrap();
    assert_eq!(status.phase, Phase::Progressing);
    let saved = saved::rollouts(&f.desired).await;
    assert!(
        saved.contains_key(&f.key.to_string()),
        "the outcome is saved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_deleted_while_its_io_runs_writes_nothing() {
    let mut gate = gate().await;
    let f = fixture(&gate.url);
    let sync = start(&f);
    gate.arrived.recv().await.expect("the webhook is called");

    let deleted = f.desired.delete(std::slice::from_ref(&f.key)).unwrap();
    gate.answer.take().unwrap().send(()).unwrap();
    sync.await.unwrap();

    assert_eq!(
        f.desired.published().revision,
        deleted.revision,
        "no traffic step is written for a deleted Rollout"
    );
    let saved = saved::rollouts(&f.desired).await;
    assert!(
        !saved.contains_key(&f.key.to_string()),
        "the stale outcome is not saved"
    );
}
