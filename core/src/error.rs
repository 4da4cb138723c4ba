//! Errors, grouped by who is at fault.
//!
//! [`TokenError`] is what a token fetch can end in. Its [`ErrorKind`] says what
//! happened, [`Fault`] says who has to act, and the other fields carry what a
//! host branches on: whether the engine will retry, when, the HTTP status and
//! the RFC 6749 `error` code. [`ConfigError`] is a configuration the engine
//! refuses to start with; [`SnapshotError`] a persisted token it refuses to load.
//!
//! No error text ever contains a client secret or an access token: server
//! descriptions are scrubbed of the configured secrets before they are stored.

use std::fmt;

use serde::Serialize;

/// What went wrong with a token fetch. The `snake_case` name (see
/// [`ErrorKind::as_str`]) is the same string in every binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid (raised at construction or when secrets are replaced).
    Config,
    /// The server refused the client's credentials (`invalid_client`, or a bare 401).
    InvalidClient,
    /// A requested scope is unknown or not allowed for this client.
    InvalidScope,
    /// A requested audience / resource is not allowed for this client (`invalid_target`).
    InvalidTarget,
    /// The client may not use the client credentials grant.
    UnauthorizedClient,
    /// The server does not support the client credentials grant.
    UnsupportedGrantType,
    /// The server found the request malformed (`invalid_request`), for example an
    /// audience the client is not allowed to request on Ory Hydra.
    InvalidRequest,
    /// The server answered with an `invalid_grant` error.
    InvalidGrant,
    /// The server answered with another RFC 6749 error code (for example `access_denied`).
    Rejected,
    /// HTTP 429, or the `slow_down` error code.
    RateLimited,
    /// HTTP 5xx (or 408), or the `server_error` error code.
    ServerError,
    /// The `temporarily_unavailable` error code.
    TemporarilyUnavailable,
    /// The request could not be sent or the response not read.
    Transport,
    /// The request timed out.
    Timeout,
    /// The response could not be understood: not JSON, no `access_token`, an
    /// unsupported `token_type`, an access token that cannot go in a header,
    /// too large, or an unexpected status.
    MalformedResponse,
    /// The token URL answered 404 or 405 without an OAuth error: nothing takes
    /// token requests there, so `token_url` is wrong. Held like other
    /// configuration errors rather than retried as an outage.
    EndpointNotFound,
    /// The server's TLS certificate was not trusted (unknown CA, wrong name,
    /// expired): a configuration fault; trust the CA with `ca_file` /
    /// `TOKENWELL_CA_FILE` or fix the URL, rather than a retryable blip.
    TlsCertificate,
    /// The host reported an outcome for a fetch the engine is not waiting for.
    StaleFetch,
    /// The account was closed: a token was asked for after `close()`. No
    /// token is fetched or served again; make a new account.
    Closed,
    /// Issuer discovery found no usable metadata document: none at either
    /// well-known URL, no `token_endpoint` or one refused like a bad
    /// `token_url` (plain http off loopback), or no auth method both sides
    /// support. A configuration fault, held.
    DiscoveryFailed,
    /// The metadata document's `issuer` is not exactly the configured issuer
    /// (RFC 8414 §3.3): its endpoints are not trusted. Held.
    IssuerMismatch,
    /// Not a failure: the metadata document of a discovery request was read
    /// and accepted. `handle_response` answers a discovery request with this
    /// (there is no token yet); the host polls again, which sends the token
    /// request. Never returned by `poll`.
    DiscoveryComplete,
}

