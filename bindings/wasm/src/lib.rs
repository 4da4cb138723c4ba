//! # tokenwell-wasm: the engine for JavaScript runtimes without native addons
//!
//! A wasm-bindgen binding of the sans-IO engine, for the npm package
//! `tokenwell`: Cloudflare Workers (workerd), Vercel Edge, Deno, browsers, and
//! Node or Bun where no prebuilt native module loads (or with
//! `TOKENWELL_BACKEND=wasm`). It exports exactly the internal interface of the
//! napi-rs module (`bindings/node`), with the same names, so the package's JS
//! layer (`lib/`), its cache-hit fast path included, is shared by both.
//!
//! Both are thin wrappers over `tokenwell-js`, which holds every conversion;
//! this file only maps argument errors to thrown JS `Error`s. No decision is
//! made here, no clock is read, no I/O is done.
//!
//! A panic in wasm aborts the module (there is no `catch_unwind` on
//! `wasm32-unknown-unknown`), so every entry point returns its errors as
//! values and nothing here unwraps host input; `tokenwell-js` denies
//! `unwrap`, `expect`, `panic!` and slice indexing outright.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use tokenwell_js::{whole_number, ArgError, EnvRequest, JsonCache, JsonSecretFileWatch};
use wasm_bindgen::prelude::*;

fn arg_error(error: ArgError) -> JsError {
    JsError::new(&error.message)
}

/// Jitter entropy: a JS number (integer) or a BigInt (reduced to 64 bits by
/// the caller), `undefined` for none.
fn entropy_bits(entropy: &JsValue) -> Result<u64, JsError> {
    if entropy.is_undefined() || entropy.is_null() {
        return Ok(0);
    }
    if let Some(number) = entropy.as_f64() {
        return whole_number("entropy", number).map_err(arg_error);
    }
    if entropy.is_bigint() {
        return u64::try_from(entropy.clone()).map_err(|_| JsError::new("entropy must fit in 64 bits"));
    }
    Err(JsError::new("entropy must be a non-negative integer or a bigint"))
}

fn created(outcome: Result<JsonCache, String>) -> JsValue {
    match outcome {
        Ok(inner) => JsValue::from(WasmTokenCache { inner }),
        Err(config_error_json) => JsValue::from(config_error_json),
    }
}

/// The engine's token cache for one client (the JS class `TokenCache` in
/// `lib/token-cache.js` wraps it and is the public API).
#[wasm_bindgen]
pub struct WasmTokenCache {
    inner: JsonCache,
}

/// A cache from JS options (JSON text, camelCase keys) and the contents of
/// the files the host read for them (`clientSecretFile`, `privateKeyFile`).
/// Returns the cache, or a `config` error as JSON text naming the option.
#[wasm_bindgen(js_name = createTokenCache)]
pub fn create_token_cache(
    options_json: &str,
    entropy: JsValue,
    secret_file_contents: Option<String>,
    key_file_contents: Option<String>,
) -> Result<JsValue, JsError> {
    let entropy = entropy_bits(&entropy)?;
    Ok(created(tokenwell_js::create_token_cache(
        options_json,
        entropy,
        secret_file_contents.as_deref(),
        key_file_contents.as_deref(),
    )))
}

/// Step one of `fromEnv` (the engine's `read_env` → `merge_env` → required
/// check): JSON naming what the host reads next, or `{"error": E}`;
/// `key_file` is the explicit `privateKeyFile`.
#[wasm_bindgen(js_name = envPlan)]
pub fn env_plan(
    prefix: &str,
    env_json: &str,
    explicit_json: &str,
    secret_file: Option<String>,
    ca_file: Option<String>,
    key_file: Option<String>,
) -> String {
    tokenwell_js::env_plan(&EnvRequest {
        prefix,
        env_json,
        explicit_json,
        secret_file: secret_file.as_deref(),
        ca_file: ca_file.as_deref(),
        key_file: key_file.as_deref(),
    })
}

