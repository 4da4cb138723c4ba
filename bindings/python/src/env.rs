//! The host contract of `tokenwell::env`: configuration from the environment
//! (`read_env` → `merge_env` → `EnvMerged::into_config_with_keys`), the
//! secret-file and key-file parsers, and `SecretFileWatch`, the one rule for
//! noticing a changed secret or key file. Python passes its environment mapping and reads the files; every
//! decision and every error's wording is the engine's.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use tokenwell::{merge_env as core_merge_env, EnvMerged, EnvReading, ExplicitOptions, FileStamp, SecretFileWatch};

use crate::config::{check_options_type, options_from_py, FieldNames, PyConfig};
use crate::error::config_error;

/// What the environment says (`read_env`): which variable set which option.
/// Holds the values read, but shows none of them.
#[pyclass(module = "tokenwell._native", name = "EnvReading", frozen)]
pub struct PyEnvReading {
    inner: EnvReading,
}

#[pymethods]
impl PyEnvReading {
    /// `(option, variable)` for every option the environment set.
    #[getter]
    fn sources(&self) -> Vec<(String, String)> {
        self.inner.sources.clone()
    }

    /// The path in `CLIENT_SECRET_FILE`, if set.
    #[getter]
    fn secret_file(&self) -> Option<String> {
        self.inner.secret_file.clone()
    }

    /// The path in `CLIENT_PRIVATE_KEY_FILE`, if set.
    #[getter]
    fn key_file(&self) -> Option<String> {
        self.inner.key_file.clone()
    }

    /// The path in `TOKENWELL_CA_FILE`, if set.
    #[getter]
    fn ca_file(&self) -> Option<String> {
        self.inner.ca_file.clone()
    }

    fn __repr__(&self) -> String {
        let variables: Vec<&str> = self.inner.sources.iter().map(|(_, v)| v.as_str()).collect();
        format!("EnvReading(variables={variables:?})")
    }
}

/// Reads every variable `prefix + NAME` (and the unprefixed `TOKENWELL_*` ones)
/// from `environ` (any mapping with `get`). Nothing is required here; a value
/// that is set but malformed raises `InvalidConfigError` naming its variable.
#[pyfunction]
pub fn read_env(py: Python<'_>, prefix: &str, environ: &Bound<'_, PyAny>) -> PyResult<PyEnvReading> {
    let get = |name: &str| -> Option<String> {
        environ.call_method1("get", (name,)).ok().filter(|v| !v.is_none()).and_then(|v| v.extract::<String>().ok())
    };
    let inner = tokenwell::read_env(prefix, &get).map_err(|e| config_error(py, &e))?;
    Ok(PyEnvReading { inner })
}

/// Explicit options merged over the environment (`merge_env`): what to read
/// next (`secret_file`) and the last step, `into_config`.
#[pyclass(module = "tokenwell._native", name = "EnvMerged", frozen)]
pub struct PyEnvMerged {
    inner: EnvMerged,
    names: FieldNames,
}

#[pymethods]
impl PyEnvMerged {
    /// The secret file to read, if the secret comes from one.
    #[getter]
    fn secret_file(&self) -> Option<String> {
        self.inner.secret_file.clone()
    }

    /// The name that errors and events about the secret file use: the
    /// variable (`CLIENT_SECRET_FILE`) or the option (`client_secret_file`).
    #[getter]
    fn secret_file_source(&self) -> Option<String> {
        self.inner.secret_file_source.clone()
    }

    /// The key file to read (`CLIENT_PRIVATE_KEY_FILE`), if the keys come from one.
    #[getter]
    fn key_file(&self) -> Option<String> {
        self.inner.key_file.clone()
    }

    /// The name that errors and events about the key file use (the variable).
    #[getter]
    fn key_file_source(&self) -> Option<String> {
        self.inner.key_file_source.clone()
    }

    /// The CA file (the explicit `ca_file`, else `TOKENWELL_CA_FILE`), if any.
    #[getter]
    fn ca_file(&self) -> Option<String> {
        self.inner.ca_file.clone()
    }

    /// `(option, variable)` for every option the environment supplied and the caller did not override.
    #[getter]
    fn sources(&self) -> Vec<(String, String)> {
        self.inner.sources.clone()
    }

    /// Raises `InvalidConfigError` naming every required variable that is missing, at once.
    fn check_required(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.check_required().map_err(|e| config_error(py, &e))
    }

    /// The validated configuration. `secret_file_contents` is what the host
    /// read from `secret_file`, `key_file_contents` what it read from
    /// `key_file` (each required when its file is set). Errors name the
    /// variable that supplied the field (`SCOPE[1]`), or the caller's option.
    #[pyo3(name = "into_config", signature = (secret_file_contents = None, key_file_contents = None))]
    fn to_config(
        &self,
        py: Python<'_>,
        secret_file_contents: Option<&str>,
        key_file_contents: Option<&str>,
    ) -> PyResult<PyConfig> {
        let config = self.inner.clone().into_config_with_keys(secret_file_contents, key_file_contents);
        config.map(|inner| PyConfig { inner }).map_err(|e| config_error(py, &self.names.rename(e)))
    }

