//! Configuration in: JS options (camelCase JSON) and environment variables,
//! converted to the engine's `ConfigOptions` and validated by the engine.
//!
//! The engine validates; this file only converts, and renames the field a
//! `ConfigError` names back to what the caller wrote: the camelCase option, or
//! the environment variable it came from.

use std::collections::HashMap;

use serde_json::{Map, Value};
use tokenwell::{options_from_env, parse_secret_file, Config, ConfigError, ConfigOptions, SecretOrSecrets};

use crate::json::{camel_case, snake_case};

/// How a configuration error's field is named for the caller.
pub(crate) enum FieldNames<'a> {
    /// camelCase option names (`tokenUrl`).
    Options,
    /// Environment variables with this prefix; the secret came from the file variable if set.
    Env { prefix: &'a str, env: &'a HashMap<String, String>, secret_file_var: Option<String> },
}

impl FieldNames<'_> {
    /// The caller's name for the engine's `snake_case` field (which may carry an index, `scope[2]`).
    pub(crate) fn name(&self, field: &str) -> String {
        let (base, index) = match field.find('[') {
            Some(i) => (&field[..i], &field[i..]),
            None => (field, ""),
        };
        match self {
            FieldNames::Options => camel_case(field),
            FieldNames::Env { prefix, env, secret_file_var } => {
                let var = |n: &str| format!("{prefix}{n}");
                let is_set = |n: &str| env.get(&var(n)).is_some_and(|v| !v.trim().is_empty());
                let variable = match base {
                    "token_url" if !is_set("TOKEN_URL") && is_set("HYDRA_URL") => var("HYDRA_URL"),
                    "token_url" if !is_set("TOKEN_URL") && is_set("ISSUER_URL") => var("ISSUER_URL"),
                    "token_url" => var("TOKEN_URL"),
                    "client_id" => var("CLIENT_ID"),
                    "client_secret" => secret_file_var.clone().unwrap_or_else(|| var("CLIENT_SECRET")),
                    "scope" => var("SCOPE"),
                    "audience" => var("AUDIENCE"),
                    "auth_method" => var("AUTH_METHOD"),
                    // Not read from the environment: an option given beside it.
                    _ => return camel_case(field),
                };
                format!("{variable}{index}")
            }
        }
    }
}

/// A `serde_json` error as a problem text that never echoes a value (a secret
/// put in the wrong option must not end up in a log).
fn describe_serde_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    if text.starts_with("unknown field") {
        return "is not a known option".to_owned();
    }
    let expected = text.find("expected ").map(|i| &text[i..]).map(|rest| match rest.find(" at line ") {
        Some(end) => &rest[..end],
        None => rest,
    });
    match expected {
        Some(expected) => {
            let expected = expected
                .replace("u64", "a non-negative integer")
                .replace("usize", "a non-negative integer")
                .replace("f64", "a number");
            format!("has the wrong type or value ({expected})")
        }
        None => "has the wrong type or value".to_owned(),
    }
}

/// Parses JS options (JSON text of an object, camelCase or `snake_case` keys)
/// into the engine's options. Each key is checked on its own first, so a type
/// error names its field.
pub(crate) fn parse_options(json: &str) -> Result<ConfigOptions, ConfigError> {
    let value: Value = serde_json::from_str(json).map_err(|_| ConfigError::new("options", "must be an object"))?;
    let Value::Object(given) = value else {
        return Err(ConfigError::new("options", "must be an object"));
    };
    let mut options = Map::new();
    for (key, mut value) in given {
        let name = snake_case(&key);
        if value.is_null() {
            continue;
        }
        if name == "extra_params" {
            value = extra_params_as_pairs(value).map_err(|problem| ConfigError::new(&name, problem))?;
        }
        let single: Map<String, Value> = [(name.clone(), value.clone())].into_iter().collect();
        if let Err(e) = serde_json::from_value::<ConfigOptions>(Value::Object(single)) {
            return Err(ConfigError::new(&name, describe_serde_error(&e)));
        }
        if options.insert(name.clone(), value).is_some() {
            return Err(ConfigError::new(&name, "is given twice (in camelCase and in snake_case)"));
        }
    }
    serde_json::from_value(Value::Object(options)).map_err(|e| ConfigError::new("options", describe_serde_error(&e)))
}

