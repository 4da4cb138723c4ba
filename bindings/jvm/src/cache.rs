//! The sans-IO `TokenCache` (`EngineCache`) and the values it hands out:
//! `PollOutcome`, `EngineToken`, `EngineRequest`, `EngineEvent`.
//!
//! Each method converts its arguments, calls the engine under its mutex, and
//! converts the result. The mutex is held only around the engine call, never
//! while JVM code runs. Tokens and requests are uniffi objects, not records,
//! so that their Kotlin `toString()` is the redacted `Display` below rather
//! than a data class printing the access token or the credentials.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokenwell::{
    ClientSecret, Config, FetchId, InvalidateOutcome, PollResult, Token, TokenRequest, TransportErrorKind,
};

use crate::env::EngineConfig;
use crate::error::{to_i64, to_u64, EngineError, TokenErrorInfo};

/// A token as the engine hands it out. `toString()` never shows the access token.
#[derive(uniffi::Object)]
#[uniffi::export(Display)]
pub struct EngineToken {
    inner: Token,
}

impl fmt::Display for EngineToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Token(accessToken={}, tokenType={}, scope={:?}, expiresAt={}, lifetimeSource={})",
            tokenwell::REDACTED,
            self.inner.token_type,
            self.inner.scope,
            self.inner.expires_at,
            serde_name(&self.inner.lifetime_source)
        )
    }
}

#[uniffi::export]
impl EngineToken {
    /// The bearer token, for an `Authorization: Bearer` header.
    pub fn access_token(&self) -> String {
        self.inner.access_token.expose().to_owned()
    }

    /// Always `"Bearer"`.
    pub fn token_type(&self) -> String {
        self.inner.token_type.clone()
    }

    /// Granted scopes.
    pub fn scope(&self) -> Vec<String> {
        self.inner.scope.clone()
    }

    /// When the response arrived (ms since the Unix epoch).
    pub fn received_at(&self) -> i64 {
        to_i64(self.inner.received_at)
    }

    /// When the token expires (ms).
    pub fn expires_at(&self) -> i64 {
        to_i64(self.inner.expires_at)
    }

    /// The token is never served at or after this instant (ms).
    pub fn usable_until(&self) -> i64 {
        to_i64(self.inner.usable_until)
    }

    /// From this instant a poll also asks for a background refresh (ms).
    pub fn refresh_at(&self) -> i64 {
        to_i64(self.inner.refresh_at)
    }

    /// `"expires_in"`, `"jwt_exp"` or `"default"`.
    pub fn lifetime_source(&self) -> String {
        serde_name(&self.inner.lifetime_source)
    }
}

/// A request to send: exactly this method, URL, headers (in order) and body.
/// `toString()` redacts the credentials (the engine's `Debug`).
#[derive(uniffi::Object)]
#[uniffi::export(Display)]
pub struct EngineRequest {
    inner: TokenRequest,
}

impl fmt::Display for EngineRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.inner)
    }
}

#[uniffi::export]
impl EngineRequest {
    /// Report the outcome against this id.
    pub fn fetch_id(&self) -> i64 {
        to_i64(self.inner.fetch_id.0)
    }

    /// `"POST"` for a token request; `"GET"` for issuer discovery (no body).
    pub fn method(&self) -> String {
        self.inner.http.method.clone()
    }

    /// The token endpoint, or the metadata document's URL.
    pub fn url(&self) -> String {
        self.inner.http.url.clone()
    }

    /// `[name, value]` pairs in order. Holds the credentials for `client_secret_basic`.
    pub fn headers(&self) -> Vec<Vec<String>> {
        self.inner.http.headers.iter().map(|(n, v)| vec![n.clone(), v.clone()]).collect()
    }

    /// The form body (empty for `GET`). Holds the credentials for `client_secret_post`.
    pub fn body(&self) -> String {
        self.inner.http.body.clone()
    }

    /// Abort the request after this many ms and report a timeout.
    pub fn timeout_ms(&self) -> i64 {
        to_i64(self.inner.timeout_ms)
    }
}

/// What the host should do now.
#[derive(uniffi::Enum)]
pub enum PollOutcome {
    /// Use this token.
    Ready {
        /// The token.
        token: Arc<EngineToken>,
    },
    /// Use this token, and send this refresh in the background.
    ReadyAndSend {
        /// The token.
        token: Arc<EngineToken>,
        /// The refresh to send.
        request: Arc<EngineRequest>,
    },
    /// No usable token: send this, then report back.
    Send {
        /// The request.
        request: Arc<EngineRequest>,
    },
    /// A fetch is already in flight: await its outcome.
    Wait {
        /// The fetch in flight.
        fetch_id: i64,
    },
    /// No usable token and nothing may be sent yet.
    Fail {
        /// Why.
        error: TokenErrorInfo,
    },
}

