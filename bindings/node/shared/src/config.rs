//! Configuration in: JS options (camelCase JSON) and the environment,
//! converted to the engine's `ConfigOptions` and validated by the engine.
//!
//! Nothing here words a configuration error the engine knows about: options
//! are parsed by the engine (`Config::from_json` locates and words a value of
//! the wrong type), `fromEnv` makes exactly the calls of the engine's host
//! contract (`read_env` → `merge_env` → `EnvMerged::into_config`, see
//! `tokenwell::env`), and errors only get their field's spelling converted
//! back to camelCase (`request_timeout_ms` → `requestTimeoutMs`); a field
//! named after an environment variable (`SCOPE[1]`) is left as it is.

use std::collections::HashMap;

use serde_json::{Map, Value};
use tokenwell::{
    merge_env, parse_key_file, parse_secret_file, read_env, ClientSecret, Config, ConfigError, ConfigOptions,
    EnvMerged, ExplicitOptions, SecretOrSecrets, SigningAlg,
};

use crate::json::{camel_case, snake_case};

/// The caller's name for the field an engine error names: an option in
/// camelCase (`scope[1]` → `scope[1]`, `client_secret_file` → `clientSecretFile`),
/// an environment variable as it is (`SCOPE[1]`, `BILLING_TOKEN_URL`).
/// The engine names options in `snake_case` and variables by their names,
/// which always hold capitals (`{prefix}CLIENT_ID`, `TOKENWELL_CA_FILE`).
pub(crate) fn js_field(field: &str) -> String {
    let base = field.find('[').map_or(field, |at| &field[..at]);
    if base.bytes().any(|b| b.is_ascii_uppercase()) {
        field.to_owned()
    } else {
        camel_case(field)
    }
}

/// Parses JS options (JSON text of an object, camelCase or `snake_case` keys)
/// into the engine's options. A value of the wrong type is located and worded
/// by the engine.
pub(crate) fn parse_options(json: &str) -> Result<ConfigOptions, ConfigError> {
    let value: Value = serde_json::from_str(json).map_err(|_| ConfigError::new("options", "must be an object"))?;
    let Value::Object(given) = value else {
        return Err(ConfigError::new("options", "must be an object"));
    };
    let mut options = Map::new();
    for (key, value) in given {
        let name = snake_case(&key);
        if value.is_null() {
            continue;
        }
        if options.insert(name.clone(), value).is_some() {
            // Two spellings of one key: a JS-side mistake the engine cannot see.
            return Err(ConfigError::new(&name, "is given twice (in camelCase and in snake_case)"));
        }
    }
    let value = Value::Object(options);
    serde_json::from_value::<ConfigOptions>(value.clone()).map_err(|_| {
        Config::from_json(&value.to_string()).err().unwrap_or_else(|| ConfigError::new("options", "cannot be read"))
    })
}

/// The option that names a key file (`privateKeyFile`): its name in errors
/// and in `secret_file_rejected` events.
const KEY_FILE_OPTION: &str = "private_key_file";

/// The option `private_key` and the option `private_key_file` given together:
/// refused rather than one silently winning (as `client_secret` with
/// `client_secret_file`; Python's `ServiceAccount` words it the same).
fn key_given_twice() -> ConfigError {
    ConfigError::new("private_key", "set only one of private_key and private_key_file")
}

/// A key file's contents, read by the host for the option `private_key_file`,
/// made the explicit `private_key`: checked first by the engine's
/// `parse_key_file` so that an error names the option and never quotes the
/// file (`EnvMerged::into_config_with_keys` does the same for
/// `CLIENT_PRIVATE_KEY_FILE`).
fn use_key_file(options: &mut ConfigOptions, contents: &str) -> Result<(), ConfigError> {
    // An HMAC algorithm is for client_secret_jwt: it names no key type (as in the engine's env merge).
    let alg = options.assertion_signing_alg.as_deref().and_then(SigningAlg::parse).filter(|alg| !alg.is_hmac());
    parse_key_file(contents, KEY_FILE_OPTION, alg)?;
    options.private_key = Some(SecretOrSecrets::One(ClientSecret::from(contents)));
    Ok(())
}

