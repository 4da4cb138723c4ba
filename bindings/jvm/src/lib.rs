//! `tokenwell_jvm`: the tokenwell engine for the JVM, exported with uniffi.
//!
//! A thin layer: conversion in, call the engine (`core/`), conversion out. It
//! performs no I/O and reads no clock, like the engine; the Kotlin package
//! around it (`src/main/kotlin/`) is the host that sends requests with
//! `java.net.http`, keeps time, runs the refresh-ahead timer and watches the
//! secret file. One file per engine module: `cache.rs` (the token cache, its
//! outputs, the 401 rule), `env.rs` (configuration and the host contract:
//! environment, secret files), `error.rs` (errors as one uniffi error enum).
//!
//! Times cross the boundary as `i64` ms since the Unix epoch (a JVM `long`)
//! and statuses as `i32`; a negative or out-of-range value is refused with an
//! `EngineError::Argument`, never a panic. uniffi catches any panic at the
//! boundary too and raises it as an `InternalException` in Kotlin.

// `EngineError` is returned by value because uniffi serializes it into a
// buffer for the JVM at once; boxing it would add an allocation and change
// nothing the host sees.
#![allow(clippy::result_large_err)]

uniffi::setup_scaffolding!();

mod cache;
mod env;
mod error;

pub use cache::{retry_request, EngineCache, EngineEvent, EngineRequest, EngineToken, PollOutcome};
pub use env::{parse_secret_file, read_env, EngineConfig, EnvMerged, EnvReading, FileStamp, SecretFileWatch};
pub use error::{error_kinds, ConfigProblem, EngineError, ErrorKindInfo, TokenErrorInfo};

/// The text every redacted value is shown as.
#[uniffi::export]
pub fn redacted() -> String {
    tokenwell::REDACTED.to_owned()
}

/// The version of the engine this library was built from.
#[uniffi::export]
pub fn engine_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// The unprefixed variable naming a CA file (`TOKENWELL_CA_FILE`).
#[uniffi::export]
pub fn ca_file_var() -> String {
    tokenwell::CA_FILE_VAR.to_owned()
}
