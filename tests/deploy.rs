//! The manifests in `deploy/` and `examples/kubernetes/` stay true: the gateway's
//! bootstrap is exactly what `coalmine bootstrap` prints, every manifest parses as
//! Kubernetes objects, the kustomization names files that exist, and the example's
//! route resources are valid coalmine documents. (`.ci/run` also renders `deploy/`
//! with `kubectl kustomize` and validates it against the Kubernetes schemas.)

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn objects(path: &Path) -> Vec<Value> {
    let text = read(path);
    coalmine::yaml::documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

#[test]
fn the_gateway_bootstrap_is_the_cli_output() {
    let out = support::process::cli(&[
        "bootstrap",
        "--node-id",
        "gateway",
        "--label",
        "app=gateway",
        "--xds-addr",
        "coalmine.coalmine.svc:18000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = read(&root().join("deploy/gateway/envoy.yaml"));
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "deploy/gateway/envoy.yaml is stale: regenerate it with `coalmine bootstrap --node-id gateway \
         --label app=gateway --xds-addr coalmine.coalmine.svc:18000 > deploy/gateway/envoy.yaml`"
    );
}

#[test]
fn the_committed_crds_are_the_crdgen_output() {
    let out = support::process::cli(&["crdgen"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = read(&root().join("deploy/crds/coalmine.dev.yaml"));
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "deploy/crds/coalmine.dev.yaml is stale: run `coalmine crdgen > deploy/crds/coalmine.dev.yaml`"
    );
}

#[test]
fn every_manifest_is_made_of_kubernetes_objects() {
    let mut files = Vec::new();
    yaml_files(&root().join("deploy"), &mut files);
    yaml_files(&root().join("examples/kubernetes"), &mut files);
    let bootstrap = root().join("deploy/gateway/envoy.yaml");
    let mut count = 0;
    for file in files.iter().filter(|f| **f != bootstrap) {
        for obj in objects(file) {
            for field in ["apiVersion", "kind"] {
                assert!(
                    obj[field].is_string(),
                    "{}: no {field}: {obj}",
                    file.display()
                );
            }
            if obj["kind"] != "Kustomization" {
                assert!(
                    obj["metadata"]["name"].is_string(),
                    "{}: no name",
                    file.display()
                );
            }
            count += 1;
        }
    }
    assert!(count >= 19, "only {count} objects");
}

#[test]
fn the_kustomization_names_files_that_exist() {
    let k = &objects(&root().join("deploy/kustomization.yaml"))[0];
    let resources = k["resources"].as_array().expect("resources");
    let generated = k["configMapGenerator"][0]["files"]
        .as_array()
        .expect("files");
    for file in resources.iter().chain(generated) {
        let path = root().join("deploy").join(file.as_str().expect("a path"));
        assert!(path.is_file(), "{} is missing", path.display());
    }
}

#[test]
fn the_example_routes_are_valid_coalmine_documents() {
    let path = root().join("examples/kubernetes/replica-ratio.yaml");
    let routes: Vec<Value> = objects(&path)
        .into_iter()
        .filter(|o| {
            o["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("networking.istio.io/"))
        })
        .collect();
    assert_eq!(routes.len(), 2);
    let text = serde_json::to_string(&routes).unwrap();
    let docs = coalmine::ingest::parse_documents(&text).expect("the example parses");
    let replicas: Vec<u64> = objects(&path)
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .map(|o| o["spec"]["replicas"].as_u64().unwrap())
        .collect();
    assert_eq!(replicas, [4, 1], "4 pods of v1 and 1 of v2");
    assert_eq!(docs.len(), 2);
}

/// The image the manifests run is the one the Dockerfile builds: a locked release
/// build, run as the uid the Deployment requires, named `coalmine` in the
/// kustomization's `images:`; and each gateway pod is a proxy of its own.
#[test]
fn the_image_and_the_manifests_agree() {
    let dockerfile = read(&root().join("Dockerfile"));
    assert!(
        dockerfile.contains("cargo build --release --locked"),
        "{dockerfile}"
    );
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert_eq!(stages, 2, "a build stage and a runtime stage");
    assert!(dockerfile.contains("USER 65532:65532"), "{dockerfile}");
    let deployment = &objects(&root().join("deploy/coalmine/deployment.yaml"))[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["containers"][0]["image"], "coalmine");
    let kustomization = &objects(&root().join("deploy/kustomization.yaml"))[0];
    let images = kustomization["images"].as_array().expect("images:");
    assert!(images.iter().any(|i| i["name"] == "coalmine"), "{images:?}");
    let gateway = &objects(&root().join("deploy/gateway/deployment.yaml"))[0];
    let envoy = &gateway["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = envoy["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let node = args
        .iter()
        .position(|a| *a == "--service-node")
        .expect("--service-node");
    assert_eq!(args[node + 1], "$(POD_NAME)");
    assert_eq!(
        envoy["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
}
