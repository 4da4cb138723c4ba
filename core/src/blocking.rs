//! A small blocking driver over [`ureq`] (feature `blocking`): a Rust service
//! gets a token in a few lines, with the engine's single flight,
//! refresh-ahead, backoff and secret fallback.
//!
//! ```no_run
//! use tokenwell::blocking::ServiceAccount;
//! use tokenwell::Config;
//!
//! let config = Config::from_json(r#"{"token_url":"https://hydra.example/oauth2/token",
//!     "client_id":"billing-worker","client_secret":"s3cr3t","scope":"billing:read"}"#)?;
//! let account = ServiceAccount::new(config);
//! let token = account.get_token()?;
//! println!("Authorization: Bearer <{} bytes>", token.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This module is the host: it owns the clock, the HTTP client and the
//! threads. Every decision is the engine's.
//!
//! ## TLS, proxies and redirects
//!
//! - TLS is rustls, verified against the platform's trust store. A private CA
//!   is given with [`Builder::ca_file`] or the `TOKENWELL_CA_FILE` variable (a
//!   PEM bundle): its certificates then are the only roots trusted for the
//!   token endpoint. A certificate that does not verify is the engine's
//!   `tls_certificate` configuration fault, not a retried blip.
//! - An `https` token URL goes through `HTTPS_PROXY` (or `ALL_PROXY`) unless
//!   `NO_PROXY` names its host; the TLS session runs end to end through the
//!   proxy's CONNECT tunnel. A plain-`http` token request never goes through a
//!   proxy: it would hand the credentials to it in clear text.
//! - Redirects are never followed: a 3xx is reported to the engine as it is.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::{
    AuthMethod, ClientSecret, Config, ConfigError, Event, PollResult, Token, TokenCache, TokenError, TokenRequest,
    TransportErrorKind,
};

pub use crate::env::CA_FILE_VAR;

/// A callback that receives every engine event (no secret is ever in one).
pub type EventHandler = Box<dyn Fn(&Event) + Send + Sync>;

/// A thread-safe token provider for one client, shareable by cloning.
#[derive(Clone)]
pub struct ServiceAccount {
    shared: Arc<Shared>,
}

struct SecretFile {
    path: std::path::PathBuf,
    /// How errors and events name the file (the variable or option).
    source: String,
    watch: crate::SecretFileWatch,
}

/// Which watched file: the secrets, or the private keys (`private_key_jwt`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Watched {
    Secrets,
    Keys,
}

/// `stat` of `path`, following symlinks, as the engine's change rule reads it.
fn file_stamp(path: &Path) -> std::io::Result<crate::FileStamp> {
    let metadata = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Ok(crate::FileStamp {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            changed_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
        })
    }
    #[cfg(not(unix))]
    {
        let modified = metadata.modified()?.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
        Ok(crate::FileStamp { size: metadata.len(), modified_ns: modified, ..crate::FileStamp::default() })
    }
}

struct Shared {
    cache: Mutex<TokenCache>,
    secret_file: Mutex<Option<SecretFile>>,
    key_file: Mutex<Option<SecretFile>>,
    changed: Condvar,
    /// The HTTP agent, or why none could be built (an unreadable CA file).
    agent: Result<ureq::Agent, ConfigError>,
    on_event: Option<EventHandler>,
}

/// Builds a [`ServiceAccount`] with options beyond the configuration.
pub struct Builder {
    config: Config,
    on_event: Option<EventHandler>,
    ca_file: Option<PathBuf>,
    /// The secret file and how errors and events name it.
    secret_file: Option<(PathBuf, String)>,
    /// The private key file and how errors and events name it.
    key_file: Option<(PathBuf, String)>,
}

