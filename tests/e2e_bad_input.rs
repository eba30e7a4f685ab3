//! Bad input gets a clear error and changes nothing: an ADS request that cannot be read
//! ends its stream with INVALID_ARGUMENT or RESOURCE_EXHAUSTED and the reason (logged
//! and counted on `/metrics`), non-finite numbers and the same resource twice in one
//! body are refused naming the field or both documents, and a blank admin token stops
//! `coalmine serve` at start-up.

mod support;

use support::{grpc, process, Coalmine};

#[test]
fn an_unreadable_ads_request_ends_its_stream_with_the_reason() {
    let coalmine = Coalmine::start_bare(&[]);
    let xds = coalmine.xds_addr();
    for protocol in ["sotw", "delta"] {
        // Field 1 (a SotW version_info, a Delta node) as a length running past the end.
        let answer = grpc::raw_ads(&xds, protocol, "0aff01");
        assert!(
            answer.starts_with("INVALID_ARGUMENT cannot decode a request"),
            "{protocol}: {answer}"
        );
        let answer = grpc::raw_ads(&xds, protocol, "big");
        assert!(
            answer.starts_with("RESOURCE_EXHAUSTED"),
            "{protocol}: {answer}"
        );
        assert!(answer.contains("over the limit"), "{answer}");
    }
    let metrics = coalmine.admin_get("/metrics").body;
    assert!(
        metrics.contains("coalmine_xds_rejected_requests_total 4"),
        "{metrics}"
    );
    assert!(
        coalmine.log_contains("invalid ADS request"),
        "{}",
        coalmine.logs()
    );
}

