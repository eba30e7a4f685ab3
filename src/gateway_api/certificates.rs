//! HTTPS listeners' `certificateRefs` against the set: a Secret of another namespace
//! needs a ReferenceGrant there (from Gateways of the listener's namespace), and the
//! Secret must exist and hold a certificate and key. A listener whose certificate does
//! not resolve is not served and says why (`ResolvedRefs: False`, `RefNotPermitted` or
//! `InvalidCertificateRef`); the Gateway's other listeners serve.

use std::collections::BTreeMap;

use super::gateway::Listener;
use super::reference_grant::{permitted, Grant, Target};
use super::API_GROUP;
use crate::ingest::Read;
use crate::model::{Kind, NotTrue};

/// Sets the problem of each listener whose certificate does not resolve, and takes its
/// server out of its Gateway in `read`.
pub(super) fn resolve_certificates(
    read: &mut Read,
    listeners: &mut BTreeMap<String, Vec<Listener>>,
    grants: &[Grant],
) {
    for (gateway, listeners) in listeners.iter_mut() {
        let namespace = gateway.split_once('/').map_or("", |(ns, _)| ns);
        for listener in listeners.iter_mut().filter(|l| l.problem.is_none()) {
            let Some((secret_ns, secret)) = &listener.certificate else {
                continue;
            };
            let name = format!("{secret_ns}/{secret}");
            let target = Target {
                group: "",
                kind: "Secret",
                namespace: secret_ns,
                name: secret,
            };
            let problem = if secret_ns != namespace
                && !permitted(grants, (API_GROUP, "Gateway"), namespace, &target)
            {
                Some(NotTrue {
                    reason: "RefNotPermitted",
                    message: format!(
                        "Secret {name} is in another namespace and no ReferenceGrant there \
                         allows Gateways of {namespace:?} to refer to it"
                    ),
                })
            } else if read.broken.secrets.contains(&name) {
                Some(NotTrue {
                    reason: "InvalidCertificateRef",
                    message: format!("Secret {name} is malformed (see its errors)"),
                })
            } else if !read
                .secrets
                .iter()
                .any(|s| s.name == name && s.certificate.is_some())
            {
                Some(NotTrue {
                    reason: "InvalidCertificateRef",
                    message: format!(
                        "Secret {name} does not exist or holds no tls.crt and tls.key"
                    ),
                })
            } else {
                None
            };
            if problem.is_some() {
                listener.problem = problem;
                let unserved = listener.name.clone();
                let of_gateway = read.gateways.iter_mut().find(|g| {
                    g.key.kind == Kind::KubernetesGateway
                        && format!("{}/{}", g.key.namespace, g.key.name) == *gateway
                });
                if let Some(g) = of_gateway {
                    g.servers
                        .retain(|s| s.name.as_deref() != Some(unserved.as_str()));
                }
            }
        }
    }
}
