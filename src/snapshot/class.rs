//! Classes of clients, each with its own view: Envoy proxies by the set of Gateways
//! that select them, and every proxyless gRPC client in one class. Owns which
//! translation a class gets; the translations themselves are `translate`'s.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

use crate::model::{Config, Destination, ResourceKey};
use crate::translate::{self, Resources, Routed};

/// Which view a client gets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViewClass {
    /// Envoy proxies selected by exactly these Gateways (none: the default listener).
    Envoy(BTreeSet<ResourceKey>),
    /// Proxyless gRPC clients: API listeners named `host:port`.
    Grpc,
}

impl ViewClass {
    /// Everything the class is served.
    pub fn translate(&self, config: &Config) -> Resources {
        match self {
            ViewClass::Envoy(gateways) => translate::translate(config, gateways),
            ViewClass::Grpc => translate::grpc::translate(config),
        }
    }

    /// Its listeners, route configurations and the destinations they need.
    pub fn translate_routes(&self, config: &Config) -> Routed {
        match self {
            ViewClass::Envoy(gateways) => translate::translate_routes(config, gateways),
            ViewClass::Grpc => translate::grpc::translate_routes(config),
        }
    }

    /// One destination's cluster and, for EDS, its assignment.
    pub fn translate_destination(
        &self,
        config: &Config,
        destination: &Destination,
    ) -> (Cluster, Option<ClusterLoadAssignment>) {
        match self {
            ViewClass::Envoy(_) => translate::translate_destination(config, destination),
            ViewClass::Grpc => translate::grpc::translate_destination(config, destination),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::model::Labels;
    use crate::snapshot::{Snapshot, TypeKind, View};
    use crate::{ingest, resource_set};

    const MESH: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: petstore}
spec:
  hosts: [petstore]
  ports: [{number: 80, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
"#;

    fn listeners(view: &View) -> Vec<&str> {
        let names = view.resources(TypeKind::Listener).keys();
        names.map(String::as_str).collect()
    }

    #[test]
    fn envoys_and_grpc_clients_have_views_of_their_own() {
        let docs = ingest::parse_documents(MESH).unwrap();
        let config = Arc::new(resource_set::build_config(&docs, &BTreeMap::new()).unwrap());
        let snapshot = Snapshot::new(config, 1);
        let envoy = snapshot.view_for(&Labels::new());
        let grpc = snapshot.grpc_view();
        assert_eq!(listeners(&envoy), ["0.0.0.0_10000"]);
        assert_eq!(listeners(&grpc), ["petstore:80"]);
        assert!(Arc::ptr_eq(&grpc, &snapshot.grpc_view()), "built once");
        let clusters = grpc.resources(TypeKind::Cluster).keys();
        assert!(clusters.eq(["outbound|80||petstore"]));
    }
}
