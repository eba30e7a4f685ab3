//! A backendRef (a rule's, or a mirror filter's) read into a destination.

use crate::ingest::{Obj, Report};
use crate::model::Destination;

/// The Istio group and kind that name a ServiceEntry host directly.
const HOSTNAME_GROUP: &str = "networking.istio.io";

/// A backendRef (or a mirror's): a Service of the route's namespace (port required), or
/// an Istio `Hostname` naming a ServiceEntry host. Unresolved: port 0 when not given.
pub(super) fn try_backend_ref(
    backend: Obj<'_, '_>,
    namespace: &str,
    r: &mut Report,
) -> Option<Destination> {
    let group = backend.string(r, "group").unwrap_or_default();
    let kind = backend
        .string(r, "kind")
        .unwrap_or_else(|| "Service".into());
    let service = match (group.as_str(), kind.as_str()) {
        ("", "Service") => true,
        (HOSTNAME_GROUP, "Hostname") => false,
        _ => {
            let message = format!(
                "{kind:?} of group {group:?} is not supported (Service, or Hostname of \
                 {HOSTNAME_GROUP} for a ServiceEntry host)"
            );
            r.push(backend.at("kind"), message);
            return None;
        }
    };
    let name = backend.required_string(r, "name");
    if let Some(other) = backend.string(r, "namespace").filter(|ns| ns != namespace) {
        let message = format!(
            "namespace {other:?} is not supported: backends must be in the route's namespace \
             (coalmine does not read ReferenceGrants)"
        );
        r.push(backend.at("namespace"), message);
        return None;
    }
    let port = backend.uint(r, "port", 1, 65535);
    if service && !backend.has("port") {
        r.push(backend.at("port"), "required for a Service backend");
        return None;
    }
    Some(Destination {
        host: name?,
        subset: None,
        port: port.unwrap_or(0),
    })
}