fn convert_poll(poll: PollResult) -> PollOutcome {
    let token = |token: Token| Arc::new(EngineToken { inner: token });
    let request = |request: TokenRequest| Arc::new(EngineRequest { inner: request });
    match poll {
        PollResult::Ready { token: t } => PollOutcome::Ready { token: token(t) },
        PollResult::ReadyAndSend { token: t, request: r } => {
            PollOutcome::ReadyAndSend { token: token(t), request: request(r) }
        }
        PollResult::Send { request: r } => PollOutcome::Send { request: request(r) },
        PollResult::Wait { fetch_id } => PollOutcome::Wait { fetch_id: to_i64(fetch_id.0) },
        PollResult::Fail { error } => PollOutcome::Fail { error: (&error).into() },
    }
}

/// One engine event: its type and time, and the whole event as JSON
/// (`snake_case` keys, as every host delivers it; never a secret).
#[derive(Debug, Clone, uniffi::Record)]
pub struct EngineEvent {
    /// `token_acquired`, `refresh_started`, `refresh_failed`, ...
    pub kind: String,
    /// When it happened (ms since the Unix epoch).
    pub at: i64,
    /// The event as a JSON object.
    pub json: String,
}

/// The engine's token cache for one client. Sans-IO: it sends nothing and
/// reads no clock; every call takes `now_ms`. Drive it as the engine
/// documents: `poll`, send what it asks, report with `handle_response` /
/// `handle_transport_error`, then drain `drain_events`.
#[derive(uniffi::Object)]
#[uniffi::export(Display)]
pub struct EngineCache {
    inner: Mutex<tokenwell::TokenCache>,
}

impl EngineCache {
    fn engine(&self) -> MutexGuard<'_, tokenwell::TokenCache> {
        // The engine is only touched inside these short, panic-free sections; a
        // poisoned lock still holds a consistent engine.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Display for EngineCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engine = self.engine();
        write!(
            f,
            "TokenCache(clientId={}, tokenUrl={}, state={})",
            engine.config().client_id(),
            engine.token_endpoint().unwrap_or(""),
            serde_name(&engine.state())
        )
    }
}

#[uniffi::export]
impl EngineCache {
    /// A cache for a validated configuration; `entropy` seeds the jitter.
    #[uniffi::constructor]
    pub fn new(config: Arc<EngineConfig>, entropy: i64) -> Arc<Self> {
        let config: Config = config.inner.clone();
        Arc::new(Self { inner: Mutex::new(tokenwell::TokenCache::new(config, entropy as u64)) })
    }

    /// A cache from the engine's options as JSON (`snake_case`, durations in ms).
    #[uniffi::constructor]
    pub fn from_json(options: String, entropy: i64) -> Result<Arc<Self>, EngineError> {
        let config = Config::from_json(&options)?;
        Ok(Arc::new(Self { inner: Mutex::new(tokenwell::TokenCache::new(config, entropy as u64)) }))
    }

    /// What to do now.
    pub fn poll(&self, now_ms: i64) -> Result<PollOutcome, EngineError> {
        let now = to_u64(now_ms, "now_ms")?;
        let poll = self.engine().poll(now);
        Ok(convert_poll(poll))
    }

    /// Reports the HTTP response to fetch `fetch_id`: the new token, or the
    /// classified error raised as `EngineException.Token`.
    pub fn handle_response(
        &self,
        fetch_id: i64,
        status: i32,
        headers: Vec<Vec<String>>,
        body: Vec<u8>,
        now_ms: i64,
    ) -> Result<Arc<EngineToken>, EngineError> {
        let fetch_id = FetchId(to_u64(fetch_id, "fetch_id")?);
        let status = u16::try_from(status)
            .map_err(|_| EngineError::Argument { detail: "status must be an HTTP status".to_owned() })?;
        let now = to_u64(now_ms, "now_ms")?;
        let mut pairs = Vec::with_capacity(headers.len());
        for header in headers {
            let [name, value]: [String; 2] = header
                .try_into()
                .map_err(|_| EngineError::Argument { detail: "each header must be [name, value]".to_owned() })?;
            pairs.push((name, value));
        }
        let outcome = self.engine().handle_response(fetch_id, status, &pairs, &body, now);
        match outcome {
            Ok(token) => Ok(Arc::new(EngineToken { inner: token })),
            Err(error) => Err((&error).into()),
        }
    }

    /// Reports that fetch `fetch_id` failed without a response. `kind` is
    /// `timeout`, `connect`, `io`, `tls` or `other`. Returns the classified error.
    pub fn handle_transport_error(
        &self,
        fetch_id: i64,
        kind: String,
        message: String,
        now_ms: i64,
    ) -> Result<TokenErrorInfo, EngineError> {
        let fetch_id = FetchId(to_u64(fetch_id, "fetch_id")?);
        let kind: TransportErrorKind = serde_json::from_value(serde_json::Value::String(kind)).map_err(|_| {
            EngineError::Argument { detail: "kind must be timeout, connect, io, tls or other".to_owned() }
        })?;
        let now = to_u64(now_ms, "now_ms")?;
        let error = self.engine().handle_transport_error(fetch_id, kind, &message, now);
        Ok((&error).into())
    }

    /// Mixes fresh randomness into the pool that makes each client assertion's `jti`.
    pub fn add_entropy(&self, entropy: Vec<u8>) {
        self.engine().add_entropy(&entropy);
    }

