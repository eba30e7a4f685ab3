//! Compiles the Envoy v3 `.proto` files that ship inside the `envoy-types` crate into a
//! `FileDescriptorSet` at `$OUT_DIR/envoy_descriptors.bin`, so `envoy_json` can render any
//! resource coalmine serves as Envoy's own proto3 JSON. Pure Rust (protox): no `protoc`,
//! no network.
//!
//! The proto folder is found, in order, at `$COALMINE_ENVOY_PROTO_DIR`, or in the Cargo
//! registry sources (`$CARGO_HOME/registry/src/*/envoy-types-<locked version>/proto`).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level files to compile (relative to `data-plane-api`); their imports follow.
const ROOTS: &[&str] = &[
    "envoy/config/bootstrap/v3/bootstrap.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/metrics/v3/metrics_service.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/extensions/access_loggers/file/v3/file.proto",
    "envoy/extensions/access_loggers/stream/v3/stream.proto",
    "envoy/extensions/filters/http/cors/v3/cors.proto",
    "envoy/extensions/filters/http/fault/v3/fault.proto",
    "envoy/extensions/filters/http/grpc_stats/v3/config.proto",
    "envoy/extensions/filters/http/jwt_authn/v3/config.proto",
    "envoy/extensions/filters/http/rbac/v3/rbac.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto",
    "envoy/extensions/transport_sockets/tls/v3/tls.proto",
    "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
    "envoy/service/discovery/v3/discovery.proto",
    "envoy/service/load_stats/v3/lrs.proto",
    "envoy/service/metrics/v3/metrics_service.proto",
];

/// Import roots inside the crate's `proto/` folder (missing ones are skipped).
const INCLUDES: &[&str] = &[
    "data-plane-api",
    "googleapis",
    "protoc-gen-validate",
    "xds",
    "cel-spec/proto",
    "opentelemetry-proto",
    "client_model",
    "ratelimit/api",
];

const OVERRIDE_VAR: &str = "COALMINE_ENVOY_PROTO_DIR";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed={OVERRIDE_VAR}");

    let proto_dir = find_proto_dir().unwrap_or_else(|msg| panic!("{msg}"));
    let includes: Vec<PathBuf> = INCLUDES
        .iter()
        .map(|dir| proto_dir.join(dir))
        .filter(|dir| dir.is_dir())
        .collect();
    let roots: Vec<&str> = ROOTS
        .iter()
        .copied()
        .filter(|file| proto_dir.join("data-plane-api").join(file).is_file())
        .collect();

    let mut compiler = protox::Compiler::new(&includes)
        .unwrap_or_else(|err| panic!("protox include paths {includes:?}: {err}"));
    compiler.include_imports(true).include_source_info(false);
    compiler
        .open_files(&roots)
        .unwrap_or_else(|err| panic!("compiling Envoy protos in {}: {err:?}", proto_dir.display()));

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let path = out.join("envoy_descriptors.bin");
    fs::write(&path, compiler.encode_file_descriptor_set())
        .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

/// The `proto/` folder of the `envoy-types` crate that Cargo.lock pins.
fn find_proto_dir() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os(OVERRIDE_VAR) {
        let dir = PathBuf::from(dir);
        return if dir.join("data-plane-api").is_dir() {
            Ok(dir)
        } else {
            Err(format!(
                "{OVERRIDE_VAR}={} has no data-plane-api folder",
                dir.display()
            ))
        };
    }

    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let version = locked_version(&manifest_dir.join("Cargo.lock"), "envoy-types")
        .ok_or("envoy-types is not in Cargo.lock")?;
    let crate_dir = format!("envoy-types-{version}");

    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let registry_src = cargo_home.join("registry").join("src");
    let mut candidates: Vec<PathBuf> = fs::read_dir(&registry_src)
        .map_err(|err| format!("reading {}: {err}", registry_src.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join(&crate_dir).join("proto"))
        .filter(|dir| dir.join("data-plane-api").is_dir())
        .collect();
    candidates.sort();
    candidates.into_iter().next().ok_or_else(|| {
        format!(
            "no {crate_dir}/proto under {}/*; run `cargo fetch`, or set {OVERRIDE_VAR} \
             to the envoy-types proto folder",
            registry_src.display()
        )
    })
}

/// The version Cargo.lock records for `name` (first match).
fn locked_version(lock: &Path, name: &str) -> Option<String> {
    let text = fs::read_to_string(lock).ok()?;
    let needle = format!("name = \"{name}\"");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == needle {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}
