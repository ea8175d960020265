//! Python-dict literals in lookup replies.
//!
//! Glance's agent script rewrites every top-level string value of a `lookupvisitor` reply that
//! starts with `{'`: it replaces every `'` with `"` and JSON-parses the result; when that fails it
//! keeps the string. (The service apparently stores nested presence values as Python `str(dict)`.)
//! These functions do exactly that, no more: `True`/`None` or quotes inside values make the parse
//! fail and the string is kept, as in Glance's client.

use serde_json::{Map, Value};

/// Parses a Python-dict literal the way Glance's agent script does.
///
/// Returns `None` when `text` does not start with `{'` or when the text, with every `'` replaced
/// by `"`, is not valid JSON.
///
/// ```
/// use glance_presence_protocol::rest::parse_python_dict;
/// use serde_json::json;
/// assert_eq!(parse_python_dict("{'a': 'b', 'n': 1}"), Some(json!({"a": "b", "n": 1})));
/// assert_eq!(parse_python_dict("{'a': True}"), None);
/// assert_eq!(parse_python_dict("plain"), None);
/// ```
pub fn parse_python_dict(text: &str) -> Option<Value> {
    if !text.starts_with("{'") {
        return None;
    }
    serde_json::from_str(&text.replace('\'', "\"")).ok()
}

/// Replaces, in place, every top-level string value of `map` that [`parse_python_dict`] can
/// parse with the parsed value. Other values are left alone.
pub fn convert_python_dict_fields(map: &mut Map<String, Value>) {
    for value in map.values_mut() {
        if let Value::String(text) = value {
            if let Some(parsed) = parse_python_dict(text) {
                *value = parsed;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_like_glances_client() {
        assert_eq!(
            parse_python_dict("{'a': 'b'}"),
            Some(json!({"a": "b"})),
            "the example of the facts file"
        );
        assert_eq!(
            parse_python_dict("{'nested': {'x': [1, 2.5, 'y']}}"),
            Some(json!({"nested": {"x": [1, 2.5, "y"]}}))
        );
        assert_eq!(parse_python_dict("{'a': 'b'}  "), Some(json!({"a": "b"})));
        // Not starting with `{'`: left alone, even when it is JSON.
        assert_eq!(parse_python_dict("{\"a\": \"b\"}"), None);
        assert_eq!(parse_python_dict(" {'a': 'b'}"), None);
        assert_eq!(parse_python_dict("{}"), None);
        // Python spellings and apostrophes inside values break the naive swap, as in JS.
        assert_eq!(parse_python_dict("{'a': None}"), None);
        assert_eq!(parse_python_dict("{'a': False}"), None);
        assert_eq!(parse_python_dict("{'name': 'O'Brien'}"), None);
        assert_eq!(parse_python_dict("{'a': 'b'} trailing"), None);
        assert_eq!(parse_python_dict("{'"), None);
        assert_eq!(parse_python_dict(""), None);
    }

    #[test]
    fn rewrites_only_top_level_strings() {
        let mut map = json!({
            "url": "https://example.com/",
            "cart": "{'items': 2, 'total': '9.90'}",
            "broken": "{'a': True}",
            "n": 3,
            "nested": {"inner": "{'x': 'y'}"}
        });
        let Value::Object(map_ref) = &mut map else {
            unreachable!()
        };
        convert_python_dict_fields(map_ref);
        assert_eq!(
            map,
            json!({
                "url": "https://example.com/",
                "cart": {"items": 2, "total": "9.90"},
                "broken": "{'a': True}",
                "n": 3,
                "nested": {"inner": "{'x': 'y'}"}
            })
        );
    }
}
