//! # tokenwell-js: the JSON boundary of tokenwell's JavaScript bindings
//!
//! The npm package `tokenwell` drives the engine through one internal
//! interface, served by two bindings: a napi-rs native module
//! (`bindings/node`) and a wasm-bindgen module (`bindings/wasm`, for edge
//! runtimes and as the fallback where no native binary loads). Both are a few
//! attributes over this crate, so the two cannot drift apart: every
//! conversion (camelCase JSON options in, environment variables in, the
//! engine's results out as camelCase JSON text) is written once, here.
//!
//! Like the engine, it performs no I/O, reads no clock and draws no
//! randomness. It never panics on host input: a malformed argument is an
//! [`ArgError`] value, which each binding turns into a JS exception (napi) or
//! a thrown `Error` (wasm-bindgen, where a panic would abort the module).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod config;
mod error;
mod json;

use serde_json::{json, Value};
use tokenwell::{ClientSecret, Config, FetchId, Poll, TokenCache, TransportErrorKind};

pub use error::{config_error_json, error_kinds, token_error_json};
pub use json::{camel_case, camel_keys, snake_case};

use config::{config_from_env, config_from_options, parse_env, secret_file_from_env};

/// Largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A host argument that cannot be used (a negative time, headers that are not
/// pairs). Its message names the argument and never echoes its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    /// `"now must be a finite, non-negative number"`.
    pub message: String,
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArgError {}

fn invalid_arg(name: &str, problem: &str) -> ArgError {
    ArgError { message: format!("{name} {problem}") }
}

