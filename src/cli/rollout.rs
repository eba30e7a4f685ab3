//! `coalmine rollout status|promote|abort|pause|resume NAME`: a release's progress, live
//! with a progress bar under `--watch`, and driving it by hand.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::client::Client;
use super::commands::{Failure, Outcome};
use super::output::{print_structured, text, Format};

/// How often `--watch` asks for the status.
const POLL: Duration = Duration::from_millis(500);

pub async fn status(
    client: &Client,
    name: &str,
    namespace: &str,
    watch: bool,
    format: Format,
) -> Outcome {
    let path = format!("/api/v1/rollouts/{namespace}/{name}");
    if !watch || format != Format::Table {
        let status = client.get(&path).await?;
        if !print_structured(format, &status) {
            print!("{}", describe(name, &status));
        }
        return finished(&status);
    }
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {msg}")
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    loop {
        let status = client.get(&path).await?;
        let (position, length) = progress(&status);
        bar.set_length(length);
        bar.set_position(position);
        bar.set_message(summary(&status));
        if phase(&status).is_some_and(|p| p == "Succeeded" || p == "Failed") {
            bar.finish();
            print!("{}", describe(name, &status));
            return finished(&status);
        }
        tokio::time::sleep(POLL).await;
    }
}

pub async fn command(
    client: &Client,
    name: &str,
    namespace: &str,
    command: &str,
    format: Format,
) -> Outcome {
    let answer = client
        .post(
            &format!("/api/v1/rollouts/{namespace}/{name}/{command}"),
            None,
        )
        .await?;
    if !print_structured(format, &answer.body) {
        print!("{}", describe(name, &answer.body));
    }
    Ok(())
}

/// A failed release is a non-zero exit for scripts that wait on it.
fn finished(status: &Value) -> Outcome {
    match phase(status) {
        Some("Failed") => Err(Failure::Rejected(format!(
            "rollout failed: {}",
            text(status, "message")
        ))),
        _ => Ok(()),
    }
}

fn phase(status: &Value) -> Option<&str> {
    status["phase"].as_str()
}

/// Progress as (done, total): weight toward 100 % for a canary, iterations otherwise.
fn progress(status: &Value) -> (u64, u64) {
    let total_iterations = status["totalIterations"].as_u64().unwrap_or(0);
    if phase(status) == Some("Succeeded") {
        return (100, 100);
    }
    if text(status, "strategy") == "Canary" || total_iterations == 0 {
        let weight = status["canaryWeight"].as_f64().unwrap_or(0.0);
        (weight.round() as u64, 100)
    } else {
        (status["iteration"].as_u64().unwrap_or(0), total_iterations)
    }
}

/// `Progressing 10% · request-success-rate 99.5 pass · failed 0/5`
fn summary(status: &Value) -> String {
    let mut parts = vec![format!(
        "{} {}%",
        text(status, "phase"),
        status["canaryWeight"].as_f64().unwrap_or(0.0)
    )];
    for m in status["metrics"].as_array().into_iter().flatten() {
        let value = m["value"]
            .as_f64()
            .map_or("-".to_string(), |v| format!("{v:.2}"));
        parts.push(format!(
            "{} {value} {}",
            text(m, "name"),
            text(m, "verdict")
        ));
    }
    parts.push(format!(
        "failed {}/{}",
        status["failedChecks"], status["threshold"]
    ));
    parts.join(" · ")
}

fn describe(name: &str, status: &Value) -> String {
    let mut out = format!(
        "rollout {name}: {}\n  strategy:      {}\n  canary weight: {}%\n  iteration:     {}/{}\n  failed checks: {}/{}\n",
        text(status, "phase"),
        text(status, "strategy"),
        status["canaryWeight"].as_f64().unwrap_or(0.0),
        status["iteration"],
        status["totalIterations"],
        status["failedChecks"],
        status["threshold"],
    );
    for m in status["metrics"].as_array().into_iter().flatten() {
        let value = m["value"]
            .as_f64()
            .map_or("no data".to_string(), |v| format!("{v:.3}"));
        out.push_str(&format!(
            "  metric {}: {value} ({}, {} requests)\n",
            text(m, "name"),
            text(m, "verdict"),
            m["samples"]
        ));
    }
    for step in status["steps"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  step {} {}% revision {} {}\n",
            text(step, "kind"),
            step["weight"],
            step["revision"],
            if step["ackedAt"].is_string() {
                "acked"
            } else {
                "pending"
            }
        ));
    }
    let message = text(status, "message");
    if !message.is_empty() {
        out.push_str(&format!("  message: {message}\n"));
    }
    out
}
