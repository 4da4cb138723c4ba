//! # tokenwell-node: the native half of the npm package `tokenwell`
//!
//! A thin napi-rs binding of the sans-IO engine (crate `tokenwell`): every
//! conversion lives in `tokenwell-js` (`shared/`), which the wasm-bindgen
//! binding (`bindings/wasm`) wraps too, so both backends of the npm package
//! serve the same internal interface to `lib/`. It makes no decision of its
//! own: no retry, no expiry or backoff arithmetic, no clock. The JavaScript
//! half (`lib/`) owns `fetch`, timers, promises and files; the one file call
//! made here is `flock` (`files.rs`), which JavaScript has no API for.
//!
//! Values cross the boundary as JSON text with camelCase keys. The JS side
//! parses it with `JSON.parse`, which V8 does faster than napi builds an object
//! property by property, and it keeps every shape in one place: the engine's
//! `Serialize` implementations.
//!
//! Host input never panics here: every argument is checked and refused with a
//! JS exception that names it. Every export is also `catch_unwind`, so a bug
//! becomes a JS exception instead of aborting the process.

mod cache;
mod files;

pub use cache::{
    closed_error, create_token_cache, create_token_cache_from_env, env_plan, error_kinds, retry_request,
    NativeTokenCache,
};
pub use files::{secret_file_check_interval_ms, try_lock_file, NativeSecretFileWatch};
