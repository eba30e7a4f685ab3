//! `ReferenceGrant` (`gateway.networking.k8s.io/v1beta1`): which kinds of other
//! namespaces may refer to which objects of the grant's namespace. coalmine reads the
//! grants HTTPRoute backendRefs need (`from` HTTPRoute, `to` Service).

use serde_json::Value;

use crate::ingest::{Fields, Obj, Report};
use crate::model::ResourceKey;

const SPEC: Fields = Fields::known(&["from", "to"]);
const FROM: Fields = Fields::known(&["group", "kind", "namespace"]);
const TO: Fields = Fields::known(&["group", "kind", "name"]);

/// One ReferenceGrant: in `namespace`, what `from` may refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Grant {
    pub namespace: String,
    /// `(group, kind, namespace)` of the referrers.
    pub from: Vec<(String, String, String)>,
    /// `(group, kind, name)` of the objects referred to; no name means all of that kind.
    pub to: Vec<(String, String, Option<String>)>,
}

/// An object referred to: its group (`""` for the core group), kind, namespace, name.
pub(super) struct Target<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// Whether a reference from an object of `(group, kind)` in `from_namespace` to
/// `target` is allowed: always within a namespace, else by a grant in the target's.
pub(super) fn permitted(
    grants: &[Grant],
    (group, kind): (&str, &str),
    from_namespace: &str,
    target: &Target<'_>,
) -> bool {
    from_namespace == target.namespace
        || grants.iter().any(|g| {
            g.namespace == target.namespace
                && g.from
                    .iter()
                    .any(|(gr, k, ns)| gr == group && k == kind && ns == from_namespace)
                && g.to.iter().any(|(gr, k, name)| {
                    gr == target.group
                        && k == target.kind
                        && name.as_deref().is_none_or(|n| n == target.name)
                })
        })
}

/// Reads a ReferenceGrant spec; every problem goes to `r`.
pub(super) fn try_reference_grant(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
) -> Option<Grant> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let from_items = spec.list(r, "from");
    if from_items.is_empty() {
        r.push(spec.at("from"), "at least one entry is required");
    }
    let to_items = spec.list(r, "to");
    if to_items.is_empty() {
        r.push(spec.at("to"), "at least one entry is required");
    }
    let mut from = Vec::new();
    for (path, value) in from_items {
        let Some(item) = Obj::new(r, &path, value, FROM) else {
            continue;
        };
        let group = item.string(r, "group");
        if !item.has("group") {
            r.push(item.at("group"), "required (\"\" for the core group)");
        }
        let kind = item.required_string(r, "kind");
        let namespace = item.required_string(r, "namespace");
        if let (Some(group), Some(kind), Some(namespace)) = (group, kind, namespace) {
            from.push((group, kind, namespace));
        }
    }
    let mut to = Vec::new();
    for (path, value) in to_items {
        let Some(item) = Obj::new(r, &path, value, TO) else {
            continue;
        };
        let group = item.string(r, "group");
        if !item.has("group") {
            r.push(item.at("group"), "required (\"\" for the core group)");
        }
        let kind = item.required_string(r, "kind");
        let name = item.string(r, "name").filter(|n| !n.is_empty());
        if let (Some(group), Some(kind)) = (group, kind) {
            to.push((group, kind, name));
        }
    }
    Some(Grant {
        namespace: key.namespace.clone(),
        from,
        to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(from_ns: &str, name: Option<&str>) -> Grant {
        Grant {
            namespace: "backends".into(),
            from: vec![(
                super::super::API_GROUP.into(),
                "HTTPRoute".into(),
                from_ns.into(),
            )],
            to: vec![("".into(), "Service".into(), name.map(str::to_string))],
        }
    }

    fn service(name: &str) -> Target<'_> {
        Target {
            group: "",
            kind: "Service",
            namespace: "backends",
            name,
        }
    }

    const ROUTE: (&str, &str) = ("gateway.networking.k8s.io", "HTTPRoute");

    #[test]
    fn another_namespace_needs_a_grant_naming_the_referrer_and_target() {
        assert!(!permitted(&[], ROUTE, "web", &service("api")));
        assert!(permitted(
            &[grant("web", None)],
            ROUTE,
            "web",
            &service("api")
        ));
        assert!(!permitted(
            &[grant("other", None)],
            ROUTE,
            "web",
            &service("api")
        ));
        assert!(permitted(
            &[grant("web", Some("api"))],
            ROUTE,
            "web",
            &service("api")
        ));
        assert!(!permitted(
            &[grant("web", Some("db"))],
            ROUTE,
            "web",
            &service("api")
        ));
        let from_gateway = ("gateway.networking.k8s.io", "Gateway");
        assert!(!permitted(
            &[grant("web", None)],
            from_gateway,
            "web",
            &service("api")
        ));
    }

    #[test]
    fn the_same_namespace_needs_none() {
        let target = Target {
            namespace: "web",
            ..service("api")
        };
        assert!(permitted(&[], ROUTE, "web", &target));
    }
}
