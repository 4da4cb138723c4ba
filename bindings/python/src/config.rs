//! A validated configuration (`tokenwell::Config`) and the conversion of
//! Python options into the engine's `ConfigOptions`.
//!
//! Every refusal is the engine's `ConfigError`, worded by the engine. The only
//! thing done here is renaming a field from the engine's spelling to the
//! caller's (`request_timeout_ms` → `timeout`), keeping the index (`[1]`).

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use tokenwell::{Config, ConfigError, ConfigOptions};

use crate::convert::py_to_json;
use crate::error::config_error;

/// Engine field names → the names the caller used (`{"request_timeout_ms": "timeout"}`).
#[derive(Debug, Clone, Default)]
pub struct FieldNames(HashMap<String, String>);

impl FieldNames {
    pub fn new(names: Option<HashMap<String, String>>) -> Self {
        Self(names.unwrap_or_default())
    }

    /// `error` naming the caller's field instead of the engine's, index kept.
    pub fn rename(&self, mut error: ConfigError) -> ConfigError {
        let at = error.field.find('[').unwrap_or(error.field.len());
        if let Some(name) = self.0.get(&error.field[..at]) {
            error.field = format!("{name}{}", &error.field[at..]);
        }
        error
    }
}

/// Refuses with `TypeError` what is neither a dict nor a str (a caller's bug,
/// not a configuration mistake).
pub fn check_options_type(options: &Bound<'_, PyAny>, name: &str) -> PyResult<()> {
    if options.is_instance_of::<PyString>() || options.is_instance_of::<PyDict>() {
        return Ok(());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!("{name} must be a dict or a JSON str")))
}

/// Options as a dict (`snake_case` keys, durations in ms) or a JSON string,
/// parsed into the engine's `ConfigOptions`. A value of the wrong type is
/// located and worded by the engine (`Config::from_json` names the option).
pub fn options_from_py(options: &Bound<'_, PyAny>) -> Result<ConfigOptions, ConfigError> {
    let value = if options.is_instance_of::<PyString>() {
        let text: String = options.extract().map_err(|_| ConfigError::new("options", "is not valid Unicode text"))?;
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(value) => value,
            Err(_) => return Err(engine_refusal(&text)),
        }
    } else if options.is_instance_of::<PyDict>() {
        py_to_json(options, "")?
    } else {
        return Err(ConfigError::new("options", "must be a dict or a JSON str"));
    };
    serde_json::from_value::<ConfigOptions>(value.clone()).map_err(|_| engine_refusal(&value.to_string()))
}

/// The engine's own, located refusal of options that do not deserialize.
fn engine_refusal(json: &str) -> ConfigError {
    Config::from_json(json).err().unwrap_or_else(|| ConfigError::new("options", "cannot be read"))
}

/// A validated configuration: build a `TokenCache` from it. `repr` shows no secret.
#[pyclass(module = "tokenwell._native", name = "Config", frozen)]
pub struct PyConfig {
    pub inner: Config,
}

#[pymethods]
impl PyConfig {
    /// `options`: the engine's options as a dict or JSON string (`snake_case`,
    /// durations in ms). `field_names` renames engine fields in errors to the
    /// caller's names. Raises `InvalidConfigError`.
    #[new]
    #[pyo3(signature = (options, field_names = None))]
    fn new(py: Python<'_>, options: &Bound<'_, PyAny>, field_names: Option<HashMap<String, String>>) -> PyResult<Self> {
        check_options_type(options, "options")?;
        let names = FieldNames::new(field_names);
        let options = options_from_py(options).map_err(|e| config_error(py, &names.rename(e)))?;
        let inner = Config::from_options(options).map_err(|e| config_error(py, &names.rename(e)))?;
        Ok(Self { inner })
    }

    /// The token endpoint; `""` when it is discovered from `issuer`.
    #[getter]
    fn token_url(&self) -> &str {
        self.inner.token_url()
    }

    /// The client id.
    #[getter]
    fn client_id(&self) -> &str {
        self.inner.client_id()
    }

    /// The issuer (`issuer` / `ISSUER_URL`) exactly as configured, if any.
    #[getter]
    fn issuer(&self) -> Option<&str> {
        self.inner.issuer()
    }

    /// `"client_secret_basic"`, `"client_secret_post"`, `"private_key_jwt"`
    /// or `"client_secret_jwt"` (with discovery, until a document is read).
    #[getter]
    fn auth_method(&self) -> &'static str {
        self.inner.auth_method().as_str()
    }

    /// How many private keys are configured (`private_key_jwt`).
    #[getter]
    fn key_count(&self) -> usize {
        self.inner.key_count()
    }

    /// The requested scopes.
    #[getter]
    fn scopes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.scopes())
    }

    /// The requested audiences.
    #[getter]
    fn audiences<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.audiences())
    }

    /// How many secrets are configured.
    #[getter]
    fn secret_count(&self) -> usize {
        self.inner.secret_count()
    }

    /// Identifies the configuration a snapshot belongs to (never covers the secret).
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }

    fn __repr__(&self) -> String {
        format!(
            "Config(token_url={:?}, issuer={:?}, client_id={:?}, auth_method='{}', secrets={}, keys={})",
            self.inner.token_url(),
            self.inner.issuer(),
            self.inner.client_id(),
            self.inner.auth_method().as_str(),
            self.inner.secret_count(),
            self.inner.key_count()
        )
    }
}
