//! Conversions between Python values and the engine's inputs and outputs.
//!
//! Every refusal names the argument or field at fault and never echoes a value
//! (a value may be a secret).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::Serialize;
use serde_json::{Map, Number, Value};
use tokenwell::ConfigError;

/// A JSON value (the shape the engine serializes its outputs in) as a Python object.
pub fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            (None, None) => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Any engine output that serializes, as a Python object.
pub fn serde_to_py<'py, T: Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value).map_err(|e| PyValueError::new_err(format!("cannot convert: {e}")))?;
    json_to_py(py, &json)
}

/// The `snake_case` name an engine enum serializes to (`"ready_and_send"`, `"idle"`, ...).
pub fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

/// A Python configuration value (dict, list, str, int, float, bool, None) as JSON,
/// refusing anything else with a [`ConfigError`] that names the field.
pub fn py_to_json(obj: &Bound<'_, PyAny>, path: &str) -> Result<Value, ConfigError> {
    let field = || if path.is_empty() { "options".to_owned() } else { path.to_owned() };
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::Number(u.into()));
        }
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        return Err(ConfigError::new(field(), "is an integer out of range"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| ConfigError::new(field(), "must be a finite number"));
    }
    if obj.is_instance_of::<PyString>() {
        return obj
            .extract::<String>()
            .map(Value::String)
            .map_err(|_| ConfigError::new(field(), "is not valid Unicode text"));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, item) in dict.iter() {
            let key: String = key.extract().map_err(|_| ConfigError::new(field(), "has a key that is not a str"))?;
            let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            map.insert(key, py_to_json(&item, &child)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        let iter = obj.try_iter().map_err(|_| ConfigError::new(field(), "cannot be iterated"))?;
        for (i, item) in iter.enumerate() {
            let item = item.map_err(|_| ConfigError::new(field(), "cannot be iterated"))?;
            items.push(py_to_json(&item, &format!("{}[{i}]", field()))?);
        }
        return Ok(Value::Array(items));
    }
    let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".to_owned());
    Err(ConfigError::new(field(), format!("has unsupported type {type_name}")))
}

/// A time or id argument: a non-negative `int`.
pub fn non_negative_int(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".to_owned());
        return Err(PyTypeError::new_err(format!("{name} must be an int, not {type_name}")));
    }
    obj.extract::<u64>().map_err(|_| PyValueError::new_err(format!("{name} must be a non-negative int below 2**64")))
}

/// An HTTP status code: an `int` in 100..=999.
pub fn http_status(obj: &Bound<'_, PyAny>) -> PyResult<u16> {
    let status = non_negative_int(obj, "status")?;
    u16::try_from(status)
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| PyValueError::new_err("status must be an HTTP status code (100..=999)"))
}

/// Response headers: a mapping (anything with `items()`) or an iterable of `(name, value)` pairs.
pub fn header_pairs(obj: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    if obj.is_none() {
        return Ok(Vec::new());
    }
    let items = if obj.hasattr("items")? { obj.call_method0("items")? } else { obj.clone() };
    let iter =
        items.try_iter().map_err(|_| PyTypeError::new_err("headers must be a mapping or (name, value) pairs"))?;
    let mut pairs = Vec::new();
    for (i, item) in iter.enumerate() {
        let pair: (String, String) = item?
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("headers[{i}] must be a (name, value) pair of str")))?;
        pairs.push(pair);
    }
    Ok(pairs)
}

/// A response body: `bytes`, `bytearray`, `memoryview` or `str` (UTF-8 encoded).
pub fn body_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    if let Ok(array) = obj.cast::<PyByteArray>() {
        return Ok(array.to_vec());
    }
    if let Ok(text) = obj.cast::<PyString>() {
        return Ok(text.to_cow()?.into_owned().into_bytes());
    }
    if obj.hasattr("tobytes")? {
        if let Ok(bytes) = obj.call_method0("tobytes")?.cast_into::<PyBytes>() {
            return Ok(bytes.as_bytes().to_vec());
        }
    }
    Err(PyTypeError::new_err("body must be bytes, bytearray, memoryview or str"))
}

/// A list of secrets: one `str`, or a list/tuple of `str`. Names `field` on refusal.
pub fn secret_list(obj: &Bound<'_, PyAny>, field: &str) -> Result<Vec<String>, ConfigError> {
    if obj.is_instance_of::<PyString>() {
        return obj.extract::<String>().map(|s| vec![s]).map_err(|_| ConfigError::new(field, "is not valid text"));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut secrets = Vec::new();
        let iter = obj.try_iter().map_err(|_| ConfigError::new(field, "cannot be iterated"))?;
        for (i, item) in iter.enumerate() {
            let secret = item
                .and_then(|item| item.extract::<String>())
                .map_err(|_| ConfigError::new(format!("{field}[{i}]"), "must be a str"))?;
            secrets.push(secret);
        }
        return Ok(secrets);
    }
    Err(ConfigError::new(field, "must be a str or a list of str"))
}
