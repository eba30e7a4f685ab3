//! Canary releases analysed by outside systems, end to end through a real Envoy 1.40:
//! a real Prometheus (scraping coalmine's own `/metrics`) as the metric provider, both
//! passing (promoted) and failing (rolled back), inline and through a Flagger
//! MetricTemplate; and Flagger webhooks on an in-test
//! HTTP server: `confirm-promotion` holds the last step until it says yes, `event`
//! receives every event, a failing `pre-rollout` counts as failed checks.

mod support;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use support::http::{read_body, read_head, wants_close};
use support::prometheus::Prometheus;
use support::rollout::{
    assert_gated_on_ack, is_final, last_step, phase, poll, rollout_yaml, split, step_kinds, steps,
    time, Seen, World,
};

const NAME: &str = "release";
const INTERVAL: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(120);
const QUERY: &str = "max(coalmine_revision)";

fn kinds(list: &[(&str, f64)]) -> Vec<(String, f64)> {
    list.iter().map(|(k, w)| (k.to_string(), *w)).collect()
}

fn metric<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {status}"))
}

/// A world with a Prometheus scraping its coalmine, waited on until the query has data.
fn prometheus_world(prefix: &str) -> (World, Prometheus) {
    let w = World::start(prefix);
    let prom = Prometheus::start(&w.coalmine.admin_addr());
    let scraped = support::poll_until(Duration::from_secs(60), || {
        prom.value(QUERY).is_some_and(|v| v >= 1.0)
    });
    assert!(
        scraped,
        "prometheus never scraped coalmine:\n{}",
        prom.log()
    );
    (w, prom)
}

fn prometheus_analysis(prom: &Prometheus, range: &str) -> String {
    format!(
        "    interval: 2s
    threshold: 2
    stepWeights: [10, 50]
    metrics:
    - name: revision-scraped
      provider: {{type: prometheus, address: {}}}
      query: '{QUERY}'
      thresholdRange: {range}
",
        prom.address()
    )
}

