//! Carrying out a machine's actions: traffic revisions, checks, webhooks and events,
//! feeding each result back into the machine until it asks for nothing more.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::release::Entry;
use super::{alert, clock, prometheus, webhook, Controller};
use crate::model::{BuiltinMetric, Metric, MetricSource, Rollout, TemplateSource, WebhookType};
use crate::rollout::{traffic, Action, MetricResult};
use crate::translate::cluster_name;

/// Actions carried out in one go at most: a machine never asks for this many, so a
/// bigger number means something loops and the rest waits for the next tick.
const MAX_ACTIONS: usize = 64;

impl Controller {
    pub(super) async fn carry_out(&self, entry: &mut Entry, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        let mut done = 0;
        while let Some(action) = queue.pop_front() {
            // Readers see each decision while the IO it asks for runs.
            entry.publish();
            if !self.still_published(entry) {
                info!(rollout = %entry.machine.rollout().key, "the Rollout was edited or deleted: its release stops here");
                break;
            }
            done += 1;
            if done > MAX_ACTIONS {
                warn!(rollout = %entry.machine.rollout().key, "too many actions in one step; the rest waits");
                break;
            }
            let rollout = entry.machine.rollout().clone();
            let more = match action {
                Action::ApplyTraffic { .. } | Action::Finalize | Action::Rollback => {
                    match self.apply_traffic(&rollout, &action).await {
                        Some(revision) => entry.machine.step_applied(clock(), revision),
                        None => Vec::new(),
                    }
                }
                Action::RunChecks => {
                    let results = self.measure(&rollout).await;
                    let more = entry.machine.checks_done(clock(), results);
                    for check in &entry.machine.state().metrics {
                        info!(rollout = %rollout.key, "check {check}");
                    }
                    more
                }
                Action::CallWebhooks(kind) => {
                    let phase = entry.machine.state().phase.as_str();
                    let ok = self.call_webhooks(&rollout, kind, phase, None).await;
                    entry.machine.webhook_done(clock(), kind, ok)
                }
                Action::Event(message) => {
                    info!(rollout = %rollout.key, "{message}");
                    let phase = entry.machine.state().phase.as_str();
                    self.call_webhooks(&rollout, WebhookType::Event, phase, Some(&message))
                        .await;
                    let state = entry.machine.state();
                    let fields = vec![
                        ("Target".to_string(), rollout.target.to_string()),
                        ("Canary weight".to_string(), state.canary_weight.to_string()),
                        (
                            "Failed checks threshold".to_string(),
                            format!("{}/{}", state.failed_checks, rollout.analysis.threshold),
                        ),
                    ];
                    self.send_alerts(&rollout, phase, &message, fields);
                    Vec::new()
                }
            };
            queue.extend(more);
        }
    }

    /// Stores the traffic a step asks for as a revision of the target route (in the
    /// cluster under `--kubernetes`); the revision, or `None` when it could not be
    /// written (logged; the next tick tries again).
    async fn apply_traffic(&self, rollout: &Rollout, action: &Action) -> Option<u64> {
        let Some(doc) = self.desired.get(&rollout.target) else {
            warn!(rollout = %rollout.key, target = %rollout.target, "the target is gone");
            return None;
        };
        let value = match traffic::apply(&doc.value, rollout, action) {
            Ok(Some(value)) => value,
            Ok(None) => return Some(self.desired.published().revision),
            Err(e) => {
                warn!(rollout = %rollout.key, "cannot rewrite {}: {e}", rollout.target);
                return None;
            }
        };
        self.sink
            .write_step(&self.desired, rollout, doc, value)
            .await
    }

    /// Measures every metric of the release against the canary destination.
    async fn measure(&self, rollout: &Rollout) -> Vec<MetricResult> {
        let mut results = Vec::new();
        for metric in &rollout.analysis.metrics {
            let (value, samples, counted) = match &metric.source {
                MetricSource::Builtin(builtin) => self.builtin(rollout, metric, *builtin),
                MetricSource::Prometheus { address, query } => {
                    let empty = BTreeMap::new();
                    self.prometheus(rollout, metric, address, query, &empty)
                        .await
                }
                // Looked up now: a changed template counts from this check on.
                MetricSource::Template {
                    template,
                    variables,
                } => {
                    let config = self.desired.published().config;
                    match config.metric_templates.get(template).map(|t| &t.source) {
                        Some(TemplateSource::Prometheus { address, query }) => {
                            self.prometheus(rollout, metric, address, query, variables)
                                .await
                        }
                        Some(TemplateSource::Builtin(builtin)) => {
                            self.builtin(rollout, metric, *builtin)
                        }
                        None => {
                            warn!(rollout = %rollout.key, metric = %metric.name,
                                "MetricTemplate {template} is gone");
                            (None, 0, false)
                        }
                    }
                }
            };
            results.push(MetricResult {
                name: metric.name.clone(),
                value,
                samples,
                counted,
            });
        }
        results
    }

