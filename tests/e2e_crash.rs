//! Crash safety end to end: 100 applies through the REST API while another thread
//! SIGKILLs `coalmine serve` at random moments; after every restart on the same data
//! dir the stored state is exactly the last acknowledged apply or the one in flight,
//! and a restarted control plane serves the same versions for the same revision.

mod support;

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::config::docs;
use support::{dump, free_port, poll_until, traffic, Coalmine, Envoy, GatewaySpec};

const APPLIES: u64 = 100;

/// xorshift64*: enough randomness for kill timing, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Generation `g` of the configuration: every resource carries `g` (weights, labels),
/// so a stored mix of two applies cannot go unnoticed.
fn generation(g: u64, gw: &GatewaySpec, ports: (u16, u16)) -> String {
    let se = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: shop}}
spec:
  hosts: [shop]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{version: v1, gen: \"{g}\"}}}}
  - {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{version: v2, gen: \"{g}\"}}}}
",
        ports.0, ports.1
    );
    let dr = format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: shop}}
spec:
  host: shop
  subsets:
  - {{name: v1, labels: {{version: v1, gen: \"{g}\"}}}}
  - {{name: v2, labels: {{version: v2, gen: \"{g}\"}}}}
"
    );
    let vs = support::config::weighted_virtual_service(
        "shop",
        &gw.name,
        "shop",
        &[("v1", g as u32), ("v2", 100 - g as u32)],
    );
    docs(&[&gw.yaml(), &se, &dr, &vs])
}

/// `(kind, name) -> spec`.
type Specs = BTreeMap<(String, String), Value>;

/// The specs of a YAML stream's documents, or of the resources coalmine stores.
fn specs(resources: &[Value]) -> Specs {
    resources
        .iter()
        .map(|r| {
            let key = (r["kind"].as_str().unwrap_or("?").to_string(), {
                r["metadata"]["name"].as_str().unwrap_or("?").to_string()
            });
            (key, r["spec"].clone())
        })
        .collect()
}

fn specs_of_yaml(yaml: &str) -> Specs {
    let docs: Vec<Value> = coalmine::yaml::documents(yaml).expect("yaml");
    specs(&docs)
}

fn get_json(port: u16, path: &str) -> io::Result<Value> {
    let r = traffic::get(port, "localhost", path, &[])?;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    Ok(serde_json::from_str(&r.body).expect("json"))
}

/// What the restarted coalmine stores: the specs and the latest revision number.
fn stored(port: u16) -> io::Result<(Specs, u64)> {
    let resources = get_json(port, "/api/v1/resources")?;
    let revisions = get_json(port, "/api/v1/revisions")?;
    let list = resources["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let latest = revisions["revisions"]
        .as_array()
        .and_then(|r| r.last())
        .map_or(0, |r| r["revision"].as_u64().expect("revision"));
    Ok((specs(&list), latest))
}

/// POST /api/v1/apply; `Ok(revision)` once acknowledged, `Err` when the server died.
fn apply(port: u16, yaml: &str) -> io::Result<u64> {
    let headers = [("content-type", "application/yaml")];
    let r = traffic::request(
        port,
        "POST",
        "localhost",
        "/api/v1/apply",
        &headers,
        yaml.as_bytes(),
    )?;
    assert_eq!(r.status, 200, "apply: {}", r.body);
    let body: Value = serde_json::from_str(&r.body).expect("json");
    Ok(body["revision"].as_u64().expect("revision"))
}

/// Once the proxy's stream serves `revision` with every type ACKed: the versions
/// coalmine serves that node (`/api/v1/config_dump`, by type and name), and the
/// versions its ledger has ACKed (by type).
fn served_versions(
    coalmine: &Coalmine,
    node: &str,
    revision: u64,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut acked = BTreeMap::new();
    let in_sync = poll_until(Duration::from_secs(30), || {
        let Ok(list) = get_json(coalmine.admin_port(), "/api/v1/proxies") else {
            return false;
        };
        let Some(p) = list["proxies"].as_array().into_iter().flatten().find(|p| {
            p["node"] == node
                && p["revision"] == revision
                && ["cds", "eds", "lds", "rds"].iter().all(|t| {
                    let t = &p["types"][t];
                    t["pending"] == false && t["acked"].is_string()
                })
        }) else {
            return false;
        };
        // Types the proxy never subscribed to (sds without TLS) hold nothing.
        for (kind, t) in p["types"].as_object().into_iter().flatten() {
            if let Some(version) = t["acked"].as_str() {
                acked.insert(kind.clone(), version.to_string());
            }
        }
        true
    });
    assert!(in_sync, "{node} never ACKed revision {revision}");
    let dump = get_json(
        coalmine.admin_port(),
        &format!("/api/v1/config_dump?node={node}"),
    )
    .expect("config_dump");
    assert_eq!(dump["revision"], revision, "{dump}");
    let mut versions = BTreeMap::new();
    for kind in ["clusters", "endpoints", "listeners", "routes"] {
        for e in dump[kind].as_array().into_iter().flatten() {
            let name = format!("{kind}/{}", e["name"].as_str().unwrap_or("?"));
            versions.insert(name, e["version"].as_str().unwrap_or("?").to_string());
        }
    }
    assert!(versions.len() >= 4, "{dump}");
    (versions, acked)
}

/// Envoy's own versions by type, in the ledger's shape.
fn envoy_versions(envoy: &Envoy) -> BTreeMap<String, String> {
    dump::version_infos(envoy)
        .into_iter()
        .map(|(kind, set)| {
            assert_eq!(set.len(), 1, "envoy {kind} versions {set:?}");
            (kind.to_string(), set.into_iter().next().expect("one"))
        })
        .collect()
}

#[test]
fn sigkill_at_random_never_loses_or_mixes_an_acknowledged_apply() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed: {seed} (CRASH_SEED={seed} to replay)");
    let gw = GatewaySpec::new("crash");
    let ports = (free_port(), free_port());
    let gen = |g: u64| generation(g, &gw, ports);

    let coalmine = Arc::new(Mutex::new(Coalmine::start_bare(&[])));
    let port = coalmine.lock().unwrap().admin_port();
    assert_eq!(apply(port, &gen(1)).expect("first apply"), 1);
    // The Envoy connects once its Gateway exists (never the default :10000).
    let envoy = Envoy::start(
        &coalmine
            .lock()
            .unwrap()
            .bootstrap(&gw.app, &gw.labels(), false),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU32::new(0));
    let progress = Arc::new(AtomicU64::new(1));
    let killer = {
        let (coalmine, stop, kills) = (coalmine.clone(), stop.clone(), kills.clone());
        let progress = progress.clone();
        thread::spawn(move || {
            let mut rng = Rng(seed | 1);
            // Kills come 2-62 ms apart, and 20 ms later for each kill in a row that no
            // apply got through: on a loaded machine, where an apply takes longer, the
            // killer backs off instead of starving the test (no time limit decides).
            let (mut seen, mut streak) = (1u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let now = progress.load(Ordering::Relaxed);
                if now != seen {
                    (seen, streak) = (now, 0);
                }
                thread::sleep(Duration::from_millis(2 + rng.below(60) + 20 * streak));
                streak += 1;
                let mut c = coalmine.lock().unwrap();
                if c.is_running() && !stop.load(Ordering::Relaxed) {
                    c.kill9();
                    kills.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let started = Instant::now();
    let (mut acked, mut inflight_stored, mut restarts) = (1u64, 0u32, 0u32);
    while acked < APPLIES {
        // A hang guard only: the killer's back-off keeps the test moving under load.
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no progress: {acked} acked"
        );
        let next = acked + 1;
        let Err(e) = apply(port, &gen(next)).map(|rev| {
            // Each generation is one revision: retrying a stored one makes none.
            assert_eq!(
                rev, next,
                "apply of generation {next} answered revision {rev}"
            );
            acked = next;
            progress.store(acked, Ordering::Relaxed);
        }) else {
            continue;
        };
        // The server died (or is dying) during or before this apply: restart, check.
        let mut c = coalmine.lock().unwrap();
        if c.is_running() {
            thread::sleep(Duration::from_millis(20));
            assert!(
                !c.is_running(),
                "apply failed ({e}) but coalmine is running"
            );
        }
        c.restart();
        restarts += 1;
        // Checked under the lock: the killer cannot strike before the check is done.
        let (specs, latest) = stored(port).expect("state of the restarted coalmine");
        if specs == specs_of_yaml(&gen(acked)) {
            assert_eq!(
                latest, acked,
                "content of generation {acked}, revision {latest}"
            );
        } else if specs == specs_of_yaml(&gen(next)) {
            assert_eq!(
                latest, next,
                "content of generation {next}, revision {latest}"
            );
            inflight_stored += 1;
        } else {
            panic!(
                "after a SIGKILL the store holds neither the acknowledged generation {acked} \
                 nor the in-flight {next} (revision {latest}): {specs:?}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    killer.join().expect("killer thread");
    let kills = kills.load(Ordering::Relaxed);
    println!(
        "{APPLIES} applies acknowledged in {:?}: {kills} SIGKILLs, {restarts} restarts, \
         {inflight_stored} in-flight applies found stored",
        started.elapsed()
    );
    assert!(kills >= 5, "only {kills} kills: the test did not test much");

    // Same revision, same versions, before a SIGKILL and after the restart, both in
    // what coalmine serves and in what the reconnected Envoy holds.
    let mut c = coalmine.lock().unwrap();
    if !c.is_running() {
        c.restart();
    }
    let before = served_versions(&c, &gw.app, APPLIES);
    assert_eq!(
        envoy_versions(&envoy),
        before.1,
        "envoy holds what the ledger says"
    );
    c.kill9();
    c.restart();
    let after = served_versions(&c, &gw.app, APPLIES);
    assert_eq!(
        before.0, after.0,
        "versions served for revision {APPLIES} changed"
    );
    assert_eq!(
        before.1, after.1,
        "versions ACKed for revision {APPLIES} changed"
    );
    assert_eq!(envoy_versions(&envoy), after.1);
}
