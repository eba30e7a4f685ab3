//! `coalmine bootstrap` labels reach Envoy as the strings they were given: values that
//! YAML 1.1 (Envoy's reader) would take for booleans, nulls or numbers are quoted in the
//! YAML bootstrap, and `-o json` prints a bootstrap Envoy reads as JSON. Real Envoys,
//! started from what the real CLI prints, report their labels in `GET /api/v1/proxies`,
//! and a Gateway selecting `canary: "yes"` configures exactly the Envoy labelled so.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::{free_port, poll_until, process, unique, Backend, Coalmine, Envoy};

const WAIT: Duration = Duration::from_secs(20);

/// Each value YAML 1.1 reads as something other than the string.
const AWKWARD: [&str; 12] = [
    "yes", "no", "on", "off", "y", "N", "true", "False", "~", "null", "0755", "1:20",
];

/// The labels each connected proxy reports, by node id.
fn reported_labels(coalmine: &Coalmine) -> BTreeMap<String, Value> {
    let r = coalmine.admin_get("/api/v1/proxies");
    assert_eq!(r.status, 200, "{}", r.body);
    let body: Value = serde_json::from_str(&r.body).expect("proxies JSON");
    body["proxies"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            (
                p["node"].as_str().unwrap_or_default().to_string(),
                p["labels"].clone(),
            )
        })
        .collect()
}

fn wait_for_labels(coalmine: &Coalmine, node: &str) -> Value {
    let mut last = Value::Null;
    let found = poll_until(WAIT, || {
        last = reported_labels(coalmine)
            .remove(node)
            .unwrap_or(Value::Null);
        !last.is_null()
    });
    assert!(found, "{node} never connected");
    last
}

#[test]
fn every_awkward_label_value_reaches_coalmine_as_written_in_yaml_and_json() {
    let coalmine = Coalmine::start_bare(&[]);
    let labels: Vec<(String, String)> = AWKWARD
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("k{i}"), v.to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let want: Value = labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into();

    // YAML, through the real CLI (`Envoy::connect` runs `coalmine bootstrap`).
    let yaml_node = unique("labels-yaml");
    let _yaml = Envoy::connect(&coalmine.xds_addr(), &yaml_node, &pairs, false);
    assert_eq!(wait_for_labels(&coalmine, &yaml_node), want);

    // JSON, from `coalmine bootstrap -o json`, in a .json file.
    let json_node = unique("labels-json");
    let mut args = vec!["bootstrap", "--node-id", &json_node, "--admin-port", "0"];
    let xds = coalmine.xds_addr();
    args.extend(["--xds-addr", &xds]);
    let flags: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for flag in &flags {
        args.extend(["--label", flag]);
    }
    args.extend(["-o", "json"]);
    let out = process::cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let parsed: Value = serde_json::from_str(&text).expect("bootstrap -o json is JSON");
    assert_eq!(parsed["node"]["metadata"]["labels"], want);
    let _json = Envoy::start_file(&text, "bootstrap.json");
    assert_eq!(wait_for_labels(&coalmine, &json_node), want);
}

#[test]
fn a_gateway_selecting_canary_yes_configures_the_envoy_labelled_yes() {
    let coalmine = Coalmine::start_bare(&[]);
    let backend = Backend::start("v1");
    let (yes_port, no_port) = (free_port(), free_port());
    let name = unique("canary-label");
    let docs = format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}}}
spec:
  hosts: [{name}.example]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}-yes}}
spec:
  selector: {{canary: "yes"}}
  servers: [{{port: {{number: {yes_port}, name: http, protocol: HTTP}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}-no}}
spec:
  selector: {{canary: "no"}}
  servers: [{{port: {{number: {no_port}, name: http, protocol: HTTP}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}}}
spec:
  hosts: ["*"]
  gateways: [{name}-yes, {name}-no]
  http: [{{route: [{{destination: {{host: {name}.example}}}}]}}]
"#,
        port = backend.port()
    );
    let out = coalmine.cli_stdin(&["apply", "-f", "-"], &docs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let yes = Envoy::connect(
        &coalmine.xds_addr(),
        &unique("yes"),
        &[("canary", "yes")],
        false,
    );
    let no = Envoy::connect(
        &coalmine.xds_addr(),
        &unique("no"),
        &[("canary", "no")],
        true,
    );
    assert_eq!(yes.listener_ready(yes_port, WAIT).outcome(), "v1");
    assert_eq!(no.listener_ready(no_port, WAIT).outcome(), "v1");
    let listeners = |e: &Envoy| e.dynamic_listener_names();
    assert_eq!(listeners(&yes), [format!("0.0.0.0_{yes_port}")]);
    assert_eq!(listeners(&no), [format!("0.0.0.0_{no_port}")]);
}