impl ErrorKind {
    /// The stable `snake_case` name of this kind, as used by every binding.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::InvalidClient => "invalid_client",
            ErrorKind::InvalidScope => "invalid_scope",
            ErrorKind::InvalidTarget => "invalid_target",
            ErrorKind::UnauthorizedClient => "unauthorized_client",
            ErrorKind::UnsupportedGrantType => "unsupported_grant_type",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::InvalidGrant => "invalid_grant",
            ErrorKind::Rejected => "rejected",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ServerError => "server_error",
            ErrorKind::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorKind::Transport => "transport",
            ErrorKind::Timeout => "timeout",
            ErrorKind::MalformedResponse => "malformed_response",
            ErrorKind::EndpointNotFound => "endpoint_not_found",
            ErrorKind::TlsCertificate => "tls_certificate",
            ErrorKind::StaleFetch => "stale_fetch",
            ErrorKind::Closed => "closed",
            ErrorKind::DiscoveryFailed => "discovery_failed",
            ErrorKind::IssuerMismatch => "issuer_mismatch",
            ErrorKind::DiscoveryComplete => "discovery_complete",
        }
    }

    /// Every kind, in declaration order (for exhaustive mapping tests in bindings).
    pub const ALL: [ErrorKind; 22] = [
        ErrorKind::Config,
        ErrorKind::InvalidClient,
        ErrorKind::InvalidScope,
        ErrorKind::InvalidTarget,
        ErrorKind::UnauthorizedClient,
        ErrorKind::UnsupportedGrantType,
        ErrorKind::InvalidRequest,
        ErrorKind::InvalidGrant,
        ErrorKind::Rejected,
        ErrorKind::RateLimited,
        ErrorKind::ServerError,
        ErrorKind::TemporarilyUnavailable,
        ErrorKind::Transport,
        ErrorKind::Timeout,
        ErrorKind::MalformedResponse,
        ErrorKind::EndpointNotFound,
        ErrorKind::TlsCertificate,
        ErrorKind::StaleFetch,
        ErrorKind::Closed,
        ErrorKind::DiscoveryFailed,
        ErrorKind::IssuerMismatch,
        ErrorKind::DiscoveryComplete,
    ];

    /// Who has to act on an error of this kind.
    pub fn fault(self) -> Fault {
        match self {
            ErrorKind::Config
            | ErrorKind::InvalidScope
            | ErrorKind::InvalidTarget
            | ErrorKind::UnauthorizedClient
            | ErrorKind::UnsupportedGrantType
            | ErrorKind::InvalidRequest
            | ErrorKind::InvalidGrant
            | ErrorKind::Rejected
            | ErrorKind::EndpointNotFound
            | ErrorKind::TlsCertificate
            | ErrorKind::DiscoveryFailed
            | ErrorKind::IssuerMismatch => Fault::Configuration,
            ErrorKind::InvalidClient => Fault::Credentials,
            ErrorKind::RateLimited | ErrorKind::ServerError | ErrorKind::TemporarilyUnavailable => {
                Fault::AuthorizationServer
            }
            ErrorKind::Transport | ErrorKind::Timeout => Fault::Transport,
            ErrorKind::MalformedResponse => Fault::MalformedResponse,
            ErrorKind::StaleFetch | ErrorKind::Closed | ErrorKind::DiscoveryComplete => Fault::Host,
        }
    }

    /// Whether the engine retries this kind on its own with backoff. Kinds that
    /// are not retryable are held for a long time (or until the configuration
    /// or the secrets change).
    pub fn is_retryable(self) -> bool {
        matches!(self.fault(), Fault::AuthorizationServer | Fault::Transport | Fault::MalformedResponse)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is at fault for an error, and so who has to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fault {
    /// The client's configuration (scope, audience, grant, endpoint): fix the configuration.
    Configuration,
    /// The client's credentials: rotate or fix the secret, then alert.
    Credentials,
    /// The authorization server is overloaded or failing: wait; the engine retries.
    AuthorizationServer,
    /// The network between host and server: the engine retries.
    Transport,
    /// The server (or a proxy in front of it) sent something that is not a token
    /// response: the engine retries, but this needs a look.
    MalformedResponse,
    /// The host drove the engine wrongly (for example reported an unknown fetch).
    Host,
}

impl Fault {
    /// The stable `snake_case` name of this fault, as used by every binding.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Configuration => "configuration",
            Fault::Credentials => "credentials",
            Fault::AuthorizationServer => "authorization_server",
            Fault::Transport => "transport",
            Fault::MalformedResponse => "malformed_response",
            Fault::Host => "host",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed token fetch, or the reason no token can be served right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenError {
    /// What happened.
    pub kind: ErrorKind,
    /// Who has to act.
    pub fault: Fault,
    /// Whether the engine retries on its own (with backoff).
    pub retryable: bool,
    /// When the engine will next allow a token request, in ms since the Unix epoch.
    pub retry_at: Option<u64>,
    /// The HTTP status of the response, if there was one.
    pub status: Option<u16>,
    /// The RFC 6749 §5.2 `error` code, if the server sent one.
    pub oauth_error: Option<String>,
    /// The server's `error_description`, or a description of what went wrong.
    /// Never contains a secret.
    pub description: Option<String>,
}

impl TokenError {
    /// An error of `kind` with a description and nothing else.
    pub fn new(kind: ErrorKind, description: impl Into<String>) -> Self {
        Self {
            kind,
            fault: kind.fault(),
            retryable: kind.is_retryable(),
            retry_at: None,
            status: None,
            oauth_error: None,
            description: Some(description.into()),
        }
    }

    /// The error every host raises for a token asked of a closed account
    /// (kind [`ErrorKind::Closed`]), worded here so that hosts agree.
    pub fn closed() -> Self {
        Self::new(ErrorKind::Closed, "close() was called; create a new account to get tokens again")
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the RFC 6749 error code.
    pub fn with_oauth_error(mut self, code: impl Into<String>) -> Self {
        self.oauth_error = Some(code.into());
        self
    }

    /// A one-line human message (the same text as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::Config => "invalid configuration",
            ErrorKind::InvalidClient => "the authorization server rejected the client credentials",
            ErrorKind::InvalidScope => "a requested scope is not allowed for this client",
            ErrorKind::InvalidTarget => "a requested audience is not allowed for this client",
            ErrorKind::UnauthorizedClient => "this client may not use the client_credentials grant",
            ErrorKind::UnsupportedGrantType => "the authorization server does not support client_credentials",
            ErrorKind::InvalidRequest => "the authorization server rejected the token request",
            ErrorKind::InvalidGrant => "the authorization server rejected the grant",
            ErrorKind::Rejected => "the authorization server refused the token request",
            ErrorKind::RateLimited => "the authorization server is rate limiting token requests",
            ErrorKind::ServerError => "the authorization server failed",
            ErrorKind::TemporarilyUnavailable => "the authorization server is temporarily unavailable",
            ErrorKind::Transport => "the token request could not be completed",
            ErrorKind::Timeout => "the token request timed out",
            ErrorKind::MalformedResponse => "the token endpoint sent a response that is not a valid token response",
            ErrorKind::EndpointNotFound => "no token endpoint answers at token_url",
            ErrorKind::TlsCertificate => "the token endpoint's TLS certificate is not trusted",
            ErrorKind::StaleFetch => "no token request with this id is in flight",
            ErrorKind::Closed => "the account is closed",
            ErrorKind::DiscoveryFailed => "issuer discovery found no usable token endpoint",
            ErrorKind::IssuerMismatch => "the metadata document is for another issuer",
            ErrorKind::DiscoveryComplete => "the issuer's metadata was read; poll again to request a token",
        };
        write!(f, "{} ({}", what, self.kind)?;
        if let Some(status) = self.status {
            write!(f, ", HTTP {status}")?;
        }
        if let Some(code) = &self.oauth_error {
            if code != self.kind.as_str() {
                write!(f, ", error={code}")?;
            }
        }
        f.write_str(")")?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        if let Some(at) = self.retry_at {
            write!(f, "; next attempt at {}", format_epoch_ms(at))?;
        }
        Ok(())
    }
}

impl std::error::Error for TokenError {}

/// A configuration the engine refuses, naming the field at fault.
/// The message never echoes a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("invalid configuration: {field}: {problem}")]
pub struct ConfigError {
    /// The configuration field at fault, in `snake_case` (for example `token_url`).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    /// A configuration error for `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into() }
    }
}