impl Builder {
    /// Trust only the CAs in this PEM file for the token endpoint (a private CA,
    /// or a TLS-inspecting corporate proxy's). Without it, `TOKENWELL_CA_FILE`
    /// is read; without that, the platform's trust store is used.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Passes every engine event to `on_event` (for audit logs and metrics).
    pub fn on_event(mut self, on_event: EventHandler) -> Self {
        self.on_event = Some(on_event);
        self
    }

    /// Reads the secrets from this file now and whenever it changes (see
    /// [`ServiceAccount::with_secret_file`]).
    pub fn secret_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.secret_file = Some((path.into(), "secret_file".to_owned()));
        self
    }

    /// Reads the private keys (`private_key_jwt`: PEM blocks or a JWK / JWKS,
    /// current first) from this file now and whenever it changes, under the
    /// same rule as the secret file: a key rotation needs no restart.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some((path.into(), "key_file".to_owned()));
        self
    }

    /// The account; a CA file, secret file or key file that cannot be used is refused here.
    pub fn build(self) -> Result<ServiceAccount, ConfigError> {
        let ca_file =
            self.ca_file.or_else(|| std::env::var_os(CA_FILE_VAR).filter(|v| !v.is_empty()).map(PathBuf::from));
        let agent = build_agent(ca_file.as_deref());
        if let Err(error) = &agent {
            return Err(error.clone());
        }
        let mut account = ServiceAccount::assemble(self.config, self.on_event, agent);
        if let Some((path, source)) = self.secret_file {
            account = account.watch(Watched::Secrets, path, source)?;
        }
        if let Some((path, source)) = self.key_file {
            account = account.watch(Watched::Keys, path, source)?;
        }
        Ok(account)
    }
}

/// The agent every token request goes through: no redirects, no proxy of its
/// own (chosen per request), the given CAs or the platform's trust store.
/// Public, with [`exchange`], for hosts on `ureq` that drive a [`TokenCache`]
/// themselves (the `tokenwell` CLI), so they make the same exchange.
pub fn build_agent(ca_file: Option<&Path>) -> Result<ureq::Agent, ConfigError> {
    let roots = match ca_file {
        Some(path) => RootCerts::Specific(Arc::new(read_ca_file(path)?)),
        None => RootCerts::PlatformVerifier,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build();
    Ok(config.into())
}

fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, ConfigError> {
    let problem = |what: &str| ConfigError::new("ca_file", format!("{what}: {}", path.display()));
    let pem = std::fs::read(path).map_err(|e| problem(&format!("cannot read the CA file ({})", e.kind())))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(problem("holds no PEM certificate"));
    }
    Ok(certs)
}

/// The proxy for a token request to `url`, from `HTTPS_PROXY` / `ALL_PROXY`
/// and `NO_PROXY` as read by `env`. Plain `http` never goes through a proxy.
fn proxy_for(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<ureq::Proxy>, String> {
    let Ok(parsed) = url::Url::parse(url) else { return Ok(None) };
    if parsed.scheme() != "https" {
        return Ok(None);
    }
    let read =
        |names: &[&str]| names.iter().find_map(|n| env(n).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()));
    let Some(proxy) = read(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]) else { return Ok(None) };
    let host = parsed.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = parsed.port_or_known_default().unwrap_or(443);
    if let Some(no_proxy) = read(&["NO_PROXY", "no_proxy"]) {
        if no_proxy_matches(&no_proxy, &host, port) {
            return Ok(None);
        }
    }
    // The value may hold proxy credentials: never echo it.
    ureq::Proxy::new(&proxy).map(Some).map_err(|_| "HTTPS_PROXY (or ALL_PROXY) is not a valid proxy URL".to_owned())
}

