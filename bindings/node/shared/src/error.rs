//! Engine errors as JSON for the JS `TokenError`, and the list of every kind.
//!
//! `ErrorKind` is `#[non_exhaustive]`, so this crate cannot `match` it without a
//! catch-all arm. Exhaustiveness is kept instead by `ErrorKind::ALL`: the JS
//! side's kind table is tested against [`error_kinds`], which lists every kind.

use serde_json::{json, Value};
use tokenwell::{ConfigError, ErrorKind, TokenError};

use crate::json::camel_keys;

/// A `TokenError` as camelCase JSON, with its one-line message.
pub fn token_error_json(error: &TokenError) -> Value {
    let mut value = serde_json::to_value(error).unwrap_or_else(|_| json!({"kind": error.kind.as_str()}));
    if let Value::Object(map) = &mut value {
        map.insert("message".to_owned(), Value::String(error.to_string()));
    }
    camel_keys(value)
}

/// A configuration error as a `config`-kind `TokenError`, naming `field` (already
/// renamed for the caller: camelCase option or environment variable).
pub fn config_error_json(error: &ConfigError, field: &str) -> Value {
    let engine = TokenError::new(ErrorKind::Config, format!("{field}: {}", error.problem));
    let mut value = token_error_json(&engine);
    if let Value::Object(map) = &mut value {
        map.insert("field".to_owned(), Value::String(field.to_owned()));
        map.insert("problem".to_owned(), Value::String(error.problem.clone()));
    }
    value
}

/// Every engine error kind with its fault and whether the engine retries it,
/// as JSON: `[{"kind":"config","fault":"configuration","retryable":false}, ...]`.
pub fn error_kinds() -> String {
    let kinds: Vec<Value> = ErrorKind::ALL
        .iter()
        .map(|kind| json!({"kind": kind.as_str(), "fault": kind.fault(), "retryable": kind.is_retryable()}))
        .collect();
    Value::Array(kinds).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once() {
        let kinds: Vec<Value> = serde_json::from_str(&error_kinds()).unwrap();
        assert_eq!(kinds.len(), ErrorKind::ALL.len());
        let names: std::collections::HashSet<_> = kinds.iter().map(|k| k["kind"].as_str().unwrap()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn error_json_is_camel_case_with_message() {
        let mut error = TokenError::new(ErrorKind::ServerError, "HTTP 503").with_status(503);
        error.retry_at = Some(1_700_000_000_000);
        let v = token_error_json(&error);
        assert_eq!(v["kind"], "server_error");
        assert_eq!(v["fault"], "authorization_server");
        assert_eq!(v["retryAt"], 1_700_000_000_000u64);
        assert_eq!(v["oauthError"], Value::Null);
        assert!(v["message"].as_str().unwrap().contains("HTTP 503"));
    }

    #[test]
    fn config_error_names_the_renamed_field() {
        let v = config_error_json(&ConfigError::new("token_url", "is required"), "tokenUrl");
        assert_eq!(v["kind"], "config");
        assert_eq!(v["field"], "tokenUrl");
        assert_eq!(v["retryable"], false);
        assert!(v["message"].as_str().unwrap().contains("tokenUrl: is required"));
    }
}
