//! The client commands of SPEC section 2: apply, delete, get, diff, proxies, history and
//! restore, each a call to the admin API and a readable print of its answer.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::client::{Answer, Client, Error};
use super::output::{print_structured, print_table, text, Format};
use crate::admin::views::{ApplyResponse, DryRunResponse, ProxyList, ProxyView, RevisionList};
use crate::source;

/// What a client command ends with: success, a rejection (exit 1), or bad usage (2).
#[derive(Debug)]
pub enum Failure {
    Rejected(String),
    Usage(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Rejected(e.to_string())
    }
}

pub type Outcome = Result<(), Failure>;

/// The documents of `-f`: a file, a folder, or `-` for stdin, joined as one YAML stream.
pub fn read_documents(path: &str) -> Result<String, Failure> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
        return Ok(text);
    }
    let files = source::read(Path::new(path)).map_err(|e| Failure::Usage(e.to_string()))?;
    if files.is_empty() {
        return Err(Failure::Usage(format!(
            "{path}: no .yaml, .yml or .json files"
        )));
    }
    Ok(files
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n---\n"))
}

fn wait_query(wait: bool, timeout: &str) -> String {
    if wait {
        format!("?wait={timeout}")
    } else {
        String::new()
    }
}

pub async fn apply(
    client: &Client,
    file: &str,
    dry_run: bool,
    wait: bool,
    timeout: &str,
    format: Format,
) -> Outcome {
    let body = read_documents(file)?;
    if dry_run {
        return diff_body(client, body, format).await;
    }
    let answer = client
        .post(
            &format!("/api/v1/apply{}", wait_query(wait, timeout)),
            Some(body),
        )
        .await?;
    report_change(answer, format)
}

pub async fn diff(client: &Client, file: &str, format: Format) -> Outcome {
    diff_body(client, read_documents(file)?, format).await
}

async fn diff_body(client: &Client, body: String, format: Format) -> Outcome {
    let answer = client.post("/api/v1/apply?dryRun=true", Some(body)).await?;
    if print_structured(format, &answer.body) {
        return Ok(());
    }
    let dry_run: DryRunResponse = decode(&answer.body)?;
    if dry_run.resources.is_empty() {
        println!("no changes");
        return Ok(());
    }
    for r in &dry_run.resources {
        println!("{} {}", r.resource, r.action.as_str());
    }
    let rows: Vec<Vec<String>> = dry_run
        .changed
        .iter()
        .map(|c| {
            let sign = match c.action.as_str() {
                "added" => "+",
                "removed" => "-",
                _ => "~",
            };
            let gateways = match c.gateways.is_empty() {
                true => "(no gateway)".into(),
                false => c.gateways.join(","),
            };
            vec![
                sign.to_string(),
                c.type_name.clone(),
                c.name.clone(),
                gateways,
                c.proxies.join(","),
            ]
        })
        .collect();
    println!();
    print_table(&["", "TYPE", "NAME", "GATEWAYS", "PROXIES"], &rows);
    Ok(())
}

/// The API's own view type of an answer; a shape it does not have is a rejection.
fn decode<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, Failure> {
    serde_json::from_value(body.clone())
        .map_err(|e| Failure::Rejected(format!("unexpected answer from the server: {e}")))
}

pub async fn delete_file(
    client: &Client,
    file: &str,
    wait: bool,
    timeout: &str,
    format: Format,
) -> Outcome {
    let body = read_documents(file)?;
    let answer = client
        .post(
            &format!("/api/v1/delete{}", wait_query(wait, timeout)),
            Some(body),
        )
        .await?;
    report_change(answer, format)
}

pub async fn delete_one(
    client: &Client,
    kind: &str,
    name: &str,
    namespace: &str,
    format: Format,
) -> Outcome {
    let answer = client
        .delete(&format!("/api/v1/resources/{kind}/{namespace}/{name}"))
        .await?;
    report_change(answer, format)
}

pub async fn restore(
    client: &Client,
    revision: u64,
    wait: bool,
    timeout: &str,
    format: Format,
) -> Outcome {
    let path = format!(
        "/api/v1/revisions/{revision}/restore{}",
        wait_query(wait, timeout)
    );
    let answer = client.post(&path, None).await?;
    report_change(answer, format)
}

