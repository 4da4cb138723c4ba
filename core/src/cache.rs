//! The token cache state machine.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::config::{validate_secrets, AuthMethod, Config};
use crate::discovery::{choose_auth_method, discovery_urls, is_absent, parse_discovery_response, DiscoveryDocument};
use crate::entropy::EntropyPool;
use crate::error::{ConfigError, ErrorKind, SnapshotError, TokenError};
use crate::event::{CacheFileProblem, DiscoveryCause, Event, EventKind, RefreshReason};
use crate::keys::{parse_key_file, PrivateKey};
use crate::request::{build_request_at, discovery_request, FetchId, TokenRequest};
use crate::response::{parse_guarded, server_text, LifetimeSource, ParsedToken};
use crate::scrub::{Credentials, WITHHELD};
use crate::secret::{AccessToken, ClientSecret, REDACTED};

/// A fetch never reported on is abandoned this long after its request timeout.
const FETCH_GRACE_MS: u64 = 1_000;

/// A token the engine hands out, with the instants that govern it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The bearer token. Redacted in `Debug`.
    pub access_token: AccessToken,
    /// Always `"Bearer"`.
    pub token_type: String,
    /// Granted scopes (the requested ones if the server did not say).
    pub scope: Vec<String>,
    /// When the response arrived (ms since the Unix epoch).
    pub received_at: u64,
    /// When the token expires.
    pub expires_at: u64,
    /// The token is never served at or after this instant: `expires_at - margin`.
    pub usable_until: u64,
    /// From this instant a poll also asks for a background refresh.
    pub refresh_at: u64,
    /// Where the lifetime came from.
    pub lifetime_source: LifetimeSource,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("received_at", &self.received_at)
            .field("expires_at", &self.expires_at)
            .field("usable_until", &self.usable_until)
            .field("refresh_at", &self.refresh_at)
            .field("lifetime_source", &self.lifetime_source)
            .finish()
    }
}

/// Serializes with the access token in clear: hosts serialize a token to hand it
/// to their own language. Never log the result.
impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            access_token: &'a str,
            token_type: &'a str,
            scope: &'a [String],
            received_at: u64,
            expires_at: u64,
            usable_until: u64,
            refresh_at: u64,
            lifetime_source: LifetimeSource,
        }
        Wire {
            access_token: self.access_token.expose(),
            token_type: &self.token_type,
            scope: &self.scope,
            received_at: self.received_at,
            expires_at: self.expires_at,
            usable_until: self.usable_until,
            refresh_at: self.refresh_at,
            lifetime_source: self.lifetime_source,
        }
        .serialize(serializer)
    }
}

/// What the host should do now. See [`TokenCache`] for the driving loop.
#[must_use = "a poll result says what the host must do"]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PollResult {
    /// Use this token.
    Ready {
        /// The token.
        token: Token,
    },
    /// Use this token, and send this refresh in the background.
    ReadyAndSend {
        /// The token.
        token: Token,
        /// The refresh to send.
        request: TokenRequest,
    },
    /// No usable token: send this request, report its outcome, then poll again.
    Send {
        /// The request to send.
        request: TokenRequest,
    },
    /// A request is already in flight: wait for its outcome, then poll again.
    Wait {
        /// The request in flight.
        fetch_id: FetchId,
    },
    /// No usable token and nothing may be sent before `error.retry_at`.
    Fail {
        /// The last failure, with its retry time.
        error: TokenError,
    },
}

/// The former name of [`PollResult`] (renamed so that Rust, WIT, TypeScript
/// and Python call the poll outcome by one name).
#[deprecated(since = "0.2.0", note = "renamed to PollResult")]
pub type Poll = PollResult;

/// What `invalidate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidateOutcome {
    /// The token was dropped; the next poll fetches a new one.
    Invalidated,
    /// The token is not the current one (already replaced): nothing to do.
    NotCurrent,
    /// An invalidation was honoured too recently; the token stays.
    RateLimited,
}

impl InvalidateOutcome {
    /// The 401 rule every host's authorized request helper follows (Node's
    /// `account.fetch`, Python's `requests` / `httpx` auth): when an API
    /// answers 401 for token T, call `invalidate(T)`, then retry the request
    /// **once** with the token the account gives next if this is true: the
    /// token was dropped (`Invalidated`) or a newer one already replaced it
    /// (`NotCurrent`). Not when `RateLimited`: the same token would be sent
    /// again, and a misconfigured API must not cause a refresh loop. The retry
    /// never retries again, whatever it gets.
    pub fn retry_request(self) -> bool {
        match self {
            InvalidateOutcome::Invalidated | InvalidateOutcome::NotCurrent => true,
            InvalidateOutcome::RateLimited => false,
        }
    }
}

/// How a token request failed without a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportErrorKind {
    /// The request did not complete within its timeout.
    Timeout,
    /// The connection could not be made (refused, DNS, TLS).
    Connect,
    /// The connection broke while sending or reading.
    Io,
    /// The server's TLS certificate could not be verified (unknown CA, wrong
    /// host name, expired). Classified as [`ErrorKind::TlsCertificate`], a
    /// configuration fault that is held rather than retried.
    Tls,
    /// Anything else.
    Other,
}

/// The engine's state, for observability. Whether a token is cached is orthogonal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheState {
    /// Nothing in flight, nothing pending.
    Idle,
    /// A token request is in flight.
    Fetching,
    /// A transient failure: waiting for the retry time.
    BackingOff,
    /// A configuration-class failure: held for a long time or until secrets change.
    Held,
}

#[derive(Debug, Clone)]
struct InFlight {
    id: FetchId,
    reason: RefreshReason,
    secret_index: usize,
    generation: u64,
    deadline: u64,
    purpose: Purpose,
}

