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

use tokenwell_js::{whole_number, ArgError, JsonCache};
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

/// A cache from JS options (JSON text, camelCase keys) and, for
/// `clientSecretFile`, the file's contents as read by the host. Returns the
/// cache, or a `config` error as JSON text naming the option.
#[wasm_bindgen(js_name = createTokenCache)]
pub fn create_token_cache(
    options_json: &str,
    entropy: JsValue,
    secret_file_contents: Option<String>,
) -> Result<JsValue, JsError> {
    let entropy = entropy_bits(&entropy)?;
    Ok(created(tokenwell_js::create_token_cache(options_json, entropy, secret_file_contents.as_deref())))
}

/// The secret file the environment names, as JSON: `{"path": ..., "variable": ...}`,
/// `null`, or `{"error": E}` when the environment is incomplete.
#[wasm_bindgen(js_name = secretFileFromEnvironment)]
pub fn secret_file_from_environment(prefix: &str, env_json: &str) -> String {
    tokenwell_js::secret_file_from_environment(prefix, env_json)
}

/// A cache from environment variables, with options the environment does not
/// carry and the contents of the secret file it names. Errors name the variable.
#[wasm_bindgen(js_name = createTokenCacheFromEnvironment)]
pub fn create_token_cache_from_environment(
    prefix: &str,
    env_json: &str,
    overrides_json: &str,
    entropy: JsValue,
    secret_file_contents: Option<String>,
) -> Result<JsValue, JsError> {
    let entropy = entropy_bits(&entropy)?;
    Ok(created(tokenwell_js::create_token_cache_from_environment(
        prefix,
        env_json,
        overrides_json,
        entropy,
        secret_file_contents.as_deref(),
    )))
}

/// Every engine error kind with its fault and whether the engine retries it, as JSON.
#[wasm_bindgen(js_name = errorKinds)]
pub fn error_kinds() -> String {
    tokenwell_js::error_kinds()
}

#[wasm_bindgen]
impl WasmTokenCache {
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

    /// Replaces the secrets with a secret file's contents; `field` names the file in errors.
    #[wasm_bindgen(js_name = replaceSecretsFromFile)]
    pub fn replace_secrets_from_file(&mut self, contents: &str, field: &str, now: f64) -> Result<String, JsError> {
        self.inner.replace_secrets_from_file(contents, field, now).map_err(arg_error)
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