impl From<ConfigError> for TokenError {
    fn from(error: ConfigError) -> Self {
        TokenError::new(ErrorKind::Config, error.to_string())
    }
}

/// Why a persisted token snapshot was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SnapshotError {
    /// The snapshot is not valid snapshot JSON.
    #[error("snapshot is corrupt: {detail}")]
    Corrupt {
        /// What could not be read.
        detail: String,
    },
    /// The snapshot was written by an incompatible version.
    #[error("snapshot version {version} is not supported")]
    UnsupportedVersion {
        /// The version found in the snapshot.
        version: u64,
    },
    /// The snapshot belongs to another endpoint, client, scope set or audience set.
    #[error("snapshot belongs to a different client configuration (fingerprint mismatch)")]
    FingerprintMismatch,
    /// The token in the snapshot is expired (or within the refresh margin).
    #[error("snapshot token is expired")]
    Expired,
}

impl SnapshotError {
    /// The stable `snake_case` reason, as used by every binding.
    pub fn reason(&self) -> &'static str {
        match self {
            SnapshotError::Corrupt { .. } => "corrupt",
            SnapshotError::UnsupportedVersion { .. } => "unsupported_version",
            SnapshotError::FingerprintMismatch => "fingerprint_mismatch",
            SnapshotError::Expired => "expired",
        }
    }
}

