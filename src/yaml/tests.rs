//! The YAML reader's limits and the schema it reads.

use super::*;
use serde_json::json;

#[test]
fn reads_multi_document_yaml_1_2_core() {
    let docs = documents("a: yes\nb: on\nc: 1\n---\n---\nd: [x, 2.5]\n").unwrap();
    assert_eq!(docs.len(), 2, "{docs:?}");
    assert_eq!(docs[0], json!({"a": "yes", "b": "on", "c": 1}));
    assert_eq!(docs[1], json!({"d": ["x", 2.5]}));
}

#[test]
fn aliases_within_limits_are_expanded() {
    let docs = documents("base: &b {x: 1}\ncopy: *b\n").unwrap();
    assert_eq!(docs[0], json!({"base": {"x": 1}, "copy": {"x": 1}}));
}

#[test]
fn non_finite_numbers_and_duplicate_keys_are_errors() {
    for text in ["w: .inf\n", "w: -.inf\n", "w: .nan\n", "a: 1\na: 2\n"] {
        let e = documents(text).unwrap_err();
        assert!(!e.message.is_empty(), "{text}");
    }
}

fn timed(text: &str) -> (Result<Vec<Value>, Error>, std::time::Duration) {
    let start = std::time::Instant::now();
    let result = documents(text);
    (result, start.elapsed())
}

#[test]
fn an_alias_bomb_of_a_long_string_is_refused_quickly() {
    let mut text = format!("a: &s \"{}\"\nb: [", "x".repeat(10_000));
    text.push_str(&vec!["*s"; 30_000].join(","));
    text.push_str("]\n");
    let (result, took) = timed(&text);
    let e = result.unwrap_err();
    assert!(e.message.contains("more than 1000 aliases"), "{e:?}");
    assert!(took.as_millis() < 1_000, "{took:?}");
}

#[test]
fn a_billion_laughs_is_refused() {
    let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 9].join(", ");
        text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    let e = documents(&text).unwrap_err();
    assert!(
        e.message.contains("limit") || e.message.contains("alias"),
        "{e:?}"
    );
}

#[test]
fn deep_nesting_is_refused_quickly() {
    for depth in [100, 100_000] {
        let flow = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let (result, took) = timed(&flow);
        assert!(result.is_err(), "flow depth {depth}");
        assert!(took.as_millis() < 1_000, "flow depth {depth}: {took:?}");
        let block: String = (0..depth.min(2_000))
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        let (result, took) = timed(&block);
        assert!(result.is_err(), "block depth {depth}");
        assert!(took.as_millis() < 1_000, "block depth {depth}: {took:?}");
    }
}

#[test]
fn too_many_documents_are_refused() {
    let text = "a: 1\n---\n".repeat(MAX_DOCUMENTS + 1);
    let e = documents(&text).unwrap_err();
    assert!(e.message.contains("document"), "{e:?}");
}

#[test]
fn an_error_names_its_document() {
    let e = documents("a: 1\n---\nb: 2\n---\nc: [\n").unwrap_err();
    assert_eq!(e.document, Some(3), "{e:?}");
    let e = documents("---\na: 1\n---\nb: {\n").unwrap_err();
    assert_eq!(e.document, Some(2), "{e:?}");
}

#[test]
fn few_aliases_of_a_huge_string_are_refused() {
    let mut text = format!("a: &s \"{}\"\nb: [", "x".repeat(1_000_000));
    text.push_str(&vec!["*s"; 50].join(","));
    text.push_str("]\n");
    let (result, took) = timed(&text);
    let e = result.unwrap_err();
    assert!(e.message.contains("alias"), "{e:?}");
    assert!(took.as_millis() < 1_000, "{took:?}");
}

#[test]
fn non_finite_numbers_name_their_field() {
    let text = "a: 1\n---\nspec:\n  http:\n  - route:\n    - weight: .nan\n";
    let e = documents(text).unwrap_err();
    assert!(
        e.message
            .contains("spec.http[0].route[0].weight: not a finite number"),
        "{e:?}"
    );
    assert_eq!(e.document, Some(2));
}
