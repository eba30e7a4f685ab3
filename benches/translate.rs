//! Criterion benches for translation: 10,000 routes across 1,000 services (1,000
//! VirtualServices x 10 HTTP routes, 1,000 ServiceEntries with 4 endpoints, 1,000
//! DestinationRules with subsets v1/v2, one Gateway).
//!
//! Translation is not incremental today, so "weight change" measures what a weight
//! change costs now: a full re-translation of a configuration that differs from the
//! previous one in one VirtualService's weights.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use coalmine::ingest::parse_documents;
use coalmine::model::{Config, Labels, ResourceKey};
use coalmine::resource_set::build_config;
use coalmine::snapshot::Snapshot;
use coalmine::translate::{select_gateways, translate};
use criterion::{criterion_group, criterion_main, Criterion};

const SERVICES: usize = 1_000;
const ROUTES_PER_SERVICE: usize = 10;

/// The documents, with service `changed`'s v2 weight set to `weight` (10 elsewhere).
fn documents(changed: usize, weight: u32) -> String {
    let mut out = String::from(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: bench}\n\
         spec:\n  selector: {app: bench}\n  servers:\n  \
         - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n",
    );
    for s in 0..SERVICES {
        let _ = write!(
            out,
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: svc-{s}}}\n\
             spec:\n  hosts: [svc-{s}]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  \
             resolution: STATIC\n  endpoints:\n"
        );
        for e in 0..4 {
            let version = if e % 2 == 0 { "v1" } else { "v2" };
            let _ = writeln!(
                out,
                "  - {{address: 10.{}.{}.{}, ports: {{http: 8080}}, labels: {{version: {version}}}}}",
                s >> 8,
                s & 255,
                e + 1
            );
        }
        let _ = write!(
            out,
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc-{s}}}\n\
             spec:\n  host: svc-{s}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  \
             - {{name: v2, labels: {{version: v2}}}}\n\
             ---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc-{s}}}\n\
             spec:\n  hosts: [svc-{s}.example.com]\n  gateways: [bench]\n  http:\n"
        );
        let w2 = if s == changed { weight } else { 10 };
        for r in 0..ROUTES_PER_SERVICE {
            let _ = write!(
                out,
                "  - name: r{r}\n    match: [{{uri: {{prefix: /r{r}}}}}]\n    route:\n    \
                 - {{destination: {{host: svc-{s}, subset: v1}}, weight: {}}}\n    \
                 - {{destination: {{host: svc-{s}, subset: v2}}, weight: {w2}}}\n",
                100 - w2
            );
        }
    }
    out
}

fn config(changed: usize, weight: u32) -> Config {
    let docs = parse_documents(&documents(changed, weight)).expect("documents parse");
    build_config(&docs, &Default::default()).expect("configuration is valid")
}

fn labels() -> Labels {
    Labels::from([("app".to_string(), "bench".to_string())])
}

fn gateways(config: &Config) -> BTreeSet<ResourceKey> {
    select_gateways(config, &labels())
}

fn benches(c: &mut Criterion) {
    let base = config(usize::MAX, 10);
    let gws = gateways(&base);
    let routes: usize = base.virtual_services.iter().map(|v| v.http.len()).sum();
    assert_eq!(routes, SERVICES * ROUTES_PER_SERVICE);
    let resources = translate(&base, &gws);
    eprintln!(
        "bench config: {routes} routes, {} clusters, {} CLAs, {} listeners, {} route configs",
        resources.clusters.len(),
        resources.endpoints.len(),
        resources.listeners.len(),
        resources.routes.len()
    );

    let mut group = c.benchmark_group("translate_10k_routes");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("full_translation", |b| {
        b.iter(|| translate(black_box(&base), black_box(&gws)))
    });
    let changed = config(500, 37);
    group.bench_function("weight_change_full_retranslation", |b| {
        b.iter(|| translate(black_box(&changed), black_box(&gws)))
    });
    group.bench_function("snapshot_view_translate_encode_hash", |b| {
        let labels = labels();
        b.iter_with_setup(
            || Snapshot::new(Arc::new(base.clone()), 1),
            |snapshot| snapshot.view_for(black_box(&labels)),
        )
    });
    // Incremental: the next snapshot's view built from the previous one.
    let base_arc = Arc::new(base.clone());
    let mut moved = base.clone();
    let svc = moved.services.get_mut("svc-500").expect("svc-500 exists");
    svc.endpoints[0].address = "10.250.250.250".to_string();
    let moved = Arc::new(moved);
    let reweighted = Arc::new(changed.clone());
    for (name, next_config) in [
        ("snapshot_next_one_endpoint_change", moved),
        ("snapshot_next_one_weight_change", reweighted),
    ] {
        group.bench_function(name, |b| {
            let labels = labels();
            b.iter_with_setup(
                || {
                    let prev = Snapshot::new(base_arc.clone(), 1);
                    prev.view_for(&labels);
                    prev
                },
                |prev| Snapshot::next(&prev, next_config.clone(), 2).view_for(black_box(&labels)),
            )
        });
    }
    let text = documents(usize::MAX, 10);
    group.bench_function("istio_parse_and_build_config", |b| {
        b.iter(|| {
            let docs = parse_documents(black_box(&text)).expect("parses");
            build_config(&docs, &Default::default()).expect("valid")
        })
    });
    group.finish();
}

criterion_group!(translation, benches);
criterion_main!(translation);
