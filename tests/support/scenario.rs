//! A two-version scenario for CLI tests (a Gateway, backends v1 and v2, subsets and a
//! weighted VirtualService `petstore`, written to YAML files), and helpers that read
//! what a `coalmine` command printed and how it exited.

use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use super::config::{destination_rule, docs, service_entry, weighted_virtual_service};
use super::{dump, Backend, Envoy, GatewaySpec};

/// One test's world: its Gateway, two backends (v1, v2) and YAML files in a temp dir.
pub struct Petstore {
    pub gw: GatewaySpec,
    pub v1: Backend,
    pub v2: Backend,
    pub dir: TempDir,
}

impl Petstore {
    pub fn new(prefix: &str) -> Self {
        Petstore {
            gw: GatewaySpec::new(prefix),
            v1: Backend::start("v1"),
            v2: Backend::start("v2"),
            dir: TempDir::new().expect("tempdir"),
        }
    }

    /// Gateway, ServiceEntry, DestinationRule, and VirtualService `petstore` with `weights`.
    pub fn yaml(&self, weights: &[(&str, u32)]) -> String {
        let se = service_entry(
            "petstore",
            "petstore",
            &[(self.v1.port(), "v1"), (self.v2.port(), "v2")],
        );
        let dr = destination_rule("petstore", "petstore", &["v1", "v2"]);
        let vs = weighted_virtual_service("petstore", &self.gw.name, "petstore", weights);
        docs(&[&self.gw.yaml(), &se, &dr, &vs])
    }

    pub fn write(&self, name: &str, yaml: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).expect("write yaml");
        path.display().to_string()
    }

    pub fn route(&self) -> String {
        format!("http.{}", self.gw.port)
    }

    pub fn node(&self) -> &str {
        &self.gw.app
    }

    /// The clusters Envoy's route configuration sends to, by subset name.
    pub fn targets(&self, envoy: &Envoy) -> Vec<String> {
        let targets = dump::route_targets(envoy, &self.route());
        let subset = |c: &String| c.split('|').nth(2).unwrap_or(c).to_string();
        targets.keys().map(subset).collect()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, naming the command's output when it differs.
pub fn expect_code(o: &Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

pub fn json(o: &Output, what: &str) -> Value {
    expect_code(o, 0, what);
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{what}: {e}: {}", stdout(o)))
}
