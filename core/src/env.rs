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
//! | `CLIENT_PRIVATE_KEY_FILE` | a file with the private key(s) for `private_key_jwt` (PEM blocks or a JWK / JWKS, current first); re-read when it changes |
//! | `TOKEN_URL` | the token endpoint |
//! | `HYDRA_URL` | alternatively Ory Hydra's public URL: `/oauth2/token` is appended (no discovery) |
//! | `ISSUER_URL` | alternatively the issuer: the token endpoint and auth method are discovered from its metadata document; with `TOKEN_URL` or `HYDRA_URL` it is only the issuer (for `assertion_audience: "issuer"`) |
//! | `SCOPE` | space-separated scopes |
//! | `AUDIENCE` | space-separated audiences |
//! | `AUTH_METHOD` | `client_secret_basic` (default), `client_secret_post`, `private_key_jwt` (default with a key file and no secret) or `client_secret_jwt` |
//! | `TOKENWELL_CA_FILE` | (never prefixed) a PEM file of the only CAs to trust for the token endpoint |
//! | `TOKENWELL_ALLOW_INSECURE_HTTP` | (never prefixed) `1`: allow a plain-http token URL off loopback |
//!
//! ## The host contract
//!
//! Every host's `fromEnv` / `from_env` does the same four steps, so that the
//! hosts cannot drift apart:
//!
//! 1. [`read_env`] reads every variable, without requiring any: it returns the
//!    options the environment set and which variable set each one.
//! 2. [`merge_env`] merges the options the caller passed explicitly. **Explicit
//!    options win over the environment**, field by field; the secret is one
//!    field whatever its form (an explicit `client_secret` or secret file
//!    replaces both `CLIENT_SECRET` and `CLIENT_SECRET_FILE`).
//! 3. The host reads the secret file and the key file the result names, if any.
//! 4. [`EnvMerged::into_config_with_keys`] checks that every required option is present
//!    (all missing ones are reported at once, by variable name), parses the
//!    secret file, validates, and renames every configuration error to the
//!    variable that supplied the field, keeping indexes (`SCOPE[1]`).

use crate::config::{AuthMethod, Config, ConfigOptions, ListOrString, SecretOrSecrets};
use crate::error::ConfigError;
use crate::secret::ClientSecret;

/// The CA-file variable: never prefixed, since it describes the machine's
/// network rather than one client.
pub const CA_FILE_VAR: &str = "TOKENWELL_CA_FILE";
/// The variable that allows a plain-http token URL off loopback: never prefixed.
pub const ALLOW_INSECURE_HTTP_VAR: &str = "TOKENWELL_ALLOW_INSECURE_HTTP";

/// What the environment says, before any explicit option is merged.
#[derive(Debug, Clone, Default)]
pub struct EnvReading {
    /// The options the environment set; the others are `None`.
    pub options: ConfigOptions,
    /// The path in `CLIENT_SECRET_FILE`.
    pub secret_file: Option<String>,
    /// The path in `CLIENT_PRIVATE_KEY_FILE`.
    pub key_file: Option<String>,
    /// The path in `TOKENWELL_CA_FILE`.
    pub ca_file: Option<String>,
    /// `(option, variable)`: which variable supplied each option it set
    /// (`("scope", "BILLING_SCOPE")`, `("client_secret", "CLIENT_SECRET_FILE")`).
    pub sources: Vec<(String, String)>,
    /// The variable names this prefix reads, for messages about missing ones.
    names: Names,
}

#[derive(Debug, Clone, Default)]
struct Names {
    client_id: String,
    token_url: String,
    hydra_url: String,
    issuer_url: String,
    client_secret: String,
    client_secret_file: String,
    client_private_key_file: String,
}

impl Names {
    fn new(prefix: &str) -> Self {
        let n = |v: &str| format!("{prefix}{v}");
        Self {
            client_id: n("CLIENT_ID"),
            token_url: n("TOKEN_URL"),
            hydra_url: n("HYDRA_URL"),
            issuer_url: n("ISSUER_URL"),
            client_secret: n("CLIENT_SECRET"),
            client_secret_file: n("CLIENT_SECRET_FILE"),
            client_private_key_file: n("CLIENT_PRIVATE_KEY_FILE"),
        }
    }
}