/// `NO_PROXY` as curl reads it: comma-separated hosts or domains (a leading
/// `.` or `*.` optional), each optionally with `:port`; `*` matches every host.
fn no_proxy_matches(no_proxy: &str, host: &str, port: u16) -> bool {
    no_proxy.split(',').map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let (name, entry_port) = match entry.rsplit_once(':') {
            Some((name, p)) if !name.contains(':') || name.ends_with(']') => (name.to_owned(), p.parse::<u16>().ok()),
            _ => (entry.clone(), None),
        };
        if entry_port.is_some_and(|p| p != port) {
            return false;
        }
        let name = name.trim_start_matches('*').trim_start_matches('.').trim_start_matches('[').trim_end_matches(']');
        host == name || host.ends_with(&format!(".{name}"))
    })
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.shared.lock();
        f.debug_struct("ServiceAccount").field("config", cache.config()).field("state", &cache.state()).finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Fresh bytes from the operating system for the engine's entropy pool (the
/// `jti` of each client assertion; see [`crate::EntropyPool`]). Without them
/// the pool still never repeats within this process.
fn os_entropy() -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok().map(|()| bytes)
}

fn entropy() -> u64 {
    // Not cryptographic: only spreads refresh times across a fleet.
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_ms());
    hasher.finish()
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, TokenCache> {
        // A panic while holding the lock cannot leave the engine half-updated in a
        // way that matters more than refusing every later caller would.
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn drain_events(&self, cache: &mut TokenCache) {
        while let Some(event) = cache.poll_event() {
            if let Some(callback) = &self.on_event {
                callback(&event);
            }
        }
    }

    /// Re-reads the secret file and the key file if the engine's change rule
    /// says so (see [`crate::SecretFileWatch`]); `force` after
    /// `invalid_client`. A file that cannot be used keeps what was loaded,
    /// with an engine event.
    fn reload_files(&self, now: u64, force: bool) -> Result<(), ConfigError> {
        let secrets = self.reload_file(Watched::Secrets, now, force);
        self.reload_file(Watched::Keys, now, force).and(secrets)
    }

    fn reload_file(&self, which: Watched, now: u64, force: bool) -> Result<(), ConfigError> {
        let slot = if which == Watched::Secrets { &self.secret_file } else { &self.key_file };
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = guard.as_mut().filter(|f| f.watch.due(now, force)) else { return Ok(()) };
        let read = file_stamp(&file.path).and_then(|stamp| {
            if !file.watch.changed(stamp, now) {
                return Ok(None);
            }
            let contents = std::fs::read_to_string(&file.path)?;
            file.watch.read(stamp);
            Ok(Some(contents))
        });
        let (source, path) = (file.source.clone(), file.path.display().to_string());
        if read.is_err() {
            file.watch.failed(now);
        }
        drop(guard);
        let mut cache = self.lock();
        let outcome = match read {
            Ok(None) => Ok(false),
            Ok(Some(contents)) if which == Watched::Keys => cache.replace_keys_from_file(&contents, &source, now),
            Ok(Some(contents)) => cache.replace_secrets_from_file(&contents, &source, now),
            Err(error) => {
                let what = if which == Watched::Keys { "key" } else { "secret" };
                let problem = format!("cannot read the {what} file {path} ({})", error.kind());
                cache.report_secret_file_problem(&source, &problem, now);
                Err(ConfigError::new(source, problem))
            }
        };
        self.drain_events(&mut cache);
        outcome.map(|_| ())
    }

    /// Sends `request` and reports the outcome to the engine.
    fn perform(&self, request: TokenRequest) -> Result<Token, TokenError> {
        let limit = self.lock().config().policy().max_response_bytes as u64;
        let outcome = self.exchange(&request, limit);
        let mut cache = self.lock();
        let now = now_ms();
        let result = match outcome {
            Ok((status, headers, body)) => cache.handle_response(request.fetch_id, status, &headers, &body, now),
            Err((kind, message)) => Err(cache.handle_transport_error(request.fetch_id, kind, &message, now)),
        };
        self.drain_events(&mut cache);
        drop(cache);
        if result.as_ref().is_err_and(|e| e.kind == crate::ErrorKind::InvalidClient) {
            // The secret or key may have been rotated under us: look at the files now.
            let _ = self.reload_files(now_ms(), true);
        }
        self.changed.notify_all();
        result
    }

    /// One HTTP exchange, bounded as a whole by the request's timeout.
    fn exchange(&self, request: &TokenRequest, limit: u64) -> Result<Response, (TransportErrorKind, String)> {
        let agent = self.agent.as_ref().map_err(|e| (TransportErrorKind::Other, e.to_string()))?;
        exchange(agent, request, limit)
    }
}

