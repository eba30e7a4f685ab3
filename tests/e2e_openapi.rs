//! The admin API's OpenAPI document (`GET /api/v1/openapi.json`) against a live
//! coalmine: valid OpenAPI 3.1 for openapi-spec-validator, every parameter where it
//! belongs, the bearer scheme on every `/api/` operation; and true to what the server
//! answers: schemathesis fuzzes every operation with the token (no 5xx, only documented
//! status codes, bodies as the schemas say), and the answers about a connected Envoy, a
//! release and a waited apply are checked against their schemas.

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::pip::{install, Package};
use support::rollout::rollout_yaml;
use support::scenario::Petstore;
use support::traffic::{self, Response};
use support::{poll_until, start_envoy_for, Coalmine};
use tempfile::TempDir;

const TOKEN: &str = "openapi-test-token";

const VALIDATOR: Package = Package {
    name: "openapi-spec-validator",
    version: "0.9.0",
    marker: "openapi_spec_validator/__init__.py",
    needed_by: "the OpenAPI test (tests/e2e_openapi.rs)",
    alternative: "",
};

const SCHEMATHESIS: Package = Package {
    name: "schemathesis",
    version: "4.32.5",
    marker: "schemathesis/cli/__init__.py",
    needed_by: "the OpenAPI test (tests/e2e_openapi.rs)",
    alternative: "",
};

/// How long the whole schemathesis run may take before the test fails.
const FUZZ_LIMIT: Duration = Duration::from_secs(240);

/// Checks answers (`[{method, template, path, status, body}]`) against the response
/// schemas of the document: the document itself is the root schema (its other keys are
/// unknown keywords), with a `$ref` to the response's schema.
const CHECK_RESPONSES: &str = r##"
import json, sys, urllib.parse
import jsonschema_rs
doc = json.load(open(sys.argv[1]))
failed = 0
for case in json.load(open(sys.argv[2])):
    what = f"{case['method'].upper()} {case['path']} -> {case['status']}"
    responses = doc["paths"][case["template"]][case["method"]]["responses"]
    if str(case["status"]) not in responses:
        print(f"{what}: status not documented"); failed += 1; continue
    parts = ["paths", case["template"], case["method"], "responses", str(case["status"]),
             "content", "application/json", "schema"]
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)
    pointer = urllib.parse.quote(pointer, safe="/~")
    validator = jsonschema_rs.Draft202012Validator(dict(doc, **{"$ref": "#/" + pointer}))
    errors = list(validator.iter_errors(case["body"]))
    for e in errors:
        print(f"{what}: {e.message} at {list(e.instance_path)}")
    failed += bool(errors)
    print(f"{what}: {'ok' if not errors else 'INVALID'}")
sys.exit(1 if failed else 0)
"##;

/// A coalmine that wants the token.
fn start_coalmine() -> Coalmine {
    Coalmine::start_bare_env(&[], &[("COALMINE_ADMIN_TOKEN", TOKEN)])
}

/// A request with the token.
fn api(c: &Coalmine, method: &str, path: &str, body: &str) -> Response {
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/yaml"),
    ];
    traffic::request(
        c.admin_port(),
        method,
        "localhost",
        path,
        &headers,
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn api_json(c: &Coalmine, method: &str, path: &str, body: &str, status: u16) -> Value {
    let r = api(c, method, path, body);
    assert_eq!(r.status, status, "{method} {path}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", r.body))
}

/// The document, fetched with the token, and written to `dir/openapi.json`.
fn fetch_document(c: &Coalmine, dir: &Path) -> (Value, PathBuf) {
    let without = traffic::get(c.admin_port(), "localhost", "/api/v1/openapi.json", &[])
        .expect("GET /api/v1/openapi.json");
    assert_eq!(without.status, 401, "the document without the token");
    let doc = api_json(c, "GET", "/api/v1/openapi.json", "", 200);
    let path = dir.join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).expect("write document");
    (doc, path)
}

/// `python3 ARGS` with `PYTHONPATH`, in `dir`; panics with its output unless it exits 0
/// within `limit`. Returns its output.
fn python(what: &str, pythonpath: &Path, dir: &Path, args: &[&str], limit: Duration) -> String {
    let mut child = Command::new("python3")
        .args(args)
        .current_dir(dir)
        .env("PYTHONPATH", pythonpath)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot run python3: {e}"));
    let mut pipes = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = pipes.0.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = pipes.1.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python3") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    println!("---- {what} ----\n{output}");
    match status {
        Some(s) if s.success() => output,
        Some(s) => panic!("{what} failed ({s}):\n{output}"),
        None => panic!("{what} did not finish within {limit:?}:\n{output}"),
    }
}

/// The `{x}` variables of a path template.
fn template_vars(path: &str) -> BTreeSet<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(var, _)| var.to_string()))
        .collect()
}

