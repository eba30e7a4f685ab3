//! The load generator against a coalmine it starts, at a small N: every stream must
//! converge to every change, in both ADS variants. A behaviour test: no timing
//! assertions.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `coalmine` binary next to this crate's: another package's binary has no
/// `CARGO_BIN_EXE_`; the root's `cargo test` builds both.
fn server_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_coalmine-loadgen")).with_file_name("coalmine");
    assert!(
        bin.exists(),
        "{} missing: run `cargo test` at the root",
        bin.display()
    );
    bin
}

fn run_loadgen(mode: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_coalmine-loadgen"))
        .arg("--server-bin")
        .arg(server_bin())
        .args(["--streams", "20", "--services", "10", "--changes", "3"])
        .args(["--weight-changes", "1", "--rate", "20", "--mode", mode])
        .args(["--converge-timeout", "30", "--connect-timeout", "30"])
        .output()
        .expect("coalmine-loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "loadgen failed:\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line {last:?} is not JSON: {e}"))
}

#[test]
fn every_sotw_stream_converges_to_every_change() {
    let report = run_loadgen("sotw");
    assert_eq!(report["mode"], "sotw");
    assert_eq!(report["streams"], 20);
    assert_eq!(report["changes_converged"], 4, "{report}");
    assert_eq!(report["all_converged"], true, "{report}");
}

#[test]
fn every_delta_stream_converges_to_every_change() {
    let report = run_loadgen("delta");
    assert_eq!(report["mode"], "delta");
    assert_eq!(report["streams"], 20);
    assert_eq!(report["changes_converged"], 4, "{report}");
    assert_eq!(report["all_converged"], true, "{report}");
}