/// One HTTP exchange for `request` through `agent` (see [`build_agent`]): the
/// engine's method, headers and body; `HTTPS_PROXY` / `NO_PROXY` for https
/// only; the request's timeout bounding the whole exchange; the body read to
/// `limit` bytes (one byte more says it is too large). The answer whatever its
/// status, or the transport failure as the engine classifies it.
pub fn exchange(
    agent: &ureq::Agent,
    request: &TokenRequest,
    limit: u64,
) -> Result<Response, (TransportErrorKind, String)> {
    let proxy = proxy_for(&request.http.url, &|name| std::env::var(name).ok())
        .map_err(|message| (TransportErrorKind::Other, message))?;
    let timeout = Some(Duration::from_millis(request.timeout_ms));
    // The engine says which method: POST for a token, GET (no body) for issuer discovery.
    let sent = if request.http.method == "GET" {
        let mut builder = agent.get(&request.http.url);
        for (name, value) in &request.http.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.config().timeout_global(timeout).proxy(proxy).build().call()
    } else {
        let mut builder = agent.post(&request.http.url);
        for (name, value) in &request.http.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.config().timeout_global(timeout).proxy(proxy).build().send(request.http.body.as_bytes())
    };
    sent.and_then(|mut response| {
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
            .collect();
        // Read one byte past the limit so the engine sees the body is too large.
        let body = response.body_mut().with_config().limit(limit + 1).read_to_vec();
        match body {
            Ok(body) => Ok((status, headers, body)),
            Err(ureq::Error::BodyExceedsLimit(_)) => Ok((status, headers, vec![b' '; limit as usize + 1])),
            Err(e) => Err(e),
        }
    })
    .map_err(|error| (transport_error_kind(&error), error.to_string()))
}

/// An answer as [`exchange`] returns it: status, headers, body.
pub type Response = (u16, Vec<(String, String)>, Vec<u8>);

/// How a `ureq` failure is reported to the engine.
fn transport_error_kind(error: &ureq::Error) -> TransportErrorKind {
    match error {
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => TransportErrorKind::Tls,
        // rustls reports a refused certificate through the I/O layer too.
        ureq::Error::Io(io) if io.get_ref().is_some_and(|inner| inner.to_string().contains("certificate")) => {
            TransportErrorKind::Tls
        }
        ureq::Error::Io(_) => TransportErrorKind::Io,
        _ => TransportErrorKind::Other,
    }
}

impl ServiceAccount {
    /// A provider for `config`. TLS trusts the platform's store, or the CA file
    /// in `TOKENWELL_CA_FILE`; if that file cannot be used, every token request
    /// fails with a configuration error naming `ca_file` (use [`Self::builder`]
    /// to be told at construction).
    pub fn new(config: Config) -> Self {
        Self::with_event_handler(config, None)
    }

    /// A provider configured from the environment, as every host's `fromEnv`
    /// is (see [`crate::read_env`]): `prefix + CLIENT_ID`, `TOKEN_URL` (or
    /// `HYDRA_URL`, or `ISSUER_URL` for discovery), `CLIENT_SECRET` or
    /// `CLIENT_SECRET_FILE` and/or `CLIENT_PRIVATE_KEY_FILE` (re-read when
    /// they change), `SCOPE`, `AUDIENCE`, `AUTH_METHOD`, and the
    /// unprefixed `TOKENWELL_CA_FILE` and `TOKENWELL_ALLOW_INSECURE_HTTP`.
    /// Every missing or malformed variable is named; no value is echoed.
    pub fn from_env(prefix: &str) -> Result<Self, ConfigError> {
        Self::from_env_with(prefix, crate::ExplicitOptions::default(), None)
    }

