//! A Kubernetes `LabelSelector` (`matchLabels`, and `matchExpressions` with `In`,
//! `NotIn`, `Exists`, `DoesNotExist`), as a listener's
//! `allowedRoutes.namespaces.selector` names the namespaces whose routes may attach.
//! Reading reports every bad field; matching is Kubernetes' (every term must hold, an
//! empty selector matches every set of labels).

use serde_json::Value;

use crate::ingest::{Fields, Obj, Report};
use crate::model::Labels;

const SELECTOR: Fields = Fields::known(&["matchLabels", "matchExpressions"]);
const EXPRESSION: Fields = Fields::known(&["key", "operator", "values"]);

/// A label selector that read cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LabelSelector {
    match_labels: Labels,
    expressions: Vec<Expression>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Expression {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// Reads a selector at `path`; every problem goes to `r`.
pub(super) fn try_label_selector(path: &str, value: &Value, r: &mut Report) -> LabelSelector {
    let mut selector = LabelSelector {
        match_labels: Labels::new(),
        expressions: Vec::new(),
    };
    let Some(obj) = Obj::new(r, path, value, SELECTOR) else {
        return selector;
    };
    selector.match_labels = obj.string_map(r, "matchLabels");
    for (path, item) in obj.list(r, "matchExpressions") {
        let Some(expression) = Obj::new(r, &path, item, EXPRESSION) else {
            continue;
        };
        let key = expression.required_string(r, "key");
        let values = expression.strings(r, "values");
        let operator = match expression.required_string(r, "operator").as_deref() {
            None => None,
            Some("In") => Some(Operator::In),
            Some("NotIn") => Some(Operator::NotIn),
            Some("Exists") => Some(Operator::Exists),
            Some("DoesNotExist") => Some(Operator::DoesNotExist),
            Some(other) => {
                let message =
                    format!("{other:?} is not an operator (In, NotIn, Exists, DoesNotExist)");
                r.push(expression.at("operator"), message);
                None
            }
        };
        let needs_values = matches!(operator, Some(Operator::In | Operator::NotIn));
        if needs_values && values.is_empty() {
            r.push(expression.at("values"), "required for In and NotIn");
        } else if operator.is_some() && !needs_values && !values.is_empty() {
            r.push(
                expression.at("values"),
                "must be empty for Exists and DoesNotExist",
            );
        }
        if let (Some(key), Some(operator)) = (key, operator) {
            selector.expressions.push(Expression {
                key,
                operator,
                values,
            });
        }
    }
    selector
}

impl LabelSelector {
    /// Whether `labels` meet every term.
    pub(super) fn matches(&self, labels: &Labels) -> bool {
        let by_label = self
            .match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v));
        by_label
            && self.expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator {
                    Operator::In => value.is_some_and(|v| e.values.contains(v)),
                    Operator::NotIn => value.is_none_or(|v| !e.values.contains(v)),
                    Operator::Exists => value.is_some(),
                    Operator::DoesNotExist => value.is_none(),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> (LabelSelector, Vec<String>) {
        let mut r = Report::new("Gateway default/edge");
        let selector = try_label_selector("selector", &value, &mut r);
        (selector, r.errors.into_iter().map(|e| e.field).collect())
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn match_labels_and_every_operator() {
        let (selector, errors) = read(json!({
            "matchLabels": {"team": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "tier", "operator": "NotIn", "values": ["legacy"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "frozen", "operator": "DoesNotExist"}
            ]
        }));
        assert_eq!(errors, Vec::<String>::new());
        let all = [("team", "web"), ("env", "prod"), ("owner", "a")];
        assert!(selector.matches(&labels(&all)));
        let mut other = labels(&all);
        other.insert("tier".into(), "legacy".into());
        assert!(!selector.matches(&other), "NotIn");
        other.insert("tier".into(), "new".into());
        assert!(selector.matches(&other));
        other.insert("frozen".into(), "".into());
        assert!(!selector.matches(&other), "DoesNotExist");
        assert!(
            !selector.matches(&labels(&[("team", "web"), ("owner", "a")])),
            "In"
        );
        assert!(!selector.matches(&labels(&[("env", "prod"), ("owner", "a")])));
        assert!(!selector.matches(&labels(&[("team", "web"), ("env", "prod")])));
    }

    #[test]
    fn an_empty_selector_matches_everything() {
        let (selector, errors) = read(json!({}));
        assert!(errors.is_empty());
        assert!(selector.matches(&Labels::new()));
    }

    #[test]
    fn names_every_bad_field() {
        let (_, errors) = read(json!({
            "matchLabels": {"a": 1},
            "matchExpressions": [
                {"key": "env", "operator": "In"},
                {"key": "env", "operator": "Exists", "values": ["x"]},
                {"operator": "Like", "extra": true}
            ]
        }));
        assert_eq!(
            errors,
            [
                "selector.matchLabels.a",
                "selector.matchExpressions[0].values",
                "selector.matchExpressions[1].values",
                "selector.matchExpressions[2].extra",
                "selector.matchExpressions[2].key",
                "selector.matchExpressions[2].operator",
            ]
        );
    }
}
