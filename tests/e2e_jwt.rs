//! JWT-protected routes through a real Envoy 1.40: a RequestAuthentication with an
//! RS256 issuer whose keys Envoy fetches from a `jwksUri` (a server on 127.0.0.1,
//! through the cluster coalmine generates) and an ES256 issuer with inline keys;
//! AuthorizationPolicies ALLOW (a verified JWT, or a public path) and DENY (an admin
//! path for everyone but one principal); and canary by claim (`group` or a `groups`
//! list holding `beta-testers` → v2). Keys are generated and tokens signed here.

mod support;

use std::time::Duration;

use serde_json::json;
use support::config::{destination_rule, docs, service_entry, virtual_service};
use support::jwt::{claims, jwks, now, JwksServer, Signer};
use support::traffic::{get, wait_response, Load, Response};
use support::{start_envoy_for, Backend, Coalmine, ConfigDir, GatewaySpec};

const HOST: &str = "petstore.test";
const WAIT: Duration = Duration::from_secs(30);
const RS_ISSUER: &str = "https://rs.issuer.test";
const ES_ISSUER: &str = "https://es.issuer.test/realm";
const AUDIENCE: &str = "petstore";

fn request_authentication(gw: &GatewaySpec, jwks_port: u16, es_jwks: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
  jwtRules:
  - issuer: {RS_ISSUER}
    audiences: [{AUDIENCE}]
    jwksUri: http://127.0.0.1:{jwks_port}/.well-known/jwks.json
    forwardOriginalToken: true
  - issuer: {ES_ISSUER}
    audiences: [{AUDIENCE}]
    jwks: '{es_jwks}'
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{{header: x-jwt-sub, claim: sub}}]
",
        app = gw.app
    )
}

