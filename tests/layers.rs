//! Imports go one way: every top-level module of `src/` has a layer (the table below,
//! the same as `src/lib.rs` draws), and product code (tests and fixtures aside) may
//! name only modules of lower layers. A new import going back up, or sideways inside
//! a layer, fails here with the file that does it.
//!
//! One known exception is listed by name: the Istio and Gateway API dialects still
//! share field walking and set building both ways, until those move into a dialect-
//! neutral ingest layer (issue 12).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Bottom first. Modules on one line are one layer and may not import each other.
const LAYERS: &[&[&str]] = &[
    &["yaml", "envoy_json", "store"],
    &["yaml11", "model"],
    &["ingest"],
    &["istio", "gateway_api", "rollout_kind"],
    &["resource_set"],
    &["rollout", "desired", "translate"],
    &["snapshot"],
    &["node", "metrics"],
    &["ledger", "listen", "source", "bootstrap"],
    &["stats"],
    &["xds", "k8s"],
    &["controller"],
    &["admin"],
    &["serve"],
    &["cli"],
];

fn layer_of() -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for (rank, layer) in LAYERS.iter().enumerate() {
        for module in *layer {
            out.insert(*module, rank);
        }
    }
    out
}

/// Product code of a file: test modules at its end, test files and comments dropped.
fn product_code(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let in_tests_dir = path.components().any(|c| c.as_os_str() == "tests");
    if name == "tests.rs" || name == "fixtures.rs" || name.ends_with("_tests.rs") || in_tests_dir {
        return None;
    }
    let text = fs::read_to_string(path).ok()?;
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    let code: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    Some(code.join("\n"))
}

/// `(file, module it names)` for every `crate::module` in the product code under `dir`.
fn imports(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            imports(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let Some(code) = product_code(&path) else {
            continue;
        };
        let file = path.display().to_string();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            if end > 0 {
                out.push((file.clone(), rest[..end].to_string()));
            }
        }
    }
}

/// The top-level module a file under `src/` belongs to (`src/xds/server.rs` → `xds`).
fn module_of(file: &str) -> Option<&str> {
    let rel = file.split("/src/").last()?;
    let first = rel.split('/').next()?;
    Some(first.trim_end_matches(".rs"))
}

#[test]
fn no_module_imports_one_above_it_or_beside_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layer_of();
    let mut found = Vec::new();
    imports(&root, &mut found);
    assert!(
        found.len() > 100,
        "the scan found only {} imports",
        found.len()
    );
    let mut wrong = Vec::new();
    for (file, target) in &found {
        let Some(module) = module_of(file) else {
            continue;
        };
        if matches!(module, "lib" | "main" | "bin") || module == target {
            continue;
        }
        let from = layers.get(module).unwrap_or_else(|| {
            panic!("module {module} ({file}) has no layer: add it to LAYERS and src/lib.rs")
        });
        let Some(to) = layers.get(target.as_str()) else {
            continue; // an item of the crate root, not a module
        };
        if to >= from {
            wrong.push(format!(
                "{file}: {module} (layer {from}) imports {target} (layer {to})"
            ));
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports going up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_module_of_src_has_a_layer() {
    let layers = layer_of();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in fs::read_dir(&root).expect("read src") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if matches!(name, "lib" | "main" | "bin") || name.is_empty() {
            continue;
        }
        if path.is_dir() || path.extension().is_some_and(|e| e == "rs") {
            assert!(
                layers.contains_key(name),
                "src/{name} has no layer in LAYERS"
            );
        }
    }
}

/// `(dir, file stem, sibling it names through super::)` for product files under `dir`.
fn sibling_imports(dir: &Path, out: &mut Vec<(String, String, String)>) {
    let mut stems = Vec::new();
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sibling_imports(&path, out);
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                stems.push(name.to_string());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            stems.push(stem.to_string());
            files.push(path);
        }
    }
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if matches!(stem.as_str(), "mod" | "lib" | "main") {
            continue;
        }
        let Some(code) = product_code(&path) else {
            continue;
        };
        for sibling in &stems {
            let named = code.contains(&format!("super::{sibling}::"))
                || code.contains(&format!("super::{sibling};"))
                || code.contains(&format!("super::{{{sibling}"));
            if named && *sibling != stem && sibling != "mod" {
                out.push((dir.display().to_string(), stem.clone(), sibling.clone()));
            }
        }
    }
}

#[test]
fn no_two_files_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    sibling_imports(&root, &mut found);
    assert!(
        found.len() > 20,
        "the scan found only {} sibling imports",
        found.len()
    );
    let mut pairs = Vec::new();
    for (dir, a, b) in &found {
        let back = found.iter().any(|(d, x, y)| d == dir && x == b && y == a);
        if back && a < b {
            pairs.push(format!("{dir}: {a}.rs and {b}.rs import each other"));
        }
    }
    assert!(pairs.is_empty(), "{}", pairs.join("\n"));
}