    /// When to poll again even if no caller asks (ms), or none.
    pub fn next_wakeup(&self) -> Option<i64> {
        self.engine().next_wakeup().map(to_i64)
    }

    /// An API answered 401 for `access_token`: `invalidated`, `not_current` or `rate_limited`.
    pub fn invalidate(&self, access_token: String, now_ms: i64) -> Result<String, EngineError> {
        let now = to_u64(now_ms, "now_ms")?;
        let outcome = self.engine().invalidate(&access_token, now);
        Ok(serde_name(&outcome))
    }

    /// Replaces the secrets (current first). Returns whether they changed.
    pub fn replace_secrets(&self, secrets: Vec<String>, now_ms: i64) -> Result<bool, EngineError> {
        let now = to_u64(now_ms, "now_ms")?;
        let secrets: Vec<ClientSecret> = secrets.into_iter().map(ClientSecret::from).collect();
        Ok(self.engine().replace_secrets(secrets, now)?)
    }

    /// Replaces the secrets with a secret file's `contents`. A file with no
    /// valid secret keeps the current ones, queues a `secret_file_rejected`
    /// event naming `source`, and raises `EngineException.Config`.
    pub fn replace_secrets_from_file(
        &self,
        contents: String,
        source: String,
        now_ms: i64,
    ) -> Result<bool, EngineError> {
        let now = to_u64(now_ms, "now_ms")?;
        Ok(self.engine().replace_secrets_from_file(&contents, &source, now)?)
    }

    /// The host could not read the secret file named by `source`.
    pub fn report_secret_file_problem(&self, source: String, problem: String, now_ms: i64) -> Result<(), EngineError> {
        let now = to_u64(now_ms, "now_ms")?;
        self.engine().report_secret_file_problem(&source, &problem, now);
        Ok(())
    }

    /// Every queued event, oldest first.
    pub fn drain_events(&self) -> Vec<EngineEvent> {
        let events: Vec<tokenwell::Event> = {
            let mut engine = self.engine();
            std::iter::from_fn(|| engine.poll_event()).collect()
        };
        events
            .iter()
            .map(|event| {
                let value = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
                EngineEvent {
                    kind: value.get("type").and_then(|t| t.as_str()).unwrap_or("").to_owned(),
                    at: value.get("at").and_then(serde_json::Value::as_i64).unwrap_or(0),
                    json: value.to_string(),
                }
            })
            .collect()
    }

    /// The cached token as snapshot JSON, or none if no token is usable at `now_ms`.
    pub fn export_snapshot(&self, now_ms: i64) -> Result<Option<String>, EngineError> {
        let now = to_u64(now_ms, "now_ms")?;
        Ok(self.engine().export_snapshot(now))
    }

    /// Loads a snapshot; refused with `EngineException.Snapshot` and a reason.
    pub fn import_snapshot(&self, snapshot: String, now_ms: i64) -> Result<(), EngineError> {
        let now = to_u64(now_ms, "now_ms")?;
        Ok(self.engine().import_snapshot(&snapshot, now)?)
    }

    /// The id of the fetch in flight, if any.
    pub fn in_flight(&self) -> Option<i64> {
        self.engine().in_flight().map(|id| to_i64(id.0))
    }

    /// `idle`, `fetching`, `backing_off` or `held`.
    pub fn state(&self) -> String {
        serde_name(&self.engine().state())
    }

    /// The client id.
    pub fn client_id(&self) -> String {
        self.engine().config().client_id().to_owned()
    }

    /// Where token requests go (none until an issuer's document was read).
    pub fn token_endpoint(&self) -> Option<String> {
        self.engine().token_endpoint().map(str::to_owned)
    }

    /// The auth method token requests use.
    pub fn auth_method(&self) -> String {
        self.engine().auth_method().as_str().to_owned()
    }

    /// How many secrets are configured.
    pub fn secret_count(&self) -> u32 {
        u32::try_from(self.engine().config().secret_count()).unwrap_or(u32::MAX)
    }

    /// How many private keys are configured.
    pub fn key_count(&self) -> u32 {
        u32::try_from(self.engine().config().key_count()).unwrap_or(u32::MAX)
    }

    /// The largest response body the engine accepts (bytes).
    pub fn max_response_bytes(&self) -> i64 {
        i64::try_from(self.engine().config().policy().max_response_bytes).unwrap_or(i64::MAX)
    }

    /// The timeout of one token request (ms).
    pub fn request_timeout_ms(&self) -> i64 {
        to_i64(self.engine().config().policy().request_timeout_ms)
    }
}

/// The 401 rule: after `invalidate` returned `outcome`, whether to retry the
/// request once with the next token. Never after `rate_limited`.
#[uniffi::export]
pub fn retry_request(outcome: String) -> Result<bool, EngineError> {
    let outcome: InvalidateOutcome = serde_json::from_value(serde_json::Value::String(outcome)).map_err(|_| {
        EngineError::Argument { detail: "outcome must be invalidated, not_current or rate_limited".to_owned() }
    })?;
    Ok(outcome.retry_request())
}

/// The `snake_case` name serde gives a unit enum value.
pub(crate) fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}