/// Validates JS options, with the secrets and the private keys optionally
/// read by the host from files (`clientSecretFile`, `privateKeyFile`).
/// Errors name the option (`snake_case`; the caller converts it with
/// [`js_field`]).
pub(crate) fn config_from_options(
    options_json: &str,
    secret_file_contents: Option<&str>,
    key_file_contents: Option<&str>,
) -> Result<Config, ConfigError> {
    let mut options = parse_options(options_json)?;
    if secret_file_contents.is_some() && options.client_secret.is_some() {
        // The engine's wording (EnvMerged::check_required), for the constructor too.
        return Err(ConfigError::new("client_secret", "set only one of client_secret and client_secret_file"));
    }
    if let Some(contents) = key_file_contents {
        if options.private_key.is_some() {
            return Err(key_given_twice());
        }
        use_key_file(&mut options, contents)?;
    }
    if let Some(contents) = secret_file_contents {
        options.client_secret = Some(SecretOrSecrets::Many(parse_secret_file(contents, "client_secret_file")?));
    }
    Config::from_options(options)
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

/// What a `fromEnv` caller gives: the prefix, the environment (JSON object of
/// strings), the explicit options (JSON, camelCase) and the explicit
/// secret-file, CA-file and key-file paths.
pub struct EnvRequest<'a> {
    /// `BILLING_` for `BILLING_CLIENT_ID`.
    pub prefix: &'a str,
    /// The environment, `{"NAME": "value"}`.
    pub env_json: &'a str,
    /// Explicit options; they win over the environment, field by field.
    pub explicit_json: &'a str,
    /// The explicit `clientSecretFile`.
    pub secret_file: Option<&'a str>,
    /// The explicit `caFile`.
    pub ca_file: Option<&'a str>,
    /// The explicit `privateKeyFile`.
    pub key_file: Option<&'a str>,
}