    /// A built-in metric of the canary's cluster over the metric's window, from the
    /// stats the connected proxies pushed: `(value, requests, counted)`.
    fn builtin(
        &self,
        rollout: &Rollout,
        metric: &Metric,
        builtin: BuiltinMetric,
    ) -> (Option<f64>, u64, bool) {
        let cluster = cluster_name(&rollout.canary);
        let window = self.stats.window(&cluster, metric.interval, Instant::now());
        let value = match builtin {
            BuiltinMetric::RequestSuccessRate => window.success_rate(),
            BuiltinMetric::RequestDuration => window.p99_ms(),
        };
        (value, window.requests, true)
    }

    /// One Prometheus metric: the query with Flagger's variables filled in, or no value
    /// (inconclusive) when Prometheus does not answer.
    async fn prometheus(
        &self,
        rollout: &Rollout,
        metric: &Metric,
        address: &str,
        query: &str,
        variables: &BTreeMap<String, String>,
    ) -> (Option<f64>, u64, bool) {
        let vars = prometheus::Vars {
            namespace: &rollout.target.namespace,
            target: &rollout.target.name,
            interval: metric.interval,
            variables,
        };
        let promql = prometheus::render(query, &vars);
        match prometheus::query(&self.http, address, &promql, Duration::from_secs(10)).await {
            Ok(value) => (value, 0, false),
            Err(e) => {
                warn!(rollout = %rollout.key, metric = %metric.name, "{e}");
                (None, 0, false)
            }
        }
    }

    /// Posts an event to every alert whose severity wants it, in the background: a
    /// missing provider or a failed post is logged and never holds the release.
    fn send_alerts(
        &self,
        rollout: &Rollout,
        phase: &str,
        message: &str,
        fields: Vec<(String, String)>,
    ) {
        let severity = alert::severity_of(phase, message);
        let config = self.desired.published().config;
        for a in &rollout.analysis.alerts {
            if !alert::wants(a, severity) {
                continue;
            }
            let Some(provider) = config.alert_providers.get(&a.provider).cloned() else {
                warn!(rollout = %rollout.key, alert = %a.name, "AlertProvider {} is gone", a.provider);
                continue;
            };
            let event = alert::Event {
                name: &rollout.key.name,
                namespace: &rollout.key.namespace,
                phase,
                message,
                severity,
                fields: fields.clone(),
            };
            let body = alert::payload(&provider, &event);
            let (client, key, name) = (self.http.clone(), rollout.key.clone(), a.name.clone());
            tokio::spawn(async move {
                if let Err(e) = alert::post(&client, &provider, &body).await {
                    warn!(rollout = %key, alert = %name, "alert not sent: {e}");
                }
            });
        }
    }

    /// Calls every webhook of a type; true when all answered 2xx (or there are none).
    async fn call_webhooks(
        &self,
        rollout: &Rollout,
        kind: WebhookType,
        phase: &str,
        event: Option<&str>,
    ) -> bool {
        let mut ok = true;
        for hook in rollout.analysis.webhooks_of(kind) {
            let mut metadata = hook.metadata.clone();
            if let Some(message) = event {
                metadata.insert("eventMessage".into(), message.to_string());
                metadata.insert("eventType".into(), "Normal".into());
            }
            let payload = webhook::Payload {
                name: rollout.key.name.clone(),
                namespace: rollout.key.namespace.clone(),
                phase: phase.to_string(),
                kind: kind.as_str().to_string(),
                metadata,
            };
            if let Err(e) =
                webhook::call(&self.http, &hook.url, &payload, hook.timeout, hook.retries).await
            {
                warn!(rollout = %rollout.key, webhook = %hook.name, "webhook failed: {e}");
                ok = false;
            }
        }
        ok
    }
}