fn authorization_policies(gw: &GatewaySpec) -> String {
    format!(
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: require-jwt}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
  action: ALLOW
  rules:
  - from: [{{source: {{requestPrincipals: [\"*\"]}}}}]
  - to: [{{operation: {{paths: [\"/public*\"], methods: [GET]}}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: admin-only-root}}
spec:
  selector: {{matchLabels: {{app: {app}}}}}
  action: DENY
  rules:
  - to: [{{operation: {{paths: [\"/admin*\"]}}}}]
    from: [{{source: {{notRequestPrincipals: [\"{RS_ISSUER}/root\"]}}}}]
",
        app = gw.app
    )
}

/// `group: beta-testers` or a `groups` list holding it → v2; everyone else → v1.
fn canary_by_claim(gw: &GatewaySpec) -> String {
    let http = "  - name: beta-group
    match:
    - headers: {\"@request.auth.claims.group\": {exact: beta-testers}}
    - headers: {\"@request.auth.claims.groups\": {exact: beta-testers}}
    route:
    - destination: {host: petstore, subset: v2}
  - name: stable
    route:
    - destination: {host: petstore, subset: v1}
";
    virtual_service("petstore", &gw.name, http)
}

fn call(port: u16, path: &str, token: Option<&str>) -> Response {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    get(port, HOST, path, &headers).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn outcome(port: u16, path: &str, token: Option<&str>) -> String {
    call(port, path, token).outcome()
}

#[test]
fn jwt_rules_authorization_and_canary_by_claim() {
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let rs = Signer::rs256("rs-key");
    let es = Signer::es256("es-key");
    let stranger = Signer::es256("es-key");
    let keys_server = JwksServer::start(jwks(&[&rs]));
    let gw = GatewaySpec::new("jwt");
    let cfg = ConfigDir::new();
    let eps = [(v1.port(), "v1"), (v2.port(), "v2")];
    cfg.write(
        "mesh.yaml",
        &docs(&[
            &gw.yaml(),
            &service_entry("petstore", "petstore", &eps),
            &destination_rule("petstore", "petstore", &["v1", "v2"]),
            &canary_by_claim(&gw),
            &request_authentication(&gw, keys_server.port(), &jwks(&[&es])),
            &authorization_policies(&gw),
        ]),
    );
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let envoy = start_envoy_for(&coalmine, &gw, false);

    let alice = rs.sign(&claims(RS_ISSUER, "alice", AUDIENCE, json!({})));
    let port = gw.port;
    let auth = format!("Bearer {alice}");
    let headers = [("authorization", auth.as_str())];
    let ready = wait_response(port, HOST, "/pets", &headers, WAIT, |r| r.status == 200);
    assert_eq!(ready.body.trim(), "v1", "a verified RS256 token reaches v1");
    assert!(
        keys_server.hits() >= 1,
        "Envoy fetched the RS256 keys from the jwksUri"
    );
    let clusters = envoy.dump_section("ClustersConfigDump").to_string();
    let jwks_cluster = format!("coalmine|jwks|127.0.0.1|{}", keys_server.port());
    assert!(
        clusters.contains(&jwks_cluster),
        "Envoy holds the generated JWKS cluster {jwks_cluster}"
    );

    // ES256 with inline keys; its payload and `sub` go to the backend as headers,
    // and, unlike the RS256 rule, the token itself does not.
    let carol = es.sign(&claims(ES_ISSUER, "carol", AUDIENCE, json!({})));
    assert_eq!(outcome(port, "/pets", Some(&carol)), "v1");
    let seen = v1.received();
    let last = seen.last().expect("v1 saw the request");
    assert_eq!(
        last.headers.get("x-jwt-sub").map(String::as_str),
        Some("carol")
    );
    assert!(
        last.headers.contains_key("x-jwt-payload"),
        "{:?}",
        last.headers
    );
    assert!(
        !last.headers.contains_key("authorization"),
        "{:?}",
        last.headers
    );
    let first = seen
        .iter()
        .find(|r| r.headers.contains_key("authorization"))
        .expect("the RS256 rule forwards the original token");
    assert_eq!(first.headers["authorization"], format!("Bearer {alice}"));

    // Tokens that fail are refused by jwt_authn: 401, except a verified token for
    // another audience, which Envoy (and so Istio) answers 403.
    let hour_ago = now() - 3600;
    let expired = rs.sign(&json!({"iss": RS_ISSUER, "sub": "alice", "aud": AUDIENCE,
                                  "iat": hour_ago - 60, "exp": hour_ago}));
    let wrong_issuer = rs.sign(&claims("https://other.test", "alice", AUDIENCE, json!({})));
    let wrong_audience = es.sign(&claims(ES_ISSUER, "carol", "billing", json!({})));
    let wrong_key = stranger.sign(&claims(ES_ISSUER, "carol", AUDIENCE, json!({})));
    for (what, token, status, body) in [
        ("expired", &expired, 401, "Jwt is expired"),
        (
            "wrong issuer",
            &wrong_issuer,
            401,
            "Jwt issuer is not configured",
        ),
        (
            "signed by another key",
            &wrong_key,
            401,
            "Jwt verification fails",
        ),
        (
            "not a JWT",
            &"garbage".to_string(),
            401,
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
        (
            "wrong audience",
            &wrong_audience,
            403,
            "Audiences in Jwt are not allowed",
        ),
    ] {
        let r = call(port, "/pets", Some(token));
        assert_eq!((r.status, r.body.as_str()), (status, body), "{what}");
    }

    // No token passes jwt_authn, then the ALLOW policy wants a principal: 403,
    // except on the public path it allows for GET.
    assert_eq!(call(port, "/pets", None).status, 403);
    assert_eq!(outcome(port, "/public/info", None), "v1");

    // DENY on /admin for every principal but RS256's root.
    let root = rs.sign(&claims(RS_ISSUER, "root", AUDIENCE, json!({})));
    assert_eq!(call(port, "/admin/users", Some(&alice)).status, 403);
    assert_eq!(call(port, "/admin/users", Some(&carol)).status, 403);
    assert_eq!(outcome(port, "/admin/users", Some(&root)), "v1");

    // Canary by claim: a string claim, or a list claim holding the value.
    let beta = rs.sign(&claims(
        RS_ISSUER,
        "bob",
        AUDIENCE,
        json!({"group": "beta-testers"}),
    ));
    let listed = es.sign(&claims(
        ES_ISSUER,
        "dave",
        AUDIENCE,
        json!({"groups": ["staff", "beta-testers"]}),
    ));
    let others = rs.sign(&claims(
        RS_ISSUER,
        "erin",
        AUDIENCE,
        json!({"group": "staff"}),
    ));
    for _ in 0..5 {
        assert_eq!(outcome(port, "/pets", Some(&beta)), "v2");
        assert_eq!(outcome(port, "/pets", Some(&listed)), "v2");
        assert_eq!(outcome(port, "/pets", Some(&others)), "v1");
        assert_eq!(outcome(port, "/pets", Some(&alice)), "v1");
    }
    // A forged claim without a valid signature routes nowhere: 401.
    let forged = stranger.sign(&claims(
        RS_ISSUER,
        "bob",
        AUDIENCE,
        json!({"group": "beta-testers"}),
    ));
    assert_eq!(call(port, "/pets", Some(&forged)).status, 401);
}

/// Adding a RequestAuthentication with a `jwksUri` (a host name: a STRICT_DNS
/// cluster) to a gateway under load, over Delta ADS: the new key cluster is warmed
/// before the listener that uses it, so no request fails, neither those carrying a
/// valid token nor those carrying none.
#[test]
fn adding_jwt_rules_to_a_live_gateway_fails_no_request() {
    let v1 = Backend::start("v1");
    let rs = Signer::rs256("rs-live");
    let keys_server = JwksServer::start(jwks(&[&rs]));
    let gw = GatewaySpec::new("jwt-live");
    let cfg = ConfigDir::new();
    let http = "  - route:\n    - destination: {host: petstore, subset: v1}\n";
    let mesh = [
        gw.yaml(),
        service_entry("petstore", "petstore", &[(v1.port(), "v1")]),
        destination_rule("petstore", "petstore", &["v1"]),
        virtual_service("petstore", &gw.name, http),
    ];
    let mesh: Vec<&str> = mesh.iter().map(String::as_str).collect();
    cfg.write("mesh.yaml", &docs(&mesh));
    let coalmine = Coalmine::start(&cfg.path(), &[]);
    let envoy = start_envoy_for(&coalmine, &gw, true);
    wait_response(gw.port, HOST, "/", &[], WAIT, |r| r.status == 200);

    let token = rs.sign(&claims(RS_ISSUER, "alice", AUDIENCE, json!({})));
    let auth = format!("Bearer {token}");
    let interval = Duration::from_millis(5);
    let with_token = Load::start(gw.port, HOST, "/", &[("authorization", &auth)], interval);
    let without = Load::start(gw.port, HOST, "/", &[], interval);
    std::thread::sleep(Duration::from_millis(300));

    let rule = format!(
        "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt}}
spec:
  jwtRules:
  - issuer: {RS_ISSUER}
    audiences: [{AUDIENCE}]
    jwksUri: http://localhost:{}/keys
",
        keys_server.port()
    );
    cfg.write("jwt.yaml", &rule);
    // In force once a bad token is refused.
    let forged = Signer::es256("x").sign(&claims(RS_ISSUER, "alice", AUDIENCE, json!({})));
    let bad = format!("Bearer {forged}");
    wait_response(gw.port, HOST, "/", &[("authorization", &bad)], WAIT, |r| {
        r.status == 401
    });
    std::thread::sleep(Duration::from_millis(300));
    let (with_token, without) = (with_token.stop(), without.stop());
    assert!(keys_server.hits() >= 1, "the keys were fetched");
    let clusters = envoy.dump_section("ClustersConfigDump").to_string();
    let dns = format!("coalmine|jwks|localhost|{}", keys_server.port());
    assert!(clusters.contains(&dns), "a STRICT_DNS cluster {dns}");
    for (what, report) in [("valid token", with_token), ("no token", without)] {
        assert!(report.total > 50, "{what}: too few requests: {report:?}");
        assert_eq!(report.failures(), 0, "{what}: {report:?}");
    }
}
