//! `tokenwell._native`: the tokenwell engine for Python.
//!
//! A thin pyo3 layer: conversion in, call the engine (`core/`), conversion out.
//! It performs no I/O and reads no clock, like the engine; the Python package
//! around it (`python/tokenwell/`) is the host that sends requests, keeps time,
//! and persists snapshots. One file per engine module: `cache.rs` (the token
//! cache and its outputs, the 401 rule), `config.rs` (validated
//! configuration), `env.rs` (the host contract: environment, secret and key files),
//! `error.rs` (errors to exceptions), `convert.rs` (value conversions).

use pyo3::prelude::*;

mod cache;
mod config;
mod convert;
mod env;
mod error;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<cache::PyTokenCache>()?;
    m.add_class::<cache::PyPoll>()?;
    m.add_class::<cache::PyToken>()?;
    m.add_class::<cache::PyTokenRequest>()?;
    m.add_function(wrap_pyfunction!(error::error_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(error::make_token_error, m)?)?;
    m.add_function(wrap_pyfunction!(error::closed_error, m)?)?;
    m.add_class::<config::PyConfig>()?;
    m.add_class::<env::PyEnvReading>()?;
    m.add_class::<env::PyEnvMerged>()?;
    m.add_class::<env::PyFileStamp>()?;
    m.add_class::<env::PySecretFileWatch>()?;
    m.add_function(wrap_pyfunction!(error::new_config_error, m)?)?;
    m.add_function(wrap_pyfunction!(env::read_env, m)?)?;
    m.add_function(wrap_pyfunction!(env::merge_env, m)?)?;
    m.add_function(wrap_pyfunction!(env::parse_secret_file, m)?)?;
    m.add_function(wrap_pyfunction!(env::parse_key_file, m)?)?;
    m.add_function(wrap_pyfunction!(cache::retry_request, m)?)?;
    m.add("CA_FILE_VAR", tokenwell::CA_FILE_VAR)?;
    m.add("ALLOW_INSECURE_HTTP_VAR", tokenwell::ALLOW_INSECURE_HTTP_VAR)?;
    m.add("REDACTED", tokenwell::REDACTED)?;
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
