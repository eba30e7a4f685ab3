//! The Kubernetes index: Services, EndpointSlices and Pod labels reduced, event by
//! event, into what the model needs, and read out as `model::Service`s keyed by host
//! (`name.namespace.svc.cluster.local`).
//!
//! Pure: no IO, no clock. The watchers (`discovery`) feed it with `apply` / `delete`
//! and, after a relist, `replace`; events may come in any order (a slice before its
//! Service, a pod after its slice) and the result only depends on what is held.
//!
//! - Ports come from the Service (UDP and SCTP ports are left out); a slice's port
//!   names match the Service's port names and its numbers are the ports the pods
//!   listen on, so they go into each endpoint's `ports` by name. A slice's ports apply
//!   to all of its endpoints; a named `targetPort` may resolve to different numbers in
//!   different slices.
//! - Endpoints come from the slices labelled `kubernetes.io/service-name`: each address
//!   of each endpoint (IPv4 and IPv6 slices; FQDN slices are ignored), with the labels
//!   of the Pod its `targetRef` names. An endpoint is its address *and* its slice's
//!   ports: the same address with other ports in another slice (hostNetwork pods,
//!   hand-written slices) is another endpoint; the same address with the same ports is
//!   listed once however many slices hold it. Translation then merges, per Service
//!   port, entries that end up on the same (address, port).
//! - Health: see [`to_health`]: ready → Healthy, terminating but serving → Draining,
//!   anything else is left out.
//! - ExternalName Services are not discovered.
//! - For the Gateway API ([`Index::cluster`]): each Namespace's labels, and the
//!   addresses of the Services that front a Gateway's Envoys (see
//!   [`to_gateway_front`]), by Gateway.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service as K8sService};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;

use super::convert::{to_gateway_front, to_health, to_service_port};
use crate::gateway_api::NamespaceLabels;
use crate::model::{
    Endpoint, EndpointHealth, GatewayAddress, Kind, Labels, Resolution, ResourceKey, Service,
    ServicePort,
};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The DNS suffix of Service hosts.
pub const CLUSTER_DOMAIN_SUFFIX: &str = "svc.cluster.local";

/// `(namespace, name)`.
type Key = (String, String);

/// Everything discovered, reduced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Index {
    services: BTreeMap<Key, Vec<ServicePort>>,
    slices: BTreeMap<Key, Slice>,
    pods: BTreeMap<Key, Labels>,
    namespaces: NamespaceLabels,
    /// Services that front a Gateway: its name and the addresses they give it.
    fronts: BTreeMap<Key, (String, Vec<GatewayAddress>)>,
}

/// What the Gateway API reads of the cluster besides Services: the labels of each
/// Namespace (which `from: Selector` listeners match) and each Gateway's addresses
/// from the Services that front it (by `(namespace, gateway name)`; every such
/// Service's, in the order of their names).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    pub namespaces: NamespaceLabels,
    pub gateway_addresses: BTreeMap<(String, String), Vec<GatewayAddress>>,
}

#[derive(Debug, Clone, PartialEq)]
struct Slice {
    service: String,
    /// Port name (empty for an unnamed port) → the port the pods listen on.
    ports: BTreeMap<String, u32>,
    endpoints: Vec<SliceEndpoint>,
}

#[derive(Debug, Clone, PartialEq)]
struct SliceEndpoint {
    address: String,
    health: EndpointHealth,
    /// The Pod (same namespace) whose labels the endpoint carries.
    pod: Option<String>,
}

/// A kind of object the index holds: how one is applied and deleted, and how the
/// whole kind is dropped before a relist.
pub trait Indexed {
    fn apply_to(&self, index: &mut Index);
    fn delete_from(&self, index: &mut Index);
    fn clear(index: &mut Index);
}

impl Index {
    /// Adds or replaces an object.
    pub fn apply<K: Indexed>(&mut self, obj: &K) {
        obj.apply_to(self);
    }

    /// Removes an object (nothing happens when it was not there).
    pub fn delete<K: Indexed>(&mut self, obj: &K) {
        obj.delete_from(self);
    }

    /// Makes `objs` the whole of their kind, as a relist does.
    pub fn replace<K: Indexed>(&mut self, objs: &[K]) {
        K::clear(self);
        for obj in objs {
            obj.apply_to(self);
        }
    }

    /// Every Service, by host, with its endpoints sorted by address, then ports.
    pub fn services(&self) -> BTreeMap<String, Service> {
        let mut by_service: BTreeMap<(&str, &str), Vec<&Slice>> = BTreeMap::new();
        for ((ns, _), slice) in &self.slices {
            by_service
                .entry((ns.as_str(), slice.service.as_str()))
                .or_default()
                .push(slice);
        }
        self.services
            .iter()
            .map(|((ns, name), ports)| {
                let slices = by_service.get(&(ns.as_str(), name.as_str()));
                let endpoints = self.to_endpoints(ns, slices.map(Vec::as_slice).unwrap_or(&[]));
                let host = host(ns, name);
                let service = Service {
                    host: host.clone(),
                    source: ResourceKey::new(Kind::ServiceEntry, ns.clone(), name.clone()),
                    ports: ports.clone(),
                    resolution: Resolution::Static,
                    endpoints,
                };
                (host, service)
            })
            .collect()
    }

    /// The namespaces' labels and the Gateways' addresses.
    pub fn cluster(&self) -> Cluster {
        let mut gateway_addresses: BTreeMap<(String, String), Vec<GatewayAddress>> =
            BTreeMap::new();
        for ((ns, _), (gateway, addresses)) in &self.fronts {
            let entry = gateway_addresses
                .entry((ns.clone(), gateway.clone()))
                .or_default();
            for a in addresses {
                if !entry.contains(a) {
                    entry.push(a.clone());
                }
            }
        }
        Cluster {
            namespaces: self.namespaces.clone(),
            gateway_addresses,
        }
    }