/// A JS number that must be a non-negative integer-valued instant or id.
pub fn whole_number(name: &str, value: f64) -> Result<u64, ArgError> {
    if value.is_finite() && (0.0..=MAX_SAFE_INTEGER).contains(&value) {
        Ok(value.floor() as u64)
    } else {
        Err(invalid_arg(name, "must be a finite, non-negative number"))
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    camel_keys(serde_json::to_value(value).unwrap_or(Value::Null))
}

fn poll_json(poll: Poll) -> Value {
    match poll {
        Poll::Ready { token } => json!({"result": "ready", "token": to_json(&token)}),
        Poll::ReadyAndSend { token, request } => {
            json!({"result": "ready_and_send", "token": to_json(&token), "request": to_json(&request)})
        }
        Poll::Send { request } => json!({"result": "send", "request": to_json(&request)}),
        Poll::Wait { fetch_id } => json!({"result": "wait", "fetchId": fetch_id.0}),
        Poll::Fail { error } => json!({"result": "fail", "error": token_error_json(&error)}),
    }
}

fn replaced_json(outcome: Result<bool, tokenwell::ConfigError>) -> String {
    match outcome {
        Ok(changed) => json!({"result": "replaced", "changed": changed}),
        Err(error) => {
            let field = camel_case(&error.field);
            json!({"result": "error", "error": config_error_json(&error, &field)})
        }
    }
    .to_string()
}

/// A cache from JS options (JSON text, camelCase keys) and, for
/// `clientSecretFile`, the file's contents as read by the host. `Err` is a
/// `config` error as JSON text, naming the option.
pub fn create_token_cache(
    options_json: &str,
    entropy: u64,
    secret_file_contents: Option<&str>,
) -> Result<JsonCache, String> {
    match config_from_options(options_json, secret_file_contents) {
        Ok(config) => Ok(JsonCache::new(config, entropy)),
        Err((error, field)) => Err(config_error_json(&error, &field).to_string()),
    }
}

/// The secret file the environment names, as JSON: `{"path": ..., "variable": ...}`,
/// `null`, or `{"error": E}` when the environment is incomplete.
pub fn secret_file_from_environment(prefix: &str, env_json: &str) -> String {
    let outcome = parse_env(env_json).and_then(|env| secret_file_from_env(prefix, &env));
    match outcome {
        Ok(Some((path, variable))) => json!({"path": path, "variable": variable}),
        Ok(None) => Value::Null,
        Err(error) => {
            let field = error.field.clone();
            json!({"error": config_error_json(&error, &field)})
        }
    }
    .to_string()
}

/// A cache from environment variables (the engine's `options_from_env`), with
/// `overrides_json` for options the environment does not carry and the
/// contents of the secret file it names. `Err` is a `config` error as JSON
/// text, naming the variable.
pub fn create_token_cache_from_environment(
    prefix: &str,
    env_json: &str,
    overrides_json: &str,
    entropy: u64,
    secret_file_contents: Option<&str>,
) -> Result<JsonCache, String> {
    let env = match parse_env(env_json) {
        Ok(env) => env,
        Err(error) => return Err(config_error_json(&error, "env").to_string()),
    };
    match config_from_env(prefix, &env, overrides_json, secret_file_contents) {
        Ok(config) => Ok(JsonCache::new(config, entropy)),
        Err((error, field)) => Err(config_error_json(&error, &field).to_string()),
    }
}

/// The engine's token cache for one client, with JS numbers and JSON text at
/// its edges. One method per engine call; drive it as documented on the
/// engine's `TokenCache`: `poll`, send what it asks, report with
/// `handle_response` / `handle_transport_error`, poll again.
pub struct JsonCache {
    inner: TokenCache,
}

impl JsonCache {
    fn new(config: Config, entropy: u64) -> Self {
        Self { inner: TokenCache::new(config, entropy) }
    }

    /// `poll(now)`: what the host should do now.
    pub fn poll(&mut self, now: f64) -> Result<String, ArgError> {
        let now = whole_number("now", now)?;
        Ok(poll_json(self.inner.poll(now)).to_string())
    }

    /// `handle_response`: `headers_json` is a JSON list of `[name, value]` pairs.
    pub fn handle_response(
        &mut self,
        fetch_id: f64,
        status: u32,
        headers_json: &str,
        body: &[u8],
        now: f64,
    ) -> Result<String, ArgError> {
        let fetch_id = FetchId(whole_number("fetchId", fetch_id)?);
        let now = whole_number("now", now)?;
        let status = u16::try_from(status).map_err(|_| invalid_arg("status", "must be an HTTP status code"))?;
        let headers: Vec<(String, String)> = serde_json::from_str(headers_json)
            .map_err(|_| invalid_arg("headers", "must be a list of [name, value] string pairs"))?;
        Ok(match self.inner.handle_response(fetch_id, status, &headers, body, now) {
            Ok(token) => json!({"result": "token", "token": to_json(&token)}),
            Err(error) => json!({"result": "error", "error": token_error_json(&error)}),
        }
        .to_string())
    }

    /// `handle_transport_error`: `kind` is `timeout`, `connect`, `io`, `tls` or `other`.
    pub fn handle_transport_error(
        &mut self,
        fetch_id: f64,
        kind: &str,
        message: &str,
        now: f64,
    ) -> Result<String, ArgError> {
        let fetch_id = FetchId(whole_number("fetchId", fetch_id)?);
        let now = whole_number("now", now)?;
        let kind: TransportErrorKind = serde_json::from_value(Value::String(kind.to_owned()))
            .map_err(|_| invalid_arg("kind", "must be \"timeout\", \"connect\", \"io\", \"tls\" or \"other\""))?;
        let error = self.inner.handle_transport_error(fetch_id, kind, message, now);
        Ok(json!({"result": "error", "error": token_error_json(&error)}).to_string())
    }

    /// `next_wakeup()`: when to poll again even if no caller asks (ms), or none.
    pub fn next_wakeup(&self) -> Option<f64> {
        self.inner.next_wakeup().map(|at| at as f64)
    }

    /// `invalidate(token, now)`: `"invalidated"`, `"not_current"` or `"rate_limited"`.
    pub fn invalidate(&mut self, access_token: &str, now: f64) -> Result<String, ArgError> {
        let now = whole_number("now", now)?;
        let outcome = self.inner.invalidate(access_token, now);
        Ok(serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
    }

    /// `replace_secrets` with a JSON list of secrets (current first).
    pub fn replace_secrets(&mut self, secrets_json: &str, now: f64) -> Result<String, ArgError> {
        let now = whole_number("now", now)?;
        let secrets: Vec<String> =
            serde_json::from_str(secrets_json).map_err(|_| invalid_arg("secrets", "must be a list of strings"))?;
        Ok(replaced_json(self.inner.replace_secrets(secrets.into_iter().map(ClientSecret::from).collect(), now)))
    }

    /// `replace_secrets` with the contents of a secret file (parsed by the
    /// engine's `parse_secret_file`); `field` names the file in errors.
    pub fn replace_secrets_from_file(&mut self, contents: &str, field: &str, now: f64) -> Result<String, ArgError> {
        let now = whole_number("now", now)?;
        let outcome = match tokenwell::parse_secret_file(contents, field) {
            Ok(secrets) => self.inner.replace_secrets(secrets, now),
            Err(error) => Err(error),
        };
        Ok(match outcome {
            Ok(changed) => json!({"result": "replaced", "changed": changed}).to_string(),
            // Errors about the file name the file's field as given (an env variable or `clientSecretFile`).
            Err(error) => json!({"result": "error", "error": config_error_json(&error, field)}).to_string(),
        })
    }

    /// Drains the event queue: a JSON list of events, oldest first.
    pub fn drain_events(&mut self) -> String {
        let mut events = Vec::new();
        while let Some(event) = self.inner.poll_event() {
            events.push(to_json(&event));
        }
        Value::Array(events).to_string()
    }

    /// `export_snapshot(now)`: the snapshot JSON text, or none.
    pub fn export_snapshot(&self, now: f64) -> Result<Option<String>, ArgError> {
        let now = whole_number("now", now)?;
        Ok(self.inner.export_snapshot(now))
    }

    /// `import_snapshot(text, now)`: none when imported, else the refusal's reason.
    pub fn import_snapshot(&mut self, snapshot: &str, now: f64) -> Result<Option<String>, ArgError> {
        let now = whole_number("now", now)?;
        Ok(self.inner.import_snapshot(snapshot, now).err().map(|e| e.reason().to_owned()))
    }

    /// The engine's state: `idle`, `fetching`, `backing_off` or `held`.
    pub fn state(&self) -> String {
        serde_json::to_value(self.inner.state()).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// The id of the fetch in flight, if any.
    pub fn in_flight(&self) -> Option<f64> {
        self.inner.in_flight().map(|id| id.0 as f64)
    }

    /// The configuration without its secrets, as JSON (for inspection and transport limits).
    pub fn describe(&self) -> String {
        let config = self.inner.config();
        let policy = config.policy();
        json!({
            "tokenUrl": config.token_url(),
            "clientId": config.client_id(),
            "authMethod": config.auth_method().as_str(),
            "scope": config.scopes(),
            "audience": config.audiences(),
            "secretCount": config.secret_count(),
            "maxResponseBytes": policy.max_response_bytes,
            "requestTimeoutMs": policy.request_timeout_ms,
            "refreshMarginMs": policy.refresh_margin_ms,
        })
        .to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_refuse_what_a_u64_cannot_hold() {
        assert_eq!(whole_number("now", 1_700_000_000_000.0).unwrap(), 1_700_000_000_000);
        assert_eq!(whole_number("now", 1.9).unwrap(), 1);
        for bad in [f64::NAN, f64::INFINITY, -1.0, 1e300] {
            assert!(whole_number("now", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn poll_is_camel_case() {
        let options = r#"{"tokenUrl":"https://a.example/t","clientId":"c","clientSecret":"s"}"#;
        let mut cache = create_token_cache(options, 1, None).ok().unwrap();
        let v: Value = serde_json::from_str(&cache.poll(1_700_000_000_000.0).unwrap()).unwrap();
        assert_eq!(v["result"], "send");
        assert_eq!(v["request"]["fetchId"], 1);
        assert_eq!(v["request"]["timeoutMs"], 10_000);
        let v: Value = serde_json::from_str(&cache.poll(1_700_000_000_001.0).unwrap()).unwrap();
        assert_eq!(v, json!({"result": "wait", "fetchId": 1}));
    }

    #[test]
    fn bad_arguments_are_values_that_never_echo_the_input() {
        let options = r#"{"tokenUrl":"https://a.example/t","clientId":"c","clientSecret":"s"}"#;
        let mut cache = create_token_cache(options, 1, None).ok().unwrap();
        assert!(cache.poll(-1.0).is_err());
        let error = cache.handle_response(1.0, 200, "hunter2", b"", 0.0).unwrap_err();
        assert!(!error.message.contains("hunter2"), "{error}");
        assert!(cache.handle_response(1.0, 70_000, "[]", b"", 0.0).is_err());
        let error = cache.handle_transport_error(1.0, "hunter2", "", 0.0).unwrap_err();
        assert!(!error.message.contains("hunter2"), "{error}");
        assert!(cache.replace_secrets("{", 0.0).is_err());
        let refused = create_token_cache("{", 0, None).err().unwrap();
        assert_eq!(serde_json::from_str::<Value>(&refused).unwrap()["field"], "options");
    }
}
