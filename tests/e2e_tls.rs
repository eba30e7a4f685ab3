//! TLS termination from Secrets over SDS (SotW and Delta) through a real Envoy 1.40, checked with a TLS
//! client: an Istio Gateway with two HTTPS servers on one port, each with its own
//! certificate chosen by SNI (one SIMPLE, one MUTUAL refusing a client without a
//! certificate), an HTTP server redirecting to HTTPS, a rotated Secret reaching Envoy
//! while a connection stays open, and the key never shown: not in coalmine's logs,
//! `/metrics`, the admin API, `coalmine get -o yaml`, nor Envoy's config_dump.

mod support;

use std::time::{Duration, Instant};

use support::certs::{read, secret_yaml, Pair, Pki};
use support::config::{docs, service_entry};
use support::tls_client::{connect, der_of, TlsConn};
use support::{traffic, Backend, Coalmine, Envoy};

const WAIT: Duration = Duration::from_secs(30);

fn secret(name: &str, pair: &Pair, ca: Option<&str>) -> String {
    secret_yaml(name, pair, ca)
}

fn gateway(label: &str, https: u16, http: u16) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge}}
spec:
  selector: {{app: {label}}}
  servers:
  - port: {{number: {https}, name: https-web, protocol: HTTPS}}
    hosts: [web.example.com]
    tls: {{mode: SIMPLE, credentialName: web-cert, minProtocolVersion: TLSV1_2}}
  - port: {{number: {https}, name: https-api, protocol: HTTPS}}
    hosts: [api.example.com]
    tls: {{mode: MUTUAL, credentialName: api-cert}}
  - port: {{number: {http}, name: http, protocol: HTTP}}
    hosts: [\"*\"]
    tls: {{httpsRedirect: true}}
"
    )
}

fn virtual_service(name: &str, host: &str, to: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}}}
spec:
  hosts: [{host}]
  gateways: [edge]
  http:
  - route: [{{destination: {{host: {to}, port: {{number: 80}}}}}}]
"
    )
}

fn apply(coalmine: &Coalmine, body: &str) {
    let r = coalmine.admin_request("POST", "/api/v1/apply", "application/yaml", body);
    assert_eq!(r.status, 200, "apply: {}", r.body);
}

/// Connects until `ok` holds for a new connection's presented certificate.
fn wait_for_certificate(port: u16, sni: &str, ca: &str, want: &[u8]) -> TlsConn {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(conn) = connect(port, sni, ca, None) {
            if conn.peer_certificate() == want {
                return conn;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{sni}: never served the expected certificate"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn gateways_terminate_tls_from_secrets_over_sotw_sds() {
    tls_through_envoy(false);
}

#[test]
fn gateways_terminate_tls_from_secrets_over_delta_sds() {
    tls_through_envoy(true);
}

fn tls_through_envoy(delta: bool) {
    let pki = Pki::new();
    let ca = read(&pki.ca());
    let web = pki.server("web", &["web.example.com"]);
    let web_rotated = pki.server("web-rotated", &["web.example.com"]);
    let api = pki.server("api", &["api.example.com"]);
    let client = pki.client("client", &["client.example.com"], &[]);
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let label = support::unique("tls-edge");
    let (https, http) = (support::free_port(), support::free_port());

    let coalmine = Coalmine::start_bare(&[]);
    let backends = [
        service_entry("web-svc", "web-svc", &[(v1.port(), "v1")]),
        service_entry("api-svc", "api-svc", &[(v2.port(), "v2")]),
    ];
    let set = |web_pair: &Pair| {
        docs(&[
            &backends[0],
            &backends[1],
            &secret("web-cert", web_pair, None),
            &secret("api-cert", &api, Some(&ca)),
            &gateway(&label, https, http),
            &virtual_service("web", "web.example.com", "web-svc"),
            &virtual_service("api", "api.example.com", "api-svc"),
        ])
    };
    apply(&coalmine, &set(&web));
    let labels = [("app", label.as_str())];
    let envoy = Envoy::start(&coalmine.bootstrap(&label, &labels, delta));

    // Each host gets its own certificate by SNI.
    let mut kept = wait_for_certificate(https, "web.example.com", &ca, &der_of(&read(&web.cert)));
    assert_eq!(
        kept.get("web.example.com", "/").unwrap(),
        (200, "v1".into())
    );
    let client_pair = (read(&client.cert), read(&client.key));
    let mut mutual = connect(
        https,
        "api.example.com",
        &ca,
        Some((&client_pair.0, &client_pair.1)),
    )
    .expect("a client with a certificate");
    assert_eq!(mutual.peer_certificate(), der_of(&read(&api.cert)));
    assert_eq!(
        mutual.get("api.example.com", "/").unwrap(),
        (200, "v2".into())
    );
    // MUTUAL refuses a client without a certificate (at the handshake, or at the first
    // request, as TLS 1.3 reports it).
    let refused = connect(https, "api.example.com", &ca, None)
        .and_then(|mut c| c.get("api.example.com", "/"));
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );

    // httpsRedirect: the HTTP port answers 301 to https.
    let r = traffic::get(http, "web.example.com", "/pets?x=1", &[]).expect("get");
    assert_eq!(r.status, 301, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("https://web.example.com/pets?x=1")
    );

    // Rotation: new connections get the new certificate; the open one keeps working.
    apply(&coalmine, &set(&web_rotated));
    let mut fresh = wait_for_certificate(
        https,
        "web.example.com",
        &ca,
        &der_of(&read(&web_rotated.cert)),
    );
    assert_eq!(
        fresh.get("web.example.com", "/").unwrap(),
        (200, "v1".into())
    );
    assert_eq!(
        kept.get("web.example.com", "/").unwrap(),
        (200, "v1".into())
    );

    // The keys are nowhere to be seen.
    let key_line = |pair: &Pair| {
        read(&pair.key)
            .lines()
            .nth(1)
            .expect("PEM body")
            .to_string()
    };
    let needles = [key_line(&web), key_line(&web_rotated), key_line(&api)];
    let resources = coalmine.admin_get("/api/v1/resources?kind=Secret");
    assert_eq!(resources.status, 200);
    assert!(resources.body.contains("dataHash"), "{}", resources.body);
    let get = coalmine.cli(&["get", "secrets", "-o", "yaml"]);
    let places = [
        ("logs", coalmine.logs()),
        ("/metrics", coalmine.admin_get("/metrics").body),
        ("GET /api/v1/resources", resources.body),
        (
            "coalmine get -o yaml",
            String::from_utf8_lossy(&get.stdout).into_owned(),
        ),
        ("config_dump", envoy.admin_get("/config_dump?include_eds")),
    ];
    for (place, text) in &places {
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "a private key shows in {place}"
            );
        }
    }
    assert!(
        places[4].1.contains("[redacted]") || places[4].1.contains("secret/default/web-cert"),
        "config_dump holds the SDS secrets"
    );
}

