//! What changes for a proxy between two views, in Envoy's terms.

use super::{TypeKind, View};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiffAction {
    Added,
    Changed,
    Removed,
}

impl DiffAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffAction::Added => "added",
            DiffAction::Changed => "changed",
            DiffAction::Removed => "removed",
        }
    }
}

/// Every resource added, changed (new version) or removed going from `old` to `new`,
/// in push order then by name: the same changes streams are pushed, named for people.
pub fn diff(old: &View, new: &View) -> Vec<(TypeKind, String, DiffAction)> {
    let changes = new.changes_since(old);
    let mut out = Vec::new();
    for kind in TypeKind::ALL {
        for change in &changes[kind.index()] {
            let action = match (&change.now, old.resources(kind).contains_key(&change.name)) {
                (None, _) => DiffAction::Removed,
                (Some(_), true) => DiffAction::Changed,
                (Some(_), false) => DiffAction::Added,
            };
            out.push((kind, change.name.clone(), action));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Encoded, ResourceMap};
    use std::sync::Arc;

    fn mk_view(clusters: &[(&str, &str)]) -> View {
        let map: ResourceMap = clusters
            .iter()
            .map(|(n, v)| {
                let e = Encoded::new(*n, *v, Default::default());
                (n.to_string(), Arc::new(e))
            })
            .collect();
        View::new([
            map,
            ResourceMap::new(),
            ResourceMap::new(),
            ResourceMap::new(),
            ResourceMap::new(),
        ])
    }

    #[test]
    fn reports_added_changed_and_removed() {
        let old = mk_view(&[("a", "1"), ("b", "1"), ("c", "1")]);
        let new = mk_view(&[("a", "1"), ("b", "2"), ("d", "1")]);
        assert_eq!(
            diff(&old, &new),
            vec![
                (TypeKind::Cluster, "b".to_string(), DiffAction::Changed),
                (TypeKind::Cluster, "c".to_string(), DiffAction::Removed),
                (TypeKind::Cluster, "d".to_string(), DiffAction::Added),
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }
}
