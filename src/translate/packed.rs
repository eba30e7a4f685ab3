//! Packing a message whose map field holds several entries (JWT providers, RBAC
//! policies) into an `Any` with bytes that never vary.
//!
//! prost writes a map in `HashMap` order, so the same entries would encode
//! differently from one translation to the next. Protobuf merges concatenated
//! encodings of a message (map entries add up, scalars keep the last value), so the
//! message is written as its part without the map followed by one part per entry,
//! sorted by key: the same content gives the same bytes, and Envoy reads the whole.

use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

/// `base`, then each of `entries` (each a message holding one map entry), merged.
pub(super) fn pack_merged<M: Message + Name>(base: M, entries: Vec<(String, M)>) -> Any {
    let mut entries = entries;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut value = base.encode_to_vec();
    for (_, entry) in entries {
        entry.encode(&mut value).expect("a Vec grows as needed");
    }
    Any {
        type_url: M::type_url(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::rbac::v3::{rbac::Action, Policy, Rbac};
    use std::collections::HashMap;

    fn one(name: &str) -> (String, Rbac) {
        let policies = HashMap::from([(name.to_string(), Policy::default())]);
        let rbac = Rbac {
            action: Action::Deny as i32,
            policies,
            ..Default::default()
        };
        (name.to_string(), rbac)
    }

    #[test]
    fn entries_merge_in_key_order() {
        let base = Rbac {
            action: Action::Deny as i32,
            ..Default::default()
        };
        let a = pack_merged(base.clone(), vec![one("b"), one("a"), one("c")]);
        let b = pack_merged(base, vec![one("c"), one("b"), one("a")]);
        assert_eq!(a, b);
        let decoded = Rbac::decode(a.value.as_slice()).unwrap();
        let mut names: Vec<&String> = decoded.policies.keys().collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(decoded.action, Action::Deny as i32);
        assert_eq!(a.type_url, "type.googleapis.com/envoy.config.rbac.v3.RBAC");
    }
}