/// `extraParams` may be given as `{name: value}` or as `[[name, value], ...]`.
fn extra_params_as_pairs(value: Value) -> Result<Value, String> {
    match value {
        Value::Object(map) => {
            let mut pairs = Vec::with_capacity(map.len());
            for (name, value) in map {
                let Value::String(value) = value else {
                    return Err(format!("the value of \"{name}\" must be a string"));
                };
                pairs.push(Value::Array(vec![Value::String(name), Value::String(value)]));
            }
            Ok(Value::Array(pairs))
        }
        other => Ok(other),
    }
}

/// Validates JS options, with the secrets optionally read by the host from a
/// file (`clientSecretFile`). Errors name the camelCase option.
pub(crate) fn config_from_options(
    options_json: &str,
    secret_file_contents: Option<&str>,
) -> Result<Config, (ConfigError, String)> {
    let names = FieldNames::Options;
    let renamed = |e: ConfigError| {
        let field = names.name(&e.field);
        (e, field)
    };
    let mut options = parse_options(options_json).map_err(renamed)?;
    if let Some(contents) = secret_file_contents {
        if options.client_secret.is_some() {
            return Err(renamed(ConfigError::new(
                "client_secret_file",
                "set only one of clientSecret and clientSecretFile",
            )));
        }
        let secrets = parse_secret_file(contents, "client_secret_file").map_err(renamed)?;
        options.client_secret = Some(SecretOrSecrets::Many(secrets));
    }
    Config::from_options(options).map_err(renamed)
}

/// The environment as a map of strings (other values are ignored).
pub(crate) fn parse_env(env_json: &str) -> Result<HashMap<String, String>, ConfigError> {
    let value: Value = serde_json::from_str(env_json).map_err(|_| ConfigError::new("env", "must be an object"))?;
    let Value::Object(map) = value else {
        return Err(ConfigError::new("env", "must be an object"));
    };
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect())
}

/// What the environment names as the secret file: `(path, variable)`.
pub(crate) fn secret_file_from_env(
    prefix: &str,
    env: &HashMap<String, String>,
) -> Result<Option<(String, String)>, ConfigError> {
    let read = options_from_env(prefix, &|name| env.get(name).cloned())?;
    Ok(read.secret_file.zip(read.secret_file_var))
}

