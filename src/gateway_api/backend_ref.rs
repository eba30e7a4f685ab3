//! A backendRef (a rule's, or a mirror filter's) read into a destination and what is
//! needed to resolve it once every document is read: its namespace, and whether its
//! kind is one coalmine can route to.

use crate::ingest::{Obj, Report};
use crate::model::Destination;

/// The Istio group and kind that name a ServiceEntry host directly.
const HOSTNAME_GROUP: &str = "networking.istio.io";

/// Why a backendRef could not be resolved: its rule still serves, answering 500 for the
/// share of requests meant for it (the Gateway API's `ResolvedRefs: False` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// No Service (or ServiceEntry host) of that name and namespace.
    BackendNotFound,
    /// A group and kind coalmine does not route to.
    InvalidKind,
    /// Another namespace, and no ReferenceGrant there allows it.
    RefNotPermitted,
}

impl Unresolved {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Unresolved::BackendNotFound => "BackendNotFound",
            Unresolved::InvalidKind => "InvalidKind",
            Unresolved::RefNotPermitted => "RefNotPermitted",
        }
    }
}

/// A backendRef as written, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Backend {
    /// The Service name (or ServiceEntry host) and port (0 when not given).
    pub destination: Destination,
    /// The namespace the backend lives in (the route's unless it says otherwise).
    pub namespace: String,
    /// A Service (`group: ""`), as opposed to an Istio `Hostname`.
    pub service: bool,
    /// Set when the kind is one coalmine cannot route to, with the message.
    pub invalid_kind: Option<String>,
}

/// A backendRef (or a mirror's): a Service (port required), or an Istio `Hostname`
/// naming a ServiceEntry host. Malformed fields go to `r` (the route is rejected); an
/// unsupported kind only marks the backend (its rule answers 500).
pub(super) fn try_backend_ref(
    backend: Obj<'_, '_>,
    namespace: &str,
    r: &mut Report,
) -> Option<Backend> {
    let group = backend.string(r, "group").unwrap_or_default();
    let kind = backend
        .string(r, "kind")
        .unwrap_or_else(|| "Service".into());
    let (service, invalid_kind) = match (group.as_str(), kind.as_str()) {
        ("", "Service") => (true, None),
        (HOSTNAME_GROUP, "Hostname") => (false, None),
        _ => {
            let message = format!(
                "{kind:?} of group {group:?} is not a supported backend (Service, or Hostname of \
                 {HOSTNAME_GROUP} for a ServiceEntry host)"
            );
            (false, Some(message))
        }
    };
    let name = backend.required_string(r, "name");
    let namespace = backend
        .string(r, "namespace")
        .unwrap_or_else(|| namespace.to_string());
    let port = backend.uint(r, "port", 1, 65535);
    if service && !backend.has("port") {
        r.push(backend.at("port"), "required for a Service backend");
        return None;
    }
    Some(Backend {
        destination: Destination {
            host: name?,
            subset: None,
            port: port.unwrap_or(0),
        },
        namespace,
        service,
        invalid_kind,
    })
}
