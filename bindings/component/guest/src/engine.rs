//! World `engine-component`: the `token-cache` resource over the engine's
//! [`tokenwell::TokenCache`]. Each method converts, calls, converts back.

use std::cell::RefCell;

use tokenwell as tw;

use crate::bindings::exports::tokenwell::client::engine::{self as wit_engine, GuestTokenCache, PollResult};
use crate::bindings::exports::tokenwell::client::types as wit;
use crate::convert;

/// The component: its only export is the `engine` interface.
struct Component;

impl wit_engine::Guest for Component {
    type TokenCache = TokenCache;

    /// The engine's 401 rule, not one of this binding's.
    fn retry_request(outcome: wit::InvalidateOutcome) -> bool {
        let outcome = match outcome {
            wit::InvalidateOutcome::Invalidated => tw::InvalidateOutcome::Invalidated,
            wit::InvalidateOutcome::NotCurrent => tw::InvalidateOutcome::NotCurrent,
            wit::InvalidateOutcome::RateLimited => tw::InvalidateOutcome::RateLimited,
        };
        outcome.retry_request()
    }
}

/// The `token-cache` resource. Resource methods take `&self`, and a component
/// instance runs one call at a time, so a `RefCell` never finds a borrow.
pub struct TokenCache(RefCell<tw::TokenCache>);

impl TokenCache {
    fn resource(config: tw::Config, entropy: u64) -> wit_engine::TokenCache {
        wit_engine::TokenCache::new(TokenCache(RefCell::new(tw::TokenCache::new(config, entropy))))
    }
}

impl GuestTokenCache for TokenCache {
    fn create(config: wit::Config, entropy: u64) -> Result<wit_engine::TokenCache, wit::ConfigError> {
        tw::Config::from_options(convert::config_options(config))
            .map(|config| TokenCache::resource(config, entropy))
            .map_err(convert::config_error)
    }

    fn from_json(json: String, entropy: u64) -> Result<wit_engine::TokenCache, wit::ConfigError> {
        tw::Config::from_json(&json).map(|config| TokenCache::resource(config, entropy)).map_err(convert::config_error)
    }

    fn add_entropy(&self, bytes: Vec<u8>) {
        self.0.borrow_mut().add_entropy(&bytes);
    }

    fn poll(&self, now: u64) -> PollResult {
        match self.0.borrow_mut().poll(now) {
            tw::PollResult::Ready { token } => PollResult::Ready(convert::token(&token)),
            tw::PollResult::ReadyAndSend { token, request } => PollResult::ReadyAndSend(wit::TokenAndRequest {
                token: convert::token(&token),
                request: convert::token_request(&request),
            }),
            tw::PollResult::Send { request } => PollResult::Send(convert::token_request(&request)),
            tw::PollResult::Wait { fetch_id } => PollResult::Wait(fetch_id.0),
            tw::PollResult::Fail { error } => PollResult::Fail(convert::token_error(&error)),
        }
    }

    fn handle_response(
        &self,
        fetch_id: u64,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        now: u64,
    ) -> Result<wit::Token, wit::TokenError> {
        self.0
            .borrow_mut()
            .handle_response(tw::FetchId(fetch_id), status, &headers, &body, now)
            .map(|token| convert::token(&token))
            .map_err(|error| convert::token_error(&error))
    }

    fn handle_transport_error(
        &self,
        fetch_id: u64,
        kind: wit::TransportErrorKind,
        message: String,
        now: u64,
    ) -> wit::TokenError {
        let error = self.0.borrow_mut().handle_transport_error(
            tw::FetchId(fetch_id),
            convert::transport_error_kind(kind),
            &message,
            now,
        );
        convert::token_error(&error)
    }

    fn next_wakeup(&self) -> Option<u64> {
        self.0.borrow().next_wakeup()
    }

    fn invalidate(&self, access_token: String, now: u64) -> wit::InvalidateOutcome {
        convert::invalidate_outcome(self.0.borrow_mut().invalidate(&access_token, now))
    }

    fn replace_secrets(&self, secrets: Vec<String>, now: u64) -> Result<bool, wit::ConfigError> {
        self.0.borrow_mut().replace_secrets(convert::secrets(secrets), now).map_err(convert::config_error)
    }

    fn replace_keys_from_file(&self, contents: String, source: String, now: u64) -> Result<bool, wit::ConfigError> {
        self.0.borrow_mut().replace_keys_from_file(&contents, &source, now).map_err(convert::config_error)
    }

    fn poll_event(&self) -> Option<wit::Event> {
        let mut cache = self.0.borrow_mut();
        std::iter::from_fn(|| cache.poll_event()).find_map(convert::event)
    }

    fn export_snapshot(&self, now: u64) -> Option<String> {
        self.0.borrow().export_snapshot(now)
    }

    fn import_snapshot(&self, snapshot: String, now: u64) -> Result<(), wit::SnapshotError> {
        self.0.borrow_mut().import_snapshot(&snapshot, now).map_err(convert::snapshot_error)
    }

    fn state(&self) -> wit::CacheState {
        convert::cache_state(self.0.borrow().state())
    }

    fn in_flight(&self) -> Option<u64> {
        self.0.borrow().in_flight().map(|id| id.0)
    }
}

crate::bindings::export!(Component with_types_in crate::bindings);