    /// One endpoint per (address, ports): when slices list it with different health
    /// (a pod moving between slices), the healthiest entry wins. Sorted by address,
    /// then ports.
    fn to_endpoints(&self, ns: &str, slices: &[&Slice]) -> Vec<Endpoint> {
        let mut by_identity: BTreeMap<(&str, &BTreeMap<String, u32>), Endpoint> = BTreeMap::new();
        for slice in slices {
            for e in &slice.endpoints {
                let labels = e
                    .pod
                    .as_ref()
                    .and_then(|pod| self.pods.get(&(ns.to_string(), pod.clone())))
                    .cloned()
                    .unwrap_or_default();
                let identity = (e.address.as_str(), &slice.ports);
                let entry = by_identity.entry(identity).or_insert_with(|| Endpoint {
                    address: e.address.clone(),
                    ports: slice.ports.clone(),
                    labels: labels.clone(),
                    health: e.health,
                    weight: 1,
                });
                if e.health.rank() < entry.health.rank() {
                    entry.health = e.health;
                    entry.labels = labels;
                }
            }
        }
        by_identity.into_values().collect()
    }
}

/// `name.namespace.svc.cluster.local`.
pub fn host(namespace: &str, name: &str) -> String {
    format!("{name}.{namespace}.{CLUSTER_DOMAIN_SUFFIX}")
}

fn key_of(meta: &ObjectMeta) -> Key {
    let ns = meta.namespace.clone().unwrap_or_else(|| "default".into());
    (ns, meta.name.clone().unwrap_or_default())
}

impl Indexed for K8sService {
    fn apply_to(&self, index: &mut Index) {
        let key = key_of(&self.metadata);
        match to_gateway_front(self) {
            Some(front) => index.fronts.insert(key.clone(), front),
            None => index.fronts.remove(&key),
        };
        let spec = self.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            index.services.remove(&key);
            return;
        }
        let ports = spec.and_then(|s| s.ports.as_ref());
        let ports = ports.into_iter().flatten().filter_map(to_service_port);
        index.services.insert(key, ports.collect());
    }

    fn delete_from(&self, index: &mut Index) {
        index.services.remove(&key_of(&self.metadata));
        index.fronts.remove(&key_of(&self.metadata));
    }

    fn clear(index: &mut Index) {
        index.services.clear();
        index.fronts.clear();
    }
}

impl Indexed for EndpointSlice {
    fn apply_to(&self, index: &mut Index) {
        let key = key_of(&self.metadata);
        let labels = self.metadata.labels.as_ref();
        let service = labels.and_then(|l| l.get(SERVICE_NAME_LABEL));
        let (Some(service), "IPv4" | "IPv6") = (service, self.address_type.as_str()) else {
            index.slices.remove(&key);
            return;
        };
        let ports = self.ports.iter().flatten().filter_map(|p| {
            let number = u32::try_from(p.port?).ok().filter(|n| *n > 0)?;
            let udp = p.protocol.as_deref().is_some_and(|proto| proto != "TCP");
            (!udp).then(|| (p.name.clone().unwrap_or_default(), number))
        });
        let endpoints = self.endpoints.iter().flat_map(|e| {
            let health = to_health(e.conditions.as_ref());
            let pod = e
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"));
            let pod = pod.and_then(|r| r.name.clone());
            e.addresses.iter().filter_map(move |address| {
                Some(SliceEndpoint {
                    address: address.clone(),
                    health: health?,
                    pod: pod.clone(),
                })
            })
        });
        let slice = Slice {
            service: service.clone(),
            ports: ports.collect(),
            endpoints: endpoints.collect(),
        };
        index.slices.insert(key, slice);
    }

    fn delete_from(&self, index: &mut Index) {
        index.slices.remove(&key_of(&self.metadata));
    }

    fn clear(index: &mut Index) {
        index.slices.clear();
    }
}

fn apply_pod(meta: &ObjectMeta, index: &mut Index) {
    let labels = meta.labels.clone().unwrap_or_default();
    index
        .pods
        .insert(key_of(meta), labels.into_iter().collect());
}

impl Indexed for PartialObjectMeta<Pod> {
    fn apply_to(&self, index: &mut Index) {
        apply_pod(&self.metadata, index);
    }

    fn delete_from(&self, index: &mut Index) {
        index.pods.remove(&key_of(&self.metadata));
    }

    fn clear(index: &mut Index) {
        index.pods.clear();
    }
}

impl Indexed for Pod {
    fn apply_to(&self, index: &mut Index) {
        apply_pod(&self.metadata, index);
    }

    fn delete_from(&self, index: &mut Index) {
        index.pods.remove(&key_of(&self.metadata));
    }

    fn clear(index: &mut Index) {
        index.pods.clear();
    }
}

impl Indexed for Namespace {
    fn apply_to(&self, index: &mut Index) {
        let name = self.metadata.name.clone().unwrap_or_default();
        let labels = self.metadata.labels.clone().unwrap_or_default();
        index.namespaces.insert(name, labels.into_iter().collect());
    }

    fn delete_from(&self, index: &mut Index) {
        let name = self.metadata.name.clone().unwrap_or_default();
        index.namespaces.remove(&name);
    }

    fn clear(index: &mut Index) {
        index.namespaces.clear();
    }
}

#[cfg(test)]
mod tests;
