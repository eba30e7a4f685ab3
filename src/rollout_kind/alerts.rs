//! Flagger's `analysis.alerts[]` (`name`, `severity`, `providerRef`) and its
//! `AlertProvider` kind (`flagger.app/v1beta1`) into [`Alert`]s and [`AlertProvider`]s.
//! Whether a named provider and its Secret exist is checked with the whole set
//! ([`crate::resource_set`]).

use std::collections::BTreeSet;

use serde_json::Value;

use super::check_url;
use crate::ingest::{Fields, Obj, Report};
use crate::model::{Alert, AlertProvider, ProviderType, ResourceKey, Severity};

const ALERT: Fields = Fields::known(&["name", "severity", "providerRef"]);
const PROVIDER_REF: Fields = Fields::known(&["name", "namespace"]);
const SECRET_REF: Fields = Fields::known(&["name"]);
const SPEC: Fields = Fields::known(&[
    "type",
    "channel",
    "username",
    "address",
    "proxy",
    "secretRef",
]);

/// Reads `analysis.alerts`; a `providerRef` without a namespace means the Rollout's.
pub(crate) fn try_alerts(a: Obj<'_, '_>, namespace: &str, r: &mut Report) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (path, value) in a.list(r, "alerts") {
        let Some(alert) = Obj::new(r, &path, value, ALERT) else {
            continue;
        };
        let name = alert.required_string(r, "name");
        if let Some(name) = name.as_ref().filter(|n| !names.insert(n.to_string())) {
            r.push(alert.at("name"), format!("alert {name:?} is listed twice"));
        }
        let severity = match alert.string(r, "severity") {
            None => Some(Severity::Info),
            Some(s) => Severity::from_name(&s).or_else(|| {
                let message = format!("unknown severity {s:?} (expected info, warn or error)");
                r.push(alert.at("severity"), message);
                None
            }),
        };
        let at = alert.at("providerRef");
        let provider = match alert.get("providerRef") {
            None => {
                r.push(&at, "required (an AlertProvider's name)");
                None
            }
            Some(value) => Obj::new(r, &at, value, PROVIDER_REF).and_then(|p| {
                let name = p.required_string(r, "name")?;
                let ns = p
                    .string(r, "namespace")
                    .unwrap_or_else(|| namespace.to_string());
                Some(format!("{ns}/{name}"))
            }),
        };
        if let (Some(name), Some(severity), Some(provider)) = (name, severity, provider) {
            out.push(Alert {
                name,
                severity,
                provider,
            });
        }
    }
    out
}

/// Reads an AlertProvider spec; every problem goes to `r`. The address is left empty
/// when it comes from `secretRef` (filled in when the set is checked).
pub(crate) fn try_alert_provider(
    key: &ResourceKey,
    spec: &Value,
    r: &mut Report,
) -> Option<AlertProvider> {
    let spec = Obj::new(r, "spec", spec, SPEC)?;
    let kind = spec.required_string(r, "type").and_then(|t| {
        ProviderType::from_name(&t).or_else(|| {
            let message = format!("unsupported type {t:?} (expected {})", ProviderType::NAMES);
            r.push(spec.at("type"), message);
            None
        })
    });
    let address = spec
        .string(r, "address")
        .filter(|url| check_url(r, &spec.at("address"), url));
    let proxy = spec
        .string(r, "proxy")
        .filter(|url| check_url(r, &spec.at("proxy"), url));
    let secret = spec.get("secretRef").and_then(|value| {
        let at = spec.at("secretRef");
        let s = Obj::new(r, &at, value, SECRET_REF)?;
        let name = s.required_string(r, "name")?;
        Some(format!("{}/{name}", key.namespace))
    });
    if !spec.has("address") && !spec.has("secretRef") {
        r.push(
            spec.at("address"),
            "required (or a secretRef to a Secret with an address key)",
        );
    }
    Some(AlertProvider {
        key: key.clone(),
        kind: kind?,
        channel: spec.string(r, "channel"),
        username: spec.string(r, "username"),
        address: address.unwrap_or_default(),
        proxy,
        secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use serde_json::json;

    fn fields(r: &Report) -> Vec<&str> {
        r.errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn reads_flaggers_alert_provider_and_names_bad_fields() {
        let key = ResourceKey::new(Kind::AlertProvider, "shop", "on-call");
        let mut r = Report::new(key.to_string());
        let spec = json!({"type": "slack", "channel": "on-call", "username": "flagger",
                          "secretRef": {"name": "on-call-url"}});
        let provider = try_alert_provider(&key, &spec, &mut r).unwrap();
        assert!(r.is_clean(), "{:?}", r.errors);
        assert_eq!(provider.kind, ProviderType::Slack);
        assert_eq!(provider.channel.as_deref(), Some("on-call"));
        assert_eq!(provider.secret.as_deref(), Some("shop/on-call-url"));
        let mut r = Report::new(key.to_string());
        try_alert_provider(&key, &json!({"type": "pager", "proxy": "nope"}), &mut r);
        assert_eq!(fields(&r), ["spec.type", "spec.proxy", "spec.address"]);
        assert!(r.errors[0].message.contains("slack, msteams, discord"));
    }

    #[test]
    fn reads_alerts_and_names_bad_fields() {
        let mut r = Report::new("Rollout shop/petstore");
        let analysis = json!({"alerts": [
            {"name": "on-call", "severity": "error", "providerRef": {"name": "pager", "namespace": "ops"}},
            {"name": "team", "providerRef": {"name": "slack"}},
            {"name": "bad", "severity": "fatal", "providerRef": {"name": "slack"}},
            {"name": "team"}
        ]});
        let a = Obj::any(&analysis).unwrap().with_path("spec.analysis");
        let alerts = try_alerts(a, "shop", &mut r);
        assert_eq!(
            alerts,
            [
                Alert {
                    name: "on-call".into(),
                    severity: Severity::Error,
                    provider: "ops/pager".into()
                },
                Alert {
                    name: "team".into(),
                    severity: Severity::Info,
                    provider: "shop/slack".into()
                },
            ]
        );
        assert_eq!(
            fields(&r),
            [
                "spec.analysis.alerts[2].severity",
                "spec.analysis.alerts[3].name",
                "spec.analysis.alerts[3].providerRef"
            ]
        );
    }
}
