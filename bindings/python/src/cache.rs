//! The sans-IO `TokenCache` and the values it hands out: `PollResult`, `Token`, `TokenRequest`.
//!
//! Each method converts its arguments, calls the engine, and converts the
//! result. The engine's mutex is held only around the engine call itself, never
//! while Python code can run.

use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use tokenwell::{
    ClientSecret, Config, FetchId, InvalidateOutcome, PollResult, Token, TokenRequest, TransportErrorKind,
};

use crate::config::{check_options_type, options_from_py, PyConfig};
use crate::convert::{body_bytes, header_pairs, http_status, non_negative_int, secret_list, serde_name, serde_to_py};
use crate::error::{config_error, snapshot_error, token_error, token_error_raise};

/// A token as the engine hands it out. `repr` never shows the access token.
#[pyclass(module = "tokenwell._native", name = "Token", frozen)]
pub struct PyToken {
    inner: Token,
}

#[pymethods]
impl PyToken {
    /// The bearer token, for an `Authorization: Bearer` header.
    #[getter]
    fn access_token(&self) -> &str {
        self.inner.access_token.expose()
    }

    /// Always `"Bearer"`.
    #[getter]
    fn token_type(&self) -> &str {
        &self.inner.token_type
    }

    /// Granted scopes.
    #[getter]
    fn scope<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.scope)
    }

    /// When the response arrived (ms since the Unix epoch).
    #[getter]
    fn received_at(&self) -> u64 {
        self.inner.received_at
    }

    /// When the token expires (ms since the Unix epoch).
    #[getter]
    fn expires_at(&self) -> u64 {
        self.inner.expires_at
    }

    /// The token is never served at or after this instant (ms).
    #[getter]
    fn usable_until(&self) -> u64 {
        self.inner.usable_until
    }

    /// From this instant a poll also asks for a background refresh (ms).
    #[getter]
    fn refresh_at(&self) -> u64 {
        self.inner.refresh_at
    }

    /// `"expires_in"`, `"jwt_exp"` or `"default"`.
    #[getter]
    fn lifetime_source(&self) -> String {
        serde_name(&self.inner.lifetime_source)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Token(access_token='{}', token_type='{}', scope={}, expires_at={}, lifetime_source='{}')",
            tokenwell::REDACTED,
            self.inner.token_type,
            self.scope(py)?.repr()?,
            self.inner.expires_at,
            serde_name(&self.inner.lifetime_source),
        ))
    }
}

/// A token request to send: exactly this method, URL, headers (in order) and body.
/// `repr` redacts the credentials.
#[pyclass(module = "tokenwell._native", name = "TokenRequest", frozen)]
pub struct PyTokenRequest {
    inner: TokenRequest,
}

#[pymethods]
impl PyTokenRequest {
    /// Report the outcome against this id.
    #[getter]
    fn fetch_id(&self) -> u64 {
        self.inner.fetch_id.0
    }

    /// `"POST"` for a token request; `"GET"` for an issuer-discovery request
    /// (send it without a body).
    #[getter]
    fn method(&self) -> &str {
        &self.inner.http.method
    }

    /// The token endpoint, or the metadata document's URL (discovery).
    #[getter]
    fn url(&self) -> &str {
        &self.inner.http.url
    }