/// The metric's value is one Prometheus held for coalmine_revision.
fn assert_value_from_prometheus(prom: &Prometheus, m: &Value, end: &Value) {
    let value = m["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("no value: {end}"));
    assert!(value >= 1.0, "{end}");
    let held = prom.range_values("coalmine_revision[10m]");
    assert!(
        held.contains(&value),
        "status value {value} is not one Prometheus held {held:?}: {end}"
    );
}

#[test]
fn prometheus_metric_in_range_promotes() {
    let (w, prom) = prometheus_world("ro-prom-ok");
    let load = w.load(&[], Duration::from_millis(5));
    let yaml = rollout_yaml(
        NAME,
        "petstore",
        "Canary",
        &prometheus_analysis(&prom, "{min: 1}"),
    );
    w.apply("rollout.yaml", &yaml);
    let mut seen = Seen::default();
    let end = poll(&w.coalmine, NAME, &mut seen, TIMEOUT, |_| {}, is_final);
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    assert_eq!(
        step_kinds(&end),
        kinds(&[("step", 10.0), ("step", 50.0), ("promote", 100.0)])
    );
    assert_eq!(end["failedChecks"], 0, "{end}");
    assert_gated_on_ack(&seen, INTERVAL);
    let m = metric(&end, "revision-scraped");
    assert_eq!(m["verdict"], "pass", "{end}");
    assert_value_from_prometheus(&prom, m, &end);
    w.wait_targets(&["v2"]);
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");
    assert_eq!(w.send(100, &[]).get("v2"), Some(&100));
}

/// A Flagger MetricTemplate named by `templateRef`, its `{{ variables.NAME }}` filled
/// from `templateVariables`, read through the same real Prometheus.
#[test]
fn flagger_metric_template_promotes() {
    let (w, prom) = prometheus_world("ro-prom-tpl");
    let template = format!(
        "apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {{name: revision, namespace: default}}
spec:
  provider: {{type: prometheus, address: {}}}
  query: 'max({{{{ variables.series }}}})'
",
        prom.address()
    );
    w.apply("template.yaml", &template);
    let analysis = "    interval: 2s
    threshold: 2
    stepWeights: [10, 50]
    metrics:
    - name: revision-scraped
      templateRef: {name: revision}
      templateVariables: {series: coalmine_revision}
      thresholdRange: {min: 1}
";
    let yaml = rollout_yaml(NAME, "petstore", "Canary", analysis);
    w.apply("rollout.yaml", &yaml);
    let mut seen = Seen::default();
    let end = poll(&w.coalmine, NAME, &mut seen, TIMEOUT, |_| {}, is_final);
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    let m = metric(&end, "revision-scraped");
    assert_eq!(m["verdict"], "pass", "{end}");
    assert_value_from_prometheus(&prom, m, &end);
}

#[test]
fn prometheus_metric_out_of_range_rolls_back() {
    let (w, prom) = prometheus_world("ro-prom-fail");
    let load = w.load(&[], Duration::from_millis(5));
    let yaml = rollout_yaml(
        NAME,
        "petstore",
        "Canary",
        &prometheus_analysis(&prom, "{max: 0}"),
    );
    w.apply("rollout.yaml", &yaml);
    let mut seen = Seen::default();
    let end = poll(&w.coalmine, NAME, &mut seen, TIMEOUT, |_| {}, is_final);
    assert_eq!(phase(&end), "Failed", "statuses:\n{}", seen.summary());
    assert_eq!(end["failedChecks"], 2, "{end}");
    assert_eq!(end["canaryWeight"].as_f64(), Some(0.0), "{end}");
    assert_eq!(
        step_kinds(&end),
        kinds(&[("step", 10.0), ("rollback", 0.0)])
    );
    let m = metric(&end, "revision-scraped");
    assert_eq!(m["verdict"], "fail", "{end}");
    assert_value_from_prometheus(&prom, m, &end);
    w.wait_targets(&["v1"]);
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");
    assert_eq!(w.send(100, &[]).get("v1"), Some(&100));
}

/// An HTTP server recording every request `(path, JSON body)`: `/confirm` answers 403
/// until `confirm` is set, `/pre` answers 500, anything else 200.
struct Hooks {
    port: u16,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    confirm: Arc<AtomicBool>,
}

impl Hooks {
    fn start() -> Hooks {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook server");
        let port = listener.local_addr().expect("addr").port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let confirm = Arc::new(AtomicBool::new(false));
        let (c, ok) = (calls.clone(), confirm.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (c, ok) = (c.clone(), ok.clone());
                std::thread::spawn(move || serve(stream, &c, &ok));
            }
        });
        Hooks {
            port,
            calls,
            confirm,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The JSON bodies POSTed to `path`, in order.
    fn bodies(&self, path: &str) -> Vec<Value> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn serve(stream: TcpStream, calls: &Mutex<Vec<(String, Value)>>, confirm: &AtomicBool) {
    let mut out = stream.try_clone().expect("clone stream");
    let mut r = BufReader::new(stream);
    while let Ok(Some((start, headers))) = read_head(&mut r) {
        let Ok(body) = read_body(&mut r, &headers, false) else {
            return;
        };
        let path = start.split_whitespace().nth(1).unwrap_or("").to_string();
        let body: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let status = match path.as_str() {
            "/confirm" if !confirm.load(Ordering::SeqCst) => 403,
            "/pre" => 500,
            _ => 200,
        };
        calls.lock().unwrap().push((path, body));
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nno");
        if out.write_all(reply.as_bytes()).is_err() || wants_close(&start, &headers) {
            return;
        }
    }
}

/// Flagger's payload fields, for a webhook of `kind`.
fn assert_payload(body: &Value, kind: &str) {
    assert_eq!(body["name"], NAME, "{body}");
    assert_eq!(body["namespace"], "default", "{body}");
    assert_eq!(body["type"], kind, "{body}");
    assert!(
        body["phase"].as_str().is_some_and(|p| !p.is_empty()),
        "{body}"
    );
    assert!(body["metadata"].is_object(), "{body}");
}

#[test]
fn confirm_promotion_holds_until_approved_and_events_are_sent() {
    let w = World::start("ro-confirm");
    let hooks = Hooks::start();
    let load = w.load(&[], Duration::from_millis(5));
    let analysis = format!(
        "    interval: 2s
    threshold: 2
    stepWeights: [10, 50]
    metrics:
    - name: request-success-rate
      thresholdRange: {{min: 99}}
      interval: 2s
      minSamples: 1
    webhooks:
    - name: gate
      type: confirm-promotion
      url: {}
      timeout: 5s
    - name: notify
      type: event
      url: {}
      metadata: {{team: canaries}}
",
        hooks.url("/confirm"),
        hooks.url("/events")
    );
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", &analysis),
    );
    let mut seen = Seen::default();
    let never_promoted = |s: &Value| {
        assert!(phase(s) != "Succeeded" && !is_final(s), "{s}");
        assert!(
            steps(s).iter().all(|st| st["kind"] == "step"),
            "promoted while /confirm refuses: {s}"
        );
    };
    // The last step ACKed, then /confirm refusing four times: three intervals held.
    poll(&w.coalmine, NAME, &mut seen, TIMEOUT, never_promoted, |s| {
        last_step(s).is_some_and(|l| l["weight"] == 50.0 && !l["ackedAt"].is_null())
            && hooks.bodies("/confirm").len() >= 4
    });
    let holding = seen.last().expect("status").clone();
    assert_eq!(holding["canaryWeight"].as_f64(), Some(50.0), "{holding}");
    assert_eq!(w.weights(), split(50.0), "Envoy holds the last step");
    let held_phase = phase(&holding).to_string();
    // Still held: one more refusal, the status unchanged in weight and steps.
    let n = hooks.bodies("/confirm").len();
    poll(
        &w.coalmine,
        NAME,
        &mut seen,
        TIMEOUT,
        never_promoted,
        |_| hooks.bodies("/confirm").len() > n,
    );
    let approved = SystemTime::now();
    hooks.confirm.store(true, Ordering::SeqCst);
    let end = poll(&w.coalmine, NAME, &mut seen, TIMEOUT, |_| {}, is_final);
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    assert_eq!(
        step_kinds(&end),
        kinds(&[("step", 10.0), ("step", 50.0), ("promote", 100.0)])
    );
    let promoted = time(&last_step(&end).expect("promote")["appliedAt"]).expect("appliedAt");
    assert!(
        promoted >= approved,
        "promoted before /confirm said yes: {end}"
    );
    assert_gated_on_ack(&seen, INTERVAL);
    w.wait_targets(&["v2"]);
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");

    let confirms = hooks.bodies("/confirm");
    for body in &confirms {
        assert_payload(body, "confirm-promotion");
    }
    let events = hooks.bodies("/events");
    let messages: Vec<&str> = events
        .iter()
        .map(|e| {
            assert_payload(e, "event");
            assert_eq!(e["metadata"]["team"], "canaries", "{e}");
            e["metadata"]["eventMessage"]
                .as_str()
                .unwrap_or_else(|| panic!("no eventMessage: {e}"))
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("confirm-promotion")),
        "no event about the held promotion: {messages:#?}"
    );
    eprintln!(
        "held in phase {held_phase:?}; {} /confirm calls, {} events: {messages:#?}",
        confirms.len(),
        events.len()
    );
}

#[test]
fn failing_pre_rollout_webhook_fails_the_release() {
    let w = World::start("ro-pre");
    let hooks = Hooks::start();
    let load = w.load(&[], Duration::from_millis(5));
    let analysis = format!(
        "    interval: 2s
    threshold: 2
    stepWeights: [10, 50]
    metrics:
    - name: request-success-rate
      thresholdRange: {{min: 99}}
      interval: 2s
    webhooks:
    - name: warmup
      type: pre-rollout
      url: {}
    - name: notify
      type: event
      url: {}
",
        hooks.url("/pre"),
        hooks.url("/events")
    );
    let started = Instant::now();
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", &analysis),
    );
    let mut seen = Seen::default();
    let end = poll(&w.coalmine, NAME, &mut seen, TIMEOUT, |_| {}, is_final);
    let took = started.elapsed();
    assert_eq!(phase(&end), "Failed", "statuses:\n{}", seen.summary());
    // Each failure of the gate is one failed check; the second (threshold) fails it.
    assert_eq!(end["failedChecks"], 2, "{end}");
    assert_eq!(end["canaryWeight"].as_f64(), Some(0.0), "{end}");
    for s in &seen.statuses {
        assert!(
            steps(s).iter().all(|st| st["kind"] != "step"),
            "a traffic step despite the failing pre-rollout webhook: {}",
            seen.summary()
        );
    }
    let message = end["message"].as_str().unwrap_or("");
    assert!(message.contains("pre-rollout"), "{end}");
    let pre = hooks.bodies("/pre");
    assert_eq!(pre.len(), 2, "one call per failed check: {pre:?}");
    for body in &pre {
        assert_payload(body, "pre-rollout");
    }
    assert!(took >= INTERVAL, "retried after an interval: {took:?}");
    assert!(
        hooks
            .bodies("/events")
            .iter()
            .any(|e| e["metadata"]["eventMessage"]
                .as_str()
                .is_some_and(|m| m.contains("pre-rollout"))),
        "{:?}",
        hooks.bodies("/events")
    );
    // v2 never saw a request; Envoy still routes everything to v1.
    assert_eq!(w.p.targets(&w.envoy), ["v1"]);
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");
    assert_eq!(w.p.v2.hits(), 0, "{report:?}");
}

