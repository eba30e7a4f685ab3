//! Certificates from Kubernetes Secrets under `coalmine serve --kubernetes` (the real
//! kube-rs client against the fake API server) through a real Envoy 1.40: an Istio
//! Gateway's `credentialName` serves its Secret, a rotated Secret reaches new
//! connections while an open one keeps working, and a Secret deleted while in use
//! leaves the listener with its last certificate while the Gateway's status says why.
//! Secrets no Gateway names are never read.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::certs::{read, secret_yaml, Pki};
use support::config::service_entry;
use support::fake_apiserver::FakeApiServer;
use support::tls_client::{connect, der_of};
use support::{Backend, Envoy};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(30);
const SECRETS: &str = "api/v1/secrets";
const GATEWAYS: &str = "apis/networking.istio.io/v1/gateways";

fn yaml(text: &str) -> Value {
    coalmine::yaml::value(text).expect("test YAML")
}

fn wait_for_certificate(port: u16, ca: &str, want: &[u8]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = connect(port, "web.example.com", ca, None).map(|c| c.peer_certificate());
        if got.as_deref().ok() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never served the expected certificate"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn gateway_certificates_from_kubernetes_secrets() {
    let api = FakeApiServer::start();
    let dir = TempDir::new().expect("tempdir");
    let pki = Pki::new();
    let ca = read(&pki.ca());
    let (first, rotated) = (
        pki.server("first", &["web.example.com"]),
        pki.server("rotated", &["web.example.com"]),
    );
    let v1 = Backend::start("v1");
    let label = support::unique("k8s-tls");
    let port = support::free_port();
    api.apply(yaml(&service_entry(
        "web-svc",
        "web-svc",
        &[(v1.port(), "v1")],
    )));
    api.apply(yaml(&secret_yaml("web-cert", &first, None)));
    // A Secret no Gateway names, of a type coalmine could not read: never looked at.
    api.apply(yaml(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: helm-release}\n\
         type: helm.sh/release.v1\ndata: {release: bm90IGEgY2VydA==}\n",
    ));
    api.apply(yaml(&format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, generation: 1}}
spec:
  selector: {{app: {label}}}
  servers:
  - port: {{number: {port}, name: https, protocol: HTTPS}}
    hosts: [web.example.com]
    tls: {{mode: SIMPLE, credentialName: web-cert}}
"
    )));
    api.apply(yaml(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web.example.com]
  gateways: [edge]
  http: [{route: [{destination: {host: web-svc, port: {number: 80}}}]}]
",
    ));
    let coalmine = api.replica(dir.path(), "replica-a");
    let labels = [("app", label.as_str())];
    let _envoy = Envoy::start(&coalmine.bootstrap(&label, &labels, false));

    wait_for_certificate(port, &ca, &der_of(&read(&first.cert)));
    let mut kept = connect(port, "web.example.com", &ca, None).expect("connect");
    assert_eq!(
        kept.get("web.example.com", "/").unwrap(),
        (200, "v1".into())
    );

    // Rotation.
    api.apply(yaml(&secret_yaml("web-cert", &rotated, None)));
    wait_for_certificate(port, &ca, &der_of(&read(&rotated.cert)));
    assert_eq!(
        kept.get("web.example.com", "/").unwrap(),
        (200, "v1".into())
    );

    // Deleted while in use: the listener keeps the last certificate, the Gateway says why.
    assert!(api.delete(SECRETS, "default", "web-cert"));
    let ok = support::poll_until(WAIT, || {
        api.get(GATEWAYS, "default", "edge")
            .is_some_and(|g| g["status"].to_string().contains("web-cert"))
    });
    let gateway = api.get(GATEWAYS, "default", "edge");
    assert!(
        ok,
        "the Gateway's status never named the deleted Secret: {gateway:#?}"
    );
    let status = gateway.unwrap()["status"].to_string();
    assert!(status.contains("still served"), "{status}");
    let fresh = connect(port, "web.example.com", &ca, None).expect("connect after delete");
    assert_eq!(fresh.peer_certificate(), der_of(&read(&rotated.cert)));
    assert_eq!(
        kept.get("web.example.com", "/").unwrap(),
        (200, "v1".into())
    );

    // The unnamed Secret was never judged: no status written, nothing logged of it.
    assert!(api.get(SECRETS, "default", "helm-release").unwrap()["status"].is_null());
    assert!(
        !coalmine.logs().contains("helm-release"),
        "{}",
        coalmine.logs()
    );
}