    /// `(name, value)` pairs in order. Holds the credentials for `client_secret_basic`.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, &self.inner.http.headers)
    }

    /// The form body (empty for `GET`). Holds the credentials for
    /// `client_secret_post` and the signed client assertion.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.http.body.as_bytes())
    }

    /// Abort the request after this many ms and report a timeout.
    #[getter]
    fn timeout_ms(&self) -> u64 {
        self.inner.timeout_ms
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// What the host should do now: `result` is `"ready"`, `"ready_and_send"`,
/// `"send"`, `"wait"` or `"fail"`; the other attributes are set as that result needs.
#[pyclass(module = "tokenwell._native", name = "PollResult", frozen)]
pub struct PyPoll {
    /// The kind of result.
    #[pyo3(get)]
    result: &'static str,
    /// The token to use (`ready`, `ready_and_send`).
    #[pyo3(get)]
    token: Option<Py<PyToken>>,
    /// The request to send (`ready_and_send`, `send`).
    #[pyo3(get)]
    request: Option<Py<PyTokenRequest>>,
    /// The fetch in flight (`wait`).
    #[pyo3(get)]
    fetch_id: Option<u64>,
    /// The error to raise (`fail`), a `TokenError` instance.
    #[pyo3(get)]
    error: Option<Py<PyAny>>,
}

#[pymethods]
impl PyPoll {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut parts = vec![format!("result='{}'", self.result)];
        if let Some(token) = &self.token {
            parts.push(format!("token={}", token.get().__repr__(py)?));
        }
        if let Some(request) = &self.request {
            parts.push(format!("request={}", request.get().__repr__()));
        }
        if let Some(fetch_id) = self.fetch_id {
            parts.push(format!("fetch_id={fetch_id}"));
        }
        if let Some(error) = &self.error {
            parts.push(format!("error={}", error.bind(py).repr()?));
        }
        Ok(format!("PollResult({})", parts.join(", ")))
    }
}

fn wrap_token(py: Python<'_>, token: Token) -> PyResult<Py<PyToken>> {
    Py::new(py, PyToken { inner: token })
}

fn wrap_request(py: Python<'_>, request: TokenRequest) -> PyResult<Py<PyTokenRequest>> {
    Py::new(py, PyTokenRequest { inner: request })
}

fn convert_poll(py: Python<'_>, poll: PollResult) -> PyResult<PyPoll> {
    let mut out = PyPoll { result: "", token: None, request: None, fetch_id: None, error: None };
    match poll {
        PollResult::Ready { token } => {
            out.result = "ready";
            out.token = Some(wrap_token(py, token)?);
        }
        PollResult::ReadyAndSend { token, request } => {
            out.result = "ready_and_send";
            out.token = Some(wrap_token(py, token)?);
            out.request = Some(wrap_request(py, request)?);
        }
        PollResult::Send { request } => {
            out.result = "send";
            out.request = Some(wrap_request(py, request)?);
        }
        PollResult::Wait { fetch_id } => {
            out.result = "wait";
            out.fetch_id = Some(fetch_id.0);
        }
        PollResult::Fail { error } => {
            out.result = "fail";
            out.error = Some(token_error(py, &error)?.unbind());
        }
    }
    Ok(out)
}

/// The engine's token cache for one client. Sans-IO: it sends nothing and reads
/// no clock; every call takes `now_ms` (ms since the Unix epoch). Drive it as
/// the engine documents: `poll`, send what it asks, report with
/// `handle_response` / `handle_transport_error`, drain `poll_event`.
#[pyclass(module = "tokenwell._native", name = "TokenCache", frozen)]
pub struct PyTokenCache {
    inner: Mutex<tokenwell::TokenCache>,
}

impl PyTokenCache {
    fn engine(&self) -> MutexGuard<'_, tokenwell::TokenCache> {
        // The engine is only touched inside these short, panic-free sections; a
        // poisoned lock still holds a consistent engine.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl PyTokenCache {
    /// `config`: a validated `Config`, or the engine's options as a dict or a
    /// JSON string (`snake_case` keys, durations in ms). `entropy` seeds the
    /// refresh and backoff jitter.
    #[new]
    #[pyo3(signature = (config, entropy = None))]
    fn new(py: Python<'_>, config: &Bound<'_, PyAny>, entropy: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let entropy = entropy.map(|e| non_negative_int(e, "entropy")).transpose()?.unwrap_or(0);
        let config = match config.cast::<PyConfig>() {
            Ok(validated) => validated.get().inner.clone(),
            Err(_) => {
                check_options_type(config, "config")?;
                let options = options_from_py(config).map_err(|e| config_error(py, &e))?;
                Config::from_options(options).map_err(|e| config_error(py, &e))?
            }
        };
        Ok(Self { inner: Mutex::new(tokenwell::TokenCache::new(config, entropy)) })
    }

