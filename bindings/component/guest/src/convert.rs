//! Conversions between the engine's types and the WIT `types` interface, one
//! function per type. No logic lives here: every value is the engine's.
//!
//! Every kind the engine has today is named by one match arm. The engine's
//! error kinds, faults, event kinds and cache-file problems are
//! `#[non_exhaustive]`, so each match keeps a wildcard arm for kinds newer
//! than this WIT (an error reads as `rejected`, an event is dropped); the
//! conformance replay, which checks every kind, catches one left unmapped.
//! (The WIT's `other` event case is kept for newer guests.)

use tokenwell as tw;

use crate::bindings::exports::tokenwell::client::types as wit;

/// A WIT configuration as the engine's all-`Option` options, for
/// [`tw::Config::from_options`] to validate.
pub fn config_options(config: wit::Config) -> tw::ConfigOptions {
    let auth_method = config.auth_method.map(|method| auth_method_in(method).as_str().to_owned());
    let assertion_audience = config.assertion_audience.map(|audience| {
        match audience {
            wit::AssertionAudience::TokenEndpoint => "token_endpoint",
            wit::AssertionAudience::Issuer => "issuer",
        }
        .to_owned()
    });
    tw::ConfigOptions {
        token_url: config.token_url,
        issuer: config.issuer,
        client_id: Some(config.client_id),
        client_secret: config.client_secrets.map(|list| tw::SecretOrSecrets::Many(secrets(list))),
        private_key: Some(tw::SecretOrSecrets::Many(secrets(config.private_keys))),
        auth_method,
        assertion_signing_alg: config.assertion_signing_alg.map(|alg| signing_alg(alg).as_str().to_owned()),
        assertion_audience,
        assertion_lifetime_ms: config.assertion_lifetime_ms,
        discovery_refresh_ms: config.discovery_refresh_ms,
        scope: Some(tw::ListOrString::List(config.scopes)),
        audience: Some(tw::ListOrString::List(config.audiences)),
        extra_params: Some(config.extra_params),
        allow_insecure_http: config.allow_insecure_http,
        refresh_margin_ms: config.refresh_margin_ms,
        refresh_ahead: config.refresh_ahead,
        refresh_ahead_jitter: config.refresh_ahead_jitter,
        default_lifetime_ms: config.default_lifetime_ms,
        min_lifetime_ms: config.min_lifetime_ms,
        max_lifetime_ms: config.max_lifetime_ms,
        // Out of range on a 32-bit guest: the engine refuses it by name.
        max_response_bytes: config.max_response_bytes.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        request_timeout_ms: config.request_timeout_ms,
        backoff_initial_ms: config.backoff_initial_ms,
        backoff_max_ms: config.backoff_max_ms,
        backoff_min_ms: config.backoff_min_ms,
        backoff_jitter: config.backoff_jitter,
        max_retry_after_ms: config.max_retry_after_ms,
        config_error_hold_ms: config.config_error_hold_ms,
        invalidate_min_interval_ms: config.invalidate_min_interval_ms,
        outage_grace: config.outage_grace,
        outage_grace_safety_ms: config.outage_grace_safety_ms,
    }
}

/// An auth method from the WIT.
fn auth_method_in(method: wit::AuthMethod) -> tw::AuthMethod {
    match method {
        wit::AuthMethod::ClientSecretBasic => tw::AuthMethod::ClientSecretBasic,
        wit::AuthMethod::ClientSecretPost => tw::AuthMethod::ClientSecretPost,
        wit::AuthMethod::PrivateKeyJwt => tw::AuthMethod::PrivateKeyJwt,
        wit::AuthMethod::ClientSecretJwt => tw::AuthMethod::ClientSecretJwt,
    }
}

/// An auth method for the WIT (in events).
fn auth_method(method: tw::AuthMethod) -> wit::AuthMethod {
    match method {
        tw::AuthMethod::ClientSecretBasic => wit::AuthMethod::ClientSecretBasic,
        tw::AuthMethod::ClientSecretPost => wit::AuthMethod::ClientSecretPost,
        tw::AuthMethod::PrivateKeyJwt => wit::AuthMethod::PrivateKeyJwt,
        tw::AuthMethod::ClientSecretJwt => wit::AuthMethod::ClientSecretJwt,
    }
}