    fn __repr__(&self) -> String {
        format!(
            "EnvMerged(secret_file={:?}, secret_file_source={:?}, key_file={:?}, ca_file={:?}, sources={:?})",
            self.inner.secret_file,
            self.inner.secret_file_source,
            self.inner.key_file,
            self.inner.ca_file,
            self.inner.sources
        )
    }
}

/// Merges the options the caller passed explicitly (`explicit`: the engine's
/// options, `snake_case`, ms) over `reading`: explicit options win, field by
/// field; the secret is one field in either form. `field_names` renames engine
/// fields in errors to the caller's spelling.
#[pyfunction]
#[pyo3(signature = (explicit, reading, secret_file = None, ca_file = None, field_names = None))]
pub fn merge_env(
    py: Python<'_>,
    explicit: &Bound<'_, PyAny>,
    reading: &PyEnvReading,
    secret_file: Option<String>,
    ca_file: Option<String>,
    field_names: Option<HashMap<String, String>>,
) -> PyResult<PyEnvMerged> {
    check_options_type(explicit, "explicit")?;
    let names = FieldNames::new(field_names);
    let options = options_from_py(explicit).map_err(|e| config_error(py, &names.rename(e)))?;
    let inner = core_merge_env(ExplicitOptions { options, secret_file, ca_file }, reading.inner.clone());
    Ok(PyEnvMerged { inner, names })
}

/// The secrets in a secret file's contents (one per line, current first; or one
/// comma-separated line). Raises `InvalidConfigError` naming `source`.
#[pyfunction]
pub fn parse_secret_file(py: Python<'_>, contents: &str, source: &str) -> PyResult<Vec<String>> {
    let secrets = tokenwell::parse_secret_file(contents, source).map_err(|e| config_error(py, &e))?;
    Ok(secrets.iter().map(|s| s.expose().to_owned()).collect())
}

/// Checks a key file's `contents` (PEM blocks or a JWK / JWKS, current
/// first) as the engine reads it, and returns how many keys it holds.
/// `assertion_signing_alg` applies to keys whose JWK names none (an HMAC
/// algorithm is ignored, as for `CLIENT_PRIVATE_KEY_FILE`). Raises
/// `InvalidConfigError` naming `source`; the error never quotes the file.
#[pyfunction]
#[pyo3(signature = (contents, source, assertion_signing_alg = None))]
pub fn parse_key_file(
    py: Python<'_>,
    contents: &str,
    source: &str,
    assertion_signing_alg: Option<&str>,
) -> PyResult<usize> {
    let alg = assertion_signing_alg.and_then(tokenwell::SigningAlg::parse).filter(|a| !a.is_hmac());
    let keys = tokenwell::parse_key_file(contents, source, alg).map_err(|e| config_error(py, &e))?;
    Ok(keys.len())
}

/// What `os.stat` (following symlinks) says about a secret file.
#[pyclass(module = "tokenwell._native", name = "FileStamp", frozen, eq)]
#[derive(PartialEq)]
pub struct PyFileStamp {
    inner: FileStamp,
}

#[pymethods]
impl PyFileStamp {
    /// `st_dev`, `st_ino`, `st_size`, `st_mtime_ns`, `st_ctime_ns`.
    #[new]
    fn new(device: u64, inode: u64, size: u64, modified_ns: i64, changed_ns: i64) -> Self {
        let (modified_ns, changed_ns) = (i128::from(modified_ns), i128::from(changed_ns));
        Self { inner: FileStamp { device, inode, size, modified_ns, changed_ns } }
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!(
            "FileStamp(device={}, inode={}, size={}, modified_ns={}, changed_ns={})",
            s.device, s.inode, s.size, s.modified_ns, s.changed_ns
        )
    }
}

/// The engine's rule for noticing a changed secret file: `stat` it when
/// `due(now_ms, forced)` (at most once a second on the token path, at once
/// after `invalid_client`); read it when `changed(stamp, now_ms)`; then
/// `read(stamp)`. A `stat` or read that failed is `failed(now_ms)`.
#[pyclass(module = "tokenwell._native", name = "SecretFileWatch", frozen)]
pub struct PySecretFileWatch {
    inner: Mutex<SecretFileWatch>,
}

impl PySecretFileWatch {
    fn watch(&self) -> MutexGuard<'_, SecretFileWatch> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl PySecretFileWatch {
    /// How often (ms) the file is checked on the token path.
    #[classattr]
    const CHECK_INTERVAL_MS: u64 = SecretFileWatch::CHECK_INTERVAL_MS;

    /// A watch that has read nothing yet.
    #[new]
    fn new() -> Self {
        Self { inner: Mutex::new(SecretFileWatch::new()) }
    }

    /// Whether to `stat` the file now.
    #[pyo3(signature = (now_ms, forced = false))]
    fn due(&self, now_ms: u64, forced: bool) -> bool {
        self.watch().due(now_ms, forced)
    }

    /// Records a check that found `stamp`; whether the file must be read.
    fn changed(&self, stamp: &PyFileStamp, now_ms: u64) -> bool {
        self.watch().changed(stamp.inner, now_ms)
    }

    /// Records a check that could not `stat` or read the file.
    fn failed(&self, now_ms: u64) {
        self.watch().failed(now_ms);
    }

    /// Records that the file with `stamp` was read (valid or not).
    fn read(&self, stamp: &PyFileStamp) {
        self.watch().read(stamp.inner);
    }
}
