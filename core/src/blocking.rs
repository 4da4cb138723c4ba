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

struct Shared {
    cache: Mutex<TokenCache>,
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
                changed: Condvar::new(),
                agent,
                on_event,
            }),
        }
    }

    /// A token usable now, fetching one if needed. Many threads may call this at
    /// once: one request is made, the others wait for it. While a token is valid
    /// callers never wait on the network; refreshes ahead of expiry run on a
    /// background thread.
    pub fn token(&self) -> Result<Token, TokenError> {
        let shared = &self.shared;
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
