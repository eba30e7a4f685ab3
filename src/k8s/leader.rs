//! Leader election over a `coordination.k8s.io/v1` Lease, for the work that must
//! happen once however many replicas run (status writes, rollout steps).
//!
//! Every replica runs [`spawn`]; the one holding the Lease publishes `true` on its
//! `watch::Receiver<bool>`, every other one `false`. The pure part is [`decide`]: given
//! the Lease as read and the time, create it, renew it (we hold it), take it over (it
//! expired, or nobody holds it) or follow (another replica holds a valid one). Writes
//! carry the `resourceVersion` read, so two replicas racing for an expired Lease
//! cannot both win: the loser gets a 409 and follows.
//!
//! A leader that cannot renew (API errors, conflicts, timeouts) steps down once
//! [`LeaseConfig::renew_deadline`] has passed since its last renewal: two thirds of the
//! lease duration, so it has stopped before any other replica may take over.
//! Nothing here knows what the leader does.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// The Lease's name, in the pod's namespace.
pub const LEASE_NAME: &str = "coalmine-leader";

/// Where and how long the Lease is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's name in `spec.holderIdentity`.
    pub identity: String,
    /// `spec.leaseDurationSeconds`: how long a Lease stays valid after its last renewal.
    pub duration: Duration,
    /// How often the Lease is read and renewed (or tried for).
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// `coalmine-leader` in `POD_NAMESPACE` (or `default`), held as `POD_NAME` (or the
    /// host name), 15 s, renewed every 5 s; `COALMINE_LEASE_DURATION` (e.g. `3s`)
    /// changes the duration, renewed every third of it.
    pub fn from_env() -> LeaseConfig {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let identity = var("POD_NAME")
            .or_else(|| var("HOSTNAME"))
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| format!("coalmine-{}", std::process::id()));
        let duration = var("COALMINE_LEASE_DURATION")
            .and_then(|d| humantime::parse_duration(&d).ok())
            .filter(|d| d.as_secs() >= 1)
            .unwrap_or(Duration::from_secs(15));
        LeaseConfig {
            name: LEASE_NAME.into(),
            namespace: var("POD_NAMESPACE").unwrap_or_else(|| "default".into()),
            identity,
            duration,
            renew_every: duration / 3,
        }
    }

    /// A leader that has not renewed for this long steps down.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// What to do with the Lease as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// There is none: create it, holding it.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Nobody holds it, or its holder let it expire: take it.
    TakeOver,
    /// Another replica holds a valid Lease.
    Follow,
}

/// The pure decision, for the Lease as read at `now`.
pub fn decide(lease: Option<&Lease>, me: &str, now: Timestamp) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == me => Decision::Renew,
        None | Some("") => Decision::TakeOver,
        Some(_) if expired(&spec, now) => Decision::TakeOver,
        Some(_) => Decision::Follow,
    }
}

/// Whether the holder's last renewal (or acquisition) is older than its duration.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(MicroTime(renewed)) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    match renewed.checked_add(SignedDuration::from_secs(seconds)) {
        Ok(until) => until <= now,
        Err(_) => false,
    }
}