/// Reads every variable named `prefix + NAME` (and the unprefixed
/// `TOKENWELL_*` ones) with `get`. Nothing is required here; a value that is
/// set but malformed is an error naming its variable. No value is echoed.
pub fn read_env(prefix: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<EnvReading, ConfigError> {
    let names = Names::new(prefix);
    let name = |n: &str| format!("{prefix}{n}");
    let read = |var: &str| get(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let mut reading = EnvReading { names: names.clone(), ..EnvReading::default() };
    let mut set = |option: &str, var: &str| reading.sources.push((option.to_owned(), var.to_owned()));

    if let Some(id) = read(&names.client_id) {
        reading.options.client_id = Some(id);
        set("client_id", &names.client_id);
    }
    match (read(&names.token_url), read(&names.hydra_url)) {
        (Some(url), _) => {
            reading.options.token_url = Some(url);
            set("token_url", &names.token_url);
        }
        (None, Some(base)) => {
            // Hydra's fixed path, as before discovery existed: a Hydra whose
            // public URL differs from its issuer keeps working.
            reading.options.token_url = Some(format!("{}/oauth2/token", base.trim_end_matches('/')));
            set("token_url", &names.hydra_url);
        }
        (None, None) => {}
    }
    if let Some(issuer) = read(&names.issuer_url) {
        reading.options.issuer = Some(issuer);
        set("issuer", &names.issuer_url);
    }
    if let Some(path) = read(&names.client_private_key_file) {
        reading.key_file = Some(path);
        set("private_key", &names.client_private_key_file);
    }
    let secret = get(&names.client_secret).filter(|v| !v.trim().is_empty());
    let secret_file = read(&names.client_secret_file);
    match (secret, secret_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                &names.client_secret,
                format!("set only one of {} and {}", names.client_secret, names.client_secret_file),
            ));
        }
        (Some(value), None) => {
            let secrets: Vec<ClientSecret> =
                value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(ClientSecret::from).collect();
            if secrets.is_empty() {
                return Err(ConfigError::new(&names.client_secret, "holds no secret"));
            }
            reading.options.client_secret = Some(SecretOrSecrets::Many(secrets));
            set("client_secret", &names.client_secret);
        }
        (None, Some(path)) => {
            reading.secret_file = Some(path);
            set("client_secret", &names.client_secret_file);
        }
        (None, None) => {}
    }
    if let Some(method) = read(&name("AUTH_METHOD")) {
        AuthMethod::parse(&method).map_err(|e| ConfigError::new(name("AUTH_METHOD"), e.problem))?;
        reading.options.auth_method = Some(method);
        set("auth_method", &name("AUTH_METHOD"));
    }
    if let Some(scope) = read(&name("SCOPE")) {
        reading.options.scope = Some(ListOrString::String(scope));
        set("scope", &name("SCOPE"));
    }
    if let Some(audience) = read(&name("AUDIENCE")) {
        reading.options.audience = Some(ListOrString::String(audience));
        set("audience", &name("AUDIENCE"));
    }
    if let Some(path) = read(CA_FILE_VAR) {
        reading.ca_file = Some(path);
        set("ca_file", CA_FILE_VAR);
    }
    match read(ALLOW_INSECURE_HTTP_VAR).as_deref() {
        None | Some("0") | Some("false") => {}
        Some("1") | Some("true") => {
            reading.options.allow_insecure_http = Some(true);
            set("allow_insecure_http", ALLOW_INSECURE_HTTP_VAR);
        }
        Some(_) => return Err(ConfigError::new(ALLOW_INSECURE_HTTP_VAR, "must be 1 or 0")),
    }
    Ok(reading)
}