/// Step two of `fromEnv`: the cache from the same arguments and the secret
/// file's and key file's contents, or a `config` error as JSON text naming the variable.
#[wasm_bindgen(js_name = createTokenCacheFromEnv)]
#[allow(clippy::too_many_arguments)] // one per `fromEnv` input, as the JS layer passes them
pub fn create_token_cache_from_env(
    prefix: &str,
    env_json: &str,
    explicit_json: &str,
    secret_file: Option<String>,
    ca_file: Option<String>,
    entropy: JsValue,
    secret_file_contents: Option<String>,
    key_file_contents: Option<String>,
    key_file: Option<String>,
) -> Result<JsValue, JsError> {
    let entropy = entropy_bits(&entropy)?;
    let request = EnvRequest {
        prefix,
        env_json,
        explicit_json,
        secret_file: secret_file.as_deref(),
        ca_file: ca_file.as_deref(),
        key_file: key_file.as_deref(),
    };
    Ok(created(tokenwell_js::create_token_cache_from_env(
        &request,
        entropy,
        secret_file_contents.as_deref(),
        key_file_contents.as_deref(),
    )))
}

/// The engine's 401 rule: whether to send a request once more after a 401
/// for which `invalidate` answered `outcome`.
#[wasm_bindgen(js_name = retryRequest)]
pub fn retry_request(outcome: &str) -> Result<bool, JsError> {
    tokenwell_js::retry_request(outcome).map_err(arg_error)
}

/// The error of a token asked for after `close()` (kind `closed`), as JSON.
#[wasm_bindgen(js_name = closedError)]
pub fn closed_error() -> String {
    tokenwell_js::closed_error()
}

/// How often (ms) the secret file is checked on the token path.
#[wasm_bindgen(js_name = secretFileCheckIntervalMs)]
pub fn secret_file_check_interval_ms() -> f64 {
    tokenwell_js::SECRET_FILE_CHECK_INTERVAL_MS
}

/// The engine's rule for noticing a changed secret file (see the napi
/// binding's `NativeSecretFileWatch`; stamps are JSON with decimal strings).
#[wasm_bindgen]
#[derive(Default)]
pub struct WasmSecretFileWatch {
    inner: JsonSecretFileWatch,
}

#[wasm_bindgen]
impl WasmSecretFileWatch {
    /// A watch that has read nothing yet.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to `stat` the file now (`forced` after `invalid_client`).
    pub fn due(&self, now: f64, forced: bool) -> Result<bool, JsError> {
        self.inner.due(now, forced).map_err(arg_error)
    }

    /// Records a check that found `stamp`; whether the file must be read.
    pub fn changed(&mut self, stamp: &str, now: f64) -> Result<bool, JsError> {
        self.inner.changed(stamp, now).map_err(arg_error)
    }

    /// Records a check that could not `stat` or read the file.
    pub fn failed(&mut self, now: f64) -> Result<(), JsError> {
        self.inner.failed(now).map_err(arg_error)
    }

    /// Records that the file with `stamp` was read (valid or not).
    pub fn read(&mut self, stamp: &str) -> Result<(), JsError> {
        self.inner.read(stamp).map_err(arg_error)
    }
}

/// Every engine error kind with its fault and whether the engine retries it, as JSON.
#[wasm_bindgen(js_name = errorKinds)]
pub fn error_kinds() -> String {
    tokenwell_js::error_kinds()
}

#[wasm_bindgen]
impl WasmTokenCache {
    /// Mixes fresh host randomness (at least 16 bytes from the CSPRNG) into
    /// the engine's entropy pool, before every `poll` that may send.
    #[wasm_bindgen(js_name = addEntropy)]
    pub fn add_entropy(&mut self, bytes: &[u8]) {
        self.inner.add_entropy(bytes);
    }

    /// `poll(now)`: what the host should do now (JSON).
    pub fn poll(&mut self, now: f64) -> Result<String, JsError> {
        self.inner.poll(now).map_err(arg_error)
    }

    /// `handleResponse`: `headers_json` is a JSON list of `[name, value]` pairs.
    #[wasm_bindgen(js_name = handleResponse)]
    pub fn handle_response(
        &mut self,
        fetch_id: f64,
        status: u32,
        headers_json: &str,
        body: &[u8],
        now: f64,
    ) -> Result<String, JsError> {
        self.inner.handle_response(fetch_id, status, headers_json, body, now).map_err(arg_error)
    }

    /// `handleTransportError`: `kind` is `timeout`, `connect`, `io`, `tls` or `other`.
    #[wasm_bindgen(js_name = handleTransportError)]
    pub fn handle_transport_error(
        &mut self,
        fetch_id: f64,
        kind: &str,
        message: &str,
        now: f64,
    ) -> Result<String, JsError> {
        self.inner.handle_transport_error(fetch_id, kind, message, now).map_err(arg_error)
    }