    /// [`Self::from_env`] with explicit options, which win over the
    /// environment field by field, and an event handler.
    pub fn from_env_with(
        prefix: &str,
        explicit: crate::ExplicitOptions,
        on_event: Option<EventHandler>,
    ) -> Result<Self, ConfigError> {
        let merged = crate::merge_env(explicit, crate::read_env(prefix, &|name| std::env::var(name).ok())?);
        merged.check_required()?;
        let contents = match (&merged.secret_file, &merged.secret_file_source) {
            (Some(path), Some(source)) => Some(std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(source.clone(), format!("cannot read the secret file {path} ({})", e.kind()))
            })?),
            _ => None,
        };
        let key_contents = match (&merged.key_file, &merged.key_file_source) {
            (Some(path), Some(source)) => Some(std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(source.clone(), format!("cannot read the key file {path} ({})", e.kind()))
            })?),
            _ => None,
        };
        let (secret_file, ca_file) = (merged.secret_file.clone(), merged.ca_file.clone());
        let merged_source = merged.secret_file_source.clone();
        let key_file = merged.key_file.clone().zip(merged.key_file_source.clone());
        let mut builder = Self::builder(merged.into_config_with_keys(contents.as_deref(), key_contents.as_deref())?);
        builder.on_event = on_event;
        builder.ca_file = ca_file.map(PathBuf::from);
        builder.secret_file = secret_file.zip(merged_source).map(|(path, source)| (PathBuf::from(path), source));
        builder.key_file = key_file.map(|(path, source)| (PathBuf::from(path), source));
        builder.build()
    }

    /// A builder, for a CA file, an event handler or a secret file.
    pub fn builder(config: Config) -> Builder {
        Builder { config, on_event: None, ca_file: None, secret_file: None, key_file: None }
    }

    /// A provider that passes every engine event to `on_event` (for audit logs and metrics).
    pub fn with_event_handler(config: Config, on_event: Option<EventHandler>) -> Self {
        let ca_file = std::env::var_os(CA_FILE_VAR).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self::assemble(config, on_event, build_agent(ca_file.as_deref()))
    }

    fn assemble(config: Config, on_event: Option<EventHandler>, agent: Result<ureq::Agent, ConfigError>) -> Self {
        Self {
            shared: Arc::new(Shared {
                cache: Mutex::new(TokenCache::new(config, entropy())),
                secret_file: Mutex::new(None),
                key_file: Mutex::new(None),
                changed: Condvar::new(),
                agent,
                on_event,
            }),
        }
    }

    /// Reads the secrets (one per line, current first) from `path` now and
    /// re-reads them whenever the file changes (checked at most once a second
    /// when a token is asked for), as Kubernetes updates a mounted secret: a
    /// rotated secret is picked up without a restart.
    pub fn with_secret_file(self, path: impl Into<std::path::PathBuf>) -> Result<Self, ConfigError> {
        self.watch(Watched::Secrets, path.into(), "secret_file".to_owned())
    }

    /// Reads the private keys from `path` now and whenever the file changes
    /// (see [`Builder::key_file`]).
    pub fn with_key_file(self, path: impl Into<std::path::PathBuf>) -> Result<Self, ConfigError> {
        self.watch(Watched::Keys, path.into(), "key_file".to_owned())
    }

    fn watch(self, which: Watched, path: PathBuf, source: String) -> Result<Self, ConfigError> {
        let slot = if which == Watched::Secrets { &self.shared.secret_file } else { &self.shared.key_file };
        *slot.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(SecretFile { path, source, watch: crate::SecretFileWatch::new() });
        self.shared.reload_file(which, now_ms(), true)?;
        Ok(self)
    }

    /// A token usable now, fetching one if needed. Many threads may call this at
    /// once: one request is made, the others wait for it. While a token is valid
    /// callers never wait on the network; refreshes ahead of expiry run on a
    /// background thread.
    pub fn token(&self) -> Result<Token, TokenError> {
        let shared = &self.shared;
        if let Err(error) = &shared.agent {
            return Err(error.clone().into());
        }
        // A secret or key file that cannot be read keeps what was already loaded.
        let _ = shared.reload_files(now_ms(), false);
        let mut cache = shared.lock();
        loop {
            // Fresh OS entropy before each poll that may send: a forked copy of
            // this process signs assertions with jtis of its own.
            if cache.auth_method().signs_assertion() || cache.config().key_count() > 0 {
                if let Some(bytes) = os_entropy() {
                    cache.add_entropy(&bytes);
                }
            }
            let poll = cache.poll(now_ms());
            shared.drain_events(&mut cache);
            match poll {
                PollResult::Ready { token } => return Ok(token),
                PollResult::ReadyAndSend { token, request } => {
                    drop(cache);
                    let background = Arc::clone(shared);
                    std::thread::spawn(move || {
                        let _ = background.perform(request);
                    });
                    return Ok(token);
                }
                PollResult::Send { request } => {
                    drop(cache);
                    // The outcome is read back through poll, which also applies
                    // fallback to the next secret and fail-fast.
                    let _ = shared.perform(request);
                    cache = shared.lock();
                }
                PollResult::Wait { .. } => {
                    let wait = cache.next_wakeup().map_or(1_000, |at| at.saturating_sub(now_ms()).clamp(1, 1_000));
                    cache = shared
                        .changed
                        .wait_timeout(cache, Duration::from_millis(wait))
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
                PollResult::Fail { error } => return Err(error),
            }
        }
    }

    /// The access token string, for an `Authorization: Bearer` header.
    pub fn get_token(&self) -> Result<String, TokenError> {
        self.token().map(|t| t.access_token.expose().to_owned())
    }

    /// An API answered 401 for `access_token`: drop it so the next call refetches.
    pub fn invalidate(&self, access_token: &str) -> crate::InvalidateOutcome {
        let mut cache = self.shared.lock();
        let outcome = cache.invalidate(access_token, now_ms());
        self.shared.drain_events(&mut cache);
        outcome
    }

    /// Replaces the secrets (current first) without a restart.
    pub fn replace_secrets(&self, secrets: Vec<ClientSecret>) -> Result<bool, ConfigError> {
        let mut cache = self.shared.lock();
        let changed = cache.replace_secrets(secrets, now_ms());
        self.shared.drain_events(&mut cache);
        changed
    }

    /// Where token requests go: `token_url`, or the endpoint discovered from
    /// `issuer` (`None` until the metadata document was read).
    pub fn token_endpoint(&self) -> Option<String> {
        self.shared.lock().token_endpoint().map(str::to_owned)
    }

    /// The auth method token requests use (with `issuer`, the one chosen with
    /// the metadata document).
    pub fn auth_method(&self) -> AuthMethod {
        self.shared.lock().auth_method()
    }
}

#[cfg(test)]
mod no_proxy_tests {
    use super::no_proxy_matches;

    #[test]
    fn no_proxy_rules() {
        assert!(no_proxy_matches("*", "a.example", 443));
        assert!(no_proxy_matches(".example", "a.example", 443));
        assert!(no_proxy_matches("*.example", "a.example", 443));
        assert!(no_proxy_matches("a.example:443", "a.example", 443));
        assert!(!no_proxy_matches("a.example:8443", "a.example", 443));
        assert!(!no_proxy_matches("other.example", "a.example", 443));
        assert!(!no_proxy_matches("xa.example", "a.example", 443));
    }
}