/// What the caller of `fromEnv` / `from_env` passed explicitly.
#[derive(Debug, Clone, Default)]
pub struct ExplicitOptions {
    /// Options given explicitly (they win over the environment).
    pub options: ConfigOptions,
    /// A secret file given explicitly (the option `client_secret_file`).
    pub secret_file: Option<String>,
    /// A CA file given explicitly (the option `ca_file`).
    pub ca_file: Option<String>,
}

/// The merge of explicit options over the environment (see the module docs).
#[derive(Debug, Clone)]
pub struct EnvMerged {
    /// The merged options (the secret may still be in `secret_file`).
    pub options: ConfigOptions,
    /// The secret file to read, if the secret comes from one.
    pub secret_file: Option<String>,
    /// The key file to read (`CLIENT_PRIVATE_KEY_FILE`), if the keys come from one.
    pub key_file: Option<String>,
    /// The name errors about the key file use.
    pub key_file_source: Option<String>,
    /// The name errors about the secret file use: the variable, or `client_secret_file`.
    pub secret_file_source: Option<String>,
    /// The CA file, if any.
    pub ca_file: Option<String>,
    /// `(option, variable)` for every option the environment supplied and the
    /// caller did not override.
    pub sources: Vec<(String, String)>,
    /// The caller passed both a secret and a secret file: refused by
    /// [`check_required`](Self::check_required) rather than one silently winning.
    explicit_secret_twice: bool,
    names: Names,
}

/// Merges `explicit` over `env`: explicit options win, field by field.
pub fn merge_env(explicit: ExplicitOptions, env: EnvReading) -> EnvMerged {
    let ExplicitOptions { options: x, secret_file: x_file, ca_file: x_ca } = explicit;
    let e = env.options;
    let mut overridden: Vec<&str> = Vec::new();
    macro_rules! pick {
        ($field:ident) => {{
            if x.$field.is_some() {
                overridden.push(stringify!($field));
                x.$field
            } else {
                e.$field
            }
        }};
    }
    let explicit_secret = x.client_secret.is_some() || x_file.is_some();
    let explicit_secret_twice = x.client_secret.is_some() && x_file.is_some();
    let (client_secret, secret_file, secret_file_source) = if explicit_secret {
        overridden.push("client_secret");
        let source = x_file.as_ref().map(|_| "client_secret_file".to_owned());
        (x.client_secret.clone(), x_file, source)
    } else {
        let source = env.secret_file.as_ref().map(|_| env.names.client_secret_file.clone());
        (e.client_secret.clone(), env.secret_file, source)
    };
    if x_ca.is_some() {
        overridden.push("ca_file");
    }
    // Explicit keys replace the key file, like an explicit secret replaces the secret file.
    let key_file = env.key_file.filter(|_| x.private_key.is_none());
    let key_file_source = key_file.as_ref().map(|_| env.names.client_private_key_file.clone());
    let options = ConfigOptions {
        token_url: pick!(token_url),
        issuer: pick!(issuer),
        client_id: pick!(client_id),
        client_secret,
        private_key: pick!(private_key),
        auth_method: pick!(auth_method),
        assertion_signing_alg: pick!(assertion_signing_alg),
        assertion_audience: pick!(assertion_audience),
        assertion_lifetime_ms: pick!(assertion_lifetime_ms),
        discovery_refresh_ms: pick!(discovery_refresh_ms),
        scope: pick!(scope),
        audience: pick!(audience),
        extra_params: pick!(extra_params),
        allow_insecure_http: pick!(allow_insecure_http),
        refresh_margin_ms: pick!(refresh_margin_ms),
        refresh_ahead: pick!(refresh_ahead),
        refresh_ahead_jitter: pick!(refresh_ahead_jitter),
        default_lifetime_ms: pick!(default_lifetime_ms),
        min_lifetime_ms: pick!(min_lifetime_ms),
        max_lifetime_ms: pick!(max_lifetime_ms),
        max_response_bytes: pick!(max_response_bytes),
        request_timeout_ms: pick!(request_timeout_ms),
        backoff_initial_ms: pick!(backoff_initial_ms),
        backoff_max_ms: pick!(backoff_max_ms),
        backoff_min_ms: pick!(backoff_min_ms),
        backoff_jitter: pick!(backoff_jitter),
        max_retry_after_ms: pick!(max_retry_after_ms),
        config_error_hold_ms: pick!(config_error_hold_ms),
        invalidate_min_interval_ms: pick!(invalidate_min_interval_ms),
        outage_grace: pick!(outage_grace),
        outage_grace_safety_ms: pick!(outage_grace_safety_ms),
    };
    let sources = env.sources.into_iter().filter(|(option, _)| !overridden.contains(&option.as_str())).collect();
    EnvMerged {
        options,
        secret_file,
        secret_file_source,
        key_file,
        key_file_source,
        ca_file: x_ca.or(env.ca_file),
        sources,
        explicit_secret_twice,
        names: env.names,
    }
}

