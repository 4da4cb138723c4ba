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

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{
    ClientSecret, Config, ConfigError, Event, Poll, Token, TokenCache, TokenError, TokenRequest, TransportErrorKind,
};

/// A callback that receives every engine event (no secret is ever in one).
pub type EventHandler = Box<dyn Fn(&Event) + Send + Sync>;

/// A thread-safe token provider for one client, shareable by cloning.
#[derive(Clone)]
pub struct ServiceAccount {
    shared: Arc<Shared>,
}

struct SecretFile {
    path: std::path::PathBuf,
    /// Modification time and length at the last read.
    stamp: Option<(SystemTime, u64)>,
    checked_at: u64,
}

struct Shared {
    cache: Mutex<TokenCache>,
    secret_file: Mutex<Option<SecretFile>>,
    changed: Condvar,
    agent: ureq::Agent,
    on_event: Option<EventHandler>,
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

    /// Re-reads the secret file if it changed (at most once a second unless `force`).
    fn reload_secret_file(&self, now: u64, force: bool) -> Result<(), ConfigError> {
        let mut guard = self.secret_file.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = guard.as_mut() else { return Ok(()) };
        if !force && now < file.checked_at.saturating_add(1_000) {
            return Ok(());
        }
        file.checked_at = now;
        let unreadable = |what: &str| ConfigError::new("secret_file", format!("{what}: {}", file.path.display()));
        let metadata = std::fs::metadata(&file.path).map_err(|_| unreadable("cannot read the secret file"))?;
        let stamp = (metadata.modified().unwrap_or(UNIX_EPOCH), metadata.len());
        if file.stamp == Some(stamp) {
            return Ok(());
        }
        let contents = std::fs::read_to_string(&file.path).map_err(|_| unreadable("cannot read the secret file"))?;
        let secrets = crate::parse_secret_file(&contents, "secret_file")?;
        file.stamp = Some(stamp);
        drop(guard);
        let mut cache = self.lock();
        cache.replace_secrets(secrets, now)?;
        self.drain_events(&mut cache);
        Ok(())
    }

    /// Sends `request` and reports the outcome to the engine.
    fn perform(&self, request: TokenRequest) -> Result<Token, TokenError> {
        let limit = self.lock().config().policy().max_response_bytes as u64;
        let mut builder = self.agent.post(&request.http.url);
        for (name, value) in &request.http.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let outcome = builder
            .config()
            .timeout_global(Some(Duration::from_millis(request.timeout_ms)))
            .build()
            .send(request.http.body.as_bytes())
            .and_then(|mut response| {
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
            });
        let mut cache = self.lock();
        let now = now_ms();
        let result = match outcome {
            Ok((status, headers, body)) => cache.handle_response(request.fetch_id, status, &headers, &body, now),
            Err(error) => {
                let kind = match &error {
                    ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
                    ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
                    ureq::Error::Io(_) => TransportErrorKind::Io,
                    _ => TransportErrorKind::Other,
                };
                Err(cache.handle_transport_error(request.fetch_id, kind, &error.to_string(), now))
            }
        };
        self.drain_events(&mut cache);
        drop(cache);
        self.changed.notify_all();
        result
    }
}

impl ServiceAccount {
    /// A provider for `config`, using a default `ureq` agent.
    pub fn new(config: Config) -> Self {
        Self::with_event_handler(config, None)
    }

    /// A provider that passes every engine event to `on_event` (for audit logs and metrics).
    pub fn with_event_handler(config: Config, on_event: Option<EventHandler>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Self {
            shared: Arc::new(Shared {
                cache: Mutex::new(TokenCache::new(config, entropy())),
                secret_file: Mutex::new(None),
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
        let path = path.into();
        *self.shared.secret_file.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(SecretFile { path, stamp: None, checked_at: 0 });
        self.shared.reload_secret_file(now_ms(), true)?;
        Ok(self)
    }

    /// A token usable now, fetching one if needed. Many threads may call this at
    /// once: one request is made, the others wait for it. While a token is valid
    /// callers never wait on the network; refreshes ahead of expiry run on a
    /// background thread.
    pub fn token(&self) -> Result<Token, TokenError> {
        let shared = &self.shared;
        // A secret file that cannot be read keeps the secrets already loaded.
        let _ = shared.reload_secret_file(now_ms(), false);
        let mut cache = shared.lock();
        loop {
            let poll = cache.poll(now_ms());
            shared.drain_events(&mut cache);
            match poll {
                Poll::Ready { token } => return Ok(token),
                Poll::ReadyAndSend { token, request } => {
                    drop(cache);
                    let background = Arc::clone(shared);
                    std::thread::spawn(move || {
                        let _ = background.perform(request);
                    });
                    return Ok(token);
                }
                Poll::Send { request } => {
                    drop(cache);
                    // The outcome is read back through poll, which also applies
                    // fallback to the next secret and fail-fast.
                    let _ = shared.perform(request);
                    cache = shared.lock();
                }
                Poll::Wait { .. } => {
                    let wait = cache.next_wakeup().map_or(1_000, |at| at.saturating_sub(now_ms()).clamp(1, 1_000));
                    cache = shared
                        .changed
                        .wait_timeout(cache, Duration::from_millis(wait))
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
                Poll::Fail { error } => return Err(error),
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
}