/// What a request in flight asks for.
#[derive(Debug, Clone)]
enum Purpose {
    /// A token; with the client assertion it carried (kept to withhold server
    /// text that echoes it; redacted in `Debug`, zeroized on drop).
    Token { assertion: Option<ClientSecret> },
    /// The issuer's metadata document, at well-known URL number `candidate`.
    Discovery { candidate: usize, cause: DiscoveryCause },
}

/// Issuer discovery's state (see the `discovery` module).
#[derive(Debug, Clone)]
struct Discovery {
    /// The accepted document and the method chosen with it.
    document: Option<(DiscoveryDocument, AuthMethod)>,
    /// When the document is fetched again.
    refresh_at: u64,
    /// The well-known URL to try next (0: RFC 8414, 1: OpenID Connect).
    candidate: usize,
    /// The token endpoint answered 404: fetch the document again before the next token request.
    stale: bool,
    /// A 404 already caused a fetch since the last token: the next 404 is held.
    refetched_after_404: bool,
}

/// The closed set of states (see [`CacheState`]).
#[derive(Debug, Clone)]
enum Phase {
    Idle,
    Fetching(InFlight),
    BackingOff { retry_at: u64, error: TokenError },
    Held { until: u64, error: TokenError },
}

/// The deadlines the engine keeps; [`TokenCache::next_wakeup`] is the earliest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    RefreshAhead,
    TokenUnusable,
    Retry,
    FetchDeadline,
}

/// A persisted token (see [`TokenCache::export_snapshot`]).
#[derive(Serialize, Deserialize)]
struct SnapshotWire {
    version: u64,
    fingerprint: String,
    access_token: String,
    token_type: String,
    scope: Vec<String>,
    received_at: u64,
    expires_at: u64,
}

const SNAPSHOT_VERSION: u64 = 1;

/// Withholds the server-supplied texts of `error` that hold a credential.
fn withhold_credentials(credentials: &Credentials, error: &mut TokenError) {
    for text in [&mut error.description, &mut error.oauth_error].into_iter().flatten() {
        if credentials.found_in(text) {
            *text = WITHHELD.to_owned();
        }
    }
}

/// Deterministic jitter from host-given entropy (SplitMix64).
#[derive(Debug, Clone)]
struct Jitter(u64);