/// Formats ms since the Unix epoch as an RFC 3339 UTC timestamp with
/// milliseconds (`2023-11-14T22:13:20.123Z`), with no clock read.
pub fn format_epoch_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_formatting() {
        assert_eq!(format_epoch_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_epoch_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_epoch_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    /// The century terms of the civil-from-days conversion: a year divisible by
    /// 100 is no leap year unless it is divisible by 400, and each 400-year era
    /// ends on a leap day. Expected values from Python's `datetime`.
    #[test]
    fn epoch_formatting_across_centuries_and_months() {
        for (ms, text) in [
            (68_169_600_000, "1972-02-29T00:00:00.000Z"),
            (951_868_800_000, "2000-03-01T00:00:00.000Z"),
            (1_704_067_199_000, "2023-12-31T23:59:59.000Z"),
            (1_706_659_200_000, "2024-01-31T00:00:00.000Z"),
            (2_147_483_648_000, "2038-01-19T03:14:08.000Z"),
            (3_981_312_000_000, "2096-02-29T00:00:00.000Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (13_574_606_400_000, "2400-02-29T12:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(format_epoch_ms(ms), text, "{ms}");
        }
    }

    /// Both sides of every month boundary (the month arithmetic's rounding).
    #[test]
    fn epoch_formatting_at_every_month_boundary() {
        for (ms, text) in [
            (1_672_531_199_999, "2022-12-31T23:59:59.999Z"),
            (1_672_531_200_000, "2023-01-01T00:00:00.000Z"),
            (1_675_209_599_999, "2023-01-31T23:59:59.999Z"),
            (1_675_209_600_000, "2023-02-01T00:00:00.000Z"),
            (1_677_628_799_999, "2023-02-28T23:59:59.999Z"),
            (1_677_628_800_000, "2023-03-01T00:00:00.000Z"),
            (1_680_307_199_999, "2023-03-31T23:59:59.999Z"),
            (1_680_307_200_000, "2023-04-01T00:00:00.000Z"),
            (1_682_899_199_999, "2023-04-30T23:59:59.999Z"),
            (1_682_899_200_000, "2023-05-01T00:00:00.000Z"),
            (1_685_577_599_999, "2023-05-31T23:59:59.999Z"),
            (1_685_577_600_000, "2023-06-01T00:00:00.000Z"),
            (1_688_169_599_999, "2023-06-30T23:59:59.999Z"),
            (1_688_169_600_000, "2023-07-01T00:00:00.000Z"),
            (1_690_847_999_999, "2023-07-31T23:59:59.999Z"),
            (1_690_848_000_000, "2023-08-01T00:00:00.000Z"),
            (1_693_526_399_999, "2023-08-31T23:59:59.999Z"),
            (1_693_526_400_000, "2023-09-01T00:00:00.000Z"),
            (1_696_118_399_999, "2023-09-30T23:59:59.999Z"),
            (1_696_118_400_000, "2023-10-01T00:00:00.000Z"),
            (1_698_796_799_999, "2023-10-31T23:59:59.999Z"),
            (1_698_796_800_000, "2023-11-01T00:00:00.000Z"),
            (1_701_388_799_999, "2023-11-30T23:59:59.999Z"),
            (1_701_388_800_000, "2023-12-01T00:00:00.000Z"),
        ] {
            assert_eq!(format_epoch_ms(ms), text, "{ms}");
        }
    }

    #[test]
    fn fault_names_are_stable_and_distinct() {
        let faults = [
            (Fault::Configuration, "configuration"),
            (Fault::Credentials, "credentials"),
            (Fault::AuthorizationServer, "authorization_server"),
            (Fault::Transport, "transport"),
            (Fault::MalformedResponse, "malformed_response"),
            (Fault::Host, "host"),
        ];
        for (fault, name) in faults {
            assert_eq!(fault.as_str(), name);
            assert_eq!(fault.to_string(), name);
            assert_eq!(serde_json::to_value(fault).unwrap(), name);
        }
        for kind in ErrorKind::ALL {
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn message_is_display_and_names_a_code_that_differs_from_the_kind() {
        let e = TokenError::new(ErrorKind::InvalidTarget, "Requested audience 'x' is not allowed")
            .with_status(400)
            .with_oauth_error("invalid_request");
        assert_eq!((e.status, e.oauth_error.as_deref()), (Some(400), Some("invalid_request")));
        assert_eq!(
            e.message(),
            "a requested audience is not allowed for this client (invalid_target, HTTP 400, error=invalid_request): \
             Requested audience 'x' is not allowed"
        );
        assert_eq!(e.message(), e.to_string());
        // A code equal to the kind is not repeated.
        let e = TokenError::new(ErrorKind::InvalidScope, "no").with_oauth_error("invalid_scope");
        assert_eq!(e.message(), "a requested scope is not allowed for this client (invalid_scope): no");
    }

    #[test]
    fn a_config_error_becomes_a_token_error_of_kind_config() {
        let e = TokenError::from(ConfigError::new("token_url", "is required"));
        assert_eq!((e.kind, e.fault, e.retryable), (ErrorKind::Config, Fault::Configuration, false));
        assert_eq!(e.description.as_deref(), Some("invalid configuration: token_url: is required"));
    }

    #[test]
    fn a_closed_account_fails_with_one_wording_for_every_host() {
        let e = TokenError::closed();
        assert_eq!((e.kind, e.fault, e.retryable, e.retry_at), (ErrorKind::Closed, Fault::Host, false, None));
        assert_eq!(
            e.message(),
            "the account is closed (closed): close() was called; create a new account to get tokens again"
        );
    }

    #[test]
    fn snapshot_error_reasons() {
        let reasons = [
            (SnapshotError::Corrupt { detail: "x".into() }, "corrupt"),
            (SnapshotError::UnsupportedVersion { version: 9 }, "unsupported_version"),
            (SnapshotError::FingerprintMismatch, "fingerprint_mismatch"),
            (SnapshotError::Expired, "expired"),
        ];
        for (error, reason) in reasons {
            assert_eq!(error.reason(), reason);
            assert_eq!(serde_json::to_value(&error).unwrap()["reason"], reason);
        }
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn display_names_kind_status_and_retry() {
        let mut e = TokenError::new(ErrorKind::ServerError, "HTTP 503").with_status(503);
        e.retry_at = Some(1_700_000_000_000);
        let text = e.to_string();
        assert!(text.contains("server_error"), "{text}");
        assert!(text.contains("HTTP 503"), "{text}");
        assert!(text.contains("2023-11-14T22:13:20.000Z"), "{text}");
    }
}
