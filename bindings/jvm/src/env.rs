//! A validated configuration (`EngineConfig`) and the host contract of
//! `tokenwell::env`: configuration from the environment (`read_env` →
//! `merge_env` → `EnvMerged::into_config`), the secret-file parser, and
//! `SecretFileWatch`, the one rule for noticing a changed secret file. Kotlin
//! passes its environment map and reads the files; every decision and every
//! error's wording is the engine's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokenwell::{Config, ConfigError, ConfigOptions, ExplicitOptions};

use crate::error::{to_u64, EngineError};

/// Options as JSON (`snake_case`, durations in ms) parsed into the engine's
/// `ConfigOptions`; a value of the wrong type is located and worded by the
/// engine (`Config::from_json` names the option).
fn options_from_json(json: &str) -> Result<ConfigOptions, ConfigError> {
    serde_json::from_str::<ConfigOptions>(json)
        .map_err(|_| Config::from_json(json).err().unwrap_or_else(|| ConfigError::new("options", "cannot be read")))
}

/// A validated configuration: build an `EngineCache` from it. `toString()`
/// shows no secret.
#[derive(uniffi::Object)]
#[uniffi::export(Display)]
pub struct EngineConfig {
    pub(crate) inner: Config,
}

impl std::fmt::Display for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Config(tokenUrl={}, issuer={:?}, clientId={}, authMethod={}, secrets={}, keys={})",
            self.inner.token_url(),
            self.inner.issuer(),
            self.inner.client_id(),
            self.inner.auth_method().as_str(),
            self.inner.secret_count(),
            self.inner.key_count()
        )
    }
}

#[uniffi::export]
impl EngineConfig {
    /// The engine's options as JSON (`snake_case`, durations in ms); refused
    /// with `EngineException.Config` naming the field.
    #[uniffi::constructor]
    pub fn from_json(options: String) -> Result<Arc<Self>, EngineError> {
        let options = options_from_json(&options)?;
        Ok(Arc::new(Self { inner: Config::from_options(options)? }))
    }

    /// The token endpoint; `""` when it is discovered from `issuer`.
    pub fn token_url(&self) -> String {
        self.inner.token_url().to_owned()
    }

    /// The issuer as configured, if any.
    pub fn issuer(&self) -> Option<String> {
        self.inner.issuer().map(str::to_owned)
    }

    /// The client id.
    pub fn client_id(&self) -> String {
        self.inner.client_id().to_owned()
    }

    /// The auth method (with discovery, until a document is read).
    pub fn auth_method(&self) -> String {
        self.inner.auth_method().as_str().to_owned()
    }

    /// The requested scopes.
    pub fn scopes(&self) -> Vec<String> {
        self.inner.scopes().to_vec()
    }

    /// The requested audiences.
    pub fn audiences(&self) -> Vec<String> {
        self.inner.audiences().to_vec()
    }

    /// How many secrets are configured.
    pub fn secret_count(&self) -> u32 {
        u32::try_from(self.inner.secret_count()).unwrap_or(u32::MAX)
    }

    /// How many private keys are configured.
    pub fn key_count(&self) -> u32 {
        u32::try_from(self.inner.key_count()).unwrap_or(u32::MAX)
    }

    /// Identifies the configuration a snapshot belongs to (never covers the secret).
    pub fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }
}

/// What the environment says (`read_env`). Holds the values read, shows none.
#[derive(uniffi::Object)]
pub struct EnvReading {
    inner: tokenwell::EnvReading,
}

/// Reads every variable `prefix + NAME` (and the unprefixed `TOKENWELL_*`
/// ones) from `environment`. Nothing is required here; a value that is set
/// but malformed raises `EngineException.Config` naming its variable.
#[uniffi::export]
pub fn read_env(prefix: String, environment: HashMap<String, String>) -> Result<Arc<EnvReading>, EngineError> {
    let get = |name: &str| environment.get(name).cloned();
    let inner = tokenwell::read_env(&prefix, &get)?;
    Ok(Arc::new(EnvReading { inner }))
}

/// Merges the options the caller passed (`explicit_json`: the engine's
/// options as JSON) over `reading`: explicit options win, field by field.
#[uniffi::export]
pub fn merge_env(
    explicit_json: String,
    reading: Arc<EnvReading>,
    secret_file: Option<String>,
    ca_file: Option<String>,
) -> Result<Arc<EnvMerged>, EngineError> {
    let options = options_from_json(&explicit_json)?;
    let inner = tokenwell::merge_env(ExplicitOptions { options, secret_file, ca_file }, reading.inner.clone());
    Ok(Arc::new(EnvMerged { inner }))
}

