//! Configuration from environment variables: the engine's `options_from_env`
//! and `parse_secret_file`, with Python's environment as the lookup.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tokenwell::{ConfigOptions, ListOrString, SecretOrSecrets};

use crate::error::config_error;

fn list_or_string<'py>(py: Python<'py>, value: &ListOrString) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        ListOrString::String(s) => s.into_pyobject(py)?.into_any(),
        ListOrString::List(items) => PyList::new(py, items)?.into_any(),
    })
}

/// Every field the options carry, by its engine name. Destructured without `..`,
/// so a new option in the engine fails to compile here instead of being dropped.
fn options_to_dict<'py>(py: Python<'py>, options: &ConfigOptions) -> PyResult<Bound<'py, PyDict>> {
    let ConfigOptions {
        token_url,
        client_id,
        client_secret,
        auth_method,
        scope,
        audience,
        extra_params,
        allow_insecure_http,
        refresh_margin_ms,
        refresh_ahead,
        refresh_ahead_jitter,
        default_lifetime_ms,
        min_lifetime_ms,
        max_lifetime_ms,
        max_response_bytes,
        request_timeout_ms,
        backoff_initial_ms,
        backoff_max_ms,
        backoff_min_ms,
        backoff_jitter,
        max_retry_after_ms,
        config_error_hold_ms,
        invalidate_min_interval_ms,
        outage_grace,
        outage_grace_safety_ms,
    } = options;
    let dict = PyDict::new(py);
    if let Some(v) = token_url {
        dict.set_item("token_url", v)?;
    }
    if let Some(v) = client_id {
        dict.set_item("client_id", v)?;
    }
    if let Some(secrets) = client_secret {
        let secrets: Vec<&str> = match secrets {
            SecretOrSecrets::One(s) => vec![s.expose()],
            SecretOrSecrets::Many(list) => list.iter().map(|s| s.expose()).collect(),
        };
        dict.set_item("client_secret", PyList::new(py, secrets)?)?;
    }
    if let Some(v) = auth_method {
        dict.set_item("auth_method", v.as_str())?;
    }
    if let Some(v) = scope {
        dict.set_item("scope", list_or_string(py, v)?)?;
    }
    if let Some(v) = audience {
        dict.set_item("audience", list_or_string(py, v)?)?;
    }
    if let Some(v) = extra_params {
        dict.set_item("extra_params", PyList::new(py, v)?)?;
    }
    if let Some(v) = allow_insecure_http {
        dict.set_item("allow_insecure_http", v)?;
    }
    if let Some(v) = outage_grace {
        dict.set_item("outage_grace", v)?;
    }
    for (name, value) in [
        ("refresh_margin_ms", refresh_margin_ms),
        ("default_lifetime_ms", default_lifetime_ms),
        ("min_lifetime_ms", min_lifetime_ms),
        ("max_lifetime_ms", max_lifetime_ms),
        ("request_timeout_ms", request_timeout_ms),
        ("backoff_initial_ms", backoff_initial_ms),
        ("backoff_max_ms", backoff_max_ms),
        ("backoff_min_ms", backoff_min_ms),
        ("max_retry_after_ms", max_retry_after_ms),
        ("config_error_hold_ms", config_error_hold_ms),
        ("invalidate_min_interval_ms", invalidate_min_interval_ms),
        ("outage_grace_safety_ms", outage_grace_safety_ms),
    ] {
        if let Some(v) = value {
            dict.set_item(name, v)?;
        }
    }
    if let Some(v) = max_response_bytes {
        dict.set_item("max_response_bytes", v)?;
    }
    if let Some(v) = refresh_ahead {
        dict.set_item("refresh_ahead", v)?;
    }
    if let Some(v) = refresh_ahead_jitter {
        dict.set_item("refresh_ahead_jitter", v)?;
    }
    if let Some(v) = backoff_jitter {
        dict.set_item("backoff_jitter", v)?;
    }
    Ok(dict)
}

/// Reads `prefix + CLIENT_ID`, `CLIENT_SECRET` / `CLIENT_SECRET_FILE`, `TOKEN_URL`
/// (or `HYDRA_URL` / `ISSUER_URL`), `SCOPE`, `AUDIENCE`, `AUTH_METHOD` from
/// `environ` (any mapping with `get`). Returns `(options, secret_file, secret_file_var)`;
/// raises `InvalidConfigError` whose `field` is the variable's name.
#[pyfunction]
pub fn options_from_env<'py>(
    py: Python<'py>,
    prefix: &str,
    environ: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyDict>, Option<String>, Option<String>)> {
    let get = |name: &str| -> Option<String> {
        environ.call_method1("get", (name,)).ok().filter(|v| !v.is_none()).and_then(|v| v.extract::<String>().ok())
    };
    let env = tokenwell::options_from_env(prefix, &get).map_err(|e| config_error(py, &e))?;
    Ok((options_to_dict(py, &env.options)?, env.secret_file, env.secret_file_var))
}

/// The secrets in a secret file's contents (one per line, current first; or one
/// comma-separated line). Raises `InvalidConfigError` naming `variable`.
#[pyfunction]
pub fn parse_secret_file(py: Python<'_>, contents: &str, variable: &str) -> PyResult<Vec<String>> {
    let secrets = tokenwell::parse_secret_file(contents, variable).map_err(|e| config_error(py, &e))?;
    Ok(secrets.iter().map(|s| s.expose().to_owned()).collect())
}
