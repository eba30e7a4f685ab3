//! The one YAML reader: untrusted text to JSON values with limits on documents, depth,
//! nodes, aliases and the bytes aliases replay, so a small body cannot cost much.
//!
//! YAML here is read as YAML 1.2's core schema (`yes`, `on` stay strings, as they were
//! with `serde_yaml`), duplicate keys are errors, and `.inf` / `.nan` are rejected naming
//! their field (JSON has no such numbers; they would silently become `null`). Every limit
//! is far above what a Kubernetes manifest needs; a breach names the limit. The parser is
//! `serde-saphyr` (pure Rust, no `unsafe-libyaml`), linear in its input.

use serde_json::Value;
use serde_saphyr::options::{DuplicateKeyPolicy, NonFiniteFloatPolicy};
use serde_saphyr::{alias_limits, budget, options, Options};

/// Documents in one text (a `---` storm). Far above real sets (1,000 services are
/// 2,000+ documents), yet bounded: the body limit bounds the text, this the work.
pub const MAX_DOCUMENTS: usize = 10_000;
/// Nesting of mappings and sequences.
pub const MAX_DEPTH: usize = 64;
/// Mappings, sequences and scalars, aliases replayed included (a 4 MiB body holds a
/// few million at most; aliases are bounded on their own below).
pub const MAX_NODES: usize = 8_000_000;
/// Parser events in all (about two per node).
const MAX_EVENTS: usize = 16_000_000;
/// `*alias` references.
pub const MAX_ALIASES: usize = 1_000;
/// Events replayed from aliases in all (what an alias bomb multiplies).
pub const MAX_REPLAYED_EVENTS: usize = 100_000;
/// Bytes of scalar text, aliases replayed included.
pub const MAX_SCALAR_BYTES: usize = 16 * 1024 * 1024;

/// A text that is not YAML, or breaks a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The 1-based document the error is in, where it can be told.
    pub document: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every non-empty document in `text`, in order.
pub fn documents(text: &str) -> Result<Vec<Value>, Error> {
    let docs = serde_saphyr::from_multiple_with_options::<value::Document>(text, reader_options())
        .map_err(|e| Error {
            document: e.location().map(|at| document_at(text, at.line() as usize)),
            message: describe(&e),
        })?;
    Ok(docs.into_iter().map(|d| d.0).collect())
}

/// One value from `text` (a single document), for files coalmine writes itself.
pub fn value(text: &str) -> Result<Value, Error> {
    let mut docs = documents(text)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => Ok(Value::Null),
        n => Err(Error {
            document: Some(2),
            message: format!("expected one YAML document, found {n}"),
        }),
    }
}

fn reader_options() -> Options {
    options! {
        budget: budget! {
            max_documents: MAX_DOCUMENTS,
            max_events: MAX_EVENTS,
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_aliases: MAX_ALIASES,
            max_total_scalar_bytes: MAX_SCALAR_BYTES,
        },
        alias_limits: alias_limits! {
            max_total_replayed_events: MAX_REPLAYED_EVENTS,
        },
        duplicate_keys: DuplicateKeyPolicy::Error,
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
        strict_booleans: true,
        with_snippet: false,
    }
}

/// The 1-based document that 1-based `line` is in: one more than the `---` lines above.
fn document_at(text: &str, line: usize) -> usize {
    let separators = text
        .lines()
        .take(line.saturating_sub(1))
        .filter(|l| l.starts_with("---"))
        .count();
    let leading = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .is_some_and(|l| l.starts_with("---"));
    (separators + 1 - usize::from(leading && separators > 0)).max(1)
}

/// The parser's message, a breached limit said in words with the limit's value.
fn describe(error: &serde_saphyr::Error) -> String {
    let mut inner = error.without_snippet();
    while let serde_saphyr::Error::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    let serde_saphyr::Error::Budget { breach, location } = inner else {
        return error.to_string().trim().to_string();
    };
    use serde_saphyr::budget::BudgetBreach as B;
    let what = match breach {
        B::Documents { .. } => format!("more than {MAX_DOCUMENTS} documents"),
        B::Depth { .. } => format!("nested deeper than {MAX_DEPTH} levels"),
        B::Nodes { .. } => format!("more than {MAX_NODES} values (aliases expanded)"),
        B::Aliases { .. } => format!("more than {MAX_ALIASES} aliases"),
        B::ScalarBytes { .. } => {
            format!("more than {MAX_SCALAR_BYTES} bytes of text (aliases expanded)")
        }
        B::AliasAnchorRatio { .. } => "far more aliases than anchors (an alias bomb)".into(),
        other => format!("{other:?}"),
    };
    format!("YAML limit exceeded at line {}: {what}", location.line())
}

#[cfg(test)]
mod tests;
mod value;