#[test]
fn non_finite_weights_and_duplicate_documents_are_refused_and_change_nothing() {
    let coalmine = Coalmine::start_bare(&[]);
    let entry = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
";
    for weight in [".inf", "-.inf", ".nan"] {
        let body = format!(
            "{entry}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web}}
spec:
  hosts: [web.example]
  http:
  - route:
    - destination: {{host: web.example}}
      weight: {weight}
"
        );
        let r = coalmine.admin_request("POST", "/api/v1/apply", "application/yaml", &body);
        assert_eq!(r.status, 400, "{weight}: {}", r.body);
        assert!(
            r.body.contains("spec.http[0].route[0].weight"),
            "{}",
            r.body
        );
        assert!(r.body.contains("not a finite number"), "{}", r.body);
    }
    let r = coalmine.admin_request(
        "POST",
        "/api/v1/apply",
        "application/yaml",
        &format!("{entry}---\n{entry}"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("documents 1 and 2"), "{}", r.body);
    // Nothing was stored.
    let history = coalmine.admin_get("/api/v1/revisions").body;
    assert!(!history.contains("ServiceEntry"), "{history}");
}

#[test]
fn a_blank_admin_token_is_refused_at_start_up() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let data = dir.path().join("data");
    let args = [
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--xds-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
    ];
    let out = process::cli_with(&args, &[("COALMINE_ADMIN_TOKEN", "   ")], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("blank"), "{text}");
    let file = dir.path().join("token");
    std::fs::write(&file, "\n  \n").expect("write token");
    let mut args: Vec<&str> = args.to_vec();
    args.extend(["--admin-token-file", file.to_str().unwrap()]);
    let out = process::cli(&args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pushes one stats report (one cluster, 700 requests, all 5xx) claiming `node`.
fn push_stats(xds_addr: &str, node: &str) {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::envoy::service::metrics::v3::metrics_service_client::MetricsServiceClient;
    use envoy_types::pb::envoy::service::metrics::v3::stream_metrics_message::Identifier;
    use envoy_types::pb::envoy::service::metrics::v3::StreamMetricsMessage;
    use envoy_types::pb::io::prometheus::client::{Counter, Metric, MetricFamily, MetricType};
    let counter = |name: &str| MetricFamily {
        name: Some(name.into()),
        r#type: Some(MetricType::Counter as i32),
        metric: vec![Metric {
            counter: Some(Counter {
                value: Some(700.0),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let message = StreamMetricsMessage {
        identifier: Some(Identifier {
            node: Some(Node {
                id: node.into(),
                ..Default::default()
            }),
        }),
        envoy_metrics: vec![
            counter("cluster.outbound|80|v2|web.example.upstream_rq_completed"),
            counter("cluster.outbound|80|v2|web.example.upstream_rq_5xx"),
        ],
    };
    let url = format!("http://{xds_addr}");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async move {
            let mut client = MetricsServiceClient::connect(url).await.expect("connect");
            let _ = client
                .stream_metrics(tokio_stream::iter(vec![message]))
                .await
                .expect("stream_metrics");
        });
}

fn metric(coalmine: &Coalmine, line_prefix: &str) -> u64 {
    let body = coalmine.admin_get("/metrics").body;
    body.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_prefix} in:\n{body}"))
}

#[test]
fn stats_from_a_node_with_no_ads_stream_are_dropped_and_counted() {
    let coalmine = Coalmine::start_bare(&[]);
    push_stats(&coalmine.xds_addr(), "invented-node");
    assert!(
        support::poll_until(std::time::Duration::from_secs(5), || {
            metric(
                &coalmine,
                "coalmine_stats_dropped_total{reason=\"unknown_node\"} ",
            ) >= 1
        }),
        "the forged report was not counted"
    );
    assert_eq!(
        metric(&coalmine, "coalmine_stats_series "),
        0,
        "nothing recorded"
    );
    assert!(
        coalmine.log_contains("no ADS stream open"),
        "{}",
        coalmine.logs()
    );

    // A real Envoy's own reports are taken, and go with its stream.
    let node = support::unique("stats-real");
    let envoy = support::Envoy::connect(&coalmine.xds_addr(), &node, &[], false);
    assert!(
        support::poll_until(std::time::Duration::from_secs(20), || {
            metric(&coalmine, "coalmine_stats_series ") > 0
        }),
        "the connected Envoy's stats were not recorded"
    );
    drop(envoy); // its ADS stream ends, and its series with it
    assert!(
        support::poll_until(std::time::Duration::from_secs(10), || {
            metric(&coalmine, "coalmine_stats_series ") == 0
        }),
        "the disconnected Envoy's series were kept"
    );
    push_stats(&coalmine.xds_addr(), &node);
    assert!(
        support::poll_until(std::time::Duration::from_secs(5), || {
            metric(
                &coalmine,
                "coalmine_stats_dropped_total{reason=\"unknown_node\"} ",
            ) >= 2
        }),
        "stats for a disconnected node id were taken"
    );
    assert_eq!(metric(&coalmine, "coalmine_stats_series "), 0);
}

/// An alias bomb, a flood of small aliases, deep flow and block nesting and a `---`
/// storm each answer 400 naming the limit, quickly and without growing the server,
/// while `/healthz` keeps answering in between; nothing is applied.
#[test]
fn hostile_yaml_is_refused_cheaply_and_healthz_keeps_answering() {
    let coalmine = Coalmine::start_bare(&[]);
    let long = "x".repeat(10_000);
    let huge = "y".repeat(1_000_000);
    let bodies = [
        (
            "alias bomb",
            format!("a: &s \"{long}\"\nb: [{}]\n", vec!["*s"; 30_000].join(",")),
            "more than 1000 aliases",
        ),
        (
            "few aliases of a long string",
            format!("a: &s \"{huge}\"\nb: [{}]\n", vec!["*s"; 40].join(",")),
            "bytes of text (aliases expanded)",
        ),
        (
            "deep flow nesting",
            format!("{}{}", "[".repeat(120_000), "]".repeat(120_000)),
            "recursion limit exceeded",
        ),
        (
            "deep block nesting",
            (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect(),
            "nested deeper than 64 levels",
        ),
        (
            "document storm",
            "a: 1\n---\n".repeat(12_000),
            "more than 10000 documents",
        ),
    ];
    // Warm the allocator and the handler once, so growth below is the bodies' own.
    coalmine.admin_request("POST", "/api/v1/apply", "application/yaml", "a: [");
    let before = coalmine.rss_kib();
    for (what, body, says) in &bodies {
        let started = std::time::Instant::now();
        let r = coalmine.admin_request("POST", "/api/v1/apply", "application/yaml", body);
        let took = started.elapsed();
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert!(r.body.contains(says), "{what}: {}", r.body);
        eprintln!("{what}: {} bytes, answered 400 in {took:?}", body.len());
        // Generous for a noisy 2-core CI machine; the measured figure is printed above.
        assert!(took < std::time::Duration::from_secs(2), "{what}: {took:?}");
        assert_eq!(coalmine.admin_get("/healthz").status, 200, "{what}");
    }
    let grown = coalmine.rss_kib().saturating_sub(before);
    eprintln!("RSS grew {grown} KiB over all bodies");
    assert!(grown < 20 * 1024, "RSS grew {grown} KiB");
    let revisions = coalmine.admin_get("/api/v1/revisions").body;
    assert!(revisions.contains("\"revisions\":[]"), "{revisions}");
}
