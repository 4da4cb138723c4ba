//! Engine errors as one uniffi error enum (`EngineException` in Kotlin).
//!
//! Every field a host branches on crosses as data: the hand-written Kotlin
//! layer (`TokenException.kt`) maps each kind to a class of its sealed
//! hierarchy in one exhaustive `when`, and a test checks that table against
//! [`error_kinds`] (every `ErrorKind`). No text here ever holds a secret:
//! the engine's errors do not, and nothing is added to them.

use std::fmt;

use tokenwell::{ConfigError, ErrorKind, SnapshotError, TokenError};

/// A classified token error, every field of the engine's `TokenError`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TokenErrorInfo {
    /// `invalid_client`, `server_error`, `transport`, ... (`ErrorKind::as_str`).
    pub kind: String,
    /// Who has to act: `configuration`, `credentials`, `authorization_server`,
    /// `transport`, `malformed_response`, `host`.
    pub fault: String,
    /// Whether the engine retries on its own.
    pub retryable: bool,
    /// When the engine next allows a token request (ms since the Unix epoch).
    pub retry_at: Option<i64>,
    /// The HTTP status, if there was a response.
    pub status: Option<i32>,
    /// The RFC 6749 `error` code, if the server sent one.
    pub oauth_error: Option<String>,
    /// The server's description (scrubbed of every credential by the engine).
    pub description: Option<String>,
    /// The engine's one-line message.
    pub message: String,
}

impl From<&TokenError> for TokenErrorInfo {
    fn from(error: &TokenError) -> Self {
        Self {
            kind: error.kind.as_str().to_owned(),
            fault: error.fault.as_str().to_owned(),
            retryable: error.retryable,
            retry_at: error.retry_at.map(to_i64),
            status: error.status.map(i32::from),
            oauth_error: error.oauth_error.clone(),
            description: error.description.clone(),
            message: error.to_string(),
        }
    }
}

/// A configuration refused, naming the field (or variable) at fault.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ConfigProblem {
    /// The field or environment variable, with its index (`SCOPE[1]`).
    pub field: String,
    /// What is wrong with it (never echoes a secret).
    pub problem: String,
}

/// Everything a call into the engine can raise.
#[derive(Debug, uniffi::Error)]
pub enum EngineError {
    /// A token request failed, or no token can be served.
    Token {
        /// The classified error.
        error: TokenErrorInfo,
    },
    /// A configuration (or secret list, or secret file) the engine refuses.
    Config {
        /// The field and the problem.
        error: ConfigProblem,
        /// The engine's one-line message.
        detail: String,
    },
    /// A snapshot the engine refuses: `reason` is `corrupt`,
    /// `unsupported_version`, `fingerprint_mismatch` or `expired`.
    Snapshot {
        /// The stable reason.
        reason: String,
        /// The engine's one-line message.
        detail: String,
    },
    /// The host passed an argument the engine cannot take (a negative time,
    /// an unknown transport error kind): a bug in the caller.
    Argument {
        /// What was wrong.
        detail: String,
    },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Token { error } => f.write_str(&error.message),
            EngineError::Config { detail, .. } | EngineError::Snapshot { detail, .. } => f.write_str(detail),
            EngineError::Argument { detail } => f.write_str(detail),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<&TokenError> for EngineError {
    fn from(error: &TokenError) -> Self {
        EngineError::Token { error: error.into() }
    }
}

impl From<ConfigError> for EngineError {
    fn from(error: ConfigError) -> Self {
        let detail = error.to_string();
        EngineError::Config { error: ConfigProblem { field: error.field, problem: error.problem }, detail }
    }
}

impl From<SnapshotError> for EngineError {
    fn from(error: SnapshotError) -> Self {
        EngineError::Snapshot { reason: error.reason().to_owned(), detail: error.to_string() }
    }
}

/// One engine error kind: its name, fault and whether it is retried.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ErrorKindInfo {
    /// The kind's stable name.
    pub kind: String,
    /// Its fault.
    pub fault: String,
    /// Whether the engine retries it.
    pub retryable: bool,
}

/// Every engine error kind (`ErrorKind::ALL`), for the test of the Kotlin table.
#[uniffi::export]
pub fn error_kinds() -> Vec<ErrorKindInfo> {
    ErrorKind::ALL
        .iter()
        .map(|kind| ErrorKindInfo {
            kind: kind.as_str().to_owned(),
            fault: kind.fault().as_str().to_owned(),
            retryable: kind.is_retryable(),
        })
        .collect()
}

/// The error for a token asked of a closed account, as the engine words it.
#[uniffi::export]
pub fn closed_error() -> TokenErrorInfo {
    (&TokenError::closed()).into()
}

/// An error of `kind` built by the engine's own constructor (for tests of the
/// Kotlin mapping): the same value a real failure produces.
#[uniffi::export]
pub fn make_token_error(kind: String, description: String) -> Result<TokenErrorInfo, EngineError> {
    let Some(kind) = ErrorKind::ALL.iter().copied().find(|k| k.as_str() == kind) else {
        return Err(EngineError::Argument { detail: "kind is not an engine error kind".to_owned() });
    };
    Ok((&TokenError::new(kind, description)).into())
}

/// A JVM `long` from the engine's `u64` ms (saturating: no time is that late).
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The engine's `u64` ms from a JVM `long`, refusing a negative one.
pub(crate) fn to_u64(value: i64, name: &str) -> Result<u64, EngineError> {
    u64::try_from(value).map_err(|_| EngineError::Argument { detail: format!("{name} must not be negative") })
}
