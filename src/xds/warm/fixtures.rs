//! Views for the make-before-break tests of both state machines: EDS clusters with
//! their assignments, one listener, and route configurations that use clusters.

use std::sync::Arc;

use crate::snapshot::{Encoded, ResourceMap, TypeKind, View};

fn encoded(name: &str, version: &str, uses: &[&str]) -> Arc<Encoded> {
    Arc::new(plain(name, version, uses))
}

fn plain(name: &str, version: &str, uses: &[&str]) -> Encoded {
    let bytes = bytes::Bytes::from(format!("{name}@{version}"));
    let uses = uses.iter().map(|u| u.to_string()).collect();
    Encoded::new(name, version, bytes).with_uses(uses)
}

/// Clusters `(name, version)`, each an EDS cluster with an assignment at version 1,
/// the listener `l`, and route configurations `(name, clusters it uses)` whose version
/// is the clusters' names joined.
pub fn view(clusters: &[(&str, &str)], routes: &[(&str, &[&str])]) -> Arc<View> {
    view_with_empty(clusters, &[], routes)
}

/// [`view`], where the clusters named in `empty` have an assignment with no endpoint
/// (at version 0).
pub fn view_with_empty(
    clusters: &[(&str, &str)],
    empty: &[&str],
    routes: &[(&str, &[&str])],
) -> Arc<View> {
    let mut maps: [ResourceMap; TypeKind::COUNT] = Default::default();
    for (name, version) in clusters {
        maps[TypeKind::Cluster.index()].insert(name.to_string(), encoded(name, version, &[name]));
        let cla = match empty.contains(name) {
            true => Arc::new(plain(name, "0", &[]).with_empty(true)),
            false => encoded(name, "1", &[]),
        };
        maps[TypeKind::Endpoint.index()].insert(name.to_string(), cla);
    }
    maps[TypeKind::Listener.index()].insert("l".into(), encoded("l", "1", &[]));
    for (name, uses) in routes {
        let version = uses.join("+");
        maps[TypeKind::Route.index()].insert(name.to_string(), encoded(name, &version, uses));
    }
    Arc::new(View::new(maps))
}

/// The names of a response's resources.
pub fn names(resources: &[Arc<Encoded>]) -> Vec<&str> {
    resources.iter().map(|r| r.name.as_str()).collect()
}

/// `v` with one more cluster, `name`, that has no assignment (a STATIC or DNS
/// cluster, as a JWKS fetch uses), and the listener `l` using it.
pub fn with_listener_using(v: &View, name: &str) -> Arc<View> {
    let mut maps = v.to_maps();
    maps[TypeKind::Cluster.index()].insert(name.to_string(), encoded(name, "1", &[]));
    maps[TypeKind::Listener.index()].insert("l".into(), encoded("l", name, &[name]));
    Arc::new(View::new(maps))
}
