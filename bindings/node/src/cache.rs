//! `NativeTokenCache`: the engine's `TokenCache`, one method per engine call,
//! each a napi wrapper over `tokenwell_js::JsonCache`.
//!
//! Results are JSON text with camelCase keys (see the crate doc); the JS class
//! `TokenCache` in `lib/token-cache.js` parses them and is the public API.

use napi::bindgen_prelude::{BigInt, Buffer, Either};
use napi::{Error, Result, Status};
use napi_derive::napi;
use tokenwell_js::{whole_number, ArgError, EnvRequest, JsonCache};

pub(crate) fn arg_error(error: ArgError) -> Error {
    Error::new(Status::InvalidArg, error.message)
}

/// Jitter entropy: a JS number (integer) or a BigInt, reduced to 64 bits.
fn entropy_bits(entropy: Option<Either<f64, BigInt>>) -> Result<u64> {
    match entropy {
        None => Ok(0),
        Some(Either::A(n)) => whole_number("entropy", n).map_err(arg_error),
        Some(Either::B(big)) => Ok(big.words.first().copied().unwrap_or(0)),
    }
}

/// The engine's token cache for one client. Drive it as documented on the
/// engine's `TokenCache`: `poll`, send what it asks, report with
/// `handleResponse` / `handleTransportError`, poll again.
#[napi]
pub struct NativeTokenCache {
    inner: JsonCache,
}

fn created(outcome: std::result::Result<JsonCache, String>) -> Either<NativeTokenCache, String> {
    match outcome {
        Ok(inner) => Either::A(NativeTokenCache { inner }),
        Err(config_error_json) => Either::B(config_error_json),
    }
}

/// A cache from JS options (JSON text, camelCase keys) and the contents of
/// the files the host read for them (`clientSecretFile`, `privateKeyFile`).
/// Returns the cache, or a `config` error as JSON naming the option.
#[napi(catch_unwind)]
pub fn create_token_cache(
    options_json: String,
    entropy: Option<Either<f64, BigInt>>,
    secret_file_contents: Option<String>,
    key_file_contents: Option<String>,
) -> Result<Either<NativeTokenCache, String>> {
    let entropy = entropy_bits(entropy)?;
    Ok(created(tokenwell_js::create_token_cache(
        &options_json,
        entropy,
        secret_file_contents.as_deref(),
        key_file_contents.as_deref(),
    )))
}

/// Step one of `fromEnv` (the engine's `read_env` → `merge_env` → required
/// check): JSON `{"secretFile", "secretFileSource", "keyFile", "keyFileSource",
/// "caFile", "caFileSource", "sources"}` naming what the host reads next, or
/// `{"error": E}`. `key_file` is the explicit `privateKeyFile`.
#[napi(catch_unwind)]
pub fn env_plan(
    prefix: String,
    env_json: String,
    explicit_json: String,
    secret_file: Option<String>,
    ca_file: Option<String>,
    key_file: Option<String>,
) -> String {
    tokenwell_js::env_plan(&EnvRequest {
        prefix: &prefix,
        env_json: &env_json,
        explicit_json: &explicit_json,
        secret_file: secret_file.as_deref(),
        ca_file: ca_file.as_deref(),
        key_file: key_file.as_deref(),
    })
}

