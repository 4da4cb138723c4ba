//! Key-case conversion between the engine's `snake_case` JSON and JavaScript's camelCase.

use serde_json::{Map, Value};

/// `token_url` → `tokenUrl`; `client_secret[1]` → `clientSecret[1]`.
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `tokenUrl` → `token_url`. Already `snake_case` names are left as they are.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Renames every object key (recursively) to camelCase. The engine's outputs
/// hold no maps with caller-chosen keys (headers are lists of pairs), so every
/// key is a field name.
pub fn camel_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (camel_case(&k), camel_keys(v))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn case_conversion_round_trips() {
        for (snake, camel) in [
            ("token_url", "tokenUrl"),
            ("client_secret[1]", "clientSecret[1]"),
            ("refresh_ahead_jitter", "refreshAheadJitter"),
            ("colour", "colour"),
            ("options", "options"),
        ] {
            assert_eq!(camel_case(snake), camel);
            assert_eq!(snake_case(camel), snake);
            assert_eq!(snake_case(snake), snake);
        }
    }

    #[test]
    fn keys_are_renamed_recursively_but_values_are_not() {
        let v = camel_keys(json!({"fetch_id": 1, "headers": [["content_type", "a_b"]], "error": {"retry_at": null}}));
        assert_eq!(v, json!({"fetchId": 1, "headers": [["content_type", "a_b"]], "error": {"retryAt": null}}));
    }
}