/// A signing algorithm from the WIT.
fn signing_alg(alg: wit::SigningAlg) -> tw::SigningAlg {
    use tw::SigningAlg as A;
    use wit::SigningAlg as W;
    match alg {
        W::Rs256 => A::RS256,
        W::Rs384 => A::RS384,
        W::Rs512 => A::RS512,
        W::Ps256 => A::PS256,
        W::Ps384 => A::PS384,
        W::Ps512 => A::PS512,
        W::Es256 => A::ES256,
        W::Es384 => A::ES384,
        W::Hs256 => A::HS256,
        W::Hs384 => A::HS384,
        W::Hs512 => A::HS512,
    }
}

/// Secrets (or private keys, which the engine holds alike) from a WIT list.
pub fn secrets(secrets: Vec<String>) -> Vec<tw::ClientSecret> {
    secrets.into_iter().map(tw::ClientSecret::new).collect()
}

/// A refused configuration.
pub fn config_error(error: tw::ConfigError) -> wit::ConfigError {
    wit::ConfigError { field: error.field, problem: error.problem }
}

/// A token, with the access token in clear (the one value that carries it).
pub fn token(token: &tw::Token) -> wit::Token {
    wit::Token {
        access_token: token.access_token.expose().to_owned(),
        token_type: token.token_type.clone(),
        scope: token.scope.clone(),
        received_at: token.received_at,
        expires_at: token.expires_at,
        usable_until: token.usable_until,
        refresh_at: token.refresh_at,
        lifetime_source: lifetime_source(token.lifetime_source),
    }
}

/// A token request for the host to send.
#[cfg(feature = "engine")]
pub fn token_request(request: &tw::TokenRequest) -> wit::TokenRequest {
    wit::TokenRequest {
        fetch_id: request.fetch_id.0,
        method: request.http.method.clone(),
        url: request.http.url.clone(),
        headers: request.http.headers.clone(),
        body: request.http.body.clone(),
        timeout_ms: request.timeout_ms,
    }
}

/// Where a lifetime came from.
pub fn lifetime_source(source: tw::LifetimeSource) -> wit::LifetimeSource {
    match source {
        tw::LifetimeSource::ExpiresIn => wit::LifetimeSource::ExpiresIn,
        tw::LifetimeSource::JwtExp => wit::LifetimeSource::JwtExp,
        tw::LifetimeSource::Default => wit::LifetimeSource::Default,
    }
}

/// An error kind, by the same name.
pub fn error_kind(kind: tw::ErrorKind) -> wit::ErrorKind {
    use tw::ErrorKind as K;
    use wit::ErrorKind as W;
    match kind {
        K::Config => W::Config,
        K::InvalidClient => W::InvalidClient,
        K::InvalidScope => W::InvalidScope,
        K::InvalidTarget => W::InvalidTarget,
        K::UnauthorizedClient => W::UnauthorizedClient,
        K::UnsupportedGrantType => W::UnsupportedGrantType,
        K::InvalidRequest => W::InvalidRequest,
        K::InvalidGrant => W::InvalidGrant,
        K::Rejected => W::Rejected,
        K::RateLimited => W::RateLimited,
        K::ServerError => W::ServerError,
        K::TemporarilyUnavailable => W::TemporarilyUnavailable,
        K::Transport => W::Transport,
        K::Timeout => W::Timeout,
        K::MalformedResponse => W::MalformedResponse,
        K::EndpointNotFound => W::EndpointNotFound,
        K::TlsCertificate => W::TlsCertificate,
        K::StaleFetch => W::StaleFetch,
        K::Closed => W::Closed,
        K::DiscoveryFailed => W::DiscoveryFailed,
        K::IssuerMismatch => W::IssuerMismatch,
        K::DiscoveryComplete => W::DiscoveryComplete,
        // The engine's kinds are `#[non_exhaustive]`; one this WIT does not
        // name yet reads as a refusal. The conformance replay catches a kind
        // left unmapped: every kind appears in some scenario.
        _ => W::Rejected,
    }
}