    /// What to do now (a `PollResult`).
    fn poll(&self, py: Python<'_>, now_ms: &Bound<'_, PyAny>) -> PyResult<PyPoll> {
        let now = non_negative_int(now_ms, "now_ms")?;
        let poll = self.engine().poll(now);
        convert_poll(py, poll)
    }

    /// Reports the HTTP response to fetch `fetch_id`. Returns the new `Token`, or
    /// raises the classified `TokenError` (poll again afterwards either way).
    fn handle_response(
        &self,
        py: Python<'_>,
        fetch_id: &Bound<'_, PyAny>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        body: &Bound<'_, PyAny>,
        now_ms: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyToken>> {
        let fetch_id = FetchId(non_negative_int(fetch_id, "fetch_id")?);
        let status = http_status(status)?;
        let headers = header_pairs(headers)?;
        let body = body_bytes(body)?;
        let now = non_negative_int(now_ms, "now_ms")?;
        let outcome = self.engine().handle_response(fetch_id, status, &headers, &body, now);
        match outcome {
            Ok(token) => wrap_token(py, token),
            Err(error) => Err(token_error_raise(py, &error)),
        }
    }

    /// Reports that fetch `fetch_id` failed without a response. `kind` is
    /// `"timeout"`, `"connect"`, `"io"`, `"tls"` (the certificate was not
    /// trusted) or `"other"`. Returns the classified `TokenError` (not raised).
    fn handle_transport_error<'py>(
        &self,
        py: Python<'py>,
        fetch_id: &Bound<'_, PyAny>,
        kind: &str,
        message: &str,
        now_ms: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fetch_id = FetchId(non_negative_int(fetch_id, "fetch_id")?);
        let kind: TransportErrorKind =
            serde_json::from_value(serde_json::Value::String(kind.to_owned())).map_err(|_| {
                PyValueError::new_err("kind must be one of \"timeout\", \"connect\", \"io\", \"tls\", \"other\"")
            })?;
        let now = non_negative_int(now_ms, "now_ms")?;
        let error = self.engine().handle_transport_error(fetch_id, kind, message, now);
        token_error(py, &error)
    }

    /// Mixes fresh randomness from the OS (`os.urandom(32)`) into the pool
    /// that makes each client assertion's `jti`. A host whose client signs
    /// assertions calls it before every `poll` that may send, so that forked
    /// processes never sign with the same `jti`.
    fn add_entropy(&self, entropy: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = body_bytes(entropy).map_err(|_| PyValueError::new_err("entropy must be bytes"))?;
        self.engine().add_entropy(&bytes);
        Ok(())
    }

    /// When to poll again even if no caller asks (ms), or `None`.
    fn next_wakeup(&self) -> Option<u64> {
        self.engine().next_wakeup()
    }

    /// An API answered 401 for `access_token`: `"invalidated"`, `"not_current"` or `"rate_limited"`.
    fn invalidate(&self, access_token: &str, now_ms: &Bound<'_, PyAny>) -> PyResult<String> {
        let now = non_negative_int(now_ms, "now_ms")?;
        let outcome = self.engine().invalidate(access_token, now);
        Ok(serde_name(&outcome))
    }

    /// Replaces the secrets (a str, or a list with the current one first).
    /// Returns whether they changed; raises `InvalidConfigError` naming `client_secret`.
    fn replace_secrets(&self, py: Python<'_>, secrets: &Bound<'_, PyAny>, now_ms: &Bound<'_, PyAny>) -> PyResult<bool> {
        let now = non_negative_int(now_ms, "now_ms")?;
        let secrets = secret_list(secrets, "client_secret").map_err(|e| config_error(py, &e))?;
        let secrets: Vec<ClientSecret> = secrets.into_iter().map(ClientSecret::from).collect();
        let outcome = self.engine().replace_secrets(secrets, now);
        outcome.map_err(|e| config_error(py, &e))
    }