/// A MetricTemplate whose provider is coalmine's built-in source: the canary is judged
/// on Envoy's own stats, with the metric's `minSamples`, no Prometheus involved.
#[test]
fn builtin_metric_template_judges_on_envoys_stats() {
    let w = World::start("ro-builtin-tpl");
    let template = "apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: success, namespace: default}
spec:
  provider: {type: coalmine}
  query: request-success-rate
";
    w.apply("template.yaml", template);
    let load = w.load(&[], Duration::from_millis(5));
    let analysis = "    interval: 2s
    threshold: 2
    stepWeights: [30, 60]
    metrics:
    - name: success
      templateRef: {name: success}
      thresholdRange: {min: 99}
      interval: 2s
      minSamples: 5
";
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", analysis),
    );
    let mut seen = Seen::default();
    let end = poll(&w.coalmine, NAME, &mut seen, TIMEOUT, |_| {}, is_final);
    assert_eq!(phase(&end), "Succeeded", "statuses:\n{}", seen.summary());
    let m = metric(&end, "success");
    assert_eq!(m["verdict"], "pass", "{end}");
    assert!(m["samples"].as_u64().unwrap_or(0) >= 5, "{end}");
    assert!(m["value"].as_f64().unwrap_or(0.0) >= 99.0, "{end}");
    let report = load.stop();
    assert_eq!(report.failures(), 0, "{report:?}");
}