impl EnvMerged {
    /// Every required option that neither the caller nor the environment gave,
    /// reported at once by the variable that would supply it.
    /// A secret given twice by the caller (`client_secret` and
    /// `client_secret_file`) is refused here too.
    pub fn check_required(&self) -> Result<(), ConfigError> {
        if self.explicit_secret_twice {
            return Err(ConfigError::new("client_secret", "set only one of client_secret and client_secret_file"));
        }
        let n = &self.names;
        let mut missing: Vec<String> = Vec::new();
        if self.options.client_id.is_none() {
            missing.push(n.client_id.clone());
        }
        if self.options.token_url.is_none() && self.options.issuer.is_none() {
            missing.push(format!("{} (or {} / {})", n.token_url, n.hydra_url, n.issuer_url));
        }
        let has_keys = self.options.private_key.is_some() || self.key_file.is_some();
        if self.options.client_secret.is_none() && self.secret_file.is_none() && !has_keys {
            missing.push(format!("{} (or {} / {})", n.client_secret, n.client_secret_file, n.client_private_key_file));
        }
        let Some((first, rest)) = missing.split_first() else { return Ok(()) };
        let field = first.split(' ').next().unwrap_or(first).to_owned();
        let problem = if rest.is_empty() {
            format!("is not set{}", first.strip_prefix(&field).unwrap_or(""))
        } else {
            format!("is not set{}; also not set: {}", first.strip_prefix(&field).unwrap_or(""), rest.join(", "))
        };
        Err(ConfigError::new(field, problem))
    }

    /// `error` with its field renamed to the variable that supplied it (the
    /// index kept: `scope[1]` from `SCOPE` is `SCOPE[1]`); fields the caller
    /// gave explicitly keep their option name.
    pub fn rename(&self, mut error: ConfigError) -> ConfigError {
        let (base, index) = match error.field.find('[') {
            Some(at) => (error.field[..at].to_owned(), error.field[at..].to_owned()),
            None => (error.field.clone(), String::new()),
        };
        if let Some((_, var)) = self.sources.iter().find(|(option, _)| *option == base) {
            error.field = format!("{var}{index}");
        }
        error
    }

    /// The validated configuration. `secret_file_contents` is the content of
    /// [`secret_file`](Self::secret_file), read by the host (required when it
    /// is set). Every error names the variable or option at fault.
    pub fn into_config(self, secret_file_contents: Option<&str>) -> Result<Config, ConfigError> {
        self.into_config_with_keys(secret_file_contents, None)
    }