/// `read_env` + `merge_env` + the required-option check: every missing
/// variable is named before any file is read.
pub(crate) fn merged_env(request: &EnvRequest<'_>) -> Result<EnvMerged, ConfigError> {
    let env = parse_env(request.env_json)?;
    let reading = read_env(request.prefix, &|name| env.get(name).cloned())?;
    let options = parse_options(request.explicit_json)?;
    let explicit_key = options.private_key.is_some();
    let explicit = ExplicitOptions {
        options,
        secret_file: request.secret_file.map(str::to_owned),
        ca_file: request.ca_file.map(str::to_owned),
    };
    let mut merged = merge_env(explicit, reading);
    if let Some(path) = request.key_file {
        // The engine's `ExplicitOptions` has no key file: an explicit one
        // replaces `CLIENT_PRIVATE_KEY_FILE` (which is then not read), as an
        // explicit secret file replaces `CLIENT_SECRET_FILE`; errors about it
        // name the option.
        if explicit_key {
            return Err(key_given_twice());
        }
        merged.key_file = Some(path.to_owned());
        merged.key_file_source = Some(KEY_FILE_OPTION.to_owned());
        merged.sources.retain(|(option, _)| option != "private_key");
    }
    merged.check_required()?;
    Ok(merged)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        r#"{"tokenUrl":"http://127.0.0.1:4444/oauth2/token","clientId":"c","clientSecret":"hunter2"}"#;

    fn field_of(json: &str) -> String {
        js_field(&config_from_options(json, None, None).unwrap_err().field)
    }

    #[test]
    fn camel_case_options_are_accepted() {
        let config = config_from_options(MINIMAL, None, None).unwrap();
        assert_eq!(config.client_id(), "c");
        let config = config_from_options(
            r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":["a","b"],
                "refreshMarginMs": 5000, "extraParams": {"resource": "https://api"}, "scope": null}"#,
            None,
            None,
        )
        .unwrap();
        assert_eq!(config.secret_count(), 2);
        assert_eq!(config.policy().refresh_margin_ms, 5000);
        assert_eq!(config.extra_params(), [("resource".to_owned(), "https://api".to_owned())]);
    }

    #[test]
    fn errors_are_the_engines_with_camel_case_fields_and_never_echo_values() {
        assert_eq!(field_of(r#"{"clientId":"c","clientSecret":"x"}"#), "tokenUrl");
        assert_eq!(field_of(r#"{"tokenUrl":"https://a/t","clientId":"c","clientSecret":["x",""]}"#), "clientSecret[1]");
        let options = r#"{"tokenUrl":"https://a/t","clientId":"c","clientSecret":"x","refreshMarginMs":"hunter2"}"#;
        let error = config_from_options(options, None, None).unwrap_err();
        assert_eq!(js_field(&error.field), "refreshMarginMs");
        let engine = Config::from_json(r#"{"refresh_margin_ms":"hunter2"}"#).unwrap_err();
        assert_eq!(error.problem, engine.problem, "the engine's wording");
        assert!(!error.problem.contains("hunter2"), "{}", error.problem);
        let error = config_from_options(
            r#"{"tokenUrl":"https://a/t","clientId":"c","clientSecret":"x","authMethod":"hunter2"}"#,
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(js_field(&error.field), "authMethod");
        assert!(!error.problem.contains("hunter2"), "{}", error.problem);
        assert_eq!(field_of(r#"{"tokenUrl":"https://a/t","colour":"red"}"#), "colour");
        assert_eq!(field_of(r#"{"tokenUrl":"https://a/t","fooBar":"red"}"#), "fooBar");
        assert_eq!(field_of(r#"{"extraParams":{"a":1}}"#), "extraParams");
        assert_eq!(field_of("[1]"), "options");
        assert_eq!(field_of("{"), "options");
    }

    #[test]
    fn variables_keep_their_spelling() {
        assert_eq!(js_field("SCOPE[1]"), "SCOPE[1]");
        assert_eq!(js_field("BILLING_TOKEN_URL"), "BILLING_TOKEN_URL");
        assert_eq!(js_field("client_secret_file"), "clientSecretFile");
        assert_eq!(js_field("audience[1]"), "audience[1]");
        assert_eq!(js_field("request_timeout_ms"), "requestTimeoutMs");
    }

    #[test]
    fn secret_file_contents_fill_the_secret() {
        let json = r#"{"tokenUrl":"https://a/t","clientId":"c"}"#;
        let config = config_from_options(json, Some("new\nold\n"), None).unwrap();
        assert_eq!(config.secret_count(), 2);
        assert_eq!(field_of_file(json, "\n"), "clientSecretFile");
        assert_eq!(field_of_file(MINIMAL, "x"), "clientSecret");
    }

    fn field_of_file(json: &str, contents: &str) -> String {
        js_field(&config_from_options(json, Some(contents), None).unwrap_err().field)
    }

    const P256_JWK: &str = r#"{"kty":"EC","kid":"k","alg":"ES256","crv":"P-256","x":"JBl3f8zV42oxeItWdNhm2w8w77DzobV_YB4ojuLq19s","y":"XeY68whjWFK_Y67vG3lenM-zoOiF2ycx4OEWRM2txKM","d":"hPRrz9rOMs19ufKslLQbpPn5xo6PUtRzkL0HCub8yO8"}"#;

    #[test]
    fn key_file_contents_fill_the_private_key_and_errors_name_the_option() {
        let json = r#"{"tokenUrl":"https://a/t","clientId":"c"}"#;
        let config = config_from_options(json, None, Some(P256_JWK)).unwrap();
        assert_eq!((config.key_count(), config.auth_method().as_str()), (1, "private_key_jwt"));
        let error = config_from_options(json, None, Some("hunter2")).unwrap_err();
        assert_eq!(js_field(&error.field), "privateKeyFile");
        assert!(!error.problem.contains("hunter2"), "{}", error.problem);
        let twice =
            format!(r#"{{"tokenUrl":"https://a/t","clientId":"c","privateKey":{}}}"#, serde_json::json!(P256_JWK));
        let error = config_from_options(&twice, None, Some(P256_JWK)).unwrap_err();
        assert_eq!(
            (js_field(&error.field).as_str(), error.problem.as_str()),
            ("privateKey", "set only one of private_key and private_key_file")
        );
        // A secret beside the key file is the engine's to judge: Basic unless a method says otherwise.
        let config = config_from_options(MINIMAL, None, Some(P256_JWK)).unwrap();
        assert_eq!((config.key_count(), config.auth_method().as_str()), (1, "client_secret_basic"));
    }

    #[test]
    fn an_explicit_key_file_replaces_the_one_the_environment_names() {
        let env = r#"{"CLIENT_ID":"c","TOKEN_URL":"https://a/t","CLIENT_PRIVATE_KEY_FILE":"/env-key"}"#;
        let request = EnvRequest {
            prefix: "",
            env_json: env,
            explicit_json: "{}",
            secret_file: None,
            ca_file: None,
            key_file: Some("/k"),
        };
        let merged = merged_env(&request).unwrap();
        assert_eq!(
            (merged.key_file.as_deref(), merged.key_file_source.as_deref()),
            (Some("/k"), Some(KEY_FILE_OPTION))
        );
        assert!(merged.sources.iter().all(|(option, _)| option != "private_key"));
        let error = merged.into_config_with_keys(None, Some("hunter2")).unwrap_err();
        assert_eq!(js_field(&error.field), "privateKeyFile");
        let explicit = format!(r#"{{"privateKey":{}}}"#, serde_json::json!(P256_JWK));
        let error = merged_env(&EnvRequest { explicit_json: &explicit, ..request }).unwrap_err();
        assert_eq!(js_field(&error.field), "privateKey");
        // Without a secret or a key anywhere, the explicit key file is enough.
        let env = r#"{"CLIENT_ID":"c","TOKEN_URL":"https://a/t"}"#;
        let merged = merged_env(&EnvRequest { env_json: env, ..request }).unwrap();
        assert_eq!(merged.into_config_with_keys(None, Some(P256_JWK)).unwrap().key_count(), 1);
    }

    #[test]
    fn the_environment_goes_through_the_host_contract() {
        let request = |env: &str, explicit: &'static str| {
            let env = env.to_owned();
            move || -> Result<EnvMerged, ConfigError> {
                merged_env(&EnvRequest {
                    prefix: "",
                    env_json: &env,
                    explicit_json: explicit,
                    secret_file: None,
                    ca_file: None,
                    key_file: None,
                })
            }
        };
        let missing = request(r#"{"SCOPE":"a"}"#, "{}")().unwrap_err();
        assert_eq!(missing.field, "CLIENT_ID");
        assert!(missing.problem.contains("also not set"), "{}", missing.problem);
        let env = r#"{"CLIENT_ID":"env","CLIENT_SECRET":"s","TOKEN_URL":"https://a/t","SCOPE":"a \u007f"}"#;
        let error = request(env, "{}")().unwrap().into_config(None).unwrap_err();
        assert_eq!(js_field(&error.field), "SCOPE[1]");
        let merged = request(env, r#"{"clientId":"explicit","scope":["ok"]}"#)().unwrap();
        let config = merged.into_config(None).unwrap();
        assert_eq!(config.client_id(), "explicit", "explicit options win");
        let error = request(env, r#"{"requestTimeoutMs":"soon"}"#)().unwrap_err();
        assert_eq!(js_field(&error.field), "requestTimeoutMs");
    }
}
