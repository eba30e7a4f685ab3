//! The HTTP client the CLI's client commands use to talk to the admin API.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Why a call failed: the server's answer (a rejection) or no answer at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", rejection_text(*status, body))]
    Rejected { status: StatusCode, body: Value },
    #[error("cannot reach {server}: {source}")]
    Unreachable {
        server: String,
        source: reqwest::Error,
    },
}

fn rejection_text(status: StatusCode, body: &Value) -> String {
    let mut text = match body.get("error").and_then(Value::as_str) {
        Some(e) => format!("{e} ({status})"),
        None => format!("{status}: {body}"),
    };
    for d in body
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let get = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        text.push_str(&format!(
            "\n  {}: {}: {}",
            get("resource"),
            get("field"),
            get("message")
        ));
    }
    text
}

#[derive(Debug, Clone)]
pub struct Client {
    server: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// The CA certificate(s) of a PEM file, for [`Client::new`].
pub fn read_ca(path: &std::path::Path) -> Result<reqwest::Certificate, String> {
    let pem = std::fs::read(path).map_err(|e| format!("--ca {}: {e}", path.display()))?;
    reqwest::Certificate::from_pem(&pem)
        .map_err(|e| format!("--ca {}: not a PEM certificate: {e}", path.display()))
}

/// An answer the server gave: its JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Value,
}

impl Client {
    /// A client of `server`; an `https://` server's certificate must chain to `ca` or
    /// to one of the system's roots.
    pub fn new(server: &str, token: Option<String>, ca: Option<reqwest::Certificate>) -> Client {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(330));
        if let Some(ca) = ca {
            builder = builder.add_root_certificate(ca);
        }
        let http = builder.build().expect("build the HTTP client");
        Client {
            server: server.trim_end_matches('/').to_string(),
            token,
            http,
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        self.call(Method::GET, path, None).await.map(|a| a.body)
    }

    pub async fn delete(&self, path: &str) -> Result<Answer, Error> {
        self.call(Method::DELETE, path, None).await
    }

    /// POSTs a YAML body (or none).
    pub async fn post(&self, path: &str, yaml: Option<String>) -> Result<Answer, Error> {
        self.call(Method::POST, path, yaml).await
    }

    /// Any 2xx is an answer; so are 409 and 504 from a wait, whose body still reports
    /// the stored revision. Everything else is a rejection.
    async fn call(
        &self,
        method: Method,
        path: &str,
        yaml: Option<String>,
    ) -> Result<Answer, Error> {
        let url = format!("{}{}", self.server, path);
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = yaml {
            req = req.header("content-type", "application/yaml").body(body);
        }
        let unreachable = |source| Error::Unreachable {
            server: self.server.clone(),
            source,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unreachable)?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let waited = matches!(status, StatusCode::CONFLICT | StatusCode::GATEWAY_TIMEOUT)
            && body.get("revision").is_some();
        if status.is_success() || waited {
            Ok(Answer { body })
        } else {
            Err(Error::Rejected { status, body })
        }
    }
}
