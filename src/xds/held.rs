//! What a proxy holds of one type: resources sorted by name, shared with the snapshot
//! (a pointer each, never a copy), and their set digest, kept up to date in O(1) per
//! change so a stream's version never needs a pass over everything it holds.

use std::sync::Arc;

use crate::snapshot::{version_of, Encoded};

#[derive(Debug, Clone, Default)]
pub struct Held {
    items: Vec<Arc<Encoded>>,
    digest: u128,
}

impl Held {
    pub fn get(&self, name: &str) -> Option<&Arc<Encoded>> {
        self.find(name).ok().map(|i| &self.items[i])
    }

    /// Holds `r` (replacing any resource of its name); true when that changed anything.
    pub fn put(&mut self, r: Arc<Encoded>) -> bool {
        match self.find(&r.name) {
            Ok(i) if self.items[i].version == r.version => false,
            Ok(i) => {
                self.digest ^= self.items[i].digest ^ r.digest;
                self.items[i] = r;
                true
            }
            Err(i) => {
                self.digest ^= r.digest;
                self.items.insert(i, r);
                true
            }
        }
    }

    /// Drops the resource of that name; true when there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.find(name) {
            Ok(i) => {
                self.digest ^= self.items.remove(i).digest;
                true
            }
            Err(_) => false,
        }
    }

    /// Holds exactly `wanted` (sorted by name); returns the resources that are new or
    /// changed, and whether anything was dropped.
    pub fn replace(&mut self, wanted: Vec<Arc<Encoded>>) -> (Vec<Arc<Encoded>>, bool) {
        let fresh: Vec<Arc<Encoded>> = wanted
            .iter()
            .filter(|r| self.get(&r.name).is_none_or(|h| h.version != r.version))
            .cloned()
            .collect();
        let dropped = self
            .items
            .iter()
            .any(|h| wanted.binary_search_by(|w| w.name.cmp(&h.name)).is_err());
        self.digest = wanted.iter().fold(0, |d, r| d ^ r.digest);
        self.items = wanted;
        (fresh, dropped)
    }

    pub fn items(&self) -> &[Arc<Encoded>] {
        &self.items
    }

    /// The version of the set: equal sets have equal versions in every process.
    pub fn version(&self) -> String {
        version_of(self.digest)
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.items.binary_search_by(|e| e.name.as_str().cmp(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(name: &str, version: &str) -> Arc<Encoded> {
        Arc::new(Encoded::new(name, version, Default::default()))
    }

    #[test]
    fn digest_follows_content_whatever_the_order_of_changes() {
        let mut a = Held::default();
        a.put(mk("x", "1"));
        a.put(mk("y", "1"));
        a.put(mk("y", "2"));
        let mut b = Held::default();
        b.replace(vec![mk("x", "1"), mk("y", "2")]);
        assert_eq!(a.version(), b.version());
        assert!(!a.put(mk("x", "1")), "same version changes nothing");
        assert!(a.remove("x"));
        assert!(!a.remove("x"));
        assert_ne!(a.version(), b.version());
        assert_eq!(a.items().len(), 1);
    }

    #[test]
    fn replace_reports_what_is_new_and_what_was_dropped() {
        let mut h = Held::default();
        h.replace(vec![mk("a", "1"), mk("b", "1")]);
        let (fresh, dropped) = h.replace(vec![mk("b", "2"), mk("c", "1")]);
        let names: Vec<&str> = fresh.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert!(dropped);
        assert_eq!(h.items().len(), 2);
    }
}
