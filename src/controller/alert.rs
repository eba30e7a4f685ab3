//! Flagger's alerts: a release event rendered as the payload of an AlertProvider's type
//! (Slack/Rocket/Discord attachments, a Teams MessageCard, or Flagger's event-webhook
//! JSON for `generic`) and posted with a timeout. A failed post is logged by the caller
//! and never changes the release.

use std::time::Duration;

use serde_json::{json, Value};

use crate::model::{Alert, AlertProvider, ProviderType, Severity};

/// How long one post may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What an alert says about a release.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub phase: &'a str,
    pub message: &'a str,
    pub severity: Severity,
    /// Flagger's facts (`Target`, `Failed checks threshold`, ...), in order.
    pub fields: Vec<(String, String)>,
}

/// Flagger's filter: an `info` alert gets every event, `warn` warnings and errors,
/// `error` only errors.
pub fn wants(alert: &Alert, severity: Severity) -> bool {
    severity >= alert.severity
}

/// An event's severity, as Flagger grades them: a failed release is an error, a
/// failed check or webhook (the release goes on or holds) a warning, the rest info.
pub fn severity_of(phase: &str, message: &str) -> Severity {
    let lower = message.to_ascii_lowercase();
    if phase == "Failed" || lower.contains("rolling back") || lower.contains("rolled back") {
        Severity::Error
    } else if lower.contains("fail") || lower.contains(": inconclusive") {
        Severity::Warn
    } else {
        Severity::Info
    }
}

/// The URL an event is posted to: Discord's Slack-compatible endpoint ends in `/slack`.
pub fn url(provider: &AlertProvider) -> String {
    let address = provider.address.trim_end_matches('/');
    match provider.kind {
        ProviderType::Discord if !address.ends_with("/slack") => format!("{address}/slack"),
        _ => address.to_string(),
    }
}

/// The JSON body for a provider's type.
pub fn payload(provider: &AlertProvider, event: &Event<'_>) -> Value {
    let author = format!("{}.{}", event.name, event.namespace);
    let error = event.severity == Severity::Error;
    match provider.kind {
        ProviderType::Slack | ProviderType::Rocket | ProviderType::Discord => {
            let fields: Vec<Value> = event
                .fields
                .iter()
                .map(|(title, value)| json!({"title": title, "value": value, "short": false}))
                .collect();
            let mut body = json!({
                "attachments": [{
                    "color": if error { "danger" } else { "good" },
                    "author_name": author,
                    "text": event.message,
                    "mrkdwn_in": ["text"],
                    "fields": fields,
                }]
            });
            if let Some(channel) = &provider.channel {
                body["channel"] = json!(channel);
            }
            if let Some(username) = &provider.username {
                body["username"] = json!(username);
            }
            body
        }
        ProviderType::MsTeams => {
            let facts: Vec<Value> = event
                .fields
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            json!({
                "@type": "MessageCard",
                "@context": "http://schema.org/extensions",
                "themeColor": if error { "FF0000" } else { "0076D7" },
                "summary": author,
                "sections": [{
                    "activityTitle": event.message,
                    "activitySubtitle": author,
                    "facts": facts,
                }]
            })
        }
        ProviderType::Generic => {
            let mut metadata = serde_json::Map::new();
            metadata.insert("eventMessage".into(), json!(event.message));
            let kind = if error { "Warning" } else { "Normal" };
            metadata.insert("eventType".into(), json!(kind));
            metadata.insert("severity".into(), json!(event.severity.as_str()));
            for (name, value) in &event.fields {
                metadata.insert(name.clone(), json!(value));
            }
            json!({
                "name": event.name,
                "namespace": event.namespace,
                "phase": event.phase,
                "type": "event",
                "metadata": metadata,
            })
        }
    }
}