/// Step two of `fromEnv`: the cache, from the same arguments and the contents
/// of the secret file and the key file step one named (`key_file`, the
/// explicit `privateKeyFile`, last: it came after the others); or a `config`
/// error as JSON naming the variable (`SCOPE[1]`) or the explicit option.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)] // one per `fromEnv` input, as the JS layer passes them
pub fn create_token_cache_from_env(
    prefix: String,
    env_json: String,
    explicit_json: String,
    secret_file: Option<String>,
    ca_file: Option<String>,
    entropy: Option<Either<f64, BigInt>>,
    secret_file_contents: Option<String>,
    key_file_contents: Option<String>,
    key_file: Option<String>,
) -> Result<Either<NativeTokenCache, String>> {
    let entropy = entropy_bits(entropy)?;
    let request = EnvRequest {
        prefix: &prefix,
        env_json: &env_json,
        explicit_json: &explicit_json,
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
#[napi(catch_unwind)]
pub fn retry_request(outcome: String) -> Result<bool> {
    tokenwell_js::retry_request(&outcome).map_err(arg_error)
}

/// The error of a token asked for after `close()` (kind `closed`), as JSON.
#[napi(catch_unwind)]
pub fn closed_error() -> String {
    tokenwell_js::closed_error()
}

/// Every engine error kind with its fault and whether the engine retries it,
/// as JSON: `[{"kind":"config","fault":"configuration","retryable":false}, ...]`.
#[napi(catch_unwind)]
pub fn error_kinds() -> String {
    tokenwell_js::error_kinds()
}

#[napi]
impl NativeTokenCache {
    /// Mixes fresh host randomness (at least 16 bytes from the CSPRNG) into
    /// the engine's entropy pool, before every `poll` that may send.
    #[napi(catch_unwind)]
    pub fn add_entropy(&mut self, bytes: Buffer) {
        self.inner.add_entropy(&bytes);
    }

    /// `poll(now)`: what the host should do now (JSON).
    #[napi(catch_unwind)]
    pub fn poll(&mut self, now: f64) -> Result<String> {
        self.inner.poll(now).map_err(arg_error)
    }

    /// `handle_response`: `headers_json` is a JSON list of `[name, value]` pairs.
    #[napi(catch_unwind)]
    pub fn handle_response(
        &mut self,
        fetch_id: f64,
        status: u32,
        headers_json: String,
        body: Buffer,
        now: f64,
    ) -> Result<String> {
        self.inner.handle_response(fetch_id, status, &headers_json, &body, now).map_err(arg_error)
    }

    /// `handle_transport_error`: `kind` is `timeout`, `connect`, `io`, `tls` or `other`.
    #[napi(catch_unwind)]
    pub fn handle_transport_error(&mut self, fetch_id: f64, kind: String, message: String, now: f64) -> Result<String> {
        self.inner.handle_transport_error(fetch_id, &kind, &message, now).map_err(arg_error)
    }

    /// `next_wakeup()`: when to poll again even if no caller asks (ms), or null.
    #[napi(catch_unwind)]
    pub fn next_wakeup(&self) -> Option<f64> {
        self.inner.next_wakeup()
    }

    /// `invalidate(token, now)`: `"invalidated"`, `"not_current"` or `"rate_limited"`.
    #[napi(catch_unwind)]
    pub fn invalidate(&mut self, access_token: String, now: f64) -> Result<String> {
        self.inner.invalidate(&access_token, now).map_err(arg_error)
    }

    /// `replace_secrets` with a JSON list of secrets (current first).
    #[napi(catch_unwind)]
    pub fn replace_secrets(&mut self, secrets_json: String, now: f64) -> Result<String> {
        self.inner.replace_secrets(&secrets_json, now).map_err(arg_error)
    }

    /// The engine's entry point for a secret file's contents: a file without
    /// a valid secret keeps the secrets and queues `secret_file_rejected`
    /// naming `source`.
    #[napi(catch_unwind)]
    pub fn replace_secrets_from_file(&mut self, contents: String, source: String, now: f64) -> Result<String> {
        self.inner.replace_secrets_from_file(&contents, &source, now).map_err(arg_error)
    }

    /// The engine's entry point for a key file's contents: a file without a
    /// valid key keeps the keys and queues `secret_file_rejected` naming `source`.
    #[napi(catch_unwind)]
    pub fn replace_keys_from_file(&mut self, contents: String, source: String, now: f64) -> Result<String> {
        self.inner.replace_keys_from_file(&contents, &source, now).map_err(arg_error)
    }

    /// The secret file named by `source` could not be `stat`ed or read
    /// (`problem` says why, with its path): one `secret_file_rejected` event.
    #[napi(catch_unwind)]
    pub fn report_secret_file_problem(&mut self, source: String, problem: String, now: f64) -> Result<()> {
        self.inner.report_secret_file_problem(&source, &problem, now).map_err(arg_error)
    }

    /// The cache file (`cachePath`) could not be used as it should (`problem`:
    /// `ignored`, `permissions_tightened`, `write_failed`, `lock_failed`,
    /// `lock_timeout`; `detail` a non-secret reason): one `cache_file_problem` event.
    #[napi(catch_unwind)]
    pub fn report_cache_file_problem(&mut self, path: String, problem: String, detail: String, now: f64) -> Result<()> {
        self.inner.report_cache_file_problem(&path, &problem, &detail, now).map_err(arg_error)
    }

    /// Drains the event queue: a JSON list of events, oldest first.
    #[napi(catch_unwind)]
    pub fn drain_events(&mut self) -> String {
        self.inner.drain_events()
    }

    /// `export_snapshot(now)`: the snapshot JSON text, or null.
    #[napi(catch_unwind)]
    pub fn export_snapshot(&self, now: f64) -> Result<Option<String>> {
        self.inner.export_snapshot(now).map_err(arg_error)
    }

    /// `import_snapshot(text, now)`: null when imported, else the refusal's reason.
    #[napi(catch_unwind)]
    pub fn import_snapshot(&mut self, snapshot: String, now: f64) -> Result<Option<String>> {
        self.inner.import_snapshot(&snapshot, now).map_err(arg_error)
    }

    /// The engine's state: `idle`, `fetching`, `backing_off` or `held`.
    #[napi(getter, catch_unwind)]
    pub fn state(&self) -> String {
        self.inner.state()
    }

    /// The id of the fetch in flight, if any.
    #[napi(getter, catch_unwind)]
    pub fn in_flight(&self) -> Option<f64> {
        self.inner.in_flight()
    }

    /// The configuration without its secrets, as JSON (for inspection and transport limits).
    #[napi(catch_unwind)]
    pub fn describe(&self) -> String {
        self.inner.describe()
    }
}