/// Every operation: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

fn params_in(op: &Value, place: &str) -> BTreeSet<String> {
    let all = op["parameters"].as_array().cloned().unwrap_or_default();
    all.iter()
        .filter(|p| p["in"] == place)
        .map(|p| p["name"].as_str().expect("parameter name").to_string())
        .collect()
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let validator = install(&VALIDATOR);
    let coalmine = start_coalmine();
    let dir = TempDir::new().expect("tempdir");
    let (doc, path) = fetch_document(&coalmine, dir.path());

    let script = "import json, sys\n\
        from openapi_spec_validator import validate, OpenAPIV31SpecValidator\n\
        validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
        print('valid OpenAPI 3.1')";
    let path_arg = path.to_str().expect("utf-8 path");
    let out = python(
        "openapi-spec-validator",
        &validator,
        dir.path(),
        &["-c", script, path_arg],
        Duration::from_secs(60),
    );
    assert!(out.contains("valid OpenAPI 3.1"), "{out}");
    assert_eq!(doc["openapi"], "3.1.0");

    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http", "bearerAuth: {scheme}");
    assert_eq!(scheme["scheme"], "bearer", "bearerAuth: {scheme}");

    let ops = operations(&doc);
    for (path, method, op) in &ops {
        let what = format!("{} {path}", method.to_uppercase());
        assert_eq!(
            params_in(op, "path"),
            template_vars(path),
            "{what}: the path parameters are the template's variables"
        );
        if path.starts_with("/api/") {
            assert_eq!(op["security"], json!([{"bearerAuth": []}]), "{what}");
            assert!(op["responses"]["401"].is_object(), "{what}: no 401");
        }
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if status.starts_with('4') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                let refs = [
                    "#/components/schemas/ErrorBody",
                    "#/components/schemas/Conflict",
                ];
                assert!(
                    refs.iter().any(|r| schema == r),
                    "{what} {status}: {response}"
                );
            }
        }
    }
    let query = [
        ("/api/v1/apply", "post", "dryRun"),
        ("/api/v1/apply", "post", "wait"),
        ("/api/v1/delete", "post", "wait"),
        (
            "/api/v1/resources/{kind}/{namespace}/{name}",
            "delete",
            "wait",
        ),
        ("/api/v1/revisions/{revision}/restore", "post", "wait"),
        ("/api/v1/config_dump", "get", "node"),
        ("/api/v1/resources", "get", "kind"),
    ];
    for (path, method, name) in query {
        let op = &doc["paths"][path][method];
        assert!(
            params_in(op, "query").contains(name),
            "{method} {path}: {name} in: query"
        );
        let params = op["parameters"].as_array().expect("parameters");
        let param = params.iter().find(|p| p["name"] == name).expect("declared");
        // Only `node` is required: config_dump answers 400 without it.
        let required = param["required"].as_bool().unwrap_or(false);
        assert_eq!(required, name == "node", "{method} {path}: {name} required");
        assert!(
            param["schema"]["type"].is_string(),
            "{method} {path}: {name} typed"
        );
    }
    let body = &doc["paths"]["/api/v1/apply"]["post"]["requestBody"]["content"];
    for content_type in ["application/json", "application/yaml"] {
        assert!(
            body[content_type]["schema"].is_object(),
            "apply takes {content_type}"
        );
    }
    // Every SPEC route is described.
    let paths: BTreeSet<&str> = ops.iter().map(|(p, _, _)| p.as_str()).collect();
    for path in [
        "/api/v1/apply",
        "/api/v1/delete",
        "/api/v1/resources",
        "/api/v1/resources/{kind}/{namespace}/{name}",
        "/api/v1/proxies",
        "/api/v1/config_dump",
        "/api/v1/revisions",
        "/api/v1/revisions/{revision}/restore",
        "/api/v1/revisions/{revision}/status",
        "/api/v1/rollouts",
        "/api/v1/rollouts/{namespace}/{name}",
        "/api/v1/rollouts/{namespace}/{name}/{command}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains(path), "{path} is not in the document");
    }
}

/// A release of `petstore` that takes no step during the test (hour-long interval).
fn rollout() -> String {
    let analysis = "    interval: 1h
    threshold: 2
    stepWeights: [10, 50]
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 1h
";
    rollout_yaml("petstore", "petstore", "Canary", analysis)
}

/// A ServiceEntry nothing routes to.
fn extra() -> String {
    "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: openapi-extra}
spec:
  hosts: [openapi-extra]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
"
    .to_string()
}

/// One answer to check: `[method, template, path, status, body]`.
fn case(c: &Coalmine, method: &str, template: &str, path: &str, body: &str, status: u16) -> Value {
    let answer = api_json(c, method, path, body, status);
    json!({"method": method.to_lowercase(), "template": template, "path": path,
           "status": status, "body": answer})
}

