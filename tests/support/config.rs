//! Config fixtures: a folder for `--config` written atomically, and YAML templates
//! for the usual scenario (a Gateway on a free port selecting one test's Envoy,
//! ServiceEntry endpoints on test backends, version subsets, weighted routes).

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A folder of YAML for `coalmine serve --config`; each write lands whole (rename).
pub struct ConfigDir {
    root: TempDir,
}

impl Default for ConfigDir {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigDir {
    pub fn new() -> Self {
        let root = TempDir::new().expect("tempdir");
        fs::create_dir(root.path().join("config")).expect("config dir");
        fs::create_dir(root.path().join("staging")).expect("staging dir");
        ConfigDir { root }
    }

    /// The folder to pass as `--config`.
    pub fn path(&self) -> PathBuf {
        self.root.path().join("config")
    }

    /// Writes (or replaces) `name` in the folder in one step; returns its path.
    pub fn write(&self, name: &str, yaml: &str) -> PathBuf {
        let staged = self.root.path().join("staging").join(name);
        fs::write(&staged, yaml).expect("write staged config");
        let path = self.path().join(name);
        fs::rename(&staged, &path).expect("move config into place");
        path
    }

    pub fn remove(&self, name: &str) {
        fs::remove_file(self.path().join(name)).expect("remove config file");
    }
}

/// A Gateway of one test: a unique name, a unique `app` label that only this test's
/// Envoy declares, and a free port for its HTTP listener.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    pub name: String,
    pub app: String,
    pub port: u16,
}

impl GatewaySpec {
    pub fn new(prefix: &str) -> Self {
        let app = super::unique(prefix);
        GatewaySpec {
            name: format!("{app}-gw"),
            app,
            port: super::free_port(),
        }
    }

    /// The labels the Envoy must declare to be selected (`app: <unique>`).
    pub fn labels(&self) -> Vec<(&str, &str)> {
        vec![("app", self.app.as_str())]
    }

    /// `networking.istio.io/v1` Gateway: one HTTP server on `port`, hosts `*`.
    pub fn yaml(&self) -> String {
        format!(
            "apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: {name}
spec:
  selector:
    app: {app}
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: [\"*\"]
",
            name = self.name,
            app = self.app,
            port = self.port
        )
    }
}

/// A STATIC ServiceEntry for `host` with one endpoint per `(port, version)` on
/// 127.0.0.1, labelled `version: <version>`.
pub fn service_entry(name: &str, host: &str, endpoints: &[(u16, &str)]) -> String {
    let mut eps = String::new();
    for (port, version) in endpoints {
        eps.push_str(&format!(
            "  - address: 127.0.0.1\n    ports: {{http: {port}}}\n    labels: {{version: \"{version}\"}}\n"
        ));
    }
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
spec:
  hosts: [\"{host}\"]
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  resolution: STATIC
  endpoints:
{eps}"
    )
}

/// A DestinationRule with one subset per version, `name: v` ↔ `labels: {version: v}`.
pub fn destination_rule(name: &str, host: &str, versions: &[&str]) -> String {
    let mut subsets = String::new();
    for v in versions {
        subsets.push_str(&format!(
            "  - name: \"{v}\"\n    labels: {{version: \"{v}\"}}\n"
        ));
    }
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {name}
spec:
  host: \"{host}\"
  subsets:
{subsets}"
    )
}

/// A VirtualService on `gateway` (hosts `*`) splitting `host` by subset weights.
pub fn weighted_virtual_service(
    name: &str,
    gateway: &str,
    host: &str,
    weights: &[(&str, impl std::fmt::Display)],
) -> String {
    let mut http = String::from("  - name: split\n    route:\n");
    for (subset, weight) in weights {
        http.push_str(&format!(
            "    - destination: {{host: \"{host}\", subset: \"{subset}\"}}\n      weight: {weight}\n"
        ));
    }
    virtual_service(name, gateway, &http)
}

/// A VirtualService `name` on `gateway` (hosts `*`) with `http` as its `http:` list.
pub fn virtual_service(name: &str, gateway: &str, http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
spec:
  hosts: [\"*\"]
  gateways: [\"{gateway}\"]
  http:
{http}"
    )
}

/// Joins YAML documents into one multi-document stream.
pub fn docs(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim_end())
        .collect::<Vec<_>>()
        .join("\n---\n")
        + "\n"
}

/// Reads a file of `examples/` (relative to the crate root).
pub fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