    /// Replaces the secrets with a secret file's `contents` (the one entry point
    /// after a changed file was read). Returns whether they changed. A file with
    /// no valid secret keeps the current secrets, queues one
    /// `secret_file_rejected` event naming `source`, and raises `InvalidConfigError`.
    fn replace_secrets_from_file(
        &self,
        py: Python<'_>,
        contents: &str,
        source: &str,
        now_ms: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let now = non_negative_int(now_ms, "now_ms")?;
        let outcome = self.engine().replace_secrets_from_file(contents, source, now);
        outcome.map_err(|e| config_error(py, &e))
    }

    /// Replaces the private keys with a key file's `contents` (PEM blocks or a
    /// JWK / JWKS, current first; the one entry point after a changed key file
    /// was read). Returns whether they changed. A file with no valid key keeps
    /// the current keys, queues one `secret_file_rejected` event naming
    /// `source`, and raises `InvalidConfigError` (never quoting the file).
    fn replace_keys_from_file(
        &self,
        py: Python<'_>,
        contents: &str,
        source: &str,
        now_ms: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let now = non_negative_int(now_ms, "now_ms")?;
        let outcome = self.engine().replace_keys_from_file(contents, source, now);
        outcome.map_err(|e| config_error(py, &e))
    }

    /// The host could not read the secret file named by `source` (`problem`
    /// says why, never its contents): the secrets stay, one
    /// `secret_file_rejected` event is queued.
    fn report_secret_file_problem(&self, source: &str, problem: &str, now_ms: &Bound<'_, PyAny>) -> PyResult<()> {
        let now = non_negative_int(now_ms, "now_ms")?;
        self.engine().report_secret_file_problem(source, problem, now);
        Ok(())
    }

    /// The host's cache file could not be used as it should (`problem`: `ignored`,
    /// `permissions_tightened`, `write_failed`, `lock_failed` or `lock_timeout`;
    /// `detail` a non-secret reason): one `cache_file_problem` event is queued.
    fn report_cache_file_problem(
        &self,
        path: &str,
        problem: &str,
        detail: &str,
        now_ms: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let now = non_negative_int(now_ms, "now_ms")?;
        let Some(problem) = tokenwell::CacheFileProblem::parse(problem) else {
            return Err(pyo3::exceptions::PyValueError::new_err("problem is not a cache file problem name"));
        };
        self.engine().report_cache_file_problem(path, problem, detail, now);
        Ok(())
    }

