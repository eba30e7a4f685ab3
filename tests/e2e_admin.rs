//! The admin API and CLI end to end: `coalmine apply/diff/get/proxies/history/restore`
//! run as a user would, against a coalmine that serves a real Envoy 1.40 routing to
//! real backends; a configuration Envoy NACKs; the admin token.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::scenario::{expect_code, json, stderr, stdout, Petstore};
use support::traffic::{self, wait_for_outcomes};
use support::{dump, free_port, Coalmine, Envoy};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(20);
/// A uri regex RE2 compiles to a program of 282 instructions: coalmine accepts it, Envoy
/// 1.40 rejects it (default error threshold: 100).
const BIG_REGEX: &str = "^(abc|def|ghi|jkl){20}$";

/// The proxy `node` in `coalmine proxies -o json`.
fn proxy(coalmine: &Coalmine, node: &str) -> Value {
    let list = json(&coalmine.cli(&["proxies", "-o", "json"]), "proxies -o json");
    list["proxies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["node"] == node)
        .cloned()
        .unwrap_or_else(|| panic!("proxy {node} not in {list}"))
}

fn revision_numbers(coalmine: &Coalmine) -> Vec<u64> {
    let h = json(&coalmine.cli(&["history", "-o", "json"]), "history -o json");
    h["revisions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["revision"].as_u64().expect("revision number"))
        .collect()
}

/// Counts of 200 requests through the Gateway, asserting a rough 50/50 split.
fn assert_split(port: u16) {
    wait_for_outcomes(port, "petstore", &[], &["v1", "v2"], WAIT);
    let counts = traffic::send(200, port, "petstore", &[]);
    let (n1, n2) = (counts.get("v1"), counts.get("v2"));
    assert_eq!(n1.unwrap_or(&0) + n2.unwrap_or(&0), 200, "{counts:?}");
    assert!(
        (60..=140).contains(n1.unwrap_or(&0)),
        "not ~50/50: {counts:?}"
    );
}

/// coalmine with the split applied through the CLI, then an Envoy that it selects.
fn start(p: &Petstore, extra: &[&str]) -> (Coalmine, Envoy) {
    let coalmine = Coalmine::start_bare(extra);
    let split = p.write("split.yaml", &p.yaml(&[("v1", 50), ("v2", 50)]));
    let out = coalmine.cli(&["apply", "-f", &split]);
    expect_code(&out, 0, "apply split");
    assert!(stdout(&out).contains("revision 1"), "{}", stdout(&out));
    // The Envoy starts once its Gateway exists, so it never gets the default :10000.
    let envoy = support::start_envoy_for(&coalmine, &p.gw, false);
    (coalmine, envoy)
}

#[test]
fn apply_wait_proxies_history_restore_through_envoy() {
    let p = Petstore::new("adm-flow");
    let (coalmine, envoy) = start(&p, &[]);
    assert_split(p.gw.port);
    assert_eq!(p.targets(&envoy), ["v1", "v2"]);

    let all_v2 = p.write("v2.yaml", &p.yaml(&[("v2", 100)]));
    let out = coalmine.cli(&["apply", "-f", &all_v2, "--wait", "--timeout", "30s"]);
    expect_code(&out, 0, "apply --wait");
    // --wait returned: Envoy must already hold the new route, no polling.
    assert_eq!(p.targets(&envoy), ["v2"], "config_dump right after --wait");
    assert!(stdout(&out).contains("acked by 1 of 1"), "{}", stdout(&out));
    let counts = traffic::send(100, p.gw.port, "petstore", &[]);
    assert_eq!(counts, BTreeMap::from([("v2".to_string(), 100)]));

    // The ledger shows exactly the versions Envoy reports in its own config_dump.
    let proxy = proxy(&coalmine, p.node());
    assert_eq!(proxy["labels"]["app"], p.gw.app.as_str(), "{proxy}");
    assert_eq!(proxy["revision"], 2, "{proxy}");
    let table = stdout(&coalmine.cli(&["proxies"]));
    let row = table
        .lines()
        .find(|l| l.starts_with(p.node()))
        .unwrap_or_else(|| panic!("no row for {} in:\n{table}", p.node()));
    for kind in ["cds", "eds", "lds", "rds"] {
        let envoy_version = dump::version_info(&envoy, kind);
        let t = &proxy["types"][kind];
        assert_eq!(t["acked"], envoy_version.as_str(), "{kind}: {proxy}");
        assert_eq!(
            (&t["pending"], &t["lastNack"]),
            (&Value::Bool(false), &Value::Null)
        );
        assert!(
            row.contains(&envoy_version),
            "{kind} {envoy_version} in {row}"
        );
    }

    let history = stdout(&coalmine.cli(&["history"]));
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{history}");
    assert!(
        rows[0].starts_with("1 ") && rows[1].starts_with("2 "),
        "{history}"
    );
    assert!(
        rows[1].contains("VirtualService default/petstore"),
        "{history}"
    );

    let out = coalmine.cli(&["restore", "1", "--wait"]);
    expect_code(&out, 0, "restore 1 --wait");
    assert_eq!(p.targets(&envoy), ["v1", "v2"], "config_dump after restore");
    // The v1 cluster, gone at revision 2, is back with its endpoint, not warming.
    for v in ["v1", "v2"] {
        let stat = format!("cluster.outbound|80|{v}|petstore.membership_total");
        assert_eq!(envoy.stat(&stat), Some(1), "{stat} after restore --wait");
    }
    assert_eq!(revision_numbers(&coalmine), [1, 2, 3]);
    assert_split(p.gw.port);
}

#[test]
fn bad_documents_diff_and_usage() {
    let p = Petstore::new("adm-diff");
    let (coalmine, envoy) = start(&p, &[]);
    assert_split(p.gw.port);

    // Status: Accepted, with the proxy it reaches (once that proxy has connected).
    let reached = support::poll_until(WAIT, || {
        let out = stdout(&coalmine.cli(&["get", "vs", "petstore"]));
        out.lines()
            .any(|l| l.contains("Accepted") && l.contains(p.node()))
    });
    let get = coalmine.cli(&["get", "vs"]);
    assert!(
        reached,
        "get vs petstore never listed {}: {}",
        p.node(),
        stdout(&get)
    );
    expect_code(&get, 0, "get vs");
    let row = stdout(&get).lines().nth(1).unwrap_or_default().to_string();
    for cell in [
        "VirtualService",
        "default",
        "petstore",
        "Accepted",
        p.node(),
    ] {
        assert!(row.contains(cell), "{cell} in {row:?}");
    }

    // A bad document: nothing applied, the resource and field named.
    let bad = p
        .yaml(&[("v1", 50), ("v2", 60)])
        .replace("weight: 50\n", "weight: 50\n      bogus: true\n");
    let out = coalmine.cli(&["apply", "-f", &p.write("bad.yaml", &bad)]);
    expect_code(&out, 1, "apply bad document");
    let err = stderr(&out);
    assert!(err.contains("VirtualService default/petstore"), "{err}");
    assert!(err.contains("spec.http[0].route[0].bogus"), "{err}");
    assert!(err.contains("spec.http[0].route"), "{err}");
    assert_eq!(revision_numbers(&coalmine), [1]);

    // diff: Envoy-level changes, nothing applied.
    let skew = p.write("skew.yaml", &p.yaml(&[("v1", 80), ("v2", 20)]));
    let out = coalmine.cli(&["diff", "-f", &skew]);
    expect_code(&out, 0, "diff");
    let text = stdout(&out);
    assert!(
        text.contains("VirtualService default/petstore configured"),
        "{text}"
    );
    let rc_line = text
        .lines()
        .find(|l| l.contains("RouteConfiguration"))
        .unwrap_or_else(|| panic!("no RouteConfiguration in diff:\n{text}"));
    assert!(
        rc_line.starts_with('~') && rc_line.contains(&p.route()),
        "{rc_line}"
    );
    assert!(rc_line.contains(p.node()), "{rc_line}");
    let d = json(
        &coalmine.cli(&["diff", "-f", &skew, "-o", "json"]),
        "diff json",
    );
    let changed = d["changed"].as_array().cloned().unwrap_or_default();
    assert_eq!(changed.len(), 1, "{d}");
    assert_eq!(changed[0]["type"], "RouteConfiguration", "{d}");
    assert_eq!(changed[0]["name"], p.route().as_str(), "{d}");
    assert_eq!(changed[0]["action"], "changed", "{d}");
    assert_eq!(changed[0]["proxies"], serde_json::json!([p.node()]), "{d}");
    assert_eq!(revision_numbers(&coalmine), [1]);
    assert_eq!(p.targets(&envoy), ["v1", "v2"]);
    let vs = json(
        &coalmine.cli(&["get", "vs", "petstore", "-o", "json"]),
        "get",
    );
    assert_eq!(vs["spec"]["http"][0]["route"][0]["weight"], 50, "{vs}");

    // Bad usage exits 2 and applies nothing.
    for args in [
        &["apply"][..],
        &["restore", "latest"],
        &["apply", "-f", "/nonexistent/coalmine.yaml"],
        &["frobnicate"],
    ] {
        expect_code(&coalmine.cli(args), 2, &format!("{args:?}"));
    }
    assert_eq!(revision_numbers(&coalmine), [1]);
}

#[test]
fn envoy_nack_is_reported_once_and_old_config_keeps_serving() {
    let p = Petstore::new("adm-nack");
    let (coalmine, envoy) = start(&p, &[]);
    assert_split(p.gw.port);
    let good_rds = dump::version_info(&envoy, "rds");
    let stat = |s: &str| envoy.stat(&format!("http.0.0.0.0_{}.rds.{}.{s}", p.gw.port, p.route()));
    let rds_stats = envoy.stats(&format!("rds\\.{}\\.", p.route()));
    assert!(
        stat("update_success").is_some_and(|n| n >= 1),
        "{rds_stats:?}"
    );
    assert_eq!(stat("update_rejected"), Some(0), "{rds_stats:?}");

    // Passes coalmine's validation; Envoy rejects it (RE2 program too large).
    let bad = p.yaml(&[("v1", 50), ("v2", 50)]).replace(
        "  - name: split\n",
        &format!(
            "  - name: big-regex\n    match: [{{uri: {{regex: \"{BIG_REGEX}\"}}}}]\n    \
             route: [{{destination: {{host: petstore, subset: v2}}}}]\n  - name: split\n"
        ),
    );
    let out = coalmine.cli(&["apply", "-f", &p.write("nack.yaml", &bad), "--wait"]);
    expect_code(&out, 1, "apply --wait of a config Envoy rejects");
    let err = stderr(&out);
    assert!(err.contains("revision 2 was NACKed"), "{err}");
    assert!(err.contains(&format!("{} rejected rds", p.node())), "{err}");
    assert!(
        err.contains("RE2 program size of 282 > max program size of 100"),
        "{err}"
    );

    let ledger = proxy(&coalmine, p.node());
    let nack = &ledger["types"]["rds"]["lastNack"];
    assert!(
        nack["message"]
            .as_str()
            .unwrap_or("")
            .contains("RE2 program size"),
        "{ledger}"
    );
    assert!(
        nack["message"].as_str().unwrap_or("").contains(BIG_REGEX),
        "{ledger}"
    );
    assert_eq!(nack["revision"], 2, "{ledger}");
    assert_eq!(
        ledger["types"]["rds"]["acked"],
        good_rds.as_str(),
        "{ledger}"
    );
    for kind in ["cds", "eds", "lds"] {
        assert_eq!(
            ledger["types"][kind]["lastNack"],
            Value::Null,
            "{kind}: {ledger}"
        );
    }
    let status = coalmine.admin_get("/api/v1/revisions/2/status");
    assert_eq!(status.status, 200, "{}", status.body);
    let status: Value = serde_json::from_str(&status.body).expect("json");
    assert_eq!(
        (&status["proxies"], &status["acked"]),
        (&1.into(), &0.into()),
        "{status}"
    );
    let rejected = &status["rejected"][0];
    assert_eq!(
        (&rejected["node"], &rejected["type"]),
        (&p.node().into(), &"rds".into())
    );
    assert!(rejected["message"]
        .as_str()
        .unwrap_or("")
        .contains("max program size"));
    let get = stdout(&coalmine.cli(&["get", "vs", "petstore"]));
    assert!(
        get.contains("Rejected") && get.contains("RE2 program size"),
        "{get}"
    );

    // Envoy got it exactly once: no resend loop, whatever time passes.
    assert_eq!(stat("update_rejected"), Some(1), "{:?}", envoy.stats("rds"));
    let attempts = stat("update_attempt");
    thread::sleep(Duration::from_secs(3)); // an observation window, not a wait
    assert_eq!(stat("update_attempt"), attempts, "{:?}", envoy.stats("rds"));
    assert_eq!(stat("update_rejected"), Some(1), "{:?}", envoy.stats("rds"));
    assert_eq!(dump::version_info(&envoy, "rds"), good_rds);
    assert_split(p.gw.port);

    // A fixed configuration is ACKed and served.
    let fixed = p.write("fixed.yaml", &p.yaml(&[("v1", 100)]));
    let out = coalmine.cli(&["apply", "-f", &fixed, "--wait"]);
    expect_code(&out, 0, "apply --wait of the fixed config");
    assert_eq!(p.targets(&envoy), ["v1"]);
    let ledger = proxy(&coalmine, p.node());
    let rds = dump::version_info(&envoy, "rds");
    assert_ne!(rds, good_rds);
    assert_eq!(ledger["types"]["rds"]["acked"], rds.as_str(), "{ledger}");
    assert_eq!(ledger["types"]["rds"]["pending"], false, "{ledger}");
    let counts = traffic::send(50, p.gw.port, "petstore", &[]);
    assert_eq!(counts, BTreeMap::from([("v1".to_string(), 50)]));
    assert_eq!(stat("update_rejected"), Some(1));
}

/// `coalmine ARGS` against `server`, with no token from the environment.
fn cli_without_token(server: &str, args: &[&str]) -> Output {
    Command::new(support::process::coalmine_bin())
        .args(args)
        .env("COALMINE_SERVER", server)
        .env_remove("COALMINE_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run coalmine")
}

/// `coalmine serve` on a 0.0.0.0 admin address; `Ok(())` once /healthz answers 200,
/// `Err(output)` when it exits first.
fn serve_wildcard(extra: &[&str]) -> Result<(), String> {
    let data = TempDir::new().expect("tempdir");
    let admin_port = free_port();
    let mut child = Command::new(support::process::coalmine_bin())
        .args(["serve", "--xds-addr", &format!("127.0.0.1:{}", free_port())])
        .args([
            "--admin-addr",
            &format!("0.0.0.0:{admin_port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .args(extra)
        .env_remove("COALMINE_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coalmine serve");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            return Err(format!("{}: {}", out.status, stderr(&out)));
        }
        if traffic::get(admin_port, "localhost", "/healthz", &[]).is_ok_and(|r| r.status == 200) {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("coalmine serve {extra:?} neither exited nor served /healthz");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn admin_token_guards_the_api() {
    let p = Petstore::new("adm-token");
    let token_file: PathBuf = p.dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").expect("write token");
    let coalmine = Coalmine::start_bare(&["--admin-token-file", &token_file.display().to_string()]);
    let server = coalmine.server_url();
    let split = p.write("split.yaml", &p.yaml(&[("v1", 50), ("v2", 50)]));

    let no_token: [&[&str]; 4] = [
        &["history"],
        &["apply", "-f", &split],
        &["proxies"],
        &["history", "--token", "wrong"],
    ];
    for args in no_token {
        let out = cli_without_token(&server, args);
        expect_code(&out, 1, &format!("{args:?} without the token"));
        assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    }

    let ok = cli_without_token(&server, &["apply", "-f", &split, "--token", "s3cret-token"]);
    expect_code(&ok, 0, "apply with --token");
    assert!(stdout(&ok).contains("revision 1"), "{}", stdout(&ok));
    let env = support::process::cli_with(
        &["history", "-o", "json"],
        &[
            ("COALMINE_SERVER", &server),
            ("COALMINE_ADMIN_TOKEN", "s3cret-token"),
        ],
        None,
    );
    let history = json(&env, "history with COALMINE_ADMIN_TOKEN");
    assert_eq!(
        history["revisions"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    assert_eq!(
        coalmine.admin_get("/healthz").status,
        200,
        "probes stay open"
    );
    assert_eq!(coalmine.admin_get("/api/v1/revisions").status, 401);

    let refused = serve_wildcard(&[]).expect_err("0.0.0.0 admin without a token must not start");
    assert!(
        refused.contains("token") && !refused.starts_with("exit status: 0"),
        "{refused}"
    );
    serve_wildcard(&["--insecure-admin"]).expect("--insecure-admin starts on 0.0.0.0");
    let tokened = [
        "--admin-token-file",
        token_file.to_str().expect("utf-8 path"),
    ];
    serve_wildcard(&tokened).expect("0.0.0.0 admin with a token starts");
}