/// Who is at fault.
pub fn fault(fault: tw::Fault) -> wit::Fault {
    use tw::Fault as F;
    use wit::Fault as W;
    match fault {
        F::Configuration => W::Configuration,
        F::Credentials => W::Credentials,
        F::AuthorizationServer => W::AuthorizationServer,
        F::Transport => W::Transport,
        F::MalformedResponse => W::MalformedResponse,
        F::Host => W::Host,
        _ => W::Host,
    }
}

/// A token error, with its one-line message.
pub fn token_error(error: &tw::TokenError) -> wit::TokenError {
    wit::TokenError {
        kind: error_kind(error.kind),
        fault: fault(error.fault),
        retryable: error.retryable,
        retry_at: error.retry_at,
        status: error.status,
        oauth_error: error.oauth_error.clone(),
        description: error.description.clone(),
        message: error.message(),
    }
}

/// A transport failure kind from the host.
#[cfg(feature = "engine")]
pub fn transport_error_kind(kind: wit::TransportErrorKind) -> tw::TransportErrorKind {
    match kind {
        wit::TransportErrorKind::Timeout => tw::TransportErrorKind::Timeout,
        wit::TransportErrorKind::Connect => tw::TransportErrorKind::Connect,
        wit::TransportErrorKind::Io => tw::TransportErrorKind::Io,
        wit::TransportErrorKind::Tls => tw::TransportErrorKind::Tls,
        wit::TransportErrorKind::Other => tw::TransportErrorKind::Other,
    }
}

/// What `invalidate` did.
pub fn invalidate_outcome(outcome: tw::InvalidateOutcome) -> wit::InvalidateOutcome {
    match outcome {
        tw::InvalidateOutcome::Invalidated => wit::InvalidateOutcome::Invalidated,
        tw::InvalidateOutcome::NotCurrent => wit::InvalidateOutcome::NotCurrent,
        tw::InvalidateOutcome::RateLimited => wit::InvalidateOutcome::RateLimited,
    }
}

/// The engine's state.
#[cfg(feature = "engine")]
pub fn cache_state(state: tw::CacheState) -> wit::CacheState {
    match state {
        tw::CacheState::Idle => wit::CacheState::Idle,
        tw::CacheState::Fetching => wit::CacheState::Fetching,
        tw::CacheState::BackingOff => wit::CacheState::BackingOff,
        tw::CacheState::Held => wit::CacheState::Held,
    }
}

/// Why a snapshot was refused.
#[cfg(feature = "engine")]
pub fn snapshot_error(error: tw::SnapshotError) -> wit::SnapshotError {
    match error {
        tw::SnapshotError::Corrupt { detail } => wit::SnapshotError::Corrupt(detail),
        tw::SnapshotError::UnsupportedVersion { version } => wit::SnapshotError::UnsupportedVersion(version),
        tw::SnapshotError::FingerprintMismatch => wit::SnapshotError::FingerprintMismatch,
        tw::SnapshotError::Expired => wit::SnapshotError::Expired,
    }
}

fn refresh_reason(reason: tw::RefreshReason) -> wit::RefreshReason {
    match reason {
        tw::RefreshReason::Initial => wit::RefreshReason::Initial,
        tw::RefreshReason::Ahead => wit::RefreshReason::Ahead,
        tw::RefreshReason::Expired => wit::RefreshReason::Expired,
        tw::RefreshReason::Invalidated => wit::RefreshReason::Invalidated,
    }
}

fn discovery_cause(cause: tw::DiscoveryCause) -> wit::DiscoveryCause {
    match cause {
        tw::DiscoveryCause::Initial => wit::DiscoveryCause::Initial,
        tw::DiscoveryCause::Interval => wit::DiscoveryCause::Interval,
        tw::DiscoveryCause::EndpointNotFound => wit::DiscoveryCause::EndpointNotFound,
    }
}