/// Gateway API HTTPS listeners: a certificateRef of the Gateway's namespace, one of
/// another namespace allowed by a ReferenceGrant, and one to a missing Secret, whose
/// listener is not served while the others are.
#[test]
fn gateway_api_https_listeners_take_certificate_refs() {
    let pki = Pki::new();
    let ca = read(&pki.ca());
    let secure = pki.server("secure", &["secure.example.com"]);
    let shared = pki.server("shared", &["granted.example.com"]);
    let v1 = Backend::start("v1");
    let name = support::unique("gapi-tls");
    let port = support::free_port();
    let shared_secret = secret("shared-cert", &shared, None).replace(
        "metadata: {name: shared-cert}",
        "metadata: {name: shared-cert, namespace: certs}",
    );
    let gateway = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}}}
spec:
  gatewayClassName: coalmine
  listeners:
  - name: secure
    port: {port}
    protocol: HTTPS
    hostname: secure.example.com
    tls: {{mode: Terminate, certificateRefs: [{{name: secure-cert}}]}}
  - name: granted
    port: {port}
    protocol: HTTPS
    hostname: granted.example.com
    tls: {{certificateRefs: [{{kind: Secret, name: shared-cert, namespace: certs}}]}}
  - name: missing
    port: {port}
    protocol: HTTPS
    hostname: missing.example.com
    tls: {{certificateRefs: [{{name: no-such-secret}}]}}
"
    );
    let grant = "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: gateways-here, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: default}]
  to: [{group: \"\", kind: Secret}]
";
    let route = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web}}
spec:
  parentRefs: [{{name: {name}}}]
  hostnames: [secure.example.com, granted.example.com, missing.example.com]
  rules: [{{backendRefs: [{{name: v1, port: 80}}]}}]
"
    );
    let coalmine = Coalmine::start_bare(&[]);
    let set = docs(&[
        &service_entry("v1", "v1", &[(v1.port(), "v1")]),
        &secret("secure-cert", &secure, None),
        &shared_secret,
        grant,
        &gateway,
        &route,
    ]);
    apply(&coalmine, &set);
    let labels = [(coalmine::gateway_api::GATEWAY_NAME_LABEL, name.as_str())];
    let _envoy = Envoy::start(&coalmine.bootstrap(&name, &labels, false));

    let mut conn = wait_for_certificate(
        port,
        "secure.example.com",
        &ca,
        &der_of(&read(&secure.cert)),
    );
    assert_eq!(
        conn.get("secure.example.com", "/").unwrap(),
        (200, "v1".into())
    );
    let mut granted = connect(port, "granted.example.com", &ca, None).expect("granted");
    assert_eq!(granted.peer_certificate(), der_of(&read(&shared.cert)));
    assert_eq!(
        granted.get("granted.example.com", "/").unwrap(),
        (200, "v1".into())
    );
    let missing = connect(port, "missing.example.com", &ca, None)
        .and_then(|mut c| c.get("missing.example.com", "/"));
    assert!(
        missing.is_err(),
        "a listener without its Secret served: {missing:?}"
    );

    // Without the grant, the other namespace's Secret is refused: that listener goes.
    let path = "/api/v1/resources/ReferenceGrant/certs/gateways-here";
    let r = coalmine.admin_request("DELETE", path, "application/json", "");
    assert_eq!(r.status, 200, "delete the grant: {}", r.body);
    let deadline = Instant::now() + WAIT;
    while connect(port, "granted.example.com", &ca, None).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still served without a ReferenceGrant"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        conn.get("secure.example.com", "/").unwrap(),
        (200, "v1".into())
    );
}
