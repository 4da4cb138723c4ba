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
use tokenwell::{
    CacheFileProblem, ClientSecret, Config, FetchId, FileStamp, InvalidateOutcome, PollResult, SecretFileWatch,
    TokenCache, TokenError, TransportErrorKind,
};

pub use error::{config_error_json, error_kinds, token_error_json};
pub use json::{camel_case, camel_keys, snake_case};

pub use config::EnvRequest;

use config::{config_from_options, js_field, merged_env};

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

fn poll_json(poll: PollResult) -> Value {
    match poll {
        PollResult::Ready { token } => json!({"result": "ready", "token": to_json(&token)}),
        PollResult::ReadyAndSend { token, request } => {
            json!({"result": "ready_and_send", "token": to_json(&token), "request": to_json(&request)})
        }
        PollResult::Send { request } => json!({"result": "send", "request": to_json(&request)}),
        PollResult::Wait { fetch_id } => json!({"result": "wait", "fetchId": fetch_id.0}),
        PollResult::Fail { error } => json!({"result": "fail", "error": token_error_json(&error)}),
    }
}

fn replaced_json(outcome: Result<bool, tokenwell::ConfigError>) -> String {
    match outcome {
        Ok(changed) => json!({"result": "replaced", "changed": changed}),
        Err(error) => json!({"result": "error", "error": config_error_json(&error, &js_field(&error.field))}),
    }
    .to_string()
}

fn config_error_text(error: &tokenwell::ConfigError) -> String {
    config_error_json(error, &js_field(&error.field)).to_string()
}

/// A cache from JS options (JSON text, camelCase keys) and the contents of
/// the files the host read for them: `clientSecretFile` (secrets, one per
/// line) and `privateKeyFile` (PEM blocks or a JWK / JWKS, current first).
/// `Err` is a `config` error as JSON text, naming the option (a key file that
/// holds no key is named `privateKeyFile`, never quoted; `privateKey` with
/// `privateKeyFile` is refused).
pub fn create_token_cache(
    options_json: &str,
    entropy: u64,
    secret_file_contents: Option<&str>,
    key_file_contents: Option<&str>,
) -> Result<JsonCache, String> {
    match config_from_options(options_json, secret_file_contents, key_file_contents) {
        Ok(config) => Ok(JsonCache::new(config, entropy)),
        Err(error) => Err(config_error_text(&error)),
    }
}

/// Step one of `fromEnv` (the engine's host contract: `read_env`, then
/// `merge_env` with the explicit options winning field by field, then the
/// required-option check, which names every missing variable at once). As
/// JSON: what the host reads next,
/// `{"secretFile", "secretFileSource", "keyFile", "keyFileSource", "caFile", "caFileSource",
/// "sources": {option: variable}}`,
/// or `{"error": E}`.
pub fn env_plan(request: &EnvRequest<'_>) -> String {
    match merged_env(request) {
        Ok(merged) => {
            let sources: serde_json::Map<String, Value> =
                merged.sources.iter().map(|(option, var)| (camel_case(option), Value::String(var.clone()))).collect();
            let ca_source = sources.get("caFile").and_then(Value::as_str).unwrap_or("caFile").to_owned();
            json!({
                "secretFile": merged.secret_file,
                "secretFileSource": merged.secret_file_source.as_deref().map(js_field),
                "keyFile": merged.key_file,
                "keyFileSource": merged.key_file.as_ref().and(merged.key_file_source.as_deref()).map(js_field),
                "caFile": merged.ca_file,
                "caFileSource": merged.ca_file.as_ref().map(|_| ca_source),
                "sources": sources,
            })
        }
        Err(error) => json!({"error": config_error_json(&error, &js_field(&error.field))}),
    }
    .to_string()
}

/// Step two of `fromEnv`: the same merge, then `into_config_with_keys` with
/// the contents of the secret file and of the key file (`CLIENT_PRIVATE_KEY_FILE`)
/// [`env_plan`] named (read by the host). `Err`
/// is a `config` error as JSON text, naming the variable that supplied the
/// field (`SCOPE[1]`) or the explicit option (`audience[1]`).
pub fn create_token_cache_from_env(
    request: &EnvRequest<'_>,
    entropy: u64,
    secret_file_contents: Option<&str>,
    key_file_contents: Option<&str>,
) -> Result<JsonCache, String> {
    match merged_env(request).and_then(|merged| merged.into_config_with_keys(secret_file_contents, key_file_contents)) {
        Ok(config) => Ok(JsonCache::new(config, entropy)),
        Err(error) => Err(config_error_text(&error)),
    }
}

