//! YAML that YAML 1.1 readers read back as written: Envoy reads its bootstrap with
//! yaml-cpp, where `yes`, `no`, `on`, `off`, `y`, `n` (any case), `~`, `0755` or `1:20`
//! are booleans, nulls and numbers, not the strings they are in YAML 1.2. Every string
//! scalar that is not plainly a word is written double-quoted, so `canary: "yes"` stays
//! the string `yes`.

use serde_json::Value;

/// `value` as a YAML document (block style, two-space indent, a trailing newline).
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_list(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (key, value) in map {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(key));
        out.push(':');
        match value {
            // A list under a key at the key's own indent, as kubectl writes them.
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_list(out, items, indent);
            }
            _ => write_nested(out, value, indent),
        }
    }
}

fn write_list(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first key on the dash's line, the rest aligned under it.
                let mut first = String::new();
                write_map(&mut first, map, indent + 2);
                out.push(' ');
                out.push_str(&first[indent + 2..]);
            }
            _ => write_nested(out, item, indent),
        }
    }
}

/// What follows `key:` or `-`: a scalar on the same line, or a nested block.
fn write_nested(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_list(out, items, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string as a plain scalar when no YAML reader can take it for anything else,
/// else double-quoted (JSON escapes are valid YAML double-quoted escapes).
fn string(s: &str) -> String {
    if is_plain_word(s) {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

/// Letters first, then letters, digits, `_`, `.`, `/` and `-`; and not one of YAML
/// 1.1's booleans or nulls.
fn is_plain_word(s: &str) -> bool {
    const RESERVED: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
    ];
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    first_ok
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_yaml_1_1_reads_as_other_types_are_quoted() {
        for word in [
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "true",
            "False",
            "null",
            "~",
            "",
            "0755",
            "1:20",
            "1e3",
            ".5",
            ".inf",
            "2001-12-14",
            "0x1F",
            "-1",
            "+1",
            "127.0.0.1",
        ] {
            let yaml = to_string(&json!({ "v": word }));
            assert_eq!(
                yaml,
                format!("v: {}\n", Value::String(word.into())),
                "{word}"
            );
        }
        assert_eq!(
            to_string(&json!({"v": "web-v1.example/x_y"})),
            "v: web-v1.example/x_y\n"
        );
    }

    #[test]
    fn every_value_reads_back_as_written() {
        let value = json!({
            "node": {"id": "yes", "metadata": {"labels": {"canary": "no", "on": "a: b # c\n- 'd\""}}},
            "list": [{"a": 1, "b": [true, null, 2.5]}, "off", [], {}],
            "empty": {},
        });
        let yaml = to_string(&value);
        let back: Value = crate::yaml::value(&yaml).expect("valid YAML");
        assert_eq!(back, value, "{yaml}");
    }
}
