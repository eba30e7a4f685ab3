//! The README's five-minute quickstart, step by step, as a user runs it: `coalmine
//! serve`, `coalmine apply -f examples/weighted-canary.yaml`, `coalmine bootstrap`,
//! Envoy on that bootstrap, curl through :10000, the blue-green switch with `--wait`,
//! `coalmine proxies`, `coalmine history` and `coalmine restore 1`.
//!
//! Deviations from the README, only where parallel tests force them: coalmine's
//! `--xds-addr`/`--admin-addr`/`--data-dir`, the backends' ports (rewritten in the
//! example, 8081/8082 become free ports), and Envoy's admin port (`--admin-port 0`).
//!
//! The listener stays the README's default 0.0.0.0:10000. No other test binds it (every
//! other e2e test gives its Envoy a Gateway on a free port before that Envoy connects,
//! see `tests/support/mod.rs`); a file lock keeps two runs of this test (two `cargo
//! test` processes) from overlapping, and the test first checks that :10000 is free.
//! Adding a Gateway on a free port instead would also mean rewriting the example's
//! VirtualService (`gateways:`), which would no longer be the quickstart.

mod support;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::TcpListener;
use std::process::Output;
use std::time::Duration;

use support::{dump, traffic, Backend, Coalmine, Envoy};
use tempfile::TempDir;

const LISTENER: u16 = 10000;

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`coalmine {what}` exited {}: stdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `for i in $(seq N); do curl -s localhost:10000/; done | sort | uniq -c`
fn curl_loop(n: usize) -> BTreeMap<String, usize> {
    traffic::send(n, LISTENER, "localhost", &[])
}

fn assert_half_and_half(counts: &BTreeMap<String, usize>) {
    let (v1, v2) = (counts.get("v1"), counts.get("v2"));
    let n: usize = counts.values().sum();
    assert_eq!(v1.unwrap_or(&0) + v2.unwrap_or(&0), n, "{counts:?}");
    assert!(
        (n * 3 / 10..=n * 7 / 10).contains(v1.unwrap_or(&0)),
        "not ~50/50: {counts:?}"
    );
}

#[test]
fn readme_quickstart() {
    let lock_path = support::target_dir().join("test-cache/listener-10000.lock");
    fs::create_dir_all(lock_path.parent().expect("parent")).expect("test-cache dir");
    let lock = File::create(&lock_path).expect("lock file");
    lock.lock().expect("lock :10000 for this test");
    drop(
        TcpListener::bind(("0.0.0.0", LISTENER)).unwrap_or_else(|e| {
            panic!("the quickstart needs 0.0.0.0:{LISTENER}, which is taken: {e}")
        }),
    );

    // 1. Two backends that answer with their version.
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let rewrite = |example: &str| {
        support::config::example(example)
            .replace("{http: 8081}", &format!("{{http: {}}}", v1.port()))
            .replace("{http: 8082}", &format!("{{http: {}}}", v2.port()))
    };
    let examples = TempDir::new().expect("tempdir");
    let canary = examples.path().join("weighted-canary.yaml");
    fs::write(&canary, rewrite("weighted-canary.yaml")).expect("write example");
    assert!(fs::read_to_string(&canary)
        .unwrap()
        .contains(&v2.port().to_string()));

    // 2. coalmine, and a 50/50 split between them.
    let coalmine = Coalmine::start_bare(&[]);
    let out = ok(
        coalmine.cli(&["apply", "-f", canary.to_str().expect("utf-8")]),
        "apply -f examples/weighted-canary.yaml",
    );
    assert!(
        out.contains("VirtualService default/petstore created"),
        "{out}"
    );
    assert!(out.contains("revision 1"), "{out}");

    // 3. An Envoy pointed at coalmine.
    let bootstrap = ok(
        coalmine.cli(&[
            "bootstrap",
            "--node-id",
            "quickstart",
            "--xds-addr",
            &coalmine.xds_addr(),
            "--admin-port",
            "0",
        ]),
        "bootstrap --node-id quickstart",
    );
    let envoy = Envoy::start(&bootstrap);

    // 4. Half the requests land on each version.
    traffic::wait_for_outcomes(
        LISTENER,
        "localhost",
        &[],
        &["v1", "v2"],
        Duration::from_secs(30),
    );
    assert_half_and_half(&curl_loop(200));

    // 5. Switch everything to v2 (blue-green), and wait until Envoy has it.
    let blue_green = rewrite("blue-green.yaml").replace("subset: v1}", "subset: v2}");
    assert!(!blue_green.contains("subset: v1}"), "the sed of the README");
    let out = coalmine.cli_stdin(&["apply", "-f", "-", "--wait"], &blue_green);
    let out = ok(out, "apply -f - --wait");
    assert!(out.contains("acked by 1 of 1 proxies"), "{out}");
    let targets = dump::route_targets(&envoy, "http.10000");
    assert_eq!(
        targets.keys().collect::<Vec<_>>(),
        ["outbound|80|v2|petstore"],
        "Envoy's route right after --wait"
    );
    assert_eq!(curl_loop(20), BTreeMap::from([("v2".to_string(), 20)]));

    let proxies = ok(coalmine.cli(&["proxies"]), "proxies");
    let row = proxies
        .lines()
        .find(|l| l.starts_with("quickstart "))
        .unwrap_or_else(|| panic!("no quickstart proxy in:\n{proxies}"));
    for kind in ["cds", "eds", "lds", "rds"] {
        let version = dump::version_info(&envoy, kind);
        assert!(row.contains(&version), "{kind} {version} ACKed in {row}");
    }
    assert!(!row.contains("pending"), "{row}");

    let history = ok(coalmine.cli(&["history"]), "history");
    let revisions: Vec<&str> = history
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    // Instant rollback to the 50/50 split.
    let out = ok(coalmine.cli(&["restore", "1"]), "restore 1");
    assert!(out.contains("revision 3"), "{out}");
    traffic::wait_for_outcomes(
        LISTENER,
        "localhost",
        &[],
        &["v1", "v2"],
        Duration::from_secs(30),
    );
    assert_half_and_half(&curl_loop(200));
    drop(envoy);
    drop(lock);
}