/// Explicit options merged over the environment: what to read next and the
/// last step, `into_config`.
#[derive(uniffi::Object)]
pub struct EnvMerged {
    inner: tokenwell::EnvMerged,
}

#[uniffi::export]
impl EnvMerged {
    /// The secret file to read, if the secret comes from one.
    pub fn secret_file(&self) -> Option<String> {
        self.inner.secret_file.clone()
    }

    /// The name errors and events about the secret file use.
    pub fn secret_file_source(&self) -> Option<String> {
        self.inner.secret_file_source.clone()
    }

    /// The key file to read (`CLIENT_PRIVATE_KEY_FILE`), if any.
    pub fn key_file(&self) -> Option<String> {
        self.inner.key_file.clone()
    }

    /// The CA file, if any.
    pub fn ca_file(&self) -> Option<String> {
        self.inner.ca_file.clone()
    }

    /// Raises `EngineException.Config` naming every missing variable at once.
    pub fn check_required(&self) -> Result<(), EngineError> {
        Ok(self.inner.check_required()?)
    }

    /// The validated configuration, given what the host read from the
    /// secret file and the key file (each required when its file is set).
    pub fn into_config(
        &self,
        secret_file_contents: Option<String>,
        key_file_contents: Option<String>,
    ) -> Result<Arc<EngineConfig>, EngineError> {
        let config =
            self.inner.clone().into_config_with_keys(secret_file_contents.as_deref(), key_file_contents.as_deref())?;
        Ok(Arc::new(EngineConfig { inner: config }))
    }
}

/// The number of secrets in a secret file's contents (one per line, current
/// first; or one comma-separated line). Raises `EngineException.Config` naming `source`.
#[uniffi::export]
pub fn parse_secret_file(contents: String, source: String) -> Result<u32, EngineError> {
    let secrets = tokenwell::parse_secret_file(&contents, &source)?;
    Ok(u32::try_from(secrets.len()).unwrap_or(u32::MAX))
}

/// What `stat` (following symlinks) says about a secret file.
#[derive(Debug, Clone, Copy, uniffi::Record)]
pub struct FileStamp {
    /// Device number (`unix:dev`).
    pub device: i64,
    /// Inode number (`unix:ino`).
    pub inode: i64,
    /// Size in bytes.
    pub size: i64,
    /// Modification time, ns since the epoch.
    pub modified_ns: i64,
    /// Status-change time, ns since the epoch (0 where there is none).
    pub changed_ns: i64,
}

impl From<FileStamp> for tokenwell::FileStamp {
    fn from(s: FileStamp) -> Self {
        tokenwell::FileStamp {
            device: s.device as u64,
            inode: s.inode as u64,
            size: s.size as u64,
            modified_ns: i128::from(s.modified_ns),
            changed_ns: i128::from(s.changed_ns),
        }
    }
}

/// The engine's rule for noticing a changed secret file: `stat` it when
/// `due(now, forced)`; read it when `changed(stamp, now)`; then `read(stamp)`.
#[derive(uniffi::Object)]
pub struct SecretFileWatch {
    inner: Mutex<tokenwell::SecretFileWatch>,
}

impl SecretFileWatch {
    fn watch(&self) -> MutexGuard<'_, tokenwell::SecretFileWatch> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[uniffi::export]
impl SecretFileWatch {
    /// A watch that has read nothing yet.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self { inner: Mutex::new(tokenwell::SecretFileWatch::new()) })
    }

    /// How often (ms) the file is checked on the token path.
    pub fn check_interval_ms(&self) -> i64 {
        tokenwell::SecretFileWatch::CHECK_INTERVAL_MS as i64
    }

    /// Whether to `stat` the file now.
    pub fn due(&self, now_ms: i64, forced: bool) -> Result<bool, EngineError> {
        Ok(self.watch().due(to_u64(now_ms, "now_ms")?, forced))
    }

    /// Records a check that found `stamp`; whether the file must be read.
    pub fn changed(&self, stamp: FileStamp, now_ms: i64) -> Result<bool, EngineError> {
        Ok(self.watch().changed(stamp.into(), to_u64(now_ms, "now_ms")?))
    }

    /// Records a check that could not `stat` or read the file.
    pub fn failed(&self, now_ms: i64) -> Result<(), EngineError> {
        self.watch().failed(to_u64(now_ms, "now_ms")?);
        Ok(())
    }

    /// Records that the file with `stamp` was read (valid or not).
    pub fn read(&self, stamp: FileStamp) {
        self.watch().read(stamp.into());
    }
}