/// The engine's 401 rule (`InvalidateOutcome::retry_request`): whether an
/// authorized request that got 401 is sent once more after `invalidate`
/// answered `outcome` (`"invalidated"`, `"not_current"` or `"rate_limited"`).
pub fn retry_request(outcome: &str) -> Result<bool, ArgError> {
    let outcome: InvalidateOutcome = serde_json::from_value(Value::String(outcome.to_owned()))
        .map_err(|_| invalid_arg("outcome", "must be \"invalidated\", \"not_current\" or \"rate_limited\""))?;
    Ok(outcome.retry_request())
}

/// The error of a token asked for after the host closed its account, as
/// camelCase JSON (the engine's `TokenError::closed()`, kind `closed`).
pub fn closed_error() -> String {
    token_error_json(&TokenError::closed()).to_string()
}

/// How often (ms) a secret file is checked on the token path (`SecretFileWatch::CHECK_INTERVAL_MS`).
pub const SECRET_FILE_CHECK_INTERVAL_MS: f64 = SecretFileWatch::CHECK_INTERVAL_MS as f64;

/// A `stat` of a secret file as JSON, every number a decimal string (BigInt's
/// `toString()`): `{"device", "inode", "size", "modifiedNs", "changedNs"}`.
fn file_stamp(stamp_json: &str) -> Result<FileStamp, ArgError> {
    let bad = || invalid_arg("stamp", "must be {device, inode, size, modifiedNs, changedNs} as decimal strings");
    let value: Value = serde_json::from_str(stamp_json).map_err(|_| bad())?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).ok_or_else(bad);
    let unsigned = |name: &str| field(name).and_then(|s| s.parse::<u64>().map_err(|_| bad()));
    let signed = |name: &str| field(name).and_then(|s| s.parse::<i128>().map_err(|_| bad()));
    Ok(FileStamp {
        device: unsigned("device")?,
        inode: unsigned("inode")?,
        size: unsigned("size")?,
        modified_ns: signed("modifiedNs")?,
        changed_ns: signed("changedNs")?,
    })
}

/// The engine's one rule for noticing a changed secret file
/// (`SecretFileWatch`): `stat` the file when `due(now, forced)`; read it when
/// `changed(stamp, now)`; then `read(stamp)`; `failed(now)` when the `stat`
/// or the read failed.
#[derive(Debug, Default)]
pub struct JsonSecretFileWatch {
    inner: SecretFileWatch,
}

impl JsonSecretFileWatch {
    /// A watch that has read nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to `stat` the file now (`forced` after `invalid_client`).
    pub fn due(&self, now: f64, forced: bool) -> Result<bool, ArgError> {
        Ok(self.inner.due(whole_number("now", now)?, forced))
    }

    /// Records a check that found `stamp_json`; whether the file must be read.
    pub fn changed(&mut self, stamp_json: &str, now: f64) -> Result<bool, ArgError> {
        let stamp = file_stamp(stamp_json)?;
        Ok(self.inner.changed(stamp, whole_number("now", now)?))
    }

    /// Records a check that could not `stat` or read the file.
    pub fn failed(&mut self, now: f64) -> Result<(), ArgError> {
        self.inner.failed(whole_number("now", now)?);
        Ok(())
    }

