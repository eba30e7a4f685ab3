//! Flagger's alerts end to end: a release through a real Envoy that fails its checks
//! and rolls back posts its events to AlertProviders on a loopback webhook server, with
//! Flagger's payloads: a Slack provider whose address comes from a Secret gets every
//! event (`severity: info`), a Teams provider with `severity: error` only the errors,
//! and Discord's goes to its `/slack` endpoint.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::hooks::Hooks;
use support::rollout::{is_final, phase, poll, rollout_yaml, Seen, World};

const NAME: &str = "release";
const TIMEOUT: Duration = Duration::from_secs(120);

fn providers(hooks: &Hooks) -> String {
    let base = hooks.url();
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: slack-url}}
stringData: {{address: '{base}slack-hook'}}
---
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata: {{name: slack}}
spec: {{type: slack, channel: releases, username: flagger, secretRef: {{name: slack-url}}}}
---
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata: {{name: teams}}
spec: {{type: msteams, address: '{base}teams'}}
---
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata: {{name: discord}}
spec: {{type: discord, address: '{base}discord'}}
"
    )
}

fn bodies(hooks: &Hooks, path: &str) -> Vec<Value> {
    let calls = hooks.calls().into_iter().filter(|(p, _)| p == path);
    calls.map(|(_, body)| body).collect()
}

#[test]
fn a_failing_release_alerts_each_provider_by_severity_with_flaggers_payload() {
    let w = World::start("ro-alerts");
    let hooks = Hooks::start();
    w.apply("providers.yaml", &providers(&hooks));
    w.p.v2.set_failure_rate(0.5);
    let load = w.load(&[], Duration::from_millis(5));
    let analysis = "    interval: 2s
    threshold: 1
    stepWeights: [50]
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 2s
      minSamples: 5
    alerts:
    - {name: on-call, severity: info, providerRef: {name: slack}}
    - {name: pager, severity: error, providerRef: {name: teams}}
    - {name: chat, providerRef: {name: discord, namespace: default}}
";
    w.apply(
        "rollout.yaml",
        &rollout_yaml(NAME, "petstore", "Canary", analysis),
    );
    let mut seen = Seen::default();
    let end = poll(&w.coalmine, NAME, &mut seen, TIMEOUT, |_| {}, is_final);
    assert_eq!(phase(&end), "Failed", "statuses:\n{}", seen.summary());
    load.stop();
    // Posts run in the background: wait for the rollback's error to reach Teams.
    let arrived = support::poll_until(Duration::from_secs(20), || {
        !bodies(&hooks, "/teams").is_empty()
    });
    assert!(arrived, "Teams got no error alert: {:?}", hooks.calls());
    std::thread::sleep(Duration::from_millis(500));

    // Slack (address from the Secret): every event, Flagger's attachment.
    let slack = bodies(&hooks, "/slack-hook");
    assert!(slack.len() >= 3, "{slack:#?}");
    for body in &slack {
        assert_eq!(body["channel"], "releases", "{body}");
        assert_eq!(body["username"], "flagger", "{body}");
        let a = &body["attachments"][0];
        assert_eq!(a["author_name"], format!("{NAME}.default"), "{body}");
        assert_eq!(a["mrkdwn_in"], serde_json::json!(["text"]), "{body}");
        assert!(a["text"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
        assert!(
            a["fields"].as_array().is_some_and(|f| !f.is_empty()),
            "{body}"
        );
    }
    let colors: Vec<&str> = slack
        .iter()
        .filter_map(|b| b["attachments"][0]["color"].as_str())
        .collect();
    assert!(colors.contains(&"good"), "{colors:?}");
    assert!(colors.contains(&"danger"), "{colors:?}");

    // Teams (severity error): only the errors, as MessageCards.
    for body in bodies(&hooks, "/teams") {
        assert_eq!(body["@type"], "MessageCard", "{body}");
        assert_eq!(body["themeColor"], "FF0000", "{body}");
        assert_eq!(body["summary"], format!("{NAME}.default"), "{body}");
    }
    assert!(
        bodies(&hooks, "/teams").len() < slack.len(),
        "Teams got info events too"
    );

    // Discord: the Slack-compatible endpoint.
    assert!(
        !bodies(&hooks, "/discord/slack").is_empty(),
        "{:?}",
        hooks.calls()
    );
    assert!(bodies(&hooks, "/discord").is_empty());
}