#[test]
fn the_server_answers_as_the_document_says() {
    let schemathesis = install(&SCHEMATHESIS);
    let p = Petstore::new("openapi");
    let coalmine = start_coalmine();
    let envoy = start_envoy_for(&coalmine, &p.gw, false);
    let dir = TempDir::new().expect("tempdir");
    let (doc, doc_path) = fetch_document(&coalmine, dir.path());

    // A connected Envoy that has ACKed a configuration with a release in progress.
    let connected = poll_until(Duration::from_secs(20), || {
        let proxies = api_json(&coalmine, "GET", "/api/v1/proxies", "", 200);
        proxies["proxies"].as_array().is_some_and(|p| p.len() == 1)
    });
    assert!(connected, "the Envoy never connected");
    let set = p.yaml(&[("v1", 100), ("v2", 0)]);
    let applied = api_json(&coalmine, "POST", "/api/v1/apply?wait=20s", &set, 200);
    assert_eq!(applied["status"]["acked"], 1, "the Envoy ACKs: {applied}");
    let started = api_json(&coalmine, "POST", "/api/v1/apply", &rollout(), 200);
    let node = p.node().to_string();
    let acked = poll_until(Duration::from_secs(20), || {
        let proxies = api_json(&coalmine, "GET", "/api/v1/proxies", "", 200);
        proxies["proxies"][0]["revision"].as_u64() >= started["revision"].as_u64()
    });
    assert!(acked, "the Envoy never took the release's first step");

    let c = &coalmine;
    let latest = started["revision"].as_u64().unwrap();
    let cases = vec![
        case(
            c,
            "POST",
            "/api/v1/apply",
            "/api/v1/apply?wait=20s",
            &extra(),
            200,
        ),
        case(
            c,
            "POST",
            "/api/v1/apply",
            "/api/v1/apply?dryRun=true",
            &set,
            200,
        ),
        case(c, "GET", "/api/v1/proxies", "/api/v1/proxies", "", 200),
        case(
            c,
            "GET",
            "/api/v1/config_dump",
            &format!("/api/v1/config_dump?node={node}"),
            "",
            200,
        ),
        case(c, "GET", "/api/v1/resources", "/api/v1/resources", "", 200),
        case(
            c,
            "GET",
            "/api/v1/resources/{kind}/{namespace}/{name}",
            "/api/v1/resources/Rollout/default/petstore",
            "",
            200,
        ),
        case(c, "GET", "/api/v1/rollouts", "/api/v1/rollouts", "", 200),
        case(
            c,
            "GET",
            "/api/v1/rollouts/{namespace}/{name}",
            "/api/v1/rollouts/default/petstore",
            "",
            200,
        ),
        case(c, "GET", "/api/v1/revisions", "/api/v1/revisions", "", 200),
        case(
            c,
            "GET",
            "/api/v1/openapi.json",
            "/api/v1/openapi.json",
            "",
            200,
        ),
        case(
            c,
            "GET",
            "/api/v1/revisions/{revision}/status",
            &format!("/api/v1/revisions/{latest}/status"),
            "",
            200,
        ),
        case(
            c,
            "POST",
            "/api/v1/apply",
            "/api/v1/apply",
            "kind: VirtualService",
            400,
        ),
    ];
    let cases_path = dir.path().join("cases.json");
    std::fs::write(&cases_path, serde_json::to_vec(&cases).unwrap()).expect("write cases");
    let arg = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    python(
        "answers against their schemas",
        &schemathesis,
        dir.path(),
        &["-c", CHECK_RESPONSES, &arg(&doc_path), &arg(&cases_path)],
        Duration::from_secs(60),
    );

    // Every operation fuzzed, with the token and the Envoy still connected.
    let url = format!("{}/api/v1/openapi.json", coalmine.server_url());
    let auth = format!("Authorization: Bearer {TOKEN}");
    let args = [
        "-m",
        "schemathesis.cli",
        "run",
        &url,
        "--header",
        &auth,
        "--checks",
        "not_a_server_error,status_code_conformance,response_schema_conformance",
        "--max-examples",
        "100",
        "--seed",
        "1",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
    ];
    let out = python("schemathesis", &schemathesis, dir.path(), &args, FUZZ_LIMIT);
    // Schemathesis leaves out the operation that serves the document it reads (checked
    // above with the other answers).
    let count = operations(&doc).len() - 1;
    for line in [
        format!("Selected: {count}/{count}"),
        format!("Tested: {count}"),
    ] {
        assert!(
            out.contains(&line),
            "schemathesis did not test all {count} operations:\n{out}"
        );
    }
    assert!(envoy.config_dump().is_object(), "the Envoy is still up");
}
