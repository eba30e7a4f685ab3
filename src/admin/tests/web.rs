//! The dashboard page and what guards the admin router against browsers: the page is
//! open and calls only documented paths; cross-site changes are refused.

use super::*;

async fn post_with(
    state: &AdminState,
    uri: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> StatusCode {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/yaml")
        .header("host", "127.0.0.1:18080");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    resp.status()
}

#[tokio::test]
async fn cross_site_changes_are_403_and_change_nothing() {
    let f = mk_fixture(None);
    let foreign = [
        vec![("origin", "http://evil.example")],
        vec![("origin", "http://127.0.0.1:9999")],
        vec![("sec-fetch-site", "cross-site")],
    ];
    for headers in &foreign {
        let status = post_with(&f.state, "/api/v1/apply", PETSTORE, headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert_eq!(revision(&f.state), 0, "nothing applied");
    // The dashboard's own origin, and the CLI (no Origin), are served.
    let own = [
        ("origin", "http://127.0.0.1:18080"),
        ("sec-fetch-site", "same-origin"),
    ];
    assert_eq!(
        post_with(&f.state, "/api/v1/apply", PETSTORE, &own).await,
        StatusCode::OK
    );
    assert_eq!(
        post_with(&f.state, "/api/v1/apply", PETSTORE, &[]).await,
        StatusCode::OK
    );
    // Reads are not refused: a browser does not let a foreign page read the answer.
    let (status, _) = call(&f.state, "GET", "/api/v1/revisions", "", None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn get_raw(router: Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let req = Request::builder().uri(uri);
    let resp = router
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn dashboard_is_served_without_the_token_and_the_api_still_needs_it() {
    for token in [None, Some("s3cret")] {
        let f = mk_fixture(token);
        // Also under `--kubernetes`, where resource writes are refused.
        let routers = [
            router(f.state.clone()),
            cluster_read_only(router(f.state.clone()), token.map(str::to_string)),
        ];
        for (app, uri) in routers
            .iter()
            .flat_map(|r| [(r.clone(), "/"), (r.clone(), "/dashboard")])
        {
            let (status, headers, body) = get_raw(app, uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(headers["content-type"], "text/html; charset=utf-8");
            assert!(headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'"));
            assert_eq!(body, dashboard::PAGE);
            assert!(body.contains("<title>coalmine</title>"));
        }
    }
    let f = mk_fixture(Some("s3cret"));
    let (status, _) = call(&f.state, "GET", "/api/v1/proxies", "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&f.state, "GET", "/api/v1/proxies", "", Some("s3cret")).await;
    assert_eq!(status, StatusCode::OK);
}

/// The `"METHOD /api/v1/..."` templates of the page's `ENDPOINTS` object.
fn dashboard_endpoints() -> Vec<(String, String)> {
    let start = dashboard::PAGE
        .find("const ENDPOINTS = {")
        .expect("the page keeps its API paths in `const ENDPOINTS = {...}`");
    let block = &dashboard::PAGE[start..];
    let block = &block[..block.find("};").unwrap()];
    // Every API path of the page is in the block, so the page cannot call one the
    // test does not see.
    assert_eq!(
        block.matches("/api/").count(),
        dashboard::PAGE.matches("/api/").count(),
        "an /api/ path outside ENDPOINTS"
    );
    block
        .lines()
        .filter_map(|line| line.split('"').nth(1))
        .map(|endpoint| {
            let (method, path) = endpoint.split_once(' ').unwrap();
            (method.to_lowercase(), path.to_string())
        })
        .collect()
}

/// Same segments, a `{placeholder}` matching any placeholder.
fn same_template(a: &str, b: &str) -> bool {
    let templated = |s: &str| s.starts_with('{') && s.ends_with('}');
    a.split('/').count() == b.split('/').count()
        && a.split('/')
            .zip(b.split('/'))
            .all(|(x, y)| x == y || (templated(x) && templated(y)))
}

#[tokio::test]
async fn every_api_path_the_dashboard_calls_is_in_the_openapi_document() {
    let f = mk_fixture(None);
    let (status, doc) = call(&f.state, "GET", "/api/v1/openapi.json", "", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let endpoints = dashboard_endpoints();
    assert!(endpoints.len() >= 7, "{endpoints:?}");
    for (method, path) in &endpoints {
        let found = paths
            .iter()
            .find(|(p, _)| same_template(p, path))
            .unwrap_or_else(|| panic!("the dashboard calls {path}, which the API lacks"));
        assert!(
            found.1[method.as_str()].is_object(),
            "the dashboard calls {method} {path}, which the API does not answer"
        );
    }
}

#[test]
fn dashboard_loads_nothing_from_elsewhere_and_builds_no_markup_from_data() {
    let page = dashboard::PAGE;
    for needle in [
        "http://",
        "https://",
        "//cdn",
        "<script src",
        "@import",
        "url(",
    ] {
        assert!(!page.contains(needle), "the page holds {needle:?}");
    }
    for needle in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!page.contains(needle), "the page uses {needle}");
    }
    assert_eq!(page.matches("<script").count(), 1);
}