/// Builds the configuration from environment variables (read by the engine's
/// `options_from_env`), plus `overrides_json` for options the environment does
/// not carry (timeouts, margins). Errors name the variable.
pub(crate) fn config_from_env(
    prefix: &str,
    env: &HashMap<String, String>,
    overrides_json: &str,
    secret_file_contents: Option<&str>,
) -> Result<Config, (ConfigError, String)> {
    let read = options_from_env(prefix, &|name| env.get(name).cloned()).map_err(|e| {
        let field = e.field.clone();
        (e, field)
    })?;
    let names = FieldNames::Env { prefix, env, secret_file_var: read.secret_file_var.clone() };
    let renamed = |e: ConfigError| {
        let field = names.name(&e.field);
        (e, field)
    };
    let mut options = parse_options(overrides_json).map_err(renamed)?;
    let from_env = read.options;
    options.token_url = from_env.token_url;
    options.client_id = from_env.client_id;
    options.client_secret = from_env.client_secret;
    options.auth_method = from_env.auth_method.or(options.auth_method);
    options.scope = from_env.scope.or(options.scope);
    options.audience = from_env.audience.or(options.audience);
    if let Some(var) = &read.secret_file_var {
        let Some(contents) = secret_file_contents else {
            return Err((ConfigError::new(var, "the secret file was not read"), var.clone()));
        };
        let secrets = parse_secret_file(contents, var).map_err(|e| (e, var.clone()))?;
        options.client_secret = Some(SecretOrSecrets::Many(secrets));
    }
    Config::from_options(options).map_err(renamed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        r#"{"tokenUrl":"http://127.0.0.1:4444/oauth2/token","clientId":"c","clientSecret":"hunter2"}"#;

    fn field_of(json: &str) -> String {
        config_from_options(json, None).unwrap_err().1
    }

    #[test]
    fn camel_case_options_are_accepted() {
        let config = config_from_options(MINIMAL, None).unwrap();
        assert_eq!(config.client_id(), "c");
        let config = config_from_options(
            r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":["a","b"],
                "refreshMarginMs": 5000, "extraParams": {"resource": "https://api"}, "scope": null}"#,
            None,
        )
        .unwrap();
        assert_eq!(config.secret_count(), 2);
        assert_eq!(config.policy().refresh_margin_ms, 5000);
        assert_eq!(config.extra_params(), [("resource".to_owned(), "https://api".to_owned())]);
    }

    #[test]
    fn errors_name_the_camel_case_field_and_never_echo_values() {
        assert_eq!(field_of(r#"{"clientId":"c","clientSecret":"x"}"#), "tokenUrl");
        assert_eq!(field_of(r#"{"tokenUrl":"https://a/t","clientId":"c","clientSecret":["x",""]}"#), "clientSecret[1]");
        let (error, field) = config_from_options(
            r#"{"tokenUrl":"https://a/t","clientId":"c","clientSecret":"x","refreshMarginMs":"hunter2"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(field, "refreshMarginMs");
        assert!(!error.problem.contains("hunter2"), "{}", error.problem);
        let (error, field) = config_from_options(
            r#"{"tokenUrl":"https://a/t","clientId":"c","clientSecret":"x","authMethod":"hunter2"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(field, "authMethod");
        assert!(!error.problem.contains("hunter2"), "{}", error.problem);
        assert_eq!(field_of(r#"{"tokenUrl":"https://a/t","colour":"red"}"#), "colour");
        assert_eq!(field_of("[1]"), "options");
        assert_eq!(field_of("{"), "options");
    }

    #[test]
    fn secret_file_contents_fill_the_secret() {
        let json = r#"{"tokenUrl":"https://a/t","clientId":"c"}"#;
        let config = config_from_options(json, Some("new\nold\n")).unwrap();
        assert_eq!(config.secret_count(), 2);
        assert_eq!(config_from_options(json, Some("\n")).unwrap_err().1, "clientSecretFile");
        assert_eq!(config_from_options(MINIMAL, Some("x")).unwrap_err().1, "clientSecretFile");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let e = env(&[("P_CLIENT_ID", "c"), ("P_CLIENT_SECRET", "s"), ("P_TOKEN_URL", "not a url")]);
        assert_eq!(config_from_env("P_", &e, "{}", None).unwrap_err().1, "P_TOKEN_URL");
        let e = env(&[("CLIENT_ID", "c"), ("CLIENT_SECRET", "s"), ("HYDRA_URL", "ftp://x")]);
        assert_eq!(config_from_env("", &e, "{}", None).unwrap_err().1, "HYDRA_URL");
        let e = env(&[("CLIENT_SECRET", "s"), ("TOKEN_URL", "https://a/t")]);
        assert_eq!(config_from_env("", &e, "{}", None).unwrap_err().1, "CLIENT_ID");
        let e = env(&[("CLIENT_ID", "c"), ("CLIENT_SECRET", "s"), ("TOKEN_URL", "https://a/t"), ("SCOPE", "a \u{7f}")]);
        assert_eq!(config_from_env("", &e, "{}", None).unwrap_err().1, "SCOPE[1]");
        let e = env(&[("CLIENT_ID", "c"), ("CLIENT_SECRET_FILE", "/run/s"), ("TOKEN_URL", "https://a/t")]);
        assert_eq!(secret_file_from_env("", &e).unwrap(), Some(("/run/s".to_owned(), "CLIENT_SECRET_FILE".to_owned())));
        assert_eq!(config_from_env("", &e, "{}", Some(" \n")).unwrap_err().1, "CLIENT_SECRET_FILE");
        let config = config_from_env("", &e, r#"{"requestTimeoutMs": 2000}"#, Some("a\nb")).unwrap();
        assert_eq!(config.secret_count(), 2);
        assert_eq!(config.policy().request_timeout_ms, 2000);
    }
}
