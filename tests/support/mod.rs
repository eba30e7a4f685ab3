//! The end-to-end test harness: real Envoy 1.40 and gRPC clients, the real coalmine binary, test
//! backends and traffic, all on 127.0.0.1. Integration tests use it as `mod support;`.
//!
//! Every e2e test runs beside others in parallel, so each one uses its own Gateway
//! (`config::GatewaySpec`: unique `app` label, free port) and bootstraps its Envoy
//! with that label, never the shared default listener 0.0.0.0:10000.
#![allow(dead_code, unused_imports)]

pub mod backend;
pub mod certs;
pub mod churn;
pub mod config;
pub mod dump;
pub mod endpoints;
pub mod envoy;
pub mod fake_apiserver;
pub mod grpc;
pub mod hooks;
pub mod http;
pub mod jwt;
pub mod pip;
pub mod process;
pub mod prometheus;
pub mod rollout;
pub mod scenario;
pub mod tls_client;
pub mod traffic;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub use backend::Backend;
pub use config::{ConfigDir, GatewaySpec};
pub use envoy::Envoy;
pub use process::Coalmine;
pub use traffic::{send, Load};

/// A port that was free a moment ago, on 127.0.0.1 and 0.0.0.0.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`), which the kernel hands
/// to every outgoing connection and every `bind(0)`: a port chosen there and bound a moment
/// later by Envoy can meanwhile be the source port of some other test's connection ("cannot
/// bind: Address already in use", seen in CI). Below it only explicit binds compete, and the
/// counter, seeded by the process id, keeps the tests of one binary apart.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, span) = fixed_port_range();
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (low + (start + n) % span) as u16;
        let free = |host: &str| TcpListener::bind((host, port)).is_ok();
        if free("0.0.0.0") && free("127.0.0.1") {
            return port;
        }
    }
    panic!("no free port in {low}..{}", low + span)
}

/// `(first port, count)` of the ports below the ephemeral range, from 20000 (clear of the default listener 10000).
fn fixed_port_range() -> (u32, u32) {
    const LOW: u32 = 20_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    assert!(
        ephemeral_low > LOW + 1_000,
        "ip_local_port_range starts at {ephemeral_low}: no room below it for test ports"
    );
    (LOW, ephemeral_low - LOW)
}

/// `prefix-<pid>-<n>`: unique across the parallel tests of this machine.
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `cond` every 50 ms until it holds (true) or `timeout` passes (false).
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Cargo's target dir: `CARGO_TARGET_DIR`, else `<crate>/target`.
pub fn target_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => manifest.join(d),
        _ => manifest.join("target"),
    }
}

/// A usual e2e setup: coalmine on `config`, and one Envoy bootstrapped by the CLI
/// with the Gateway's labels (node id = the Gateway's `app`).
pub fn start_envoy_for(coalmine: &Coalmine, gw: &GatewaySpec, delta: bool) -> Envoy {
    Envoy::start(&coalmine.bootstrap(&gw.app, &gw.labels(), delta))
}
