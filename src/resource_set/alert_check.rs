//! Alerts against the set: every `providerRef` names a defined AlertProvider, and a
//! provider's `secretRef` names a Secret holding an `address`, which becomes its address.

use std::collections::BTreeMap;

use crate::ingest::FieldError;
use crate::model::{AlertProvider, Rollout};

/// The AlertProviders by `namespace/name`, addresses resolved; what is missing is an
/// error naming the field.
pub(super) fn check_alerts(
    rollouts: &[Rollout],
    providers: Vec<AlertProvider>,
    addresses: &BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, AlertProvider> {
    let mut out = BTreeMap::new();
    for mut provider in providers {
        if let Some(secret) = &provider.secret {
            match addresses.get(secret) {
                Some(address) => provider.address = address.clone(),
                None => {
                    errors.push(FieldError {
                        resource: provider.key.to_string(),
                        field: "spec.secretRef".into(),
                        message: format!("Secret {secret} is not defined or holds no address key"),
                        reason: None,
                    });
                    continue;
                }
            }
        }
        let name = format!("{}/{}", provider.key.namespace, provider.key.name);
        out.insert(name, provider);
    }
    for rollout in rollouts {
        for (i, alert) in rollout.analysis.alerts.iter().enumerate() {
            if !out.contains_key(&alert.provider) {
                errors.push(FieldError {
                    resource: rollout.key.to_string(),
                    field: format!("spec.analysis.alerts[{i}].providerRef"),
                    message: format!(
                        "alert {:?}: AlertProvider {} is not defined",
                        alert.name, alert.provider
                    ),
                    reason: None,
                });
            }
        }
    }
    out
}
