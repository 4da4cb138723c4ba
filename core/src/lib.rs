//! # tokenwell: a sans-IO OAuth 2.0 Client Credentials token engine
//!
//! This crate performs **no I/O, reads no clock and draws no randomness**. The
//! host (a Rust service, the Node or Python binding, a WebAssembly component
//! host) sends the HTTP requests, passes the current time (ms since the Unix
//! epoch) into every call, and passes jitter entropy in at construction. The
//! engine makes every decision: which request to send and when, how long a
//! token may be served, whether and when to retry, which secret to use, and
//! what an error means.
//!
//! ```
//! use tokenwell::{Config, PollResult, TokenCache};
//!
//! let config = Config::from_json(r#"{
//!     "token_url": "https://hydra.example/oauth2/token",
//!     "client_id": "billing-worker",
//!     "client_secret": "s3cr3t",
//!     "scope": "billing:read billing:write"
//! }"#).unwrap();
//! let mut cache = TokenCache::new(config, 0x5eed);
//! let now = 1_700_000_000_000;
//!
//! let PollResult::Send { request } = cache.poll(now) else { unreachable!() };
//! assert_eq!(request.http.method, "POST");
//! // ... the host sends `request.http` and reports the response:
//! let body = br#"{"access_token":"at-1","token_type":"bearer","expires_in":3600}"#;
//! let token = cache.handle_response(request.fetch_id, 200, &[], body, now + 40).unwrap();
//! assert_eq!(token.access_token.expose(), "at-1");
//!
//! // Later calls are served from the cache until the refresh-ahead point.
//! assert!(matches!(cache.poll(now + 60_000), PollResult::Ready { .. }));
//! ```
//!
//! Besides client secrets, the engine signs client assertions
//! (`private_key_jwt`, `client_secret_jwt`; see [`sign_assertion`]) with
//! randomness only the host supplies ([`EntropyPool`],
//! [`TokenCache::add_entropy`]), and discovers the token endpoint and auth
//! method from an `issuer`'s metadata document ([`discovery_urls`]): the
//! metadata request is one more [`HttpRequest`], a `GET`, that the host sends
//! like any other.
//!
//! The pieces are usable on their own: [`build_token_request`] and
//! [`parse_token_response`] are pure functions. With the `blocking` feature,
//! [`blocking::ServiceAccount`] drives the engine over `ureq` for Rust
//! services that just want a token.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod assertion;
mod cache;
mod config;
mod discovery;
mod entropy;
mod env;
mod error;
mod event;
mod keys;
mod request;
mod response;
mod scrub;
mod secret;

#[cfg(feature = "blocking")]
pub mod blocking;

pub use assertion::{sign_assertion, AssertionClaims, AssertionKey, CLIENT_ASSERTION_TYPE};
#[allow(deprecated)]
pub use cache::Poll;
pub use cache::{CacheState, InvalidateOutcome, PollResult, Token, TokenCache, TransportErrorKind};
pub use config::{AssertionAudience, AuthMethod, Config, ConfigOptions, ListOrString, RefreshPolicy, SecretOrSecrets};
pub use discovery::{choose_auth_method, discovery_urls, DiscoveryDocument};
pub use entropy::EntropyPool;
pub use env::{
    merge_env, options_from_env, parse_secret_file, read_env, EnvConfig, EnvMerged, EnvReading, ExplicitOptions,
    FileStamp, SecretFileWatch, ALLOW_INSECURE_HTTP_VAR, CA_FILE_VAR,
};
pub use error::{format_epoch_ms, ConfigError, ErrorKind, Fault, SnapshotError, TokenError};
pub use event::{CacheFileProblem, DiscoveryCause, Event, EventKind, RefreshReason};
pub use keys::{parse_key_file, parse_private_keys, PrivateKey, SigningAlg};
pub use request::{
    basic_authorization, build_signed_token_request, build_token_request, form_urlencode, FetchId, HttpRequest,
    TokenRequest,
};
pub use response::{
    jwt_exp_ms, parse_token_response, parse_token_response_for, retry_after, LifetimeSource, ParsedToken,
};
pub use scrub::WITHHELD;
pub use secret::{AccessToken, ClientSecret, REDACTED};
