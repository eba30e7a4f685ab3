//! Flagger-style webhooks: a JSON POST per gate, with a timeout and retries. A 2xx
//! answer passes the gate; anything else (or no answer) fails it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// The body Flagger sends, so existing webhook receivers (load testers, gates,
/// notifiers) work unchanged.
#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    pub name: String,
    pub namespace: String,
    pub phase: String,
    /// The webhook type (`pre-rollout`, `confirm-promotion`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    pub metadata: BTreeMap<String, String>,
}

/// Calls a webhook, retrying `retries` more times on failure; the error of the last try.
pub async fn call(
    client: &reqwest::Client,
    url: &str,
    payload: &Payload,
    timeout: Duration,
    retries: u32,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        match client.post(url).json(payload).timeout(timeout).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                last = format!(
                    "{url} answered {status}: {}",
                    body.chars().take(200).collect::<String>()
                );
            }
            Err(e) => last = format!("{url}: {e}"),
        }
    }
    Err(last)
}
