//! Configuration from environment variables, shared by every host's
//! `fromEnv` / `from_env`. The engine reads no environment itself: the host
//! passes a lookup function, and reads the secret file the result names.
//!
//! Variables (each with an optional prefix, e.g. `BILLING_` → `BILLING_CLIENT_ID`):
//!
//! | variable | meaning |
//! |---|---|
//! | `CLIENT_ID` | required |
//! | `CLIENT_SECRET` | one secret, or several comma-separated (current first) |
//! | `CLIENT_SECRET_FILE` | a file with the secret(s), one per line; re-read when it changes |
//! | `TOKEN_URL` | the token endpoint |
//! | `HYDRA_URL` / `ISSUER_URL` | alternatively the issuer base URL; `/oauth2/token` is appended |
//! | `SCOPE` | space-separated scopes |
//! | `AUDIENCE` | space-separated audiences |
//! | `AUTH_METHOD` | `client_secret_basic` (default) or `client_secret_post` |

use crate::config::{AuthMethod, ConfigOptions, ListOrString, SecretOrSecrets};
use crate::error::ConfigError;
use crate::secret::ClientSecret;

/// What the environment says: options (without the secret when it comes from a
/// file) and the secret file to read, if any.
#[derive(Debug, Clone, Default)]
pub struct EnvConfig {
    /// The options read (validate them with [`Config::from_options`](crate::Config::from_options)
    /// after filling in the secret).
    pub options: ConfigOptions,
    /// The path in `CLIENT_SECRET_FILE`, for the host to read with [`parse_secret_file`].
    pub secret_file: Option<String>,
    /// The name of the variable that named the secret file (for error messages).
    pub secret_file_var: Option<String>,
}

/// Reads the configuration from variables named `prefix + NAME`, looked up with `get`.
/// Missing or malformed values are reported by variable name; no value is echoed.
pub fn options_from_env(prefix: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<EnvConfig, ConfigError> {
    let name = |n: &str| format!("{prefix}{n}");
    let read = |n: &str| get(&name(n)).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

    let client_id = read("CLIENT_ID").ok_or_else(|| ConfigError::new(name("CLIENT_ID"), "is not set"))?;

    let token_url = match (read("TOKEN_URL"), read("HYDRA_URL").or_else(|| read("ISSUER_URL"))) {
        (Some(url), _) => url,
        (None, Some(base)) => format!("{}/oauth2/token", base.trim_end_matches('/')),
        (None, None) => {
            return Err(ConfigError::new(name("TOKEN_URL"), format!("is not set (nor {})", name("HYDRA_URL"))));
        }
    };

    let secret = get(&name("CLIENT_SECRET")).filter(|v| !v.trim().is_empty());
    let secret_file = read("CLIENT_SECRET_FILE");
    let client_secret = match (&secret, &secret_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                name("CLIENT_SECRET"),
                format!("set only one of {} and {}", name("CLIENT_SECRET"), name("CLIENT_SECRET_FILE")),
            ));
        }
        (Some(value), None) => {
            let secrets: Vec<ClientSecret> =
                value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(ClientSecret::from).collect();
            if secrets.is_empty() {
                return Err(ConfigError::new(name("CLIENT_SECRET"), "holds no secret"));
            }
            Some(SecretOrSecrets::Many(secrets))
        }
        (None, Some(_)) => None,
        (None, None) => {
            return Err(ConfigError::new(
                name("CLIENT_SECRET"),
                format!("is not set (nor {})", name("CLIENT_SECRET_FILE")),
            ));
        }
    };

    let auth_method = match read("AUTH_METHOD") {
        None => None,
        Some(m) => {
            AuthMethod::parse(&m).map_err(|e| ConfigError::new(name("AUTH_METHOD"), e.problem))?;
            Some(m)
        }
    };

    Ok(EnvConfig {
        options: ConfigOptions {
            token_url: Some(token_url),
            client_id: Some(client_id),
            client_secret,
            auth_method,
            scope: read("SCOPE").map(ListOrString::String),
            audience: read("AUDIENCE").map(ListOrString::String),
            ..ConfigOptions::default()
        },
        secret_file_var: secret_file.as_ref().map(|_| name("CLIENT_SECRET_FILE")),
        secret_file,
    })
}

/// The secrets in a secret file: one per line (current first), blank lines and
/// surrounding whitespace ignored; a single line may also hold several
/// comma-separated secrets. `file_var` names the source in errors.
pub fn parse_secret_file(contents: &str, file_var: &str) -> Result<Vec<ClientSecret>, ConfigError> {
    let lines: Vec<&str> = contents.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let secrets: Vec<ClientSecret> = if lines.len() == 1 {
        lines[0].split(',').map(str::trim).filter(|s| !s.is_empty()).map(ClientSecret::from).collect()
    } else {
        lines.into_iter().map(ClientSecret::from).collect()
    };
    if secrets.is_empty() {
        return Err(ConfigError::new(file_var, "the secret file holds no secret"));
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_prefixed_variables() {
        let e = env(&[
            ("B_CLIENT_ID", "billing"),
            ("B_CLIENT_SECRET", "new-one, old-one"),
            ("B_HYDRA_URL", "http://127.0.0.1:4444/"),
            ("B_SCOPE", "billing:read billing:write"),
        ]);
        let c = options_from_env("B_", &e).unwrap();
        assert_eq!(c.options.token_url.as_deref(), Some("http://127.0.0.1:4444/oauth2/token"));
        let config = crate::Config::from_options(c.options).unwrap();
        assert_eq!(config.secret_count(), 2);
        assert_eq!(config.scopes(), ["billing:read", "billing:write"]);
    }

    #[test]
    fn missing_values_are_named_and_secrets_not_echoed() {
        let e = options_from_env("", &env(&[("TOKEN_URL", "https://a/t"), ("CLIENT_SECRET", "x")])).unwrap_err();
        assert_eq!(e.field, "CLIENT_ID");
        let e = options_from_env("P_", &env(&[("P_CLIENT_ID", "c"), ("P_CLIENT_SECRET", "hunter2")])).unwrap_err();
        assert_eq!(e.field, "P_TOKEN_URL");
        let e = options_from_env("", &env(&[("CLIENT_ID", "c"), ("TOKEN_URL", "https://a/t")])).unwrap_err();
        assert_eq!(e.field, "CLIENT_SECRET");
        let e = options_from_env(
            "",
            &env(&[
                ("CLIENT_ID", "c"),
                ("TOKEN_URL", "https://a/t"),
                ("CLIENT_SECRET", "hunter2"),
                ("AUTH_METHOD", "x"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.field, "AUTH_METHOD");
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn secret_file_forms() {
        let e = options_from_env(
            "",
            &env(&[("CLIENT_ID", "c"), ("TOKEN_URL", "https://a/t"), ("CLIENT_SECRET_FILE", "/run/secret")]),
        )
        .unwrap();
        assert_eq!(e.secret_file.as_deref(), Some("/run/secret"));
        assert_eq!(e.secret_file_var.as_deref(), Some("CLIENT_SECRET_FILE"));
        let s = parse_secret_file("new\n\n old \n", "CLIENT_SECRET_FILE").unwrap();
        assert_eq!(s.iter().map(|s| s.expose()).collect::<Vec<_>>(), ["new", "old"]);
        let s = parse_secret_file("a,b\n", "F").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(parse_secret_file("\n \n", "F").unwrap_err().field, "F");
    }
}