    /// [`into_config`](Self::into_config) with the content of
    /// [`key_file`](Self::key_file) too (required when it is set). A key file
    /// that holds no valid key is an error naming `CLIENT_PRIVATE_KEY_FILE`
    /// (or the option), never quoting the file.
    pub fn into_config_with_keys(
        mut self,
        secret_file_contents: Option<&str>,
        key_file_contents: Option<&str>,
    ) -> Result<Config, ConfigError> {
        self.check_required()?;
        if let Some(source) = self.key_file_source.clone().filter(|_| self.key_file.is_some()) {
            let contents =
                key_file_contents.ok_or_else(|| ConfigError::new(source.clone(), "the key file was not read"))?;
            // Parsed here only to name the file in errors; the configuration parses the text again.
            let alg = self.options.assertion_signing_alg.as_deref().and_then(crate::keys::SigningAlg::parse);
            crate::keys::parse_key_file(contents, &source, alg.filter(|a| !a.is_hmac()))?;
            self.options.private_key = Some(SecretOrSecrets::One(ClientSecret::from(contents)));
        }
        if let Some(source) = self.secret_file_source.clone().filter(|_| self.secret_file.is_some()) {
            let contents =
                secret_file_contents.ok_or_else(|| ConfigError::new(source.clone(), "the secret file was not read"))?;
            self.options.client_secret = Some(SecretOrSecrets::Many(parse_secret_file(contents, &source)?));
        }
        Config::from_options(self.options.clone()).map_err(|e| self.rename(e))
    }
}

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

/// Reads the configuration from variables named `prefix + NAME`, looked up with `get`,
/// with no explicit options: [`read_env`] + [`merge_env`] + the required-option
/// check (every missing variable named at once). No value is echoed.
pub fn options_from_env(prefix: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<EnvConfig, ConfigError> {
    let merged = merge_env(ExplicitOptions::default(), read_env(prefix, get)?);
    merged.check_required()?;
    Ok(EnvConfig {
        options: merged.options,
        secret_file_var: merged.secret_file_source,
        secret_file: merged.secret_file,
    })
}

/// What a host learns from `stat` of a secret file (following symlinks, so a
/// Kubernetes `..data` symlink swap shows as a new inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStamp {
    /// Device number.
    pub device: u64,
    /// Inode number.
    pub inode: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub modified_ns: i128,
    /// Status-change time, ns since the epoch (0 where the platform has none).
    pub changed_ns: i128,
}

/// The one rule every host follows to notice a changed secret file.
///
/// The file is checked (a `stat`, not a read) at most once per
/// [`SecretFileWatch::CHECK_INTERVAL_MS`] when a token is asked for, and at
/// once after the server refused the client (`invalid_client`: the secret may
/// have been rotated under us). It is read again whenever its stamp (device,
/// inode, size, modification or status-change time) differs from the one
/// last read, which catches an edit in place, a rename over it, and a
/// Kubernetes symlink swap. A file that cannot be stat'ed is a problem to
/// report ([`TokenCache::report_secret_file_problem`](crate::TokenCache::report_secret_file_problem)),
/// checked again at the next interval.
#[derive(Debug, Clone, Default)]
pub struct SecretFileWatch {
    last_read: Option<FileStamp>,
    checked_at: Option<u64>,
}

impl SecretFileWatch {
    /// How often the file is checked on the token path.
    pub const CHECK_INTERVAL_MS: u64 = 1_000;

    /// A watch that has read nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the host should `stat` the file now: the first time, after
    /// `CHECK_INTERVAL_MS`, or at once when `forced` (after `invalid_client`).
    pub fn due(&self, now: u64, forced: bool) -> bool {
        forced || self.checked_at.is_none_or(|at| now < at || now >= at.saturating_add(Self::CHECK_INTERVAL_MS))
    }

    /// Records a check at `now` that found `stamp`; returns whether the file
    /// must be read (it differs from the last read, or was never read).
    pub fn changed(&mut self, stamp: FileStamp, now: u64) -> bool {
        self.checked_at = Some(now);
        self.last_read != Some(stamp)
    }

    /// Records a check at `now` that could not `stat` the file.
    pub fn failed(&mut self, now: u64) {
        self.checked_at = Some(now);
    }

    /// Records that the file with `stamp` was read (whether or not it held a
    /// valid secret: an invalid file is not read again until it changes).
    pub fn read(&mut self, stamp: FileStamp) {
        self.last_read = Some(stamp);
    }
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

