//! Leader election over a `coordination.k8s.io/v1` Lease, with the real kube-rs client
//! against the in-process fake API server: two replicas (two election loops in one
//! test, short durations) give exactly one leader; stopping it hands over within the
//! lease duration; a leader cut off from the API server steps down in time.

mod support;

use std::time::{Duration, Instant};

use coalmine::k8s::leader::{self, LeaseConfig, LEASE_NAME};
use support::fake_apiserver::FakeApiServer;
use tokio::runtime::Runtime;
use tokio::sync::watch;

const LEASES: &str = "apis/coordination.k8s.io/v1/leases";
const DURATION: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_millis(200);

fn mk_config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        name: LEASE_NAME.into(),
        namespace: "default".into(),
        identity: identity.into(),
        duration: DURATION,
        renew_every: RENEW,
    }
}

fn client(api: &FakeApiServer) -> kube::Client {
    let config = kube::Config::new(api.url().parse().expect("url"));
    kube::Client::try_from(config).expect("client")
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Polls `cond` every 20 ms for up to `timeout`.
async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

fn leaders(replicas: &[&watch::Receiver<bool>]) -> usize {
    replicas.iter().filter(|r| *r.borrow()).count()
}

#[test]
fn exactly_one_replica_leads_and_the_other_takes_over_when_it_stops() {
    let api = FakeApiServer::start();
    let rt = runtime();
    rt.block_on(async {
        let (a, a_task) = leader::spawn(client(&api), mk_config("replica-a"));
        let (b, b_task) = leader::spawn(client(&api), mk_config("replica-b"));
        assert!(
            eventually(DURATION * 2, || leaders(&[&a, &b]) == 1).await,
            "no leader was elected"
        );
        // Held steadily: never two leaders, never a change of hands, for a while.
        let first = if *a.borrow() {
            "replica-a"
        } else {
            "replica-b"
        };
        let end = Instant::now() + DURATION;
        while Instant::now() < end {
            assert_eq!(leaders(&[&a, &b]), 1, "exactly one leader at all times");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let lease = api
            .get(LEASES, "default", LEASE_NAME)
            .expect("the lease exists");
        assert_eq!(lease["spec"]["holderIdentity"], first);
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 2);

        // The leader stops (its process ends): the other takes over once the lease
        // expires, within its duration after the last renewal.
        let (survivor, stopped) = match first {
            "replica-a" => (&b, a_task),
            _ => (&a, b_task),
        };
        stopped.abort();
        let stopped_at = Instant::now();
        assert!(
            eventually(DURATION + RENEW * 3, || *survivor.borrow()).await,
            "the other replica never took over"
        );
        let took = stopped_at.elapsed();
        assert!(took <= DURATION + RENEW * 3, "took over after {took:?}");
        let lease = api
            .get(LEASES, "default", LEASE_NAME)
            .expect("the lease exists");
        assert_ne!(lease["spec"]["holderIdentity"], first);
        assert_eq!(lease["spec"]["leaseTransitions"], 1);
    });
}

#[test]
fn a_leader_that_cannot_renew_steps_down_within_the_duration() {
    let api = FakeApiServer::start();
    let rt = runtime();
    let (a, _task) = rt.block_on(async {
        let (a, task) = leader::spawn(client(&api), mk_config("replica-a"));
        assert!(eventually(DURATION * 2, || *a.borrow()).await, "never led");
        (a, task)
    });
    // The API server goes away: renewals fail.
    drop(api);
    let cut_at = Instant::now();
    rt.block_on(async {
        assert!(
            eventually(DURATION, || !*a.borrow()).await,
            "still the leader {:?} after losing the API server",
            cut_at.elapsed()
        );
    });
}

#[test]
fn a_replica_keeps_off_a_lease_another_holds() {
    let api = FakeApiServer::start();
    let far_future = "2999-01-01T00:00:00.000000Z";
    api.apply(serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE_NAME, "namespace": "default"},
        "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 2,
                 "acquireTime": far_future, "renewTime": far_future}
    }));
    let rt = runtime();
    rt.block_on(async {
        let (b, _task) = leader::spawn(client(&api), mk_config("replica-b"));
        tokio::time::sleep(DURATION).await;
        assert!(!*b.borrow(), "took a lease that someone else holds");
    });
    let lease = api.get(LEASES, "default", LEASE_NAME).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "someone-else");
}