/// Prints what a change did; with a wait, fails when a proxy NACKed or some did not ACK.
fn report_change(answer: Answer, format: Format) -> Outcome {
    let printed = print_structured(format, &answer.body);
    let change: ApplyResponse = decode(&answer.body)?;
    if !printed {
        if change.changed.is_empty() {
            println!("no changes (revision {})", change.revision);
        }
        for c in &change.changed {
            println!("{} {}", c.resource, c.action.as_str());
        }
        if !change.changed.is_empty() {
            println!("revision {}", change.revision);
        }
    }
    let Some(status) = change.status else {
        return Ok(());
    };
    if !status.rejected.is_empty() {
        let lines: Vec<String> = status
            .rejected
            .iter()
            .map(|r| format!("  {} rejected {}: {}", r.node, r.type_name, r.message))
            .collect();
        return Err(Failure::Rejected(format!(
            "revision {} was NACKed:\n{}",
            change.revision,
            lines.join("\n")
        )));
    }
    if !status.pending.is_empty() {
        return Err(Failure::Rejected(format!(
            "timed out: {} of {} proxies have not ACKed revision {}: {}",
            status.pending.len(),
            status.proxies,
            change.revision,
            status.pending.join(",")
        )));
    }
    if format == Format::Table {
        println!("acked by {} of {} proxies", status.acked, status.proxies);
    }
    Ok(())
}

pub async fn get(
    client: &Client,
    kind: &str,
    name: Option<&str>,
    namespace: Option<&str>,
    format: Format,
) -> Outcome {
    let value = match name {
        Some(name) => {
            let ns = namespace.unwrap_or("default");
            client
                .get(&format!("/api/v1/resources/{kind}/{ns}/{name}"))
                .await?
        }
        None => {
            let list = client
                .get(&format!("/api/v1/resources?kind={kind}"))
                .await?;
            let items: Vec<Value> = list["resources"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| namespace.is_none_or(|ns| r["metadata"]["namespace"] == ns))
                .collect();
            Value::Array(items)
        }
    };
    if print_structured(format, &value) {
        return Ok(());
    }
    let items = match &value {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| {
            let status = &r["status"];
            let mut state = text(status, "state");
            if let Some(reason) = status["reason"].as_str() {
                state = format!("{state}: {reason}");
            }
            if let Some(phase) = status["rollout"]["phase"].as_str() {
                let weight = status["rollout"]["canaryWeight"].as_f64().unwrap_or(0.0);
                state = format!("{state}, {phase} at {weight}%");
            }
            vec![
                text(r, "kind"),
                text(&r["metadata"], "namespace"),
                text(&r["metadata"], "name"),
                state,
                status["proxies"]
                    .as_array()
                    .map(|p| join(p))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["KIND", "NAMESPACE", "NAME", "STATUS", "PROXIES"], &rows);
    Ok(())
}

pub async fn proxies(client: &Client, format: Format) -> Outcome {
    let value = client.get("/api/v1/proxies").await?;
    if print_structured(format, &value) {
        return Ok(());
    }
    let list: ProxyList = decode(&value)?;
    let rows: Vec<Vec<String>> = list.proxies.iter().map(proxy_row).collect();
    print_table(
        &[
            "NODE",
            "CLUSTER",
            "LABELS",
            "REVISION",
            "CDS",
            "EDS",
            "LDS",
            "RDS",
            "LAST NACK",
        ],
        &rows,
    );
    Ok(())
}

fn proxy_row(p: &ProxyView) -> Vec<String> {
    let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let node = match p.connections {
        n if n > 1 => format!("{} ({n} connections)", p.node),
        _ => p.node.clone(),
    };
    let revision = match p.warming {
        true => format!("{} (warming)", p.revision),
        false => p.revision.to_string(),
    };
    let mut row = vec![node, p.cluster.clone(), labels.join(","), revision];
    let mut nack = String::new();
    for kind in ["cds", "eds", "lds", "rds"] {
        let Some(t) = p.types.get(kind) else {
            row.push("-".into());
            continue;
        };
        let mut cell = t.acked.clone().unwrap_or_default();
        if t.pending {
            let served = t.served.as_deref().unwrap_or_default();
            cell = format!("{cell} (pending {served})");
        }
        row.push(if cell.is_empty() { "-".into() } else { cell });
        if let Some(n) = &t.last_nack {
            nack = format!("{kind} {}: {}", n.at, n.message);
        }
    }
    row.push(nack);
    row
}

pub async fn history(client: &Client, format: Format) -> Outcome {
    let value = client.get("/api/v1/revisions").await?;
    if print_structured(format, &value) {
        return Ok(());
    }
    let list: RevisionList = decode(&value)?;
    let rows: Vec<Vec<String>> = list
        .revisions
        .iter()
        .map(|r| vec![r.revision.to_string(), r.created.clone(), r.summary.clone()])
        .collect();
    print_table(&["REVISION", "CREATED", "SUMMARY"], &rows);
    Ok(())
}

fn join(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .collect::<Vec<_>>()
        .join(",")
}