    /// When to poll again even if no caller asks (ms), or `null`.
    #[wasm_bindgen(js_name = nextWakeup)]
    pub fn next_wakeup(&self) -> JsValue {
        self.inner.next_wakeup().map_or(JsValue::NULL, JsValue::from_f64)
    }

    /// `invalidate(token, now)`: `"invalidated"`, `"not_current"` or `"rate_limited"`.
    pub fn invalidate(&mut self, access_token: &str, now: f64) -> Result<String, JsError> {
        self.inner.invalidate(access_token, now).map_err(arg_error)
    }

    /// Replaces the secrets with a JSON list of secrets (current first).
    #[wasm_bindgen(js_name = replaceSecrets)]
    pub fn replace_secrets(&mut self, secrets_json: &str, now: f64) -> Result<String, JsError> {
        self.inner.replace_secrets(secrets_json, now).map_err(arg_error)
    }

    /// The engine's entry point for a secret file's contents: a file without
    /// a valid secret keeps the secrets and queues `secret_file_rejected`.
    #[wasm_bindgen(js_name = replaceSecretsFromFile)]
    pub fn replace_secrets_from_file(&mut self, contents: &str, source: &str, now: f64) -> Result<String, JsError> {
        self.inner.replace_secrets_from_file(contents, source, now).map_err(arg_error)
    }

    /// The engine's entry point for a key file's contents: a file without a
    /// valid key keeps the keys and queues `secret_file_rejected`.
    #[wasm_bindgen(js_name = replaceKeysFromFile)]
    pub fn replace_keys_from_file(&mut self, contents: &str, source: &str, now: f64) -> Result<String, JsError> {
        self.inner.replace_keys_from_file(contents, source, now).map_err(arg_error)
    }

    /// The secret file named by `source` could not be `stat`ed or read: one
    /// `secret_file_rejected` event.
    #[wasm_bindgen(js_name = reportSecretFileProblem)]
    pub fn report_secret_file_problem(&mut self, source: &str, problem: &str, now: f64) -> Result<(), JsError> {
        self.inner.report_secret_file_problem(source, problem, now).map_err(arg_error)
    }

    /// The cache file could not be used as it should (`problem`: `ignored`,
    /// `permissions_tightened`, `write_failed`, `lock_failed`, `lock_timeout`;
    /// `detail` a non-secret reason): one `cache_file_problem` event.
    #[wasm_bindgen(js_name = reportCacheFileProblem)]
    pub fn report_cache_file_problem(
        &mut self,
        path: &str,
        problem: &str,
        detail: &str,
        now: f64,
    ) -> Result<(), JsError> {
        self.inner.report_cache_file_problem(path, problem, detail, now).map_err(arg_error)
    }

    /// Drains the event queue: a JSON list of events, oldest first.
    #[wasm_bindgen(js_name = drainEvents)]
    pub fn drain_events(&mut self) -> String {
        self.inner.drain_events()
    }

    /// The snapshot JSON text, or `null`.
    #[wasm_bindgen(js_name = exportSnapshot)]
    pub fn export_snapshot(&self, now: f64) -> Result<JsValue, JsError> {
        Ok(self.inner.export_snapshot(now).map_err(arg_error)?.map_or(JsValue::NULL, JsValue::from))
    }

    /// `null` when imported, else the refusal's reason.
    #[wasm_bindgen(js_name = importSnapshot)]
    pub fn import_snapshot(&mut self, snapshot: &str, now: f64) -> Result<JsValue, JsError> {
        Ok(self.inner.import_snapshot(snapshot, now).map_err(arg_error)?.map_or(JsValue::NULL, JsValue::from))
    }

    /// The engine's state: `idle`, `fetching`, `backing_off` or `held`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        self.inner.state()
    }

    /// The id of the fetch in flight, or `null`.
    #[wasm_bindgen(getter = inFlight)]
    pub fn in_flight(&self) -> JsValue {
        self.inner.in_flight().map_or(JsValue::NULL, JsValue::from_f64)
    }

    /// The configuration without its secrets, as JSON.
    pub fn describe(&self) -> String {
        self.inner.describe()
    }
}
