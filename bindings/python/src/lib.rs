//! `tokenwell._native`: the tokenwell engine for Python.
//!
//! A thin pyo3 layer: conversion in, call the engine (`core/`), conversion out.
//! It performs no I/O and reads no clock, like the engine; the Python package
//! around it (`python/tokenwell/`) is the host that sends requests, keeps time,
//! and persists snapshots. One file per engine module: `cache.rs` (the token
//! cache and its outputs), `error.rs` (errors to exceptions), `env.rs`
//! (configuration from the environment), `convert.rs` (value conversions).

use pyo3::prelude::*;

mod cache;
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
    m.add_function(wrap_pyfunction!(env::options_from_env, m)?)?;
    m.add_function(wrap_pyfunction!(env::parse_secret_file, m)?)?;
    m.add("REDACTED", tokenwell::REDACTED)?;
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