    /// The next event as a dict (`at`, `actor_type`, `actor_id`, `type`, ...), or `None`.
    fn poll_event<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let event = self.engine().poll_event();
        event.map(|event| serde_to_py(py, &event)).transpose()
    }

    /// Every queued event, oldest first.
    fn drain_events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events: Vec<tokenwell::Event> = {
            let mut engine = self.engine();
            std::iter::from_fn(|| engine.poll_event()).collect()
        };
        let list = PyList::empty(py);
        for event in &events {
            list.append(serde_to_py(py, event)?)?;
        }
        Ok(list)
    }

    /// The cached token as snapshot JSON (no client secret in it, but the access
    /// token: store it like one), or `None` if no token is usable at `now_ms`.
    fn export_snapshot(&self, now_ms: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let now = non_negative_int(now_ms, "now_ms")?;
        Ok(self.engine().export_snapshot(now))
    }

    /// Loads a snapshot. Raises `SnapshotError` with a `reason` (`corrupt`,
    /// `unsupported_version`, `fingerprint_mismatch`, `expired`) when refused.
    fn import_snapshot(&self, py: Python<'_>, snapshot: &str, now_ms: &Bound<'_, PyAny>) -> PyResult<()> {
        let now = non_negative_int(now_ms, "now_ms")?;
        let outcome = self.engine().import_snapshot(snapshot, now);
        outcome.map_err(|e| snapshot_error(py, &e))
    }

    /// The cached token, usable or not.
    fn current_token(&self, py: Python<'_>) -> PyResult<Option<Py<PyToken>>> {
        let token = self.engine().current_token().cloned();
        token.map(|t| wrap_token(py, t)).transpose()
    }

    /// The id of the fetch in flight, if any.
    fn in_flight(&self) -> Option<u64> {
        self.engine().in_flight().map(|id| id.0)
    }

    /// `"idle"`, `"fetching"`, `"backing_off"` or `"held"`.
    #[getter]
    fn state(&self) -> String {
        serde_name(&self.engine().state())
    }

    /// The client id.
    #[getter]
    fn client_id(&self) -> String {
        self.engine().config().client_id().to_owned()
    }

    /// The configured token endpoint; `""` when it is discovered from `issuer`.
    #[getter]
    fn token_url(&self) -> String {
        self.engine().config().token_url().to_owned()
    }

    /// Where token requests go: `token_url`, or the endpoint discovered from
    /// the issuer (`None` until its metadata document was read).
    #[getter]
    fn token_endpoint(&self) -> Option<String> {
        self.engine().token_endpoint().map(str::to_owned)
    }

    /// The issuer exactly as configured, if any.
    #[getter]
    fn issuer(&self) -> Option<String> {
        self.engine().config().issuer().map(str::to_owned)
    }

    /// How many private keys are configured (`private_key_jwt`).
    #[getter]
    fn key_count(&self) -> usize {
        self.engine().config().key_count()
    }

    /// Identifies the configuration a snapshot belongs to (never covers the secret).
    #[getter]
    fn fingerprint(&self) -> String {
        self.engine().config().fingerprint()
    }

    /// The auth method token requests use: `"client_secret_basic"`,
    /// `"client_secret_post"`, `"private_key_jwt"` or `"client_secret_jwt"`
    /// (with discovery, the one chosen with the document once read).
    #[getter]
    fn auth_method(&self) -> &'static str {
        self.engine().auth_method().as_str()
    }

    /// The requested scopes.
    #[getter]
    fn scopes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let scopes = self.engine().config().scopes().to_vec();
        PyTuple::new(py, scopes)
    }

    /// The requested audiences.
    #[getter]
    fn audiences<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let audiences = self.engine().config().audiences().to_vec();
        PyTuple::new(py, audiences)
    }

    /// How many secrets are configured.
    #[getter]
    fn secret_count(&self) -> usize {
        self.engine().config().secret_count()
    }

    /// The largest response body the engine accepts (bytes).
    #[getter]
    fn max_response_bytes(&self) -> usize {
        self.engine().config().policy().max_response_bytes
    }

    /// The timeout of one token request (ms).
    #[getter]
    fn request_timeout_ms(&self) -> u64 {
        self.engine().config().policy().request_timeout_ms
    }

    fn __repr__(&self) -> String {
        let engine = self.engine();
        format!(
            "TokenCache(client_id={:?}, token_url={:?}, issuer={:?}, state='{}')",
            engine.config().client_id(),
            engine.token_endpoint().unwrap_or(""),
            engine.config().issuer(),
            serde_name(&engine.state())
        )
    }
}

/// The 401 rule (`InvalidateOutcome::retry_request`): after an API answered 401
/// for token T and `invalidate(T)` returned `outcome`, whether to retry the
/// request once with the next token. Never after `"rate_limited"`; the retry
/// itself is never retried.
#[pyfunction]
pub fn retry_request(outcome: &str) -> PyResult<bool> {
    let outcome: InvalidateOutcome =
        serde_json::from_value(serde_json::Value::String(outcome.to_owned())).map_err(|_| {
            PyValueError::new_err("outcome must be one of \"invalidated\", \"not_current\", \"rate_limited\"")
        })?;
    Ok(outcome.retry_request())
}