    fn explicit(json: serde_json::Value) -> ExplicitOptions {
        ExplicitOptions { options: serde_json::from_value(json).unwrap(), ..ExplicitOptions::default() }
    }

    #[test]
    fn explicit_options_win_over_the_environment_field_by_field() {
        let e = env(&[
            ("CLIENT_ID", "from-env"),
            ("TOKEN_URL", "https://env.example/t"),
            ("CLIENT_SECRET", "env-secret"),
            ("SCOPE", "env:scope"),
            ("AUDIENCE", "https://env.aud"),
        ]);
        let merged = merge_env(
            explicit(serde_json::json!({"client_id": "explicit", "scope": ["a", "b"], "client_secret": ["x", "y"]})),
            read_env("", &e).unwrap(),
        );
        let config = merged.clone().into_config(None).unwrap();
        assert_eq!((config.client_id(), config.token_url()), ("explicit", "https://env.example/t"));
        assert_eq!(config.scopes(), ["a", "b"]);
        assert_eq!(config.audiences(), ["https://env.aud"]);
        assert_eq!(config.secret_count(), 2);
        let sources: Vec<&str> = merged.sources.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(sources, ["token_url", "audience"], "overridden options keep no env source");
    }

    #[test]
    fn an_explicit_secret_replaces_the_secret_file_and_the_reverse() {
        let e = env(&[("CLIENT_ID", "c"), ("TOKEN_URL", "https://a/t"), ("CLIENT_SECRET_FILE", "/run/s")]);
        let merged = merge_env(explicit(serde_json::json!({"client_secret": "x"})), read_env("", &e).unwrap());
        assert_eq!(merged.secret_file, None);
        assert_eq!(merged.into_config(None).unwrap().secret_count(), 1);
        let e = env(&[("CLIENT_ID", "c"), ("TOKEN_URL", "https://a/t"), ("CLIENT_SECRET", "a,b,c")]);
        let x = ExplicitOptions { secret_file: Some("/etc/s".into()), ..ExplicitOptions::default() };
        let merged = merge_env(x, read_env("", &e).unwrap());
        assert_eq!(merged.secret_file_source.as_deref(), Some("client_secret_file"));
        let error = merged.clone().into_config(Some("\n")).unwrap_err();
        assert_eq!(error.field, "client_secret_file");
        assert_eq!(merged.into_config(Some("new\nold\n")).unwrap().secret_count(), 2);
    }

    #[test]
    fn every_missing_variable_is_named_at_once() {
        let merged = merge_env(ExplicitOptions::default(), read_env("B_", &env(&[("B_SCOPE", "s")])).unwrap());
        let error = merged.into_config(None).unwrap_err();
        assert_eq!(error.field, "B_CLIENT_ID");
        assert_eq!(
            error.problem,
            "is not set; also not set: B_TOKEN_URL (or B_HYDRA_URL / B_ISSUER_URL), \
             B_CLIENT_SECRET (or B_CLIENT_SECRET_FILE / B_CLIENT_PRIVATE_KEY_FILE)"
        );
        let only_url = env(&[("CLIENT_ID", "c"), ("CLIENT_SECRET", "s")]);
        let error = merge_env(ExplicitOptions::default(), read_env("", &only_url).unwrap()).check_required();
        assert_eq!(
            error.unwrap_err().to_string(),
            "invalid configuration: TOKEN_URL: is not set (or HYDRA_URL / ISSUER_URL)"
        );
    }

