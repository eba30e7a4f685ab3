//! `ClientStatusRequest.node_matchers` (`envoy.type.matcher.v3.NodeMatcher`): which
//! proxies a CSDS request asks about. Matchers are OR-ed, none means every proxy; a
//! matcher matches on the node id (exact, prefix, suffix, contains, safe regex, each
//! optionally ignoring case). Node metadata matchers and custom string matchers are
//! refused by name rather than ignored, so a filter never silently widens.

use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::{NodeMatcher, StringMatcher};
use regex::Regex;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("node_matchers[{0}].node_metadatas is not supported: match on node_id")]
    Metadata(usize),
    #[error("node_matchers[{0}].node_id: custom string matchers are not supported")]
    Custom(usize),
    #[error("node_matchers[{0}].node_id.safe_regex: {1}")]
    Regex(usize, String),
}

/// The node ids a request selects, checked once.
#[derive(Debug)]
pub struct NodeFilter {
    /// `None` for a matcher without `node_id` (it matches every node).
    ids: Vec<Option<CaseMatch>>,
}

#[derive(Debug)]
enum IdMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
    /// A `StringMatcher` without a pattern matches nothing (as in Envoy).
    Nothing,
}

impl NodeFilter {
    pub fn try_new(matchers: &[NodeMatcher]) -> Result<NodeFilter, Error> {
        let mut ids = Vec::with_capacity(matchers.len());
        for (i, m) in matchers.iter().enumerate() {
            if !m.node_metadatas.is_empty() {
                return Err(Error::Metadata(i));
            }
            ids.push(m.node_id.as_ref().map(|s| try_id(i, s)).transpose()?);
        }
        Ok(NodeFilter { ids })
    }

    /// Whether the request asks about the node of this id.
    pub fn matches(&self, node_id: &str) -> bool {
        self.ids.is_empty()
            || self.ids.iter().any(|m| match m {
                None => true,
                Some(m) => m.matches(node_id),
            })
    }
}

fn try_id(i: usize, s: &StringMatcher) -> Result<CaseMatch, Error> {
    let fold = |p: &str| match s.ignore_case {
        true => p.to_lowercase(),
        false => p.to_string(),
    };
    let id = match &s.match_pattern {
        None => IdMatch::Nothing,
        Some(MatchPattern::Exact(p)) => IdMatch::Exact(fold(p)),
        Some(MatchPattern::Prefix(p)) => IdMatch::Prefix(fold(p)),
        Some(MatchPattern::Suffix(p)) => IdMatch::Suffix(fold(p)),
        Some(MatchPattern::Contains(p)) => IdMatch::Contains(fold(p)),
        Some(MatchPattern::SafeRegex(r)) => {
            // The whole id must match, as Envoy's safe_regex does.
            let pattern = match s.ignore_case {
                true => format!("(?i)^(?:{})$", r.regex),
                false => format!("^(?:{})$", r.regex),
            };
            IdMatch::Regex(Regex::new(&pattern).map_err(|e| Error::Regex(i, e.to_string()))?)
        }
        Some(MatchPattern::Custom(_)) => return Err(Error::Custom(i)),
    };
    Ok(CaseMatch {
        id,
        ignore_case: s.ignore_case,
    })
}

/// One matcher's test of the node id (patterns already folded under `ignore_case`).
#[derive(Debug)]
struct CaseMatch {
    id: IdMatch,
    ignore_case: bool,
}

impl CaseMatch {
    fn matches(&self, node_id: &str) -> bool {
        let folded;
        let id = match self.ignore_case {
            true => {
                folded = node_id.to_lowercase();
                folded.as_str()
            }
            false => node_id,
        };
        match &self.id {
            IdMatch::Exact(p) => id == p,
            IdMatch::Prefix(p) => id.starts_with(p.as_str()),
            IdMatch::Suffix(p) => id.ends_with(p.as_str()),
            IdMatch::Contains(p) => id.contains(p.as_str()),
            IdMatch::Regex(r) => r.is_match(node_id),
            IdMatch::Nothing => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StructMatcher};

    fn mk_id(pattern: MatchPattern, ignore_case: bool) -> NodeMatcher {
        NodeMatcher {
            node_id: Some(StringMatcher {
                match_pattern: Some(pattern),
                ignore_case,
            }),
            node_metadatas: Vec::new(),
        }
    }

    fn ids(filter: &NodeFilter) -> Vec<&'static str> {
        ["gw-1", "gw-2", "edge-1", "GW-3"]
            .into_iter()
            .filter(|id| filter.matches(id))
            .collect()
    }

    #[test]
    fn no_matcher_selects_every_node() {
        let filter = NodeFilter::try_new(&[]).unwrap();
        assert_eq!(ids(&filter), ["gw-1", "gw-2", "edge-1", "GW-3"]);
        let any = NodeFilter::try_new(&[NodeMatcher::default()]).unwrap();
        assert_eq!(ids(&any), ["gw-1", "gw-2", "edge-1", "GW-3"]);
    }

    #[test]
    fn exact_prefix_suffix_contains_regex_are_ored() {
        let exact = mk_id(MatchPattern::Exact("gw-1".into()), false);
        assert_eq!(
            ids(&NodeFilter::try_new(std::slice::from_ref(&exact)).unwrap()),
            ["gw-1"]
        );
        let prefix = mk_id(MatchPattern::Prefix("gw-".into()), false);
        assert_eq!(
            ids(&NodeFilter::try_new(&[prefix]).unwrap()),
            ["gw-1", "gw-2"]
        );
        let folded = mk_id(MatchPattern::Prefix("gw-".into()), true);
        assert_eq!(
            ids(&NodeFilter::try_new(&[folded]).unwrap()),
            ["gw-1", "gw-2", "GW-3"]
        );
        let suffix = mk_id(MatchPattern::Suffix("-1".into()), false);
        let contains = mk_id(MatchPattern::Contains("dg".into()), false);
        assert_eq!(
            ids(&NodeFilter::try_new(&[suffix, contains]).unwrap()),
            ["gw-1", "edge-1"]
        );
        let regex = mk_id(
            MatchPattern::SafeRegex(RegexMatcher {
                regex: "gw-[0-9]".into(),
                ..Default::default()
            }),
            false,
        );
        assert_eq!(
            ids(&NodeFilter::try_new(&[regex, exact]).unwrap()),
            ["gw-1", "gw-2"],
            "the whole id must match the regex"
        );
        let empty = NodeMatcher {
            node_id: Some(StringMatcher::default()),
            node_metadatas: Vec::new(),
        };
        assert!(ids(&NodeFilter::try_new(&[empty]).unwrap()).is_empty());
    }

    #[test]
    fn what_cannot_be_matched_is_refused_not_ignored() {
        let metadata = NodeMatcher {
            node_id: None,
            node_metadatas: vec![StructMatcher::default()],
        };
        let ok = mk_id(MatchPattern::Exact("gw-1".into()), false);
        assert_eq!(
            NodeFilter::try_new(&[ok, metadata]).unwrap_err(),
            Error::Metadata(1)
        );
        let bad = mk_id(
            MatchPattern::SafeRegex(RegexMatcher {
                regex: "(".into(),
                ..Default::default()
            }),
            false,
        );
        assert!(matches!(
            NodeFilter::try_new(&[bad]).unwrap_err(),
            Error::Regex(0, _)
        ));
    }
}
