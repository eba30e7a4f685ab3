//! Reading JSON values field by field, reporting every unknown, unsupported or
//! ill-typed field with its full path. Knows no Istio kind.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::duration::parse_duration;
use super::error::Report;

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A JSON object being read at `path`; every key was checked against the known ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obj<'v, 'p> {
    pub path: &'p str,
    map: &'v Map<String, Value>,
}

/// The fields an object may have: `known` are read, `unsupported` are Istio fields
/// coalmine does not implement. Anything else is an unknown field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub known: &'static [&'static str],
    pub unsupported: &'static [&'static str],
}

impl Fields {
    pub(crate) const fn known(known: &'static [&'static str]) -> Self {
        Self {
            known,
            unsupported: &[],
        }
    }
}

impl<'v, 'p> Obj<'v, 'p> {
    /// Reads `value` as an object with `fields`, reporting every other key.
    pub(crate) fn new(
        r: &mut Report,
        path: &'p str,
        value: &'v Value,
        fields: Fields,
    ) -> Option<Self> {
        let Value::Object(map) = value else {
            r.push(path, "must be an object");
            return None;
        };
        for key in map.keys() {
            if fields.unsupported.contains(&key.as_str()) {
                r.push(join(path, key), "not supported");
            } else if !fields.known.contains(&key.as_str()) {
                r.push(join(path, key), "unknown field");
            }
        }
        Some(Self { path, map })
    }

    /// Reads `value` as an object without checking its keys (for `metadata`).
    pub(crate) fn any(value: &'v Value) -> Option<Obj<'v, 'static>> {
        value.as_object().map(|map| Obj { path: "", map })
    }

    pub(crate) fn with_path<'q>(self, path: &'q str) -> Obj<'v, 'q> {
        Obj {
            path,
            map: self.map,
        }
    }

    /// The path of `key` in this object.
    pub(crate) fn at(&self, key: &str) -> String {
        join(self.path, key)
    }

    /// The value of `key`; an explicit `null` counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn string(&self, r: &mut Report, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                r.push(self.at(key), "must be a string");
                None
            }
        }
    }

    /// A string that must be present and non-empty.
    pub(crate) fn required_string(&self, r: &mut Report, key: &str) -> Option<String> {
        match self.string(r, key) {
            Some(s) if s.is_empty() => r.push(self.at(key), "must not be empty"),
            Some(s) => return Some(s),
            None if !self.has(key) => r.push(self.at(key), "required"),
            None => {}
        }
        None
    }

    /// An integer within `min..=max`.
    pub(crate) fn uint(&self, r: &mut Report, key: &str, min: u32, max: u32) -> Option<u32> {
        let value = self.get(key)?;
        let number = value.as_u64().and_then(|n| u32::try_from(n).ok());
        match number {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                r.push(
                    self.at(key),
                    format!("must be an integer between {min} and {max}"),
                );
                None
            }
        }
    }

    pub(crate) fn number(&self, r: &mut Report, key: &str) -> Option<f64> {
        let value = self.get(key)?;
        if value.is_number() {
            value.as_f64()
        } else {
            r.push(self.at(key), "must be a number");
            None
        }
    }

    pub(crate) fn boolean(&self, r: &mut Report, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                r.push(self.at(key), "must be true or false");
                None
            }
        }
    }

    pub(crate) fn duration(&self, r: &mut Report, key: &str) -> Option<Duration> {
        let text = self.string(r, key)?;
        match parse_duration(&text) {
            Ok(duration) => Some(duration),
            Err(message) => {
                r.push(self.at(key), message);
                None
            }
        }
    }

    /// Istio's `Percent` message, `{value: 0-100}`.
    pub(crate) fn percentage(&self, r: &mut Report, key: &str) -> Option<f64> {
        let path = self.at(key);
        let object = Obj::new(r, &path, self.get(key)?, Fields::known(&["value"]))?;
        let value = object.number(r, "value")?;
        if (0.0..=100.0).contains(&value) {
            Some(value)
        } else {
            r.push(object.at("value"), "must be between 0 and 100");
            None
        }
    }

    /// A list; absent means empty. Yields each element with its path.
    pub(crate) fn list(&self, r: &mut Report, key: &str) -> Vec<(String, &'v Value)> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("{}[{i}]", self.at(key)), item))
                .collect(),
            Some(_) => {
                r.push(self.at(key), "must be a list");
                Vec::new()
            }
        }
    }

    /// A list of non-empty strings; absent means empty.
    pub(crate) fn strings(&self, r: &mut Report, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (path, item) in self.list(r, key) {
            match item {
                Value::String(s) if !s.is_empty() => out.push(s.clone()),
                _ => r.push(path, "must be a non-empty string"),
            }
        }
        out
    }

    /// A map of string to JSON value; absent means empty. Yields each entry with its path.
    pub(crate) fn entries(&self, r: &mut Report, key: &str) -> Vec<(String, &'v str, &'v Value)> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| (join(&self.at(key), k), k.as_str(), v))
                .collect(),
            Some(_) => {
                r.push(self.at(key), "must be a map");
                Vec::new()
            }
        }
    }

    /// A map of string to string (labels, header values); absent means empty.
    pub(crate) fn string_map(&self, r: &mut Report, key: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (path, name, value) in self.entries(r, key) {
            match value {
                Value::String(s) => {
                    out.insert(name.to_string(), s.clone());
                }
                _ => r.push(path, "must be a string"),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: Fields = Fields {
        known: &["name", "port", "tags", "labels", "timeout"],
        unsupported: &["exportTo"],
    };

    #[test]
    fn reports_unknown_unsupported_and_ill_typed_fields() {
        let value = json!({
            "name": 3, "port": 70000, "tags": ["a", ""], "labels": {"a": 1},
            "timeout": "soon", "exportTo": ["."], "extra": true
        });
        let mut r = Report::new("X default/x");
        let obj = Obj::new(&mut r, "spec", &value, FIELDS).unwrap();
        assert_eq!(obj.string(&mut r, "name"), None);
        assert_eq!(obj.uint(&mut r, "port", 1, 65535), None);
        assert_eq!(obj.strings(&mut r, "tags"), vec!["a".to_string()]);
        assert!(obj.string_map(&mut r, "labels").is_empty());
        assert_eq!(obj.duration(&mut r, "timeout"), None);
        let got: Vec<(&str, &str)> = r
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("spec.exportTo", "not supported"),
                ("spec.extra", "unknown field"),
                ("spec.name", "must be a string"),
                ("spec.port", "must be an integer between 1 and 65535"),
                ("spec.tags[1]", "must be a non-empty string"),
                ("spec.labels.a", "must be a string"),
                (
                    "spec.timeout",
                    "invalid duration \"soon\": expected e.g. 1s, 500ms, 1.5s, 1m, 1h"
                ),
            ]
        );
    }

    #[test]
    fn null_counts_as_absent() {
        let value = json!({"name": null});
        let mut r = Report::new("X default/x");
        let obj = Obj::new(&mut r, "spec", &value, FIELDS).unwrap();
        assert_eq!(obj.required_string(&mut r, "name"), None);
        assert_eq!(r.errors[0].field, "spec.name");
        assert_eq!(r.errors[0].message, "required");
    }
}