    /// Records that the file with `stamp_json` was read (valid or not).
    pub fn read(&mut self, stamp_json: &str) -> Result<(), ArgError> {
        self.inner.read(file_stamp(stamp_json)?);
        Ok(())
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

    /// Mixes fresh host randomness into the engine's entropy pool (the `jti`
    /// of signed client assertions): at least 16 bytes from the platform's
    /// CSPRNG before every `poll` that may send (`TokenCache::add_entropy`).
    pub fn add_entropy(&mut self, bytes: &[u8]) {
        self.inner.add_entropy(bytes);
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

    /// The engine's one entry point for a secret file's contents
    /// (`replace_secrets_from_file`): a file without a valid secret keeps the
    /// current secrets and queues one `secret_file_rejected` event naming
    /// `source` (the variable or option that named the file).
    pub fn replace_secrets_from_file(&mut self, contents: &str, source: &str, now: f64) -> Result<String, ArgError> {
        let now = whole_number("now", now)?;
        Ok(match self.inner.replace_secrets_from_file(contents, source, now) {
            Ok(changed) => json!({"result": "replaced", "changed": changed}),
            Err(error) => json!({"result": "error", "error": config_error_json(&error, &js_field(&error.field))}),
        }
        .to_string())
    }

    /// The engine's one entry point for a key file's contents
    /// (`replace_keys_from_file`): a file without a valid key keeps the
    /// current keys and queues one `secret_file_rejected` event naming
    /// `source`; the error never quotes the file.
    pub fn replace_keys_from_file(&mut self, contents: &str, source: &str, now: f64) -> Result<String, ArgError> {
        let now = whole_number("now", now)?;
        Ok(replaced_json(self.inner.replace_keys_from_file(contents, source, now)))
    }

    /// The host could not `stat` or read the secret file named by `source`:
    /// the engine keeps the secrets and queues one `secret_file_rejected` event.
    pub fn report_secret_file_problem(&mut self, source: &str, problem: &str, now: f64) -> Result<(), ArgError> {
        let now = whole_number("now", now)?;
        self.inner.report_secret_file_problem(source, problem, now);
        Ok(())
    }

    /// The host could not use its cache file (`cachePath`) as it should
    /// (`problem`: `ignored`, `permissions_tightened`, `write_failed`,
    /// `lock_failed` or `lock_timeout`; `detail` a non-secret reason, error
    /// code or mode): the engine queues one `cache_file_problem` event.
    pub fn report_cache_file_problem(
        &mut self,
        path: &str,
        problem: &str,
        detail: &str,
        now: f64,
    ) -> Result<(), ArgError> {
        let now = whole_number("now", now)?;
        let problem = CacheFileProblem::parse(problem).ok_or_else(|| {
            invalid_arg(
                "problem",
                "must be one of ignored, permissions_tightened, write_failed, lock_failed, lock_timeout",
            )
        })?;
        self.inner.report_cache_file_problem(path, problem, detail, now);
        Ok(())
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
            "issuer": config.issuer(),
            "clientId": config.client_id(),
            "authMethod": self.inner.auth_method().as_str(),
            "tokenEndpoint": self.inner.token_endpoint(),
            "keyCount": config.key_count(),
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
        let mut cache = create_token_cache(options, 1, None, None).ok().unwrap();
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
        let mut cache = create_token_cache(options, 1, None, None).ok().unwrap();
        assert!(cache.poll(-1.0).is_err());
        let error = cache.handle_response(1.0, 200, "hunter2", b"", 0.0).unwrap_err();
        assert!(!error.message.contains("hunter2"), "{error}");
        assert!(cache.handle_response(1.0, 70_000, "[]", b"", 0.0).is_err());
        let error = cache.handle_transport_error(1.0, "hunter2", "", 0.0).unwrap_err();
        assert!(!error.message.contains("hunter2"), "{error}");
        assert!(cache.replace_secrets("{", 0.0).is_err());
        let refused = create_token_cache("{", 0, None, None).err().unwrap();
        assert_eq!(serde_json::from_str::<Value>(&refused).unwrap()["field"], "options");
    }

    #[test]
    fn the_401_rule_is_the_engines() {
        assert!(retry_request("invalidated").unwrap());
        assert!(retry_request("not_current").unwrap());
        assert!(!retry_request("rate_limited").unwrap());
        assert!(retry_request("hunter2").unwrap_err().message.find("hunter2").is_none());
    }

    #[test]
    fn env_plan_names_the_file_to_read_then_the_cache_takes_its_contents() {
        let env = r#"{"B_CLIENT_ID":"c","B_TOKEN_URL":"https://a/t","B_CLIENT_SECRET_FILE":"/run/s","TOKENWELL_CA_FILE":"/ca.pem"}"#;
        let request = EnvRequest {
            prefix: "B_",
            env_json: env,
            explicit_json: "{}",
            secret_file: None,
            ca_file: None,
            key_file: None,
        };
        let plan: Value = serde_json::from_str(&env_plan(&request)).unwrap();
        assert_eq!(plan["secretFile"], "/run/s");
        assert_eq!(plan["secretFileSource"], "B_CLIENT_SECRET_FILE");
        assert_eq!(plan["caFile"], "/ca.pem");
        assert_eq!(plan["caFileSource"], "TOKENWELL_CA_FILE");
        assert_eq!(plan["sources"]["clientId"], "B_CLIENT_ID");
        let refused = create_token_cache_from_env(&request, 0, Some("\n"), None).err().unwrap();
        assert_eq!(serde_json::from_str::<Value>(&refused).unwrap()["field"], "B_CLIENT_SECRET_FILE");
        let mut cache = create_token_cache_from_env(&request, 0, Some("new\nold"), None).ok().unwrap();
        let described: Value = serde_json::from_str(&cache.describe()).unwrap();
        assert_eq!(described["secretCount"], 2);
        let replaced: Value =
            serde_json::from_str(&cache.replace_secrets_from_file(" ", "B_CLIENT_SECRET_FILE", 5.0).unwrap()).unwrap();
        assert_eq!(replaced["error"]["field"], "B_CLIENT_SECRET_FILE");
        let events: Value = serde_json::from_str(&cache.drain_events()).unwrap();
        assert_eq!(events[0]["type"], "secret_file_rejected");
        assert_eq!(events[0]["source"], "B_CLIENT_SECRET_FILE");
        let missing = EnvRequest { env_json: "{}", ..request };
        let plan: Value = serde_json::from_str(&env_plan(&missing)).unwrap();
        assert_eq!(plan["error"]["field"], "B_CLIENT_ID");
    }

    #[test]
    fn the_key_file_goes_to_the_engine_and_entropy_moves_the_jti() {
        let jwk = r#"{"kty":"EC","kid":"k","alg":"ES256","crv":"P-256","x":"JBl3f8zV42oxeItWdNhm2w8w77DzobV_YB4ojuLq19s","y":"XeY68whjWFK_Y67vG3lenM-zoOiF2ycx4OEWRM2txKM","d":"hPRrz9rOMs19ufKslLQbpPn5xo6PUtRzkL0HCub8yO8"}"#;
        let env = r#"{"CLIENT_ID":"c","ISSUER_URL":"https://a.example","CLIENT_PRIVATE_KEY_FILE":"/k"}"#;
        let request = EnvRequest {
            prefix: "",
            env_json: env,
            explicit_json: "{}",
            secret_file: None,
            ca_file: None,
            key_file: None,
        };
        let plan: Value = serde_json::from_str(&env_plan(&request)).unwrap();
        assert_eq!(plan["keyFile"], "/k");
        assert_eq!(plan["keyFileSource"], "CLIENT_PRIVATE_KEY_FILE");
        let refused = create_token_cache_from_env(&request, 0, None, Some("hunter2")).err().unwrap();
        assert!(!refused.contains("hunter2"), "{refused}");
        assert_eq!(serde_json::from_str::<Value>(&refused).unwrap()["field"], "CLIENT_PRIVATE_KEY_FILE");
        let mut cache = create_token_cache_from_env(&request, 0, None, Some(jwk)).ok().unwrap();
        let described: Value = serde_json::from_str(&cache.describe()).unwrap();
        assert_eq!(
            (described["keyCount"].clone(), described["authMethod"].clone()),
            (json!(1), json!("private_key_jwt"))
        );
        assert_eq!(described["tokenEndpoint"], Value::Null);
        let poll: Value = serde_json::from_str(&cache.poll(0.0).unwrap()).unwrap();
        assert_eq!(poll["request"]["method"], "GET");
        let replaced: Value =
            serde_json::from_str(&cache.replace_keys_from_file("x", "CLIENT_PRIVATE_KEY_FILE", 1.0).unwrap()).unwrap();
        assert_eq!(replaced["error"]["field"], "CLIENT_PRIVATE_KEY_FILE");
        let jti = |entropy: Option<&[u8]>| {
            let options = format!(r#"{{"tokenUrl":"https://a.example/t","clientId":"c","privateKey":{}}}"#, json!(jwk));
            let mut cache = create_token_cache(&options, 7, None, None).ok().unwrap();
            if let Some(bytes) = entropy {
                cache.add_entropy(bytes);
            }
            let poll: Value = serde_json::from_str(&cache.poll(1_700_000_000_000.0).unwrap()).unwrap();
            poll["request"]["body"].as_str().unwrap().to_owned()
        };
        assert_eq!(jti(None), jti(None));
        assert_ne!(jti(None), jti(Some(&[1])));
    }

    #[test]
    fn the_secret_file_watch_is_the_engines_rule() {
        let stamp = |inode: u64| {
            format!(
                r#"{{"device":"1","inode":"{inode}","size":"5","modifiedNs":"1700000000000000000","changedNs":"-1"}}"#
            )
        };
        let mut watch = JsonSecretFileWatch::new();
        assert!(watch.due(0.0, false).unwrap());
        assert!(watch.changed(&stamp(7), 0.0).unwrap());
        watch.read(&stamp(7)).unwrap();
        assert!(!watch.due(999.0, false).unwrap());
        assert!(watch.due(999.0, true).unwrap());
        assert!(watch.due(SECRET_FILE_CHECK_INTERVAL_MS, false).unwrap());
        assert!(!watch.changed(&stamp(7), 1000.0).unwrap());
        assert!(watch.changed(&stamp(8), 2000.0).unwrap(), "a symlink swap is a new inode");
        assert!(watch.changed("{}", 0.0).is_err());
        watch.failed(3000.0).unwrap();
        assert!(!watch.due(3500.0, false).unwrap());
    }
}