/// The Lease to write for `decision` (not for [`Decision::Follow`]).
pub fn to_lease(
    config: &LeaseConfig,
    read: Option<&Lease>,
    decision: Decision,
    now: Timestamp,
) -> Lease {
    let mut lease = read.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(config.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    let mut spec = lease.spec.take().unwrap_or_default();
    let seconds = i32::try_from(config.duration.as_secs().max(1)).unwrap_or(i32::MAX);
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(MicroTime(now));
    match decision {
        Decision::Create => {
            spec.holder_identity = Some(config.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(0);
        }
        Decision::TakeOver => {
            spec.holder_identity = Some(config.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        Decision::Renew | Decision::Follow => {}
    }
    lease.spec = Some(spec);
    lease
}

/// Starts the election loop; the receiver says whether this replica leads now. The
/// loop runs until the handle is aborted or every receiver is dropped.
pub fn spawn(client: Client, config: LeaseConfig) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let api = Api::<Lease>::namespaced(client, &config.namespace);
    let handle = tokio::spawn(run(api, config, tx));
    (rx, handle)
}

async fn run(api: Api<Lease>, config: LeaseConfig, leader: watch::Sender<bool>) {
    let mut last_renewed: Option<Instant> = None;
    let mut tick = tokio::time::interval(config.renew_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if leader.is_closed() {
            return;
        }
        let outcome = tokio::time::timeout(config.renew_every, attempt(&api, &config)).await;
        let now = Instant::now();
        match outcome {
            Ok(Ok(true)) => last_renewed = Some(now),
            Ok(Ok(false)) => last_renewed = None,
            Ok(Err(e)) => debug!(lease = %config.name, "lease renewal failed: {e}"),
            Err(_) => debug!(lease = %config.name, "lease renewal timed out"),
        }
        let leads = last_renewed.is_some_and(|at| now.duration_since(at) < config.renew_deadline());
        let was = *leader.borrow();
        if leads != was {
            match leads {
                true => {
                    info!(identity = %config.identity, lease = %config.name, "became the leader")
                }
                false => {
                    warn!(identity = %config.identity, lease = %config.name, "no longer the leader")
                }
            }
            leader.send_replace(leads);
        }
    }
}

/// Reads the Lease and acts on [`decide`]: whether we hold it after this round.
async fn attempt(api: &Api<Lease>, config: &LeaseConfig) -> kube::Result<bool> {
    let read = api.get_opt(&config.name).await?;
    let now = Timestamp::now();
    let decision = decide(read.as_ref(), &config.identity, now);
    let pp = PostParams::default();
    match decision {
        Decision::Follow => Ok(false),
        Decision::Create => {
            let lease = to_lease(config, None, decision, now);
            api.create(&pp, &lease).await.map(|_| true)
        }
        Decision::Renew | Decision::TakeOver => {
            let lease = to_lease(config, read.as_ref(), decision, now);
            api.replace(&config.name, &pp, &lease).await.map(|_| true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_config(identity: &str) -> LeaseConfig {
        LeaseConfig {
            name: LEASE_NAME.into(),
            namespace: "default".into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn mk_lease(holder: &str, renewed: i64) -> Lease {
        to_lease(&mk_config(holder), None, Decision::Create, at(renewed))
    }

    #[test]
    fn creates_a_missing_lease() {
        assert_eq!(decide(None, "a", at(0)), Decision::Create);
        let lease = mk_lease("a", 0);
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(lease.metadata.name.as_deref(), Some(LEASE_NAME));
    }

    #[test]
    fn the_holder_renews() {
        let lease = mk_lease("a", 0);
        assert_eq!(decide(Some(&lease), "a", at(3)), Decision::Renew);
        // Even past its duration: nobody took it, so it is still ours to renew.
        assert_eq!(decide(Some(&lease), "a", at(60)), Decision::Renew);
        let renewed = to_lease(&mk_config("a"), Some(&lease), Decision::Renew, at(5));
        let spec = renewed.spec.unwrap();
        assert_eq!(spec.renew_time, Some(MicroTime(at(5))));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(spec.lease_transitions, Some(0));
    }

    #[test]
    fn keeps_off_a_valid_lease_held_by_another() {
        let lease = mk_lease("a", 0);
        assert_eq!(decide(Some(&lease), "b", at(0)), Decision::Follow);
        assert_eq!(decide(Some(&lease), "b", at(14)), Decision::Follow);
    }

    #[test]
    fn takes_over_once_expired() {
        let lease = mk_lease("a", 0);
        assert_eq!(decide(Some(&lease), "b", at(15)), Decision::TakeOver);
        assert_eq!(decide(Some(&lease), "b", at(100)), Decision::TakeOver);
        let taken = to_lease(&mk_config("b"), Some(&lease), Decision::TakeOver, at(15));
        let spec = taken.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(15))));
        assert_eq!(spec.lease_transitions, Some(1));
    }

    #[test]
    fn takes_a_released_or_timeless_lease() {
        let mut lease = mk_lease("a", 0);
        lease.spec.as_mut().unwrap().holder_identity = None;
        assert_eq!(decide(Some(&lease), "b", at(1)), Decision::TakeOver);
        let mut lease = mk_lease("a", 0);
        let spec = lease.spec.as_mut().unwrap();
        spec.renew_time = None;
        spec.acquire_time = None;
        assert_eq!(decide(Some(&lease), "b", at(1)), Decision::TakeOver);
    }

    #[test]
    fn steps_down_before_another_may_take_over() {
        let config = mk_config("a");
        assert!(config.renew_deadline() < config.duration);
        assert!(config.renew_deadline() > config.renew_every);
    }
}
