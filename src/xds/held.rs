//! What a proxy holds of one type: resources sorted by name, shared with the snapshot
//! (a pointer each, never a copy), and their set digest, kept up to date in O(1) per
//! change so a stream's version never needs a pass over everything it holds.
//!
//! The list itself is shared too: a stream that holds exactly what its view serves
//! (the usual case) points at the view's own list ([`Held::share`]), so ten thousand
//! proxies of one class keep one list, not one each; a change copies it only for a
//! stream that then differs from the view.

use std::sync::Arc;

use crate::snapshot::{version_of, Change, Encoded};

#[derive(Debug, Clone, Default)]
pub struct Held {
    items: Arc<Vec<Arc<Encoded>>>,
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
                Arc::make_mut(&mut self.items)[i] = r;
                true
            }
            Err(i) => {
                self.digest ^= r.digest;
                Arc::make_mut(&mut self.items).insert(i, r);
                true
            }
        }
    }

    /// Drops the resource of that name; true when there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.find(name) {
            Ok(i) => {
                self.digest ^= Arc::make_mut(&mut self.items).remove(i).digest;
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
        self.items = Arc::new(wanted);
        (fresh, dropped)
    }

    /// Moves from holding exactly `old` (a view's set digest) to holding exactly `new`
    /// (the next view's list and digest), when every one of `changes` between the two
    /// is subscribed to: the changed resources and the removed names, with no copy of
    /// the list. `None` when the stream holds something else, or not every change is
    /// its; the caller then applies the changes one by one.
    pub fn follow_view(
        &mut self,
        old: u128,
        new: (&Arc<Vec<Arc<Encoded>>>, u128),
        changes: &[Change],
        subscribed: impl Fn(&str) -> bool,
    ) -> Option<(Vec<Arc<Encoded>>, Vec<String>)> {
        if self.digest != old || !changes.iter().all(|c| subscribed(&c.name)) {
            return None;
        }
        let mut fresh = Vec::new();
        let mut removed = Vec::new();
        for change in changes {
            match &change.now {
                Some(r) => fresh.push(r.clone()),
                None => removed.push(change.name.clone()),
            }
        }
        self.items = new.0.clone();
        self.digest = new.1;
        Some((fresh, removed))
    }

    /// Points at `items` (a view's list, with set digest `digest`) instead of a list of
    /// its own, when it holds exactly that set; nothing changes otherwise.
    pub fn share(&mut self, items: &Arc<Vec<Arc<Encoded>>>, digest: u128) {
        if self.digest == digest && !Arc::ptr_eq(&self.items, items) {
            self.items = items.clone();
        }
    }

    pub fn items(&self) -> &[Arc<Encoded>] {
        &self.items
    }

    /// The list itself, to share (with the ledger, or as what a response carried).
    pub fn list(&self) -> &Arc<Vec<Arc<Encoded>>> {
        &self.items
    }

    /// The set digest (see [`crate::snapshot::digest_of`]).
    pub fn digest(&self) -> u128 {
        self.digest
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
    fn an_equal_set_shares_the_view_list_and_a_change_copies_it() {
        let view: Arc<Vec<Arc<Encoded>>> = Arc::new(vec![mk("a", "1"), mk("b", "1")]);
        let digest = view.iter().fold(0, |d, r| d ^ r.digest);
        let mut h = Held::default();
        h.share(&view, digest);
        assert!(h.items().is_empty(), "a different set does not share");
        h.put(mk("b", "1"));
        h.put(mk("a", "1"));
        h.share(&view, digest);
        assert!(Arc::ptr_eq(&h.items, &view));
        // A change afterwards is the stream's own: the view's list is untouched.
        assert!(h.put(mk("b", "2")));
        assert!(!Arc::ptr_eq(&h.items, &view));
        assert_eq!(view[1].version, "1");
        assert_eq!(h.get("b").unwrap().version, "2");
    }

    #[test]
    fn following_a_view_takes_its_list_only_from_the_previous_set() {
        let digest = |l: &[Arc<Encoded>]| l.iter().fold(0, |d, r| d ^ r.digest);
        let old: Vec<Arc<Encoded>> = vec![mk("a", "1"), mk("b", "1")];
        let new: Arc<Vec<Arc<Encoded>>> = Arc::new(vec![mk("a", "2"), mk("c", "1")]);
        let changes = vec![
            Change {
                name: "a".into(),
                now: Some(new[0].clone()),
                before: true,
                uses_new: false,
            },
            Change {
                name: "b".into(),
                now: None,
                before: true,
                uses_new: false,
            },
            Change {
                name: "c".into(),
                now: Some(new[1].clone()),
                before: false,
                uses_new: false,
            },
        ];
        let mut h = Held::default();
        h.replace(old.clone());
        let all = |_: &str| true;
        let (fresh, removed) = h
            .follow_view(digest(&old), (&new, digest(&new)), &changes, all)
            .unwrap();
        let names: Vec<&str> = fresh.iter().map(|r| r.name.as_str()).collect();
        assert_eq!((names, removed), (vec!["a", "c"], vec!["b".to_string()]));
        assert!(Arc::ptr_eq(&h.items, &new));
        assert_eq!(h.version(), version_of(digest(&new)));
        // Holding something else, or a change not subscribed to: the slow path.
        let mut other = Held::default();
        other.replace(vec![mk("a", "1")]);
        assert!(other
            .follow_view(digest(&old), (&new, digest(&new)), &changes, all)
            .is_none());
        let mut partial = Held::default();
        partial.replace(old.clone());
        let not_c = |n: &str| n != "c";
        assert!(partial
            .follow_view(digest(&old), (&new, digest(&new)), &changes, not_c)
            .is_none());
        assert_eq!(partial.items().len(), 2, "left as it was");
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