/// A cache-file problem. The engine's kinds are `#[non_exhaustive]`; one
/// this WIT does not name yet reads as `ignored` (the file was not used).
fn cache_file_problem(problem: tw::CacheFileProblem) -> wit::CacheFileProblemKind {
    use tw::CacheFileProblem as P;
    use wit::CacheFileProblemKind as W;
    match problem {
        P::Ignored => W::Ignored,
        P::PermissionsTightened => W::PermissionsTightened,
        P::WriteFailed => W::WriteFailed,
        P::LockFailed => W::LockFailed,
        P::LockTimeout => W::LockTimeout,
        _ => W::Ignored,
    }
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// An event, or `None` for a kind this WIT does not name yet (the engine's
/// `EventKind` is `#[non_exhaustive]`; the conformance replay, which checks
/// every event, catches one left unmapped).
pub fn event(event: tw::Event) -> Option<wit::Event> {
    use tw::EventKind as E;
    use wit::EventKind as W;
    let kind = match &event.kind {
        E::RefreshStarted { fetch_id, reason, secret_index } => W::RefreshStarted(wit::RefreshStarted {
            fetch_id: fetch_id.0,
            reason: refresh_reason(*reason),
            secret_index: index(*secret_index),
        }),
        E::TokenAcquired {
            fetch_id,
            expires_at,
            refresh_at,
            lifetime_source: source,
            lifetime_clamped,
            scope,
            secret_index,
        } => W::TokenAcquired(wit::TokenAcquired {
            fetch_id: fetch_id.0,
            expires_at: *expires_at,
            refresh_at: *refresh_at,
            lifetime_source: lifetime_source(*source),
            lifetime_clamped: *lifetime_clamped,
            scope: scope.clone(),
            secret_index: index(*secret_index),
        }),
        E::RefreshFailed { fetch_id, error } => {
            W::RefreshFailed(wit::RefreshFailed { fetch_id: fetch_id.0, error: token_error(error) })
        }
        E::SecretFallback { fetch_id, from_index, to_index } => W::SecretFallback(wit::SecretFallback {
            fetch_id: fetch_id.0,
            from_index: index(*from_index),
            to_index: index(*to_index),
        }),
        E::BackoffScheduled { retry_at, attempt, error_kind: kind, hold } => {
            W::BackoffScheduled(wit::BackoffScheduled {
                retry_at: *retry_at,
                attempt: *attempt,
                error_kind: error_kind(*kind),
                hold: *hold,
            })
        }
        E::FetchAbandoned { fetch_id } => W::FetchAbandoned(fetch_id.0),
        E::TokenInvalidated { expires_at } => W::TokenInvalidated(*expires_at),
        E::InvalidateRateLimited { until } => W::InvalidateRateLimited(*until),
        E::SecretsReplaced { count, hold_lifted } => {
            W::SecretsReplaced(wit::SecretsReplaced { count: index(*count), hold_lifted: *hold_lifted })
        }
        E::SnapshotImported { expires_at } => W::SnapshotImported(*expires_at),
        E::ClockWentBackwards { by_ms } => W::ClockWentBackwards(*by_ms),
        E::SecretFileRejected { source, problem } => {
            W::SecretFileRejected(wit::SecretFileRejected { source: source.clone(), problem: problem.clone() })
        }
        E::OutageGraceServed { expires_at, until, error_kind: kind } => W::OutageGraceServed(wit::OutageGraceServed {
            expires_at: *expires_at,
            until: *until,
            error_kind: error_kind(*kind),
        }),
        E::DiscoveryStarted { fetch_id, url, cause } => W::DiscoveryStarted(wit::DiscoveryStarted {
            fetch_id: fetch_id.0,
            url: url.clone(),
            cause: discovery_cause(*cause),
        }),
        E::DiscoveryCompleted { fetch_id, token_endpoint, auth_method: method } => {
            W::DiscoveryCompleted(wit::DiscoveryCompleted {
                fetch_id: fetch_id.0,
                token_endpoint: token_endpoint.clone(),
                auth_method: auth_method(*method),
            })
        }
        E::DiscoveryKeptCached { fetch_id, retry_at } => {
            W::DiscoveryKeptCached(wit::DiscoveryKeptCached { fetch_id: fetch_id.0, retry_at: *retry_at })
        }
        E::KeysReplaced { count, hold_lifted } => {
            W::KeysReplaced(wit::KeysReplaced { count: index(*count), hold_lifted: *hold_lifted })
        }
        E::CacheFileProblem { path, problem, detail } => W::CacheFileProblem(wit::CacheFileProblem {
            path: path.clone(),
            problem: cache_file_problem(*problem),
            detail: detail.clone(),
        }),
        _ => return None,
    };
    Some(wit::Event { at: event.at, actor_type: event.actor_type.to_owned(), actor_id: event.actor_id, kind })
}
