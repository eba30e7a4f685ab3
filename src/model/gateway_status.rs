//! What the Gateway API status of Gateways and their routes says, as the reading of a
//! set found it: for each route, whether each parentRef attached it and why not; for
//! each Gateway, each listener's attached routes and the addresses its spec asks for.
//! `k8s::status` writes it.

use std::collections::BTreeMap;

use super::ResourceKey;

/// A condition that is not `True`, with the Gateway API's reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotTrue {
    /// E.g. `NoMatchingParent`, `NotAllowedByListeners`, `NoMatchingListenerHostname`.
    pub reason: &'static str,
    pub message: String,
}

/// One listener of a Gateway API Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStatus {
    pub name: String,
    /// Routes attached to it (the Gateway API's `attachedRoutes`).
    pub attached_routes: u32,
    /// The route kinds it takes (the Gateway API's `supportedKinds`).
    pub kinds: Vec<&'static str>,
    /// Why it is not served, when it is not.
    pub problem: Option<NotTrue>,
}

/// The Gateway API status of a whole set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStatus {
    /// Per HTTPRoute, one entry per `spec.parentRefs[]`: `None` when it attached.
    pub parents: BTreeMap<ResourceKey, Vec<Option<NotTrue>>>,
    /// Per Gateway API Gateway, its listeners in order.
    pub listeners: BTreeMap<ResourceKey, Vec<ListenerStatus>>,
    /// Per Gateway API Gateway that names any, its `spec.addresses` in order.
    pub addresses: BTreeMap<ResourceKey, Vec<GatewayAddress>>,
}

/// An address of a Gateway, as `spec.addresses[]` and `status.addresses[]` write it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GatewayAddress {
    /// `IPAddress` or `Hostname`.
    pub kind: &'static str,
    pub value: String,
}
