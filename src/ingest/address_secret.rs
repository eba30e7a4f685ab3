//! `v1 Secret` documents holding a webhook address (key `address`, as Flagger's
//! AlertProviders read it from their `secretRef`) rather than a certificate. The value
//! is kept for the alert it is sent to and never written to errors or logs.

use base64::Engine;
use serde_json::Value;

/// The `address` of a Secret that holds one and no certificate (`stringData` wins over
/// `data`, as Kubernetes merges them); `None` for any other Secret. `Some(Err(field))`
/// when the value is not base64 of UTF-8 text.
pub(crate) fn try_address_secret(doc: &Value) -> Option<Result<String, &'static str>> {
    let has = |name: &str| {
        ["data", "stringData"]
            .iter()
            .any(|map| doc.get(*map).and_then(|m| m.get(name)).is_some())
    };
    if !has("address")
        || ["tls.crt", "cert", "ca.crt", "cacert"]
            .iter()
            .any(|k| has(k))
    {
        return None;
    }
    if let Some(text) = doc["stringData"]["address"].as_str() {
        return Some(Ok(text.trim().to_string()));
    }
    let decoded = doc["data"]["address"]
        .as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Some(decoded.map(|s| s.trim().to_string()).ok_or("data.address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_an_address_from_data_or_string_data() {
        let data = json!({"data": {"address": "aHR0cDovL2hvb2svcw=="}});
        assert_eq!(try_address_secret(&data), Some(Ok("http://hook/s".into())));
        let string = json!({"stringData": {"address": "http://x"}, "data": {"address": "eQ=="}});
        assert_eq!(try_address_secret(&string), Some(Ok("http://x".into())));
        assert_eq!(
            try_address_secret(&json!({"data": {"address": "%%"}})),
            Some(Err("data.address"))
        );
        let tls = json!({"data": {"tls.crt": "", "address": ""}});
        assert_eq!(try_address_secret(&tls), None);
    }
}