/// Posts one alert; the error says what went wrong without the (secret) address.
pub async fn post(
    client: &reqwest::Client,
    provider: &AlertProvider,
    body: &Value,
) -> Result<(), String> {
    let proxied;
    let client = match &provider.proxy {
        Some(proxy) => {
            let proxy = reqwest::Proxy::all(proxy).map_err(|e| format!("proxy: {e}"))?;
            proxied = reqwest::Client::builder()
                .proxy(proxy)
                .build()
                .map_err(|e| format!("proxy: {e}"))?;
            &proxied
        }
        None => client,
    };
    let resp = client
        .post(url(provider))
        .json(body)
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("post failed: {}", e.without_url()))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", resp.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, ResourceKey};

    fn mk_provider(kind: ProviderType, address: &str) -> AlertProvider {
        AlertProvider {
            key: ResourceKey::new(Kind::AlertProvider, "shop", "team"),
            kind,
            channel: Some("releases".into()),
            username: Some("coalmine".into()),
            address: address.into(),
            proxy: None,
            secret: None,
        }
    }

    fn mk_event(severity: Severity) -> Event<'static> {
        Event {
            name: "petstore",
            namespace: "shop",
            phase: "Progressing",
            message: "Advance petstore.shop canary weight 10",
            severity,
            fields: vec![("Target".into(), "VirtualService/shop/petstore".into())],
        }
    }

    #[test]
    fn slack_and_discord_get_flaggers_attachment() {
        let slack = mk_provider(ProviderType::Slack, "https://hooks.slack.com/x");
        let body = payload(&slack, &mk_event(Severity::Info));
        assert_eq!(body["channel"], "releases");
        assert_eq!(body["username"], "coalmine");
        let a = &body["attachments"][0];
        assert_eq!(a["color"], "good");
        assert_eq!(a["author_name"], "petstore.shop");
        assert_eq!(a["text"], "Advance petstore.shop canary weight 10");
        assert_eq!(a["fields"][0]["title"], "Target");
        let discord = mk_provider(
            ProviderType::Discord,
            "https://discord.com/api/webhooks/1/t",
        );
        assert_eq!(url(&discord), "https://discord.com/api/webhooks/1/t/slack");
        let body = payload(&discord, &mk_event(Severity::Error));
        assert_eq!(body["attachments"][0]["color"], "danger");
    }

    #[test]
    fn teams_gets_a_message_card_and_generic_the_event_webhook_json() {
        let teams = mk_provider(ProviderType::MsTeams, "https://outlook.office.com/x");
        let body = payload(&teams, &mk_event(Severity::Error));
        assert_eq!(body["@type"], "MessageCard");
        assert_eq!(body["themeColor"], "FF0000");
        assert_eq!(body["summary"], "petstore.shop");
        assert_eq!(body["sections"][0]["facts"][0]["name"], "Target");
        let generic = mk_provider(ProviderType::Generic, "http://hook");
        let body = payload(&generic, &mk_event(Severity::Info));
        assert_eq!(body["name"], "petstore");
        assert_eq!(body["phase"], "Progressing");
        assert_eq!(body["metadata"]["eventType"], "Normal");
        assert_eq!(body["metadata"]["Target"], "VirtualService/shop/petstore");
    }

    #[test]
    fn severities_filter_as_flaggers() {
        let alert = |severity| Alert {
            name: "a".into(),
            severity,
            provider: "shop/team".into(),
        };
        assert!(wants(&alert(Severity::Info), Severity::Info));
        assert!(!wants(&alert(Severity::Warn), Severity::Info));
        assert!(wants(&alert(Severity::Warn), Severity::Error));
        assert!(!wants(&alert(Severity::Error), Severity::Warn));
        assert_eq!(severity_of("Failed", "rolled back: x"), Severity::Error);
        assert_eq!(
            severity_of("Progressing", "rollout webhook failed"),
            Severity::Warn
        );
        assert_eq!(severity_of("Progressing", "advanced to 10"), Severity::Info);
    }
}
