//! Shared sets of subscribed names: proxies of one class subscribe to the same
//! clusters and routes, so each distinct set is kept once and every stream holding it
//! keeps a pointer, not its own copy of thousands of names.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex, Weak};

/// A set of resource names, shared between the streams that subscribe to it.
pub type Names = Arc<BTreeSet<String>>;

/// Every live set, by a hash of its names (collisions kept side by side).
type Sets = HashMap<u64, Vec<Weak<BTreeSet<String>>>>;

static SETS: LazyLock<Mutex<Sets>> = LazyLock::new(Mutex::default);

/// The shared copy of `names`: the one already held by some stream when there is one.
pub fn intern(names: BTreeSet<String>) -> Names {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    names.hash(&mut hasher);
    let key = hasher.finish();
    let mut sets = SETS.lock().expect("name sets poisoned");
    let bucket = sets.entry(key).or_default();
    bucket.retain(|w| w.strong_count() > 0);
    if let Some(found) = bucket
        .iter()
        .filter_map(Weak::upgrade)
        .find(|s| **s == names)
    {
        return found;
    }
    let shared = Arc::new(names);
    bucket.push(Arc::downgrade(&shared));
    if bucket.len() == 1 && sets.len() > 1024 {
        sets.retain(|_, b| b.iter().any(|w| w.strong_count() > 0));
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_are_shared_and_dropped_with_their_last_holder() {
        let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let a = intern(set(&["x", "y"]));
        let b = intern(set(&["y", "x"]));
        assert!(Arc::ptr_eq(&a, &b));
        let c = intern(set(&["x"]));
        assert!(!Arc::ptr_eq(&a, &c));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none());
    }
}