    #[test]
    fn errors_are_renamed_to_the_variable_keeping_the_index() {
        let e = env(&[("P_CLIENT_ID", "c"), ("P_TOKEN_URL", "https://a/t"), ("P_CLIENT_SECRET", "hunter2")]);
        let merged = merge_env(explicit(serde_json::json!({"scope": ["ok", "not ok"]})), read_env("P_", &e).unwrap());
        assert_eq!(merged.into_config(None).unwrap_err().field, "scope[1]", "explicit options keep their name");
        let e =
            env(&[("P_CLIENT_ID", "c"), ("P_TOKEN_URL", "http://remote.example/t"), ("P_CLIENT_SECRET", "hunter2")]);
        let error = merge_env(ExplicitOptions::default(), read_env("P_", &e).unwrap()).into_config(None).unwrap_err();
        assert_eq!(error.field, "P_TOKEN_URL");
        assert!(!error.to_string().contains("hunter2"));
        let merged = merge_env(ExplicitOptions::default(), read_env("", &env(&[("SCOPE", "a")])).unwrap());
        let renamed = merged.rename(ConfigError::new("scope[3]", "x"));
        assert_eq!(renamed.field, "SCOPE[3]");
    }

    #[test]
    fn insecure_http_and_the_ca_file_come_from_unprefixed_variables() {
        let e = env(&[
            ("P_CLIENT_ID", "c"),
            ("P_TOKEN_URL", "http://hydra:4444/oauth2/token"),
            ("P_CLIENT_SECRET", "s"),
            ("TOKENWELL_ALLOW_INSECURE_HTTP", "1"),
            ("TOKENWELL_CA_FILE", "/etc/ca.pem"),
        ]);
        let merged = merge_env(ExplicitOptions::default(), read_env("P_", &e).unwrap());
        assert_eq!(merged.ca_file.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(merged.into_config(None).unwrap().token_url(), "http://hydra:4444/oauth2/token");
        let bad = env(&[("TOKENWELL_ALLOW_INSECURE_HTTP", "yes please")]);
        assert_eq!(read_env("", &bad).unwrap_err().field, "TOKENWELL_ALLOW_INSECURE_HTTP");
    }

    #[test]
    #[cfg(feature = "asymmetric")] // an EC key: refused without the feature
    fn the_key_file_is_read_by_the_host_and_explicit_keys_replace_it() {
        let e = env(&[("CLIENT_ID", "c"), ("ISSUER_URL", "https://a.example"), ("CLIENT_PRIVATE_KEY_FILE", "/k")]);
        let merged = merge_env(ExplicitOptions::default(), read_env("", &e).unwrap());
        assert_eq!(
            (merged.key_file.as_deref(), merged.key_file_source.as_deref()),
            (Some("/k"), Some("CLIENT_PRIVATE_KEY_FILE"))
        );
        let error = merged.clone().into_config(None).unwrap_err();
        assert_eq!(
            (error.field.as_str(), error.problem.as_str()),
            ("CLIENT_PRIVATE_KEY_FILE", "the key file was not read")
        );
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/conformance/keys/test-only-p256.pkcs8.pem"
        ))
        .unwrap();
        let config = merged.into_config_with_keys(None, Some(&pem)).unwrap();
        assert_eq!((config.key_count(), config.issuer()), (1, Some("https://a.example")));
        let explicit = ExplicitOptions {
            options: ConfigOptions {
                private_key: Some(SecretOrSecrets::One(pem.as_str().into())),
                ..Default::default()
            },
            ..ExplicitOptions::default()
        };
        let merged = merge_env(explicit, read_env("", &e).unwrap());
        assert_eq!((merged.key_file.as_deref(), merged.key_file_source.as_deref()), (None, None));
        assert_eq!(merged.into_config(None).unwrap().key_count(), 1);
        // An algorithm that is not an HMAC one applies to the key file's keys.
        let e = env(&[("CLIENT_ID", "c"), ("TOKEN_URL", "https://a.example/t"), ("CLIENT_PRIVATE_KEY_FILE", "/k")]);
        let explicit = ExplicitOptions {
            options: ConfigOptions { assertion_signing_alg: Some("RS256".into()), ..Default::default() },
            ..ExplicitOptions::default()
        };
        let error = merge_env(explicit, read_env("", &e).unwrap()).into_config_with_keys(None, Some(&pem)).unwrap_err();
        assert_eq!(error.field, "CLIENT_PRIVATE_KEY_FILE");
        assert_eq!(error.problem, "the key file, key 1: algorithm RS256 does not fit this key type");
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
