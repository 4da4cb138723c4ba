//! Engine errors as Python exceptions.
//!
//! The exception classes live in Python (`tokenwell/_errors.py`), where they can
//! be subclassed, documented and typed. This file only hands each engine error's
//! fields to that module's constructors; the one table from kind to class is
//! there, and a test checks it against [`error_kinds`] (every `ErrorKind`).

use pyo3::prelude::*;
use pyo3::types::PyList;
use tokenwell::{ConfigError, ErrorKind, SnapshotError, TokenError};

use crate::convert::serde_name;

const ERRORS_MODULE: &str = "tokenwell._errors";

/// A `TokenError` (the subclass for its kind) carrying every field of `error`.
pub fn token_error<'py>(py: Python<'py>, error: &TokenError) -> PyResult<Bound<'py, PyAny>> {
    let args = (
        error.kind.as_str(),
        serde_name(&error.fault),
        error.retryable,
        error.retry_at,
        error.status,
        error.oauth_error.as_deref(),
        error.description.as_deref(),
        error.to_string(),
    );
    py.import(ERRORS_MODULE)?.getattr("_from_engine")?.call1(args)
}

/// The `TokenError` for `error`, ready to raise.
pub fn token_error_raise(py: Python<'_>, error: &TokenError) -> PyErr {
    match token_error(py, error) {
        Ok(instance) => PyErr::from_value(instance),
        Err(failure) => failure,
    }
}

/// An `InvalidConfigError` naming the field (or environment variable) at fault.
pub fn config_error(py: Python<'_>, error: &ConfigError) -> PyErr {
    let made = py
        .import(ERRORS_MODULE)
        .and_then(|m| m.getattr("_config_error"))
        .and_then(|f| f.call1((error.field.as_str(), error.problem.as_str(), error.to_string())));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(failure) => failure,
    }
}

/// An `InvalidConfigError` for a refusal the host found itself (an unreadable
/// file, an argument of the wrong kind), worded by the engine like every other.
#[pyfunction]
#[pyo3(name = "config_error")]
pub fn new_config_error<'py>(py: Python<'py>, field: &str, problem: &str) -> Bound<'py, PyAny> {
    config_error(py, &ConfigError::new(field, problem)).into_value(py).into_bound(py).into_any()
}

/// A `SnapshotError` with the stable reason (`corrupt`, `fingerprint_mismatch`, ...).
pub fn snapshot_error(py: Python<'_>, error: &SnapshotError) -> PyErr {
    let made = py
        .import(ERRORS_MODULE)
        .and_then(|m| m.getattr("SnapshotError"))
        .and_then(|cls| cls.call1((error.reason(), error.to_string())));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(failure) => failure,
    }
}

/// Every engine error kind as `(kind, fault, retryable)`, from `ErrorKind::ALL`.
#[pyfunction]
pub fn error_kinds(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let kinds: Vec<(&str, String, bool)> =
        ErrorKind::ALL.iter().map(|kind| (kind.as_str(), serde_name(&kind.fault()), kind.is_retryable())).collect();
    PyList::new(py, kinds)
}

/// The error for a token asked of a closed account (`ClosedError`), as the
/// engine words it for every host.
#[pyfunction]
pub fn closed_error(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    token_error(py, &TokenError::closed())
}

/// Builds a `TokenError` of `kind` from the engine's own constructor (for tests
/// of the mapping and of redaction): the same object a real failure produces.
#[pyfunction]
#[pyo3(signature = (kind, description, status = None))]
pub fn make_token_error<'py>(
    py: Python<'py>,
    kind: &str,
    description: &str,
    status: Option<u16>,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(kind) = ErrorKind::ALL.iter().copied().find(|k| k.as_str() == kind) else {
        return Err(pyo3::exceptions::PyValueError::new_err("kind is not an engine error kind"));
    };
    let mut error = TokenError::new(kind, description);
    error.status = status;
    token_error(py, &error)
}