impl Jitter {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The sans-IO token cache for one client.
///
/// The host owns the clock, the HTTP client, timers and threads; the cache
/// decides. Drive it like this:
///
/// 1. [`poll`](Self::poll) with the current time whenever a caller wants a token
///    (and when [`next_wakeup`](Self::next_wakeup) is reached). Act on the
///    [`Poll`]: use the token, send the request, wait for the fetch in flight,
///    or fail with the error.
/// 2. When a request ends, report it with [`handle_response`](Self::handle_response)
///    or [`handle_transport_error`](Self::handle_transport_error) against its
///    [`FetchId`], then wake waiting callers so they poll again.
/// 3. Drain [`poll_event`](Self::poll_event) for logs and metrics.
/// 4. Call [`invalidate`](Self::invalidate) when an API answers 401 for a token,
///    and [`replace_secrets`](Self::replace_secrets) /
///    [`replace_keys_from_file`](Self::replace_keys_from_file) when the
///    secrets or keys change.
///
/// Issue-12 additions a host honours: a request to send may be a `GET` (issuer
/// discovery): send it without a body and report it like any other; its
/// `handle_response` answers [`ErrorKind::DiscoveryComplete`], after which a
/// poll sends the token request. A client that signs assertions gets fresh
/// OS randomness through [`add_entropy`](Self::add_entropy) before each poll
/// that may send.
///
/// A host may skip `poll` and serve the token it last received until
/// `next_wakeup()`: nothing changes before then unless the host itself calls
/// `invalidate`, `replace_secrets`, `replace_keys` or `import_snapshot`.
#[derive(Debug)]
pub struct TokenCache {
    config: Config,
    token: Option<Token>,
    phase: Phase,
    /// The secret to use next: the one that last worked.
    secret_index: usize,
    /// Secrets refused with `invalid_client` in the current fallback round.
    fallback_failures: usize,
    /// Bumped by `replace_secrets`, so a refusal of an old secret is not held against new ones.
    secrets_generation: u64,
    /// Consecutive transient failures.
    failures: u32,
    next_fetch_id: u64,
    last_now: Option<u64>,
    last_invalidation: Option<u64>,
    pending_reason: Option<RefreshReason>,
    events: VecDeque<Event>,
    jitter: Jitter,
    /// Secrets replaced at run time: still scrubbed from server text, since a
    /// fetch in flight may have used one.
    retired_secrets: VecDeque<ClientSecret>,
    /// The last refresh failed for a transient reason: outage grace may serve
    /// the cached token inside its margin.
    outage: Option<Outage>,
    /// Host-fed randomness for client assertions (see [`EntropyPool`]).
    entropy: EntropyPool,
    /// Issuer discovery, when the token endpoint comes from `issuer`.
    discovery: Option<Discovery>,
}

/// A streak of transient refresh failures (see `RefreshPolicy::outage_grace`).
#[derive(Debug, Clone, Copy)]
struct Outage {
    error_kind: ErrorKind,
    /// Whether `OutageGraceServed` was emitted for this streak.
    announced: bool,
}

impl TokenCache {
    /// A cache for `config`. `entropy` seeds the jitter and the entropy pool
    /// of client assertions (pass random bits from the host, or a constant in
    /// tests); the engine draws no randomness of its own. A host whose client
    /// signs assertions also calls [`add_entropy`](Self::add_entropy) before
    /// each poll that may send (see [`EntropyPool`] for the rule).
    pub fn new(config: Config, entropy: u64) -> Self {
        let discovery = config.token_url.is_none().then_some(Discovery {
            document: None,
            refresh_at: 0,
            candidate: 0,
            stale: false,
            refetched_after_404: false,
        });
        Self {
            entropy: EntropyPool::new(entropy),
            discovery,
            config,
            token: None,
            phase: Phase::Idle,
            secret_index: 0,
            fallback_failures: 0,
            secrets_generation: 0,
            failures: 0,
            next_fetch_id: 1,
            last_now: None,
            last_invalidation: None,
            pending_reason: None,
            events: VecDeque::new(),
            jitter: Jitter(entropy),
            retired_secrets: VecDeque::new(),
            outage: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Mixes fresh host randomness into the entropy pool that makes each
    /// client assertion's `jti` (and RSA blinding and PSS salts). Pass at
    /// least 16 bytes from the OS random source before every `poll` that may
    /// send a request; see [`EntropyPool`] for why (forked processes).
    pub fn add_entropy(&mut self, bytes: &[u8]) {
        self.entropy.add_entropy(bytes);
    }

    /// The token endpoint token requests go to: `token_url`, or the one
    /// discovered from the issuer (`None` until the document was read).
    pub fn token_endpoint(&self) -> Option<&str> {
        match &self.discovery {
            None => self.config.token_url.as_deref(),
            Some(discovery) => discovery.document.as_ref().map(|(doc, _)| doc.token_endpoint.as_str()),
        }
    }

    /// The auth method token requests use: the configuration's, or the one
    /// chosen with the discovered document.
    pub fn auth_method(&self) -> AuthMethod {
        match self.discovery.as_ref().and_then(|d| d.document.as_ref()) {
            Some((_, method)) => *method,
            None => self.config.auth_method,
        }
    }

    /// The state, for observability.
    pub fn state(&self) -> CacheState {
        match self.phase {
            Phase::Idle => CacheState::Idle,
            Phase::Fetching(_) => CacheState::Fetching,
            Phase::BackingOff { .. } => CacheState::BackingOff,
            Phase::Held { .. } => CacheState::Held,
        }
    }

    /// The cached token, usable or not.
    pub fn current_token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// The fetch in flight, if any.
    pub fn in_flight(&self) -> Option<FetchId> {
        match &self.phase {
            Phase::Fetching(flight) => Some(flight.id),
            _ => None,
        }
    }

    /// What the host should do now. See the type's documentation.
    pub fn poll(&mut self, now: u64) -> PollResult {
        self.observe_clock(now);
        self.abandon_overdue_fetch(now);
        let usable = self.usable_token(now);
        match &self.phase {
            Phase::Fetching(flight) => {
                return match usable {
                    Some(token) => PollResult::Ready { token },
                    None => PollResult::Wait { fetch_id: flight.id },
                };
            }
            Phase::BackingOff { retry_at, error } | Phase::Held { until: retry_at, error } => {
                if now < *retry_at {
                    return match usable {
                        Some(token) => PollResult::Ready { token },
                        None => PollResult::Fail { error: error.clone() },
                    };
                }
                if matches!(self.phase, Phase::Held { .. }) {
                    self.fallback_failures = 0;
                }
                self.phase = Phase::Idle;
            }
            Phase::Idle => {}
        }
        match usable {
            Some(token) if now >= token.refresh_at => {
                // Past the margin only under outage grace: the refresh is overdue.
                let reason = if now >= token.usable_until { RefreshReason::Expired } else { RefreshReason::Ahead };
                match self.start_fetch(now, reason) {
                    Ok(request) => PollResult::ReadyAndSend { token, request },
                    Err(_) => PollResult::Ready { token },
                }
            }
            Some(token) => PollResult::Ready { token },
            None => {
                let reason = self.pending_reason.take().unwrap_or(RefreshReason::Initial);
                match self.start_fetch(now, reason) {
                    Ok(request) => PollResult::Send { request },
                    Err(error) => PollResult::Fail { error },
                }
            }
        }
    }

    /// Reports the HTTP response to fetch `fetch_id`, received at `now`.
    ///
    /// `Ok` is the new token. `Err` is the classified failure; callers should
    /// still poll again, which may serve a still-valid token, try the next secret
    /// at once, or fail fast until `retry_at`.
    pub fn handle_response(
        &mut self,
        fetch_id: FetchId,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
        now: u64,
    ) -> Result<Token, TokenError> {
        self.observe_clock(now);
        let flight = self.take_flight(fetch_id)?;
        let credentials = self.credentials_for(&flight);
        if let Purpose::Discovery { .. } = flight.purpose {
            return Err(self.handle_discovery_response(&flight, status, headers, body, now, &credentials));
        }
        let parsed = parse_guarded(status, headers, body, now, &self.config.policy, &credentials);
        match parsed {
            Ok(parsed) => Ok(self.install(&flight, parsed, now)),
            Err(error) => Err(self.fail_flight(&flight, error, now)),
        }
    }

    /// Reports that fetch `fetch_id` failed without a response. `message` (for
    /// example the host's exception text, which may quote a proxy) is withheld
    /// whole if it holds a credential, and sanitized otherwise.
    pub fn handle_transport_error(
        &mut self,
        fetch_id: FetchId,
        kind: TransportErrorKind,
        message: &str,
        now: u64,
    ) -> TokenError {
        self.observe_clock(now);
        let flight = match self.take_flight(fetch_id) {
            Ok(flight) => flight,
            Err(error) => return error,
        };
        let error_kind = match kind {
            TransportErrorKind::Timeout => ErrorKind::Timeout,
            TransportErrorKind::Tls => ErrorKind::TlsCertificate,
            TransportErrorKind::Connect | TransportErrorKind::Io | TransportErrorKind::Other => ErrorKind::Transport,
        };
        let message = server_text(&self.credentials_for(&flight), message, 300);
        let mut description = if message.is_empty() { format!("{kind:?}").to_lowercase() } else { message };
        if kind == TransportErrorKind::Tls {
            description.push_str(
                "; if the server's certificate comes from a private CA, trust that CA with TOKENWELL_CA_FILE \
                 or the CA-file option (ca_file / caFile), else check the host name in token_url",
            );
        }
        self.fail_flight(&flight, TokenError::new(error_kind, description), now)
    }

    /// When the host should poll again even if no caller asks: the earliest of
    /// the refresh-ahead point, the token's usable limit, the retry time and the
    /// deadline of the fetch in flight. `None`: nothing is scheduled.
    pub fn next_wakeup(&self) -> Option<u64> {
        self.timers().into_iter().filter_map(|(_, at)| at).min()
    }

    /// The host's API answered 401 for `access_token`. Drops it if it is still
    /// the current token, at most once per `invalidate_min_interval_ms`.
    pub fn invalidate(&mut self, access_token: &str, now: u64) -> InvalidateOutcome {
        self.observe_clock(now);
        let is_current = self.token.as_ref().is_some_and(|t| t.access_token.expose() == access_token);
        if !is_current {
            return InvalidateOutcome::NotCurrent;
        }
        if let Some(last) = self.last_invalidation {
            let until = last.saturating_add(self.config.policy.invalidate_min_interval_ms);
            if now < until {
                self.emit(now, EventKind::InvalidateRateLimited { until });
                return InvalidateOutcome::RateLimited;
            }
        }
        let expires_at = self.token.take().map_or(0, |t| t.expires_at);
        // The API refused this token: it must not come back under outage grace.
        self.outage = None;
        self.pending_reason = Some(RefreshReason::Invalidated);
        self.last_invalidation = Some(now);
        self.emit(now, EventKind::TokenInvalidated { expires_at });
        InvalidateOutcome::Invalidated
    }

    /// Replaces the secrets (current first), for example after a mounted secret
    /// file changed. Returns whether anything changed. A change lifts a
    /// configuration-error hold and restarts the fallback from the first secret.
    pub fn replace_secrets(&mut self, secrets: Vec<ClientSecret>, now: u64) -> Result<bool, ConfigError> {
        self.observe_clock(now);
        validate_secrets(&secrets)?;
        if secrets == self.config.secrets {
            return Ok(false);
        }
        const MAX_RETIRED_SECRETS: usize = 8;
        for old in std::mem::replace(&mut self.config.secrets, secrets) {
            if !self.config.secrets.contains(&old) && !self.retired_secrets.contains(&old) {
                if self.retired_secrets.len() == MAX_RETIRED_SECRETS {
                    self.retired_secrets.pop_front();
                }
                self.retired_secrets.push_back(old);
            }
        }
        // Text kept for fail-fast may hold a secret the client only now knows
        // (the server may know the new secret first): check it again.
        let credentials = self.credentials();
        if let Phase::BackingOff { error, .. } | Phase::Held { error, .. } = &mut self.phase {
            withhold_credentials(&credentials, error);
        }
        let hold_lifted = self.credentials_changed();
        self.emit(now, EventKind::SecretsReplaced { count: self.config.secrets.len(), hold_lifted });
        Ok(true)
    }

    /// After new secrets or keys: a refusal of the old ones is not held
    /// against the new, and the fallback starts again from the first.
    /// Returns whether a hold was lifted.
    fn credentials_changed(&mut self) -> bool {
        self.secrets_generation += 1;
        self.secret_index = 0;
        self.fallback_failures = 0;
        let hold_lifted = matches!(self.phase, Phase::Held { .. });
        if hold_lifted {
            self.phase = Phase::Idle;
        }
        hold_lifted
    }

    /// Replaces the private keys (`private_key_jwt`; current first), for
    /// example after a mounted key file changed. Returns whether anything
    /// changed. Like a secret change, a key change lifts a configuration-error
    /// hold and restarts the fallback from the first key.
    pub fn replace_keys(&mut self, keys: Vec<PrivateKey>, now: u64) -> Result<bool, ConfigError> {
        self.observe_clock(now);
        if keys.is_empty() {
            return Err(ConfigError::new("private_key", "at least one key is required"));
        }
        if keys == self.config.keys {
            return Ok(false);
        }
        self.config.keys = keys;
        let hold_lifted = self.credentials_changed();
        self.emit(now, EventKind::KeysReplaced { count: self.config.keys.len(), hold_lifted });
        Ok(true)
    }

    /// Replaces the keys with a key file's `contents` (PEM blocks or a JWK /
    /// JWKS, current first; see [`parse_key_file`](crate::parse_key_file)),
    /// the one entry point every host uses after it read a changed key file
    /// (`CLIENT_PRIVATE_KEY_FILE`; watched with the same
    /// [`SecretFileWatch`](crate::SecretFileWatch) rule as the secret file). A
    /// file that holds no valid key keeps the current keys and emits one
    /// `SecretFileRejected` event naming `source`; its error is returned too.
    /// The error never quotes the file.
    pub fn replace_keys_from_file(&mut self, contents: &str, source: &str, now: u64) -> Result<bool, ConfigError> {
        let replaced =
            parse_key_file(contents, source, self.config.key_alg).and_then(|keys| self.replace_keys(keys, now));
        if let Err(error) = &replaced {
            self.report_secret_file_problem(source, &error.problem, now);
        }
        replaced
    }

    /// Replaces the secrets with a secret file's `contents` (one per line,
    /// current first; see [`parse_secret_file`](crate::parse_secret_file)),
    /// the one entry point every host uses after it read a changed file
    /// (see [`SecretFileWatch`](crate::SecretFileWatch)). A file that holds no
    /// valid secret keeps the current secrets and emits one
    /// `SecretFileRejected` event naming `source`; its error is returned too.
    pub fn replace_secrets_from_file(&mut self, contents: &str, source: &str, now: u64) -> Result<bool, ConfigError> {
        let replaced = crate::env::parse_secret_file(contents, source).and_then(|secrets| {
            self.replace_secrets(secrets, now).map_err(|mut e| {
                // A bad entry is named by the file, not by the option it would have filled.
                e.problem = format!("{}: {}", e.field, e.problem);
                e.field = source.to_owned();
                e
            })
        });
        if let Err(error) = &replaced {
            self.report_secret_file_problem(source, &error.problem, now);
        }
        replaced
    }

    /// The host could not read the secret file named by `source` (`problem`
    /// says why, e.g. "cannot be read (NotFound)", never the contents): the
    /// secrets already loaded stay in use, and one `SecretFileRejected` event
    /// says so.
    pub fn report_secret_file_problem(&mut self, source: &str, problem: &str, now: u64) {
        self.observe_clock(now);
        let (source, problem) = (source.to_owned(), problem.to_owned());
        self.emit(now, EventKind::SecretFileRejected { source, problem });
    }

    /// The host could not use its token cache file as it should (`problem`;
    /// `detail` is a non-secret reason, error name or mode): one
    /// `CacheFileProblem` event, so that every host reports the cron cache's
    /// problems as the same engine event. Hosts report a problem once until it
    /// changes.
    pub fn report_cache_file_problem(&mut self, path: &str, problem: CacheFileProblem, detail: &str, now: u64) {
        self.observe_clock(now);
        let (path, detail) = (path.to_owned(), detail.to_owned());
        self.emit(now, EventKind::CacheFileProblem { path, problem, detail });
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The cached token as JSON for persistence (no client secret in it), if a
    /// token usable at `now` is cached. The JSON holds the access token: store
    /// it like one (the Python binding writes it with mode 0600).
    pub fn export_snapshot(&self, now: u64) -> Option<String> {
        let token = self.token.as_ref().filter(|t| now < t.usable_until)?;
        let wire = SnapshotWire {
            version: SNAPSHOT_VERSION,
            fingerprint: self.config.fingerprint(),
            access_token: token.access_token.expose().to_owned(),
            token_type: token.token_type.clone(),
            scope: token.scope.clone(),
            received_at: token.received_at,
            expires_at: token.expires_at,
        };
        serde_json::to_string(&wire).ok()
    }

    /// Loads a persisted token. Refused with a reason when corrupt, from another
    /// version, for another configuration (fingerprint), or no longer usable at
    /// `now`. A loaded token replaces the cached one only if it lives longer.
    pub fn import_snapshot(&mut self, json: &str, now: u64) -> Result<(), SnapshotError> {
        self.observe_clock(now);
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|_| SnapshotError::Corrupt { detail: "not JSON".to_owned() })?;
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        match version {
            Some(SNAPSHOT_VERSION) => {}
            Some(other) => return Err(SnapshotError::UnsupportedVersion { version: other }),
            None => return Err(SnapshotError::Corrupt { detail: "no version".to_owned() }),
        }
        let wire: SnapshotWire = serde_json::from_value(value)
            .map_err(|_| SnapshotError::Corrupt { detail: "missing or mistyped fields".to_owned() })?;
        if wire.fingerprint != self.config.fingerprint() {
            return Err(SnapshotError::FingerprintMismatch);
        }
        if wire.access_token.is_empty()
            || !wire.access_token.bytes().all(|b| (0x21..=0x7e).contains(&b))
            || wire.expires_at <= wire.received_at
            || !wire.token_type.eq_ignore_ascii_case("bearer")
        {
            return Err(SnapshotError::Corrupt { detail: "inconsistent token fields".to_owned() });
        }
        if wire.received_at > now {
            // A file written "in the future" cannot be trusted to say how long
            // the token lives: it would stretch the lifetime past any clamp.
            return Err(SnapshotError::Corrupt { detail: "received_at is in the future".to_owned() });
        }
        // The same clamp as a fresh response: a file cannot claim a longer life.
        let lifetime_ms = (wire.expires_at - wire.received_at).min(self.config.policy.max_lifetime_ms);
        let token = self.make_token(
            AccessToken::new(wire.access_token),
            wire.scope,
            wire.received_at,
            lifetime_ms,
            LifetimeSource::ExpiresIn,
        );
        if now >= token.usable_until {
            return Err(SnapshotError::Expired);
        }
        if self.token.as_ref().is_some_and(|current| current.expires_at >= token.expires_at) {
            return Ok(());
        }
        let expires_at = token.expires_at;
        self.token = Some(token);
        self.emit(now, EventKind::SnapshotImported { expires_at });
        Ok(())
    }

    // ---- internals ------------------------------------------------------------

    fn timers(&self) -> [(Timer, Option<u64>); 4] {
        let token = self.token.as_ref();
        let idle = matches!(self.phase, Phase::Idle);
        let (retry, deadline) = match &self.phase {
            Phase::Idle => (None, None),
            Phase::Fetching(flight) => (None, Some(flight.deadline)),
            Phase::BackingOff { retry_at, .. } | Phase::Held { until: retry_at, .. } => (Some(*retry_at), None),
        };
        [
            (Timer::RefreshAhead, token.filter(|_| idle).map(|t| t.refresh_at)),
            (Timer::TokenUnusable, token.map(|t| self.token_unusable_at(t))),
            (Timer::Retry, retry),
            (Timer::FetchDeadline, deadline),
        ]
    }

    fn usable_token(&mut self, now: u64) -> Option<Token> {
        match &self.token {
            Some(token) if now < token.usable_until => Some(token.clone()),
            Some(token) if self.grace_until(token).is_some_and(|until| now < until) => {
                let token = token.clone();
                let until = self.grace_until(&token).unwrap_or(token.usable_until);
                if let Some(outage) = self.outage.as_mut().filter(|o| !o.announced) {
                    outage.announced = true;
                    let error_kind = outage.error_kind;
                    self.emit(now, EventKind::OutageGraceServed { expires_at: token.expires_at, until, error_kind });
                }
                Some(token)
            }
            Some(_) => {
                self.token = None;
                self.pending_reason.get_or_insert(RefreshReason::Expired);
                None
            }
            None => None,
        }
    }

    /// A clock that went backwards shifts every stored instant with it, so
    /// lifetimes and delays keep their length instead of freezing or stretching.
    fn observe_clock(&mut self, now: u64) {
        let Some(last) = self.last_now else {
            self.last_now = Some(now);
            return;
        };
        if now >= last {
            self.last_now = Some(now);
            return;
        }
        let by = last - now;
        let shift = |t: &mut u64| *t = t.saturating_sub(by);
        if let Some(token) = &mut self.token {
            shift(&mut token.received_at);
            shift(&mut token.expires_at);
            shift(&mut token.usable_until);
            shift(&mut token.refresh_at);
        }
        if let Some(discovery) = &mut self.discovery {
            shift(&mut discovery.refresh_at);
        }
        match &mut self.phase {
            Phase::Idle => {}
            Phase::Fetching(flight) => shift(&mut flight.deadline),
            Phase::BackingOff { retry_at, error } | Phase::Held { until: retry_at, error } => {
                shift(retry_at);
                if let Some(at) = &mut error.retry_at {
                    shift(at);
                }
            }
        }
        if let Some(at) = &mut self.last_invalidation {
            shift(at);
        }
        self.last_now = Some(now);
        self.emit(now, EventKind::ClockWentBackwards { by_ms: by });
    }

    /// When the host must poll again for `token`: its usable limit, or under
    /// outage grace the end of grace, once the grace was announced (the poll at
    /// the usable limit is the one that announces it).
    fn token_unusable_at(&self, token: &Token) -> u64 {
        match (self.grace_until(token), self.outage) {
            (Some(until), Some(outage)) if outage.announced => until,
            _ => token.usable_until,
        }
    }

    /// Until when outage grace serves `token`, if a transient failure is in
    /// progress: `expires_at` less the safety, never earlier than `usable_until`.
    fn grace_until(&self, token: &Token) -> Option<u64> {
        let policy = &self.config.policy;
        if !policy.outage_grace || self.outage.is_none() {
            return None;
        }
        let margin = token.expires_at - token.usable_until;
        Some(token.expires_at - policy.outage_grace_safety_ms.min(margin))
    }

    fn abandon_overdue_fetch(&mut self, now: u64) {
        let overdue = matches!(&self.phase, Phase::Fetching(flight) if now >= flight.deadline);
        if overdue {
            let Phase::Fetching(flight) = std::mem::replace(&mut self.phase, Phase::Idle) else { return };
            self.emit(now, EventKind::FetchAbandoned { fetch_id: flight.id });
            let error = TokenError::new(ErrorKind::Timeout, "no outcome was reported before the request deadline");
            let _ = self.fail_flight(&flight, error, now);
        }
    }

    fn take_flight(&mut self, fetch_id: FetchId) -> Result<InFlight, TokenError> {
        match &self.phase {
            Phase::Fetching(flight) if flight.id == fetch_id => {
                let Phase::Fetching(flight) = std::mem::replace(&mut self.phase, Phase::Idle) else {
                    unreachable!("matched Fetching above")
                };
                Ok(flight)
            }
            _ => {
                let mut error = TokenError::new(
                    ErrorKind::StaleFetch,
                    format!("fetch {fetch_id} is not in flight (already reported or abandoned)"),
                );
                error.retryable = false;
                Err(error)
            }
        }
    }

    /// How many credentials `method` can fall back across: keys for
    /// `private_key_jwt`, else secrets.
    fn credential_count(&self, method: AuthMethod) -> usize {
        match method {
            AuthMethod::PrivateKeyJwt => self.config.keys.len(),
            _ => self.config.secrets.len(),
        }
    }

    /// The metadata fetch due before the next token request, if any: the
    /// well-known URL to try and why.
    fn discovery_due(&self, now: u64) -> Option<(usize, DiscoveryCause)> {
        let discovery = self.discovery.as_ref()?;
        let cause = match &discovery.document {
            None => DiscoveryCause::Initial,
            Some(_) if discovery.stale => DiscoveryCause::EndpointNotFound,
            Some(_) if now >= discovery.refresh_at => DiscoveryCause::Interval,
            Some(_) => return None,
        };
        Some((discovery.candidate, cause))
    }

    fn start_fetch(&mut self, now: u64, reason: RefreshReason) -> Result<TokenRequest, TokenError> {
        let timeout_ms = self.config.policy.request_timeout_ms;
        let (http, secret_index, purpose) = match (self.discovery_due(now), self.config.issuer.as_deref()) {
            (Some((candidate, cause)), Some(issuer)) => {
                let url = discovery_urls(issuer)[candidate.min(1)].clone();
                (discovery_request(&url), 0, Purpose::Discovery { candidate, cause })
            }
            _ => {
                let method = self.auth_method();
                let secret_index = self.secret_index.min(self.credential_count(method).saturating_sub(1));
                let endpoint = self.token_endpoint().unwrap_or_default().to_owned();
                match build_request_at(&self.config, &endpoint, method, secret_index, now, &mut self.entropy) {
                    Ok(http) => {
                        let assertion = http
                            .body
                            .split('&')
                            .find_map(|pair| pair.strip_prefix("client_assertion="))
                            .map(ClientSecret::from);
                        (http, secret_index, Purpose::Token { assertion })
                    }
                    Err(mut error) => {
                        // A key that passed validation cannot fail to sign: held like a configuration error.
                        let until = now.saturating_add(self.config.policy.config_error_hold_ms);
                        error.retry_at = Some(until);
                        self.phase = Phase::Held { until, error: error.clone() };
                        return Err(error);
                    }
                }
            }
        };
        let id = FetchId(self.next_fetch_id);
        self.next_fetch_id += 1;
        if let Purpose::Discovery { cause, .. } = &purpose {
            self.emit(now, EventKind::DiscoveryStarted { fetch_id: id, url: http.url.clone(), cause: *cause });
        } else {
            self.emit(now, EventKind::RefreshStarted { fetch_id: id, reason, secret_index });
        }
        self.phase = Phase::Fetching(InFlight {
            id,
            reason,
            secret_index,
            generation: self.secrets_generation,
            deadline: now.saturating_add(timeout_ms).saturating_add(FETCH_GRACE_MS),
            purpose,
        });
        Ok(TokenRequest { fetch_id: id, http, timeout_ms })
    }

    /// The answer to a metadata request: the document accepted (reported as
    /// [`ErrorKind::DiscoveryComplete`], retry at once), or a failure.
    fn handle_discovery_response(
        &mut self,
        flight: &InFlight,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
        now: u64,
        credentials: &Credentials,
    ) -> TokenError {
        let parsed =
            parse_discovery_response(&self.config, status, headers, body, now, credentials).and_then(|document| {
                let (keys, secrets) = (!self.config.keys.is_empty(), !self.config.secrets.is_empty());
                let method = choose_auth_method(&document, self.config.configured_auth_method, keys, secrets)
                    .map_err(|error| error.with_status(status))?;
                Ok((document, method))
            });
        let (document, method) = match parsed {
            Ok(found) => found,
            Err(error) => return self.fail_flight(flight, error, now),
        };
        let token_endpoint = document.token_endpoint.clone();
        let refresh_at = now.saturating_add(self.config.policy.discovery_refresh_ms);
        if let Some(discovery) = &mut self.discovery {
            let method_changed = discovery.document.as_ref().is_some_and(|(_, old)| *old != method);
            *discovery = Discovery {
                document: Some((document, method)),
                refresh_at,
                candidate: 0,
                stale: false,
                refetched_after_404: discovery.refetched_after_404,
            };
            if method_changed {
                self.secret_index = 0;
            }
        }
        if flight.reason != RefreshReason::Ahead && self.token.is_none() {
            self.pending_reason.get_or_insert(flight.reason);
        }
        self.emit(now, EventKind::DiscoveryCompleted { fetch_id: flight.id, token_endpoint, auth_method: method });
        let mut done = TokenError::new(
            ErrorKind::DiscoveryComplete,
            "the issuer's metadata document was read; poll again to send the token request",
        )
        .with_status(status);
        done.retryable = true;
        done.retry_at = Some(now);
        done
    }

    /// A failed fetch: discovery's own rules first, then the common ones ([`Self::fail`]).
    fn fail_flight(&mut self, flight: &InFlight, error: TokenError, now: u64) -> TokenError {
        let Some(discovery) = self.discovery.as_mut() else { return self.fail(flight, error, now) };
        match flight.purpose {
            Purpose::Token { .. } => {
                if error.kind == ErrorKind::EndpointNotFound && !discovery.refetched_after_404 {
                    // The server may have moved its token endpoint: read the document again, once.
                    discovery.stale = true;
                    discovery.refetched_after_404 = true;
                    if self.token.is_none() {
                        self.pending_reason.get_or_insert(flight.reason);
                    }
                    let error = self.retry_now(error, now);
                    // The event says what the engine does with it: retried at once.
                    self.emit(now, EventKind::RefreshFailed { fetch_id: flight.id, error: error.clone() });
                    return error;
                }
                self.fail(flight, error, now)
            }
            Purpose::Discovery { candidate, .. } => {
                if candidate == 0 && is_absent(error.status) {
                    // No RFC 8414 document: the OpenID Connect one is asked for at once.
                    // Normal for OpenID providers (Hydra, Keycloak), so no
                    // refresh_failed: the next discovery_started names the other URL.
                    discovery.candidate = 1;
                    return self.retry_now(error, now);
                }
                if error.retryable && discovery.document.is_some() && !discovery.stale {
                    // A periodic refresh failed in an outage: the document in hand still serves.
                    let retry_at = now.saturating_add(self.config.policy.backoff_max_ms);
                    discovery.refresh_at = retry_at;
                    discovery.candidate = 0;
                    let error = self.retry_now(error, now);
                    self.emit(now, EventKind::RefreshFailed { fetch_id: flight.id, error: error.clone() });
                    self.emit(now, EventKind::DiscoveryKeptCached { fetch_id: flight.id, retry_at });
                    return error;
                }
                if !error.retryable {
                    // Refused for good: the next attempt starts over, and an old document is not trusted.
                    discovery.candidate = 0;
                    discovery.document = None;
                }
                self.fail(flight, error, now)
            }
        }
    }

    fn make_token(
        &mut self,
        access_token: AccessToken,
        scope: Vec<String>,
        received_at: u64,
        lifetime_ms: u64,
        lifetime_source: LifetimeSource,
    ) -> Token {
        let policy = &self.config.policy;
        let expires_at = received_at.saturating_add(lifetime_ms);
        // The lifetime that fits before the end of time: the margin is taken
        // from it, so `usable_until` never falls before `received_at`.
        let lifetime_ms = expires_at - received_at;
        let margin = policy.refresh_margin_ms.min(lifetime_ms / 2);
        let usable_until = expires_at - margin;
        let spread = policy.refresh_ahead_jitter * (2.0 * self.jitter.unit() - 1.0);
        let fraction = (policy.refresh_ahead + spread).clamp(0.0, 1.0);
        let refresh_at = received_at.saturating_add(((usable_until - received_at) as f64 * fraction) as u64);
        Token {
            access_token,
            token_type: "Bearer".to_owned(),
            scope,
            received_at,
            expires_at,
            usable_until,
            refresh_at: refresh_at.min(usable_until.saturating_sub(1)).max(received_at),
            lifetime_source,
        }
    }

    fn install(&mut self, flight: &InFlight, parsed: ParsedToken, now: u64) -> Token {
        let scope = parsed.scope.clone().unwrap_or_else(|| self.config.scopes.clone());
        let token = self.make_token(parsed.access_token, scope, now, parsed.lifetime_ms, parsed.lifetime_source);
        self.secret_index = if flight.generation == self.secrets_generation { flight.secret_index } else { 0 };
        self.fallback_failures = 0;
        if let Some(discovery) = &mut self.discovery {
            discovery.refetched_after_404 = false;
        }
        self.failures = 0;
        self.outage = None;
        self.pending_reason = None;
        self.phase = Phase::Idle;
        self.emit(
            now,
            EventKind::TokenAcquired {
                fetch_id: flight.id,
                expires_at: token.expires_at,
                refresh_at: token.refresh_at,
                lifetime_source: parsed.lifetime_source,
                lifetime_clamped: parsed.lifetime_clamped,
                scope: token.scope.clone(),
                secret_index: flight.secret_index,
            },
        );
        self.token = Some(token.clone());
        token
    }

    /// Classifies the consequence of a failed fetch and schedules what comes next.
    fn fail(&mut self, flight: &InFlight, mut error: TokenError, now: u64) -> TokenError {
        // Server text was checked as it was parsed; this is the last line of
        // defence for text the engine composed around it.
        withhold_credentials(&self.credentials(), &mut error);
        self.emit(now, EventKind::RefreshFailed { fetch_id: flight.id, error: error.clone() });
        if flight.reason != RefreshReason::Ahead && self.pending_reason.is_none() && self.token.is_none() {
            self.pending_reason = Some(flight.reason);
        }

        if error.kind == ErrorKind::InvalidClient {
            let count = self.credential_count(self.auth_method());
            if flight.generation != self.secrets_generation {
                // The refused secret is from before a replacement: try the new ones now.
                return self.retry_now(error, now);
            }
            if count > 1 {
                self.fallback_failures += 1;
                let to_index = (flight.secret_index + 1) % count;
                self.secret_index = to_index;
                if self.fallback_failures < count {
                    self.emit(
                        now,
                        EventKind::SecretFallback { fetch_id: flight.id, from_index: flight.secret_index, to_index },
                    );
                    return self.retry_now(error, now);
                }
                self.fallback_failures = 0;
            }
        }

        if !error.retryable {
            // Not an outage: the server refused this client. No grace.
            self.outage = None;
            let until = now.saturating_add(self.config.policy.config_error_hold_ms);
            error.retry_at = Some(until);
            self.phase = Phase::Held { until, error: error.clone() };
            self.emit(
                now,
                EventKind::BackoffScheduled { retry_at: until, attempt: 0, error_kind: error.kind, hold: true },
            );
            return error;
        }

        self.failures = self.failures.saturating_add(1);
        if self.outage.is_none() {
            self.outage = Some(Outage { error_kind: error.kind, announced: false });
        }
        let mut retry_at = now.saturating_add(self.backoff_delay(self.failures));
        if let Some(server_says) = error.retry_at {
            retry_at = retry_at.max(server_says);
        }
        error.retry_at = Some(retry_at);
        self.phase = Phase::BackingOff { retry_at, error: error.clone() };
        self.emit(
            now,
            EventKind::BackoffScheduled { retry_at, attempt: self.failures, error_kind: error.kind, hold: false },
        );
        error
    }

    fn retry_now(&mut self, mut error: TokenError, now: u64) -> TokenError {
        error.retryable = true;
        error.retry_at = Some(now);
        self.phase = Phase::Idle;
        error
    }

    /// Exponential backoff with full jitter: uniform in `[0, min(max, initial * 2^(n-1))]`,
    /// raised to `backoff_min_ms`.
    fn backoff_delay(&mut self, attempt: u32) -> u64 {
        let p = &self.config.policy;
        let ceiling = p.backoff_initial_ms.saturating_mul(1u64 << (attempt - 1).min(40)).min(p.backoff_max_ms);
        let drawn = if p.backoff_jitter { (ceiling as f64 * self.jitter.unit()) as u64 } else { ceiling };
        drawn.max(p.backoff_min_ms)
    }

    /// Every secret server text must not reveal: the configured ones and those
    /// replaced at run time (a fetch in flight may have used one).
    fn credentials(&self) -> Credentials {
        Credentials::new(self.config.secrets.iter().chain(&self.retired_secrets))
    }

    /// [`Self::credentials`] and the client assertion `flight` carried.
    fn credentials_for(&self, flight: &InFlight) -> Credentials {
        let assertion = match &flight.purpose {
            Purpose::Token { assertion } => assertion.as_ref().map(ClientSecret::expose),
            Purpose::Discovery { .. } => None,
        };
        self.credentials().with_assertion(assertion)
    }

    fn emit(&mut self, at: u64, kind: EventKind) {
        const MAX_QUEUED_EVENTS: usize = 1024;
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(Event { at, actor_type: "client", actor_id: self.config.client_id.clone(), kind });
    }
}
