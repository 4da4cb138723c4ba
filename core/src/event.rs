//! Events for audit logs and metrics. Drain them with
//! [`TokenCache::poll_event`](crate::TokenCache::poll_event).
//!
//! Every event names its actor (`actor_type: "client"`, `actor_id: <client_id>`)
//! and never carries a secret or an access token.

use serde::Serialize;

use crate::config::AuthMethod;
use crate::error::{ErrorKind, TokenError};
use crate::request::FetchId;
use crate::response::LifetimeSource;

/// Why a token request was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshReason {
    /// There has never been a token.
    Initial,
    /// The token is valid but past its refresh-ahead point.
    Ahead,
    /// The token reached its refresh margin (or was never refreshed ahead).
    Expired,
    /// The host reported that an API rejected the token.
    Invalidated,
}

/// Why the issuer's metadata document is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryCause {
    /// No document yet.
    Initial,
    /// The cached document is older than `discovery_refresh_ms`.
    Interval,
    /// The discovered token endpoint answered 404 or 405.
    EndpointNotFound,
}

/// One event: when, who, and what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When it happened (ms since the Unix epoch, as given by the host).
    pub at: u64,
    /// Always `"client"`.
    pub actor_type: &'static str,
    /// The client id.
    pub actor_id: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What went wrong with the host's token cache file (see
/// [`EventKind::CacheFileProblem`]). The same names in every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CacheFileProblem {
    /// The file may not be used (a symlink, another owner, writable by others,
    /// too large, not a snapshot of this configuration): not read, and
    /// replaced by the next snapshot.
    Ignored,
    /// The file was readable by others; its mode was narrowed to 0600.
    PermissionsTightened,
    /// A snapshot could not be written.
    WriteFailed,
    /// The lock file may not be used: no cross-process single flight.
    LockFailed,
    /// Another process held the lock past the wait: fetched without it.
    LockTimeout,
}

impl CacheFileProblem {
    /// Its parse from the `snake_case` name hosts use.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "ignored" => Self::Ignored,
            "permissions_tightened" => Self::PermissionsTightened,
            "write_failed" => Self::WriteFailed,
            "lock_failed" => Self::LockFailed,
            "lock_timeout" => Self::LockTimeout,
            _ => return None,
        })
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A token request was handed to the host.
    RefreshStarted {
        /// The request's id.
        fetch_id: FetchId,
        /// Why it was started.
        reason: RefreshReason,
        /// Which configured secret it authenticates with (0 = current).
        secret_index: usize,
    },
    /// A new token was received.
    TokenAcquired {
        /// The request that got it.
        fetch_id: FetchId,
        /// When it expires.
        expires_at: u64,
        /// When a background refresh will start.
        refresh_at: u64,
        /// Where its lifetime came from.
        lifetime_source: LifetimeSource,
        /// Whether the lifetime was clamped.
        lifetime_clamped: bool,
        /// Granted scopes.
        scope: Vec<String>,
        /// Which secret worked.
        secret_index: usize,
    },
    /// A token request failed.
    RefreshFailed {
        /// The request.
        fetch_id: FetchId,
        /// The classified error (no secret in it).
        error: TokenError,
    },
    /// `invalid_client` with one secret: the next secret is tried at once.
    SecretFallback {
        /// The request that was refused.
        fetch_id: FetchId,
        /// The refused secret's index.
        from_index: usize,
        /// The index tried next.
        to_index: usize,
    },
    /// The next attempt was scheduled after a failure.
    BackoffScheduled {
        /// When the next attempt may be made.
        retry_at: u64,
        /// Consecutive transient failures so far (0 for a hold).
        attempt: u32,
        /// The failure that caused it.
        error_kind: ErrorKind,
        /// True for a long hold after a configuration-class error.
        hold: bool,
    },
    /// A fetch the host never reported on was abandoned at its deadline.
    FetchAbandoned {
        /// The abandoned request.
        fetch_id: FetchId,
    },
    /// `invalidate` dropped the current token.
    TokenInvalidated {
        /// The token's expiry.
        expires_at: u64,
    },
    /// `invalidate` was ignored because the last one was too recent.
    InvalidateRateLimited {
        /// When an invalidation will be honoured again.
        until: u64,
    },
    /// The secrets were replaced at run time.
    SecretsReplaced {
        /// How many secrets are configured now.
        count: usize,
        /// Whether a configuration-error hold was lifted.
        hold_lifted: bool,
    },
    /// A persisted token was loaded.
    SnapshotImported {
        /// Its expiry.
        expires_at: u64,
    },
    /// A secret file could not be used (unreadable, or holding no valid
    /// secret): the secrets already loaded stay in use.
    SecretFileRejected {
        /// The variable or option that named the file (`CLIENT_SECRET_FILE`).
        source: String,
        /// What is wrong with it (never its contents).
        problem: String,
    },
    /// The host's token cache file (the cron cache that runs and hosts share)
    /// could not be used as it should; the host carries on without it. Reported
    /// by the host, once until the problem changes.
    CacheFileProblem {
        /// The file (or its lock file).
        path: String,
        /// What happened.
        problem: CacheFileProblem,
        /// The non-secret detail: a reason, an error name, a mode.
        detail: String,
    },
    /// Outage grace: the last refresh failed for a transient reason, so the
    /// cached token is served inside its refresh margin (once per outage).
    OutageGraceServed {
        /// The token's expiry.
        expires_at: u64,
        /// Grace ends here (`expires_at` minus the safety).
        until: u64,
        /// The failure that started the outage.
        error_kind: ErrorKind,
    },
    /// A metadata request was handed to the host (issuer discovery).
    DiscoveryStarted {
        /// The request's id.
        fetch_id: FetchId,
        /// The metadata URL asked for.
        url: String,
        /// Why.
        cause: DiscoveryCause,
    },
    /// A metadata document was accepted: token requests go to its endpoint.
    DiscoveryCompleted {
        /// The request that got it.
        fetch_id: FetchId,
        /// The token endpoint it names.
        token_endpoint: String,
        /// The auth method chosen.
        auth_method: AuthMethod,
    },
    /// A periodic refresh of the metadata document failed for a transient
    /// reason: the cached document stays in use and is asked for again later.
    DiscoveryKeptCached {
        /// The failed request.
        fetch_id: FetchId,
        /// When the document is asked for again.
        retry_at: u64,
    },
    /// The private keys were replaced at run time (`private_key_jwt`).
    KeysReplaced {
        /// How many keys are configured now.
        count: usize,
        /// Whether a configuration-error hold was lifted.
        hold_lifted: bool,
    },
    /// The host's clock went backwards; stored deadlines were shifted with it.
    ClockWentBackwards {
        /// By how much.
        by_ms: u64,
    },
}
