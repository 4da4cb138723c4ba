//! Configuration: an all-`Option` [`ConfigOptions`] (what hosts and JSON give)
//! validated into a [`Config`] (what the engine runs on).
//!
//! Validation happens once, at construction, and every refusal is a
//! [`ConfigError`] naming the field. No message echoes a secret.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ConfigError;
use crate::keys::{parse_private_keys, PrivateKey, SigningAlg};
use crate::secret::ClientSecret;

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the id and secret form-urlencoded first (RFC 6749 §2.3.1). The default.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A client assertion signed with the client's private key (RFC 7523 §2.2,
    /// OpenID Connect Core §9): no shared secret is sent.
    PrivateKeyJwt,
    /// A client assertion signed with HMAC over the client secret (the secret
    /// itself is not sent).
    ClientSecretJwt,
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AuthMethod {
    /// The RFC 7591 name of this method.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
        }
    }

    /// Whether this method signs a client assertion per request.
    pub fn signs_assertion(self) -> bool {
        matches!(self, AuthMethod::PrivateKeyJwt | AuthMethod::ClientSecretJwt)
    }

    /// Parses an RFC 7591 method name.
    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        match name {
            "client_secret_basic" => Ok(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Ok(AuthMethod::ClientSecretPost),
            "private_key_jwt" => Ok(AuthMethod::PrivateKeyJwt),
            "client_secret_jwt" => Ok(AuthMethod::ClientSecretJwt),
            _ => Err(ConfigError::new(
                "auth_method",
                "must be \"client_secret_basic\", \"client_secret_post\", \"private_key_jwt\" or \"client_secret_jwt\"",
            )),
        }
    }
}

/// A scope (or audience) list given either as one space-separated string or as a list.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ListOrString {
    /// `"a b c"`: split on whitespace.
    String(String),
    /// `["a", "b", "c"]`: each element is one value.
    List(Vec<String>),
}

impl fmt::Debug for ListOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListOrString::String(s) => s.fmt(f),
            ListOrString::List(l) => l.fmt(f),
        }
    }
}

/// One or several client secrets, current first.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SecretOrSecrets {
    /// A single secret.
    One(ClientSecret),
    /// `[current, previous, ...]`.
    Many(Vec<ClientSecret>),
}

impl fmt::Debug for SecretOrSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretOrSecrets::One(s) => s.fmt(f),
            SecretOrSecrets::Many(l) => l.fmt(f),
        }
    }
}

impl SecretOrSecrets {
    fn into_vec(self) -> Vec<ClientSecret> {
        match self {
            SecretOrSecrets::One(s) => vec![s],
            SecretOrSecrets::Many(v) => v,
        }
    }
}

/// Everything a host may configure, every field optional, as read from JSON,
/// a JS object or Python keyword arguments. [`Config::from_options`] validates it.
///
/// Durations are milliseconds. Field names are `snake_case` in JSON.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigOptions {
    /// The token endpoint, e.g. `https://hydra.example/oauth2/token`. This or
    /// `issuer` is required.
    pub token_url: Option<String>,
    /// The issuer, e.g. `https://keycloak.example/realms/ops`: without
    /// `token_url`, the token endpoint and auth method are discovered from its
    /// metadata document (see [`discovery_urls`](crate::discovery_urls)). With
    /// `token_url`, it is only the assertion audience of
    /// `assertion_audience: "issuer"`.
    pub issuer: Option<String>,
    /// The client id. Required.
    pub client_id: Option<String>,
    /// One secret, or several (current first). Required.
    #[serde(alias = "client_secrets")]
    pub client_secret: Option<SecretOrSecrets>,
    /// Private keys for `private_key_jwt`, current first: each string is PEM
    /// (one or more blocks) or a JWK / JWKS (JSON). Redacted in `Debug`.
    #[serde(alias = "private_keys")]
    pub private_key: Option<SecretOrSecrets>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or
    /// `client_secret_jwt`. Default: `private_key_jwt` with keys and no secret,
    /// else `client_secret_basic`; with discovery, the best the server supports.
    pub auth_method: Option<String>,
    /// The JWS algorithm of client assertions: for `private_key_jwt` the
    /// default for keys whose JWK names none (`RS256`, `PS256`, ... for RSA;
    /// EC keys sign with their curve's `ES256` / `ES384`); for
    /// `client_secret_jwt` `HS256` (default), `HS384` or `HS512`.
    pub assertion_signing_alg: Option<String>,
    /// The assertion's `aud`: `"token_endpoint"` (default) or `"issuer"`.
    pub assertion_audience: Option<String>,
    /// How long an assertion is valid (`exp` - `iat`), whole seconds. Default 60 000.
    pub assertion_lifetime_ms: Option<u64>,
    /// How long a discovered metadata document is used before it is fetched
    /// again. Default 86 400 000 (24 hours).
    pub discovery_refresh_ms: Option<u64>,
    /// Scopes: a space-separated string or a list.
    pub scope: Option<ListOrString>,
    /// Audiences: a string (one audience, or several separated by spaces) or a list.
    pub audience: Option<ListOrString>,
    /// Extra form parameters sent with every token request. In JSON (and so
    /// from every host) either a list of `[name, value]` pairs, sent in that
    /// order, or a mapping `{"name": "value"}` / `{"name": ["value", "value"]}`
    /// (one parameter per value, for a repeated name such as RFC 8707
    /// `resource`), sent in name order.
    #[serde(default, deserialize_with = "extra_params_pairs_or_mapping")]
    pub extra_params: Option<Vec<(String, String)>>,
    /// Allow a plain `http://` endpoint that is not on loopback. Default false.
    pub allow_insecure_http: Option<bool>,
    /// Refresh margin: a token is never served this close to expiry. Default 30 000;
    /// capped at half the token's lifetime.
    pub refresh_margin_ms: Option<u64>,
    /// Where in the token's usable life a background refresh starts. Default 0.75.
    pub refresh_ahead: Option<f64>,
    /// Random spread around `refresh_ahead`, so a fleet does not refresh in step. Default 0.05.
    pub refresh_ahead_jitter: Option<f64>,
    /// Lifetime assumed when the response has no `expires_in` and the token is no JWT
    /// with `exp`. Default 300 000 (5 minutes).
    pub default_lifetime_ms: Option<u64>,
    /// Shorter lifetimes (zero, negative) are raised to this. Default 1 000.
    pub min_lifetime_ms: Option<u64>,
    /// Longer lifetimes are lowered to this. Default 86 400 000 (24 hours).
    pub max_lifetime_ms: Option<u64>,
    /// Largest accepted response body. Default 65 536 bytes.
    pub max_response_bytes: Option<usize>,
    /// Timeout the host applies to one token request; the engine abandons a fetch
    /// never reported after it. Default 10 000.
    pub request_timeout_ms: Option<u64>,
    /// First backoff step after a transient failure. Default 1 000.
    pub backoff_initial_ms: Option<u64>,
    /// Largest backoff step. Default 60 000.
    pub backoff_max_ms: Option<u64>,
    /// Smallest delay before a retry (full jitter may draw less). Default 100.
    pub backoff_min_ms: Option<u64>,
    /// Apply full jitter to backoff (default true). False: the full step, for tests.
    pub backoff_jitter: Option<bool>,
    /// Largest `Retry-After` honoured. Default 3 600 000 (1 hour).
    pub max_retry_after_ms: Option<u64>,
    /// How long configuration-class errors (invalid_scope, invalid_client with every
    /// secret tried, ...) are held before another attempt. Default 300 000.
    pub config_error_hold_ms: Option<u64>,
    /// At most one refresh caused by `invalidate` per this interval. Default 10 000.
    pub invalidate_min_interval_ms: Option<u64>,
    /// Outage grace: when the last refresh failed for a transient reason (the
    /// server or the network), keep serving the cached token inside the refresh
    /// margin, up to `outage_grace_safety_ms` before it expires, instead of
    /// failing callers. Default true.
    pub outage_grace: Option<bool>,
    /// How long before `expires_at` outage grace stops serving a token. Default
    /// 5 000; never more than the token's margin.
    pub outage_grace_safety_ms: Option<u64>,
}

/// When and how the engine refreshes and retries. Part of a validated [`Config`].
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshPolicy {
    /// Refresh margin in ms (capped per token at half its lifetime).
    pub refresh_margin_ms: u64,
    /// Fraction of the usable life after which a background refresh starts.
    pub refresh_ahead: f64,
    /// Spread around `refresh_ahead`.
    pub refresh_ahead_jitter: f64,
    /// Lifetime assumed without `expires_in` or a JWT `exp`.
    pub default_lifetime_ms: u64,
    /// Lower clamp for lifetimes.
    pub min_lifetime_ms: u64,
    /// Upper clamp for lifetimes.
    pub max_lifetime_ms: u64,
    /// Largest accepted response body.
    pub max_response_bytes: usize,
    /// Timeout of one token request.
    pub request_timeout_ms: u64,
    /// First backoff step.
    pub backoff_initial_ms: u64,
    /// Largest backoff step.
    pub backoff_max_ms: u64,
    /// Smallest retry delay.
    pub backoff_min_ms: u64,
    /// Full jitter on backoff.
    pub backoff_jitter: bool,
    /// Largest honoured `Retry-After`.
    pub max_retry_after_ms: u64,
    /// Hold after configuration-class errors.
    pub config_error_hold_ms: u64,
    /// Rate limit of invalidation-driven refreshes.
    pub invalidate_min_interval_ms: u64,
    /// Serve the cached token inside the margin after a transient refresh failure.
    pub outage_grace: bool,
    /// Outage grace ends this long before `expires_at`.
    pub outage_grace_safety_ms: u64,
    /// Lifetime of a client assertion (`exp` - `iat`).
    pub assertion_lifetime_ms: u64,
    /// Age after which a discovered metadata document is fetched again.
    pub discovery_refresh_ms: u64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_margin_ms: 30_000,
            refresh_ahead: 0.75,
            refresh_ahead_jitter: 0.05,
            default_lifetime_ms: 300_000,
            min_lifetime_ms: 1_000,
            max_lifetime_ms: 86_400_000,
            max_response_bytes: 65_536,
            request_timeout_ms: 10_000,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 60_000,
            backoff_min_ms: 100,
            backoff_jitter: true,
            max_retry_after_ms: 3_600_000,
            config_error_hold_ms: 300_000,
            invalidate_min_interval_ms: 10_000,
            outage_grace: true,
            outage_grace_safety_ms: 5_000,
            assertion_lifetime_ms: 60_000,
            discovery_refresh_ms: 86_400_000,
        }
    }
}

/// Whose URL a client assertion's `aud` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssertionAudience {
    /// The token endpoint the request goes to (RFC 7523 §3; the default).
    TokenEndpoint,
    /// The issuer (for servers that want it).
    Issuer,
}

/// A validated configuration. Build it with [`Config::from_options`] or
/// [`Config::from_json`]; every field was checked.
#[derive(Clone)]
pub struct Config {
    /// The token endpoint; `None` when it is discovered from `issuer`.
    pub(crate) token_url: Option<String>,
    /// The issuer exactly as configured (compared character for character).
    pub(crate) issuer: Option<String>,
    pub(crate) client_id: String,
    pub(crate) secrets: Vec<ClientSecret>,
    pub(crate) keys: Vec<PrivateKey>,
    /// The configured method, if any (discovery may pick one otherwise).
    pub(crate) configured_auth_method: Option<AuthMethod>,
    pub(crate) auth_method: AuthMethod,
    pub(crate) hmac_alg: SigningAlg,
    /// The algorithm for keys whose JWK names none (also for keys re-read from a file).
    pub(crate) key_alg: Option<SigningAlg>,
    pub(crate) assertion_audience: AssertionAudience,
    pub(crate) allow_insecure_http: bool,
    pub(crate) scopes: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) extra_params: Vec<(String, String)>,
    pub(crate) policy: RefreshPolicy,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("token_url", &self.token_url())
            .field("client_id", &self.client_id)
            .field("issuer", &self.issuer)
            .field("secrets", &self.secrets)
            .field("keys", &self.keys)
            .field("auth_method", &self.auth_method)
            .field("scopes", &self.scopes)
            .field("audiences", &self.audiences)
            .field("extra_params", &self.extra_params)
            .field("policy", &self.policy)
            .finish()
    }
}

const RESERVED_PARAMS: [&str; 7] =
    ["grant_type", "scope", "audience", "client_id", "client_secret", "client_assertion", "client_assertion_type"];

impl Config {
    /// Validates host-supplied options.
    pub fn from_options(options: ConfigOptions) -> Result<Self, ConfigError> {
        let policy = build_policy(&options)?;
        let configured_auth_method = options.auth_method.as_deref().map(AuthMethod::parse).transpose()?;
        let allow_insecure_http = options.allow_insecure_http.unwrap_or(false);
        let issuer = options.issuer.as_deref().map(|raw| validate_issuer(raw, allow_insecure_http)).transpose()?;
        let token_url = match (&options.token_url, &issuer) {
            (None, Some(_)) => None,
            (url, _) => Some(validate_endpoint_url(url.as_deref(), allow_insecure_http, "token_url")?),
        };

        let (keys, hmac_alg, key_alg) = assertion_keys(&options, configured_auth_method)?;
        let client_id = options.client_id.ok_or_else(|| ConfigError::new("client_id", "is required"))?;
        validate_client_id(&client_id)?;

        let secrets = options.client_secret.map(SecretOrSecrets::into_vec);
        if let Some(secrets) = &secrets {
            validate_secrets(secrets)?;
        }
        let secrets = secrets.unwrap_or_default();
        let auth_method = configured_auth_method.unwrap_or(if !keys.is_empty() && secrets.is_empty() {
            AuthMethod::PrivateKeyJwt
        } else {
            AuthMethod::ClientSecretBasic
        });
        // Discovery without a configured method picks among what the client has.
        let discovery_picks = configured_auth_method.is_none() && token_url.is_none();
        if auth_method == AuthMethod::PrivateKeyJwt && keys.is_empty() {
            return Err(ConfigError::new("private_key", "is required for private_key_jwt"));
        }
        let discovery_may_use_keys = discovery_picks && !keys.is_empty();
        if auth_method != AuthMethod::PrivateKeyJwt && secrets.is_empty() && !discovery_may_use_keys {
            return Err(ConfigError::new("client_secret", "is required (or private_key for private_key_jwt)"));
        }
        let assertion_audience = match options.assertion_audience.as_deref() {
            None | Some("token_endpoint") => AssertionAudience::TokenEndpoint,
            Some("issuer") if issuer.is_some() => AssertionAudience::Issuer,
            Some("issuer") => return Err(ConfigError::new("assertion_audience", "\"issuer\" needs issuer to be set")),
            Some(_) => {
                return Err(ConfigError::new("assertion_audience", "must be \"token_endpoint\" or \"issuer\""));
            }
        };

        let scopes = match options.scope {
            None => Vec::new(),
            Some(ListOrString::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(ListOrString::List(list)) => list,
        };
        for (i, scope) in scopes.iter().enumerate() {
            validate_scope_token(scope).map_err(|problem| ConfigError::new(format!("scope[{i}]"), problem))?;
        }

        let audiences = match options.audience {
            None => Vec::new(),
            Some(ListOrString::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(ListOrString::List(list)) => list,
        };
        for (i, audience) in audiences.iter().enumerate() {
            if audience.trim().is_empty() {
                return Err(ConfigError::new(format!("audience[{i}]"), "must not be empty"));
            }
            if audience.chars().any(char::is_control) {
                return Err(ConfigError::new(format!("audience[{i}]"), "must not contain control characters"));
            }
        }

        let extra_params = options.extra_params.unwrap_or_default();
        for (name, _) in &extra_params {
            if name.is_empty() {
                return Err(ConfigError::new("extra_params", "a parameter name is empty"));
            }
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return Err(ConfigError::new(
                    "extra_params",
                    format!("\"{name}\" is set by the engine and cannot be overridden"),
                ));
            }
        }

        Ok(Self {
            token_url,
            issuer,
            client_id,
            secrets,
            keys,
            configured_auth_method,
            auth_method,
            hmac_alg,
            key_alg,
            assertion_audience,
            allow_insecure_http,
            scopes,
            audiences,
            extra_params,
            policy,
        })
    }

    /// Parses and validates options from JSON (the format of the conformance scenarios).
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| config_json_error(&e))?;
        let options: ConfigOptions = match serde_json::from_value(value.clone()) {
            Ok(options) => options,
            Err(error) => return Err(locate_option_error(&value).unwrap_or_else(|| config_json_error(&error))),
        };
        Self::from_options(options)
    }

    /// The configured token endpoint; empty when it is discovered from
    /// [`issuer`](Self::issuer) (the cache knows the discovered one:
    /// [`TokenCache::token_endpoint`](crate::TokenCache::token_endpoint)).
    pub fn token_url(&self) -> &str {
        self.token_url.as_deref().unwrap_or_default()
    }

    /// The issuer, exactly as configured.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// How many private keys are configured (`private_key_jwt`).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The private keys, current first. Their `Debug` shows only `alg` and `kid`.
    pub fn keys(&self) -> &[PrivateKey] {
        &self.keys
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How many secrets are configured.
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// The authentication method: the configured one, else `private_key_jwt`
    /// for a client with keys and no secret, else `client_secret_basic`. With
    /// discovery and no configured method the cache may pick another one the
    /// server supports ([`TokenCache::auth_method`](crate::TokenCache::auth_method)).
    pub fn auth_method(&self) -> AuthMethod {
        self.auth_method
    }

    /// The auth method the caller configured explicitly, if any.
    pub fn configured_auth_method(&self) -> Option<AuthMethod> {
        self.configured_auth_method
    }

    /// What identifies the token endpoint: `token_url`, or the issuer it is discovered from.
    fn endpoint_identity(&self) -> &str {
        self.token_url.as_deref().or(self.issuer.as_deref()).unwrap_or_default()
    }

    /// The requested scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The requested audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The extra form parameters.
    pub fn extra_params(&self) -> &[(String, String)] {
        &self.extra_params
    }

    /// The refresh policy.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    /// A hex SHA-256 over endpoint, client id, scopes and audiences (sorted), never the
    /// secret: identifies which configuration a persisted token belongs to.
    pub fn fingerprint(&self) -> String {
        let mut scopes = self.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let mut audiences = self.audiences.clone();
        audiences.sort();
        audiences.dedup();
        let mut hasher = Sha256::new();
        for part in [
            "tokenwell-fingerprint-v1",
            self.endpoint_identity(),
            &self.client_id,
            &scopes.join(" "),
            &audiences.join("\u{1f}"),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Names the option whose value has the wrong type, by deserializing each one alone.
fn locate_option_error(value: &serde_json::Value) -> Option<ConfigError> {
    let object = value.as_object()?;
    object.iter().find_map(|(key, v)| {
        let single = serde_json::Value::Object([(key.clone(), v.clone())].into_iter().collect());
        serde_json::from_value::<ConfigOptions>(single).err().map(|e| {
            let mut error = config_json_error(&e);
            if error.field == "options" {
                error.field = key.clone();
                error.problem = expected_type(key);
            }
            error
        })
    })
}

/// `extra_params` as pairs or as a mapping (see [`ConfigOptions::extra_params`]),
/// in the order given.
fn extra_params_pairs_or_mapping<'de, D>(deserializer: D) -> Result<Option<Vec<(String, String)>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Params;
    impl<'de> serde::de::Visitor<'de> for Params {
        type Value = Option<Vec<(String, String)>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of [name, value] pairs or a mapping of names to a value or a list of values")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_any(Params)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::new();
            while let Some(pair) = seq.next_element::<(String, String)>()? {
                pairs.push(pair);
            }
            Ok(Some(pairs))
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::new();
            while let Some(name) = map.next_key::<String>()? {
                match map.next_value::<ListOrString>()? {
                    ListOrString::String(value) => pairs.push((name, value)),
                    ListOrString::List(values) => pairs.extend(values.into_iter().map(|v| (name.clone(), v))),
                }
            }
            // Hosts' mappings keep different orders (JSON objects here are
            // sorted, a Python dict keeps insertion order): name order makes the
            // request the same bytes from every host. A name's values keep theirs.
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Some(pairs))
        }
    }
    deserializer.deserialize_option(Params)
}

fn expected_type(key: &str) -> String {
    match key {
        "client_secret" | "client_secrets" => "must be a string or a list of strings",
        "scope" | "audience" => "must be a space-separated string or a list of strings",
        "extra_params" => "must be a list of [name, value] string pairs or a mapping of names to strings",
        "allow_insecure_http" | "backoff_jitter" | "outage_grace" => "must be true or false",
        "refresh_ahead" | "refresh_ahead_jitter" => "must be a number",
        "private_key" | "private_keys" => "must be a string or a list of strings",
        "token_url" | "issuer" | "client_id" | "auth_method" | "assertion_signing_alg" | "assertion_audience" => {
            "must be a string"
        }
        _ => "must be a whole number (milliseconds or bytes)",
    }
    .to_owned()
}

fn config_json_error(error: &serde_json::Error) -> ConfigError {
    // serde_json messages quote unknown field names and types, never string values.
    let text = error.to_string();
    let field = text.split('`').nth(1).filter(|_| text.starts_with("unknown field")).unwrap_or("options").to_owned();
    let problem = if text.starts_with("unknown field") {
        "is not a known option".to_owned()
    } else {
        // "invalid type: string \"...\"" would echo a value that may be a secret.
        let mut out = String::with_capacity(text.len());
        for (i, part) in text.split('"').enumerate() {
            if i > 0 {
                out.push('"');
            }
            out.push_str(if i % 2 == 1 { "..." } else { part });
        }
        out
    };
    ConfigError::new(field, problem)
}

/// The private keys and the HMAC algorithm of `client_secret_jwt`, checked
/// against the configured method.
fn assertion_keys(
    options: &ConfigOptions,
    method: Option<AuthMethod>,
) -> Result<(Vec<PrivateKey>, SigningAlg, Option<SigningAlg>), ConfigError> {
    const FIELD: &str = "assertion_signing_alg";
    let signing_alg = match options.assertion_signing_alg.as_deref() {
        None => None,
        Some(name) => Some(SigningAlg::parse(name).ok_or_else(|| {
            ConfigError::new(
                FIELD,
                "must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, HS256, HS384, HS512",
            )
        })?),
    };
    match (signing_alg, method) {
        (Some(alg), Some(AuthMethod::ClientSecretJwt)) if !alg.is_hmac() => {
            return Err(ConfigError::new(FIELD, format!("{alg} is not HS256, HS384 or HS512 (client_secret_jwt)")));
        }
        (Some(alg), Some(AuthMethod::PrivateKeyJwt)) if alg.is_hmac() => {
            return Err(ConfigError::new(FIELD, format!("{alg} cannot sign with a private key (private_key_jwt)")));
        }
        _ => {}
    }
    let key_alg = signing_alg.filter(|alg| !alg.is_hmac());
    let mut keys = Vec::new();
    if let Some(texts) = &options.private_key {
        let texts = texts.clone().into_vec();
        for (i, text) in texts.iter().enumerate() {
            let field = if texts.len() == 1 { "private_key".to_owned() } else { format!("private_key[{i}]") };
            keys.extend(
                parse_private_keys(text.expose(), key_alg).map_err(|problem| ConfigError::new(field, problem))?,
            );
        }
    }
    Ok((keys, signing_alg.filter(|alg| alg.is_hmac()).unwrap_or(SigningAlg::HS256), key_alg))
}

/// The issuer: a URL checked like `token_url`, without a query (RFC 8414 §2),
/// kept exactly as given (trimmed): the metadata document must repeat it.
fn validate_issuer(raw: &str, allow_insecure_http: bool) -> Result<String, ConfigError> {
    validate_endpoint_url(Some(raw), allow_insecure_http, "issuer")?;
    if raw.contains('?') {
        return Err(ConfigError::new("issuer", "must not contain a query (?...)"));
    }
    Ok(raw.trim().to_owned())
}

/// Checks an endpoint URL (`token_url`, `issuer`, a discovered
/// `token_endpoint`): https, or plain http on loopback or with
/// `allow_insecure_http`; no credentials, no fragment. Errors name `field`.
pub(crate) fn validate_endpoint_url(
    url: Option<&str>,
    allow_insecure_http: bool,
    field: &str,
) -> Result<String, ConfigError> {
    let raw = url.ok_or_else(|| ConfigError::new(field, "is required"))?;
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ConfigError::new(field, "is required"));
    }
    let parsed = url::Url::parse(raw).map_err(|e| match e {
        // Every build links `idna` without its Unicode tables (idna_adapter
        // 1.0.0, pinned in Cargo.lock: a third of the wasm engine's size), so
        // every host refuses an internationalized host name the same way.
        url::ParseError::IdnaError => ConfigError::new(
            field,
            "has a host name that is not ASCII: write it in its punycode form (https://xn--...)",
        ),
        e => ConfigError::new(field, format!("is not a valid URL ({e})")),
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::new(field, "must not contain credentials (user:password@)"));
    }
    if parsed.fragment().is_some() {
        return Err(ConfigError::new(field, "must not contain a fragment (#...)"));
    }
    match parsed.scheme() {
        "https" => {}
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            if !loopback && !allow_insecure_http {
                return Err(ConfigError::new(
                    field,
                    "must use https (plain http is allowed only for loopback hosts unless allow_insecure_http is set)",
                ));
            }
        }
        other => {
            return Err(ConfigError::new(field, format!("scheme \"{other}\" is not supported (use https)")));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(field, "has no host"));
    }
    Ok(parsed.to_string())
}

fn validate_client_id(id: &str) -> Result<(), ConfigError> {
    if id.is_empty() {
        return Err(ConfigError::new("client_id", "must not be empty"));
    }
    if id.chars().any(char::is_control) {
        return Err(ConfigError::new("client_id", "must not contain control characters"));
    }
    Ok(())
}

/// Checks a list of secrets (current first) without ever echoing one.
pub(crate) fn validate_secrets(secrets: &[ClientSecret]) -> Result<(), ConfigError> {
    if secrets.is_empty() {
        return Err(ConfigError::new("client_secret", "at least one secret is required"));
    }
    for (i, secret) in secrets.iter().enumerate() {
        let field = if secrets.len() == 1 { "client_secret".to_owned() } else { format!("client_secret[{i}]") };
        if secret.expose().is_empty() {
            return Err(ConfigError::new(field, "must not be empty"));
        }
        if secret.expose().chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(ConfigError::new(field, "must not contain line breaks or NUL (was the secret file read raw?)"));
        }
    }
    Ok(())
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
fn validate_scope_token(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Err("empty scope token".to_owned());
    }
    if let Some(bad) = scope.chars().find(|&c| !matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')) {
        return Err(format!("contains {bad:?}, which RFC 6749 §3.3 does not allow in a scope token"));
    }
    Ok(())
}

fn build_policy(o: &ConfigOptions) -> Result<RefreshPolicy, ConfigError> {
    let d = RefreshPolicy::default();
    let p = RefreshPolicy {
        refresh_margin_ms: o.refresh_margin_ms.unwrap_or(d.refresh_margin_ms),
        refresh_ahead: o.refresh_ahead.unwrap_or(d.refresh_ahead),
        refresh_ahead_jitter: o.refresh_ahead_jitter.unwrap_or(d.refresh_ahead_jitter),
        default_lifetime_ms: o.default_lifetime_ms.unwrap_or(d.default_lifetime_ms),
        min_lifetime_ms: o.min_lifetime_ms.unwrap_or(d.min_lifetime_ms),
        max_lifetime_ms: o.max_lifetime_ms.unwrap_or(d.max_lifetime_ms),
        max_response_bytes: o.max_response_bytes.unwrap_or(d.max_response_bytes),
        request_timeout_ms: o.request_timeout_ms.unwrap_or(d.request_timeout_ms),
        backoff_initial_ms: o.backoff_initial_ms.unwrap_or(d.backoff_initial_ms),
        backoff_max_ms: o.backoff_max_ms.unwrap_or(d.backoff_max_ms),
        backoff_min_ms: o.backoff_min_ms.unwrap_or(d.backoff_min_ms),
        backoff_jitter: o.backoff_jitter.unwrap_or(d.backoff_jitter),
        max_retry_after_ms: o.max_retry_after_ms.unwrap_or(d.max_retry_after_ms),
        config_error_hold_ms: o.config_error_hold_ms.unwrap_or(d.config_error_hold_ms),
        invalidate_min_interval_ms: o.invalidate_min_interval_ms.unwrap_or(d.invalidate_min_interval_ms),
        outage_grace: o.outage_grace.unwrap_or(d.outage_grace),
        outage_grace_safety_ms: o.outage_grace_safety_ms.unwrap_or(d.outage_grace_safety_ms),
        assertion_lifetime_ms: o.assertion_lifetime_ms.unwrap_or(d.assertion_lifetime_ms),
        discovery_refresh_ms: o.discovery_refresh_ms.unwrap_or(d.discovery_refresh_ms),
    };
    const YEAR_MS: u64 = 365 * 86_400_000;
    let in_range = |field: &str, v: u64, lo: u64, hi: u64| {
        if v < lo || v > hi {
            Err(ConfigError::new(field, format!("must be between {lo} and {hi} (got {v})")))
        } else {
            Ok(())
        }
    };
    in_range("refresh_margin_ms", p.refresh_margin_ms, 0, YEAR_MS)?;
    if !(p.refresh_ahead.is_finite() && p.refresh_ahead > 0.0 && p.refresh_ahead < 1.0) {
        return Err(ConfigError::new("refresh_ahead", "must be a fraction between 0 and 1 (exclusive)"));
    }
    if !(p.refresh_ahead_jitter.is_finite()
        && p.refresh_ahead_jitter >= 0.0
        && p.refresh_ahead - p.refresh_ahead_jitter > 0.0
        && p.refresh_ahead + p.refresh_ahead_jitter < 1.0)
    {
        return Err(ConfigError::new(
            "refresh_ahead_jitter",
            "must be >= 0 and keep refresh_ahead +/- jitter strictly between 0 and 1",
        ));
    }
    in_range("min_lifetime_ms", p.min_lifetime_ms, 1, YEAR_MS)?;
    in_range("max_lifetime_ms", p.max_lifetime_ms, p.min_lifetime_ms, YEAR_MS)?;
    in_range("default_lifetime_ms", p.default_lifetime_ms, p.min_lifetime_ms, p.max_lifetime_ms)?;
    if p.max_response_bytes < 64 || p.max_response_bytes > 16 * 1024 * 1024 {
        return Err(ConfigError::new("max_response_bytes", "must be between 64 and 16777216"));
    }
    in_range("request_timeout_ms", p.request_timeout_ms, 1, 3_600_000)?;
    in_range("backoff_initial_ms", p.backoff_initial_ms, 1, 86_400_000)?;
    in_range("backoff_max_ms", p.backoff_max_ms, p.backoff_initial_ms, 86_400_000)?;
    in_range("backoff_min_ms", p.backoff_min_ms, 0, p.backoff_initial_ms)?;
    in_range("max_retry_after_ms", p.max_retry_after_ms, 0, 86_400_000)?;
    in_range("config_error_hold_ms", p.config_error_hold_ms, 1, 86_400_000)?;
    in_range("invalidate_min_interval_ms", p.invalidate_min_interval_ms, 0, 86_400_000)?;
    in_range("outage_grace_safety_ms", p.outage_grace_safety_ms, 0, 86_400_000)?;
    in_range("assertion_lifetime_ms", p.assertion_lifetime_ms, 1_000, 600_000)?;
    in_range("discovery_refresh_ms", p.discovery_refresh_ms, 60_000, 7 * 86_400_000)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ConfigOptions {
        ConfigOptions {
            token_url: Some("https://auth.example/oauth2/token".into()),
            client_id: Some("billing-worker".into()),
            client_secret: Some(SecretOrSecrets::One("s3cr3t".into())),
            ..Default::default()
        }
    }

    fn field_of(o: ConfigOptions) -> String {
        Config::from_options(o).unwrap_err().field
    }

    #[test]
    fn extra_params_as_pairs_as_a_mapping_or_null() {
        let base = r#""token_url":"https://auth.example/t","client_id":"c","client_secret":"s""#;
        let params =
            |json: &str| Config::from_json(&format!("{{{base},\"extra_params\":{json}}}")).map(|c| c.extra_params);
        let pairs =
            |list: &[(&str, &str)]| list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(params(r#"[["b","1"],["a","2"]]"#).unwrap(), pairs(&[("b", "1"), ("a", "2")]));
        assert_eq!(params(r#"{"b":"1","a":["3","2"]}"#).unwrap(), pairs(&[("a", "3"), ("a", "2"), ("b", "1")]));
        assert_eq!(params("null").unwrap(), pairs(&[]));
        assert_eq!(params("{}").unwrap(), pairs(&[]));
        for bad in [r#"{"a":1}"#, r#"[["a"]]"#, r#""a=1""#, r#"{"a":[1]}"#] {
            let error = params(bad).unwrap_err();
            assert_eq!(error.field, "extra_params", "{bad}");
            assert_eq!(error.problem, "must be a list of [name, value] string pairs or a mapping of names to strings");
        }
    }

    #[test]
    fn valid_minimal_config() {
        let c = Config::from_options(options()).unwrap();
        assert_eq!(c.auth_method(), AuthMethod::ClientSecretBasic);
        assert_eq!(c.policy().refresh_margin_ms, 30_000);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(ConfigOptions { token_url: None, ..options() }), "token_url");
        assert_eq!(field_of(ConfigOptions { token_url: Some("not a url".into()), ..options() }), "token_url");
        assert_eq!(field_of(ConfigOptions { client_id: Some(String::new()), ..options() }), "client_id");
        assert_eq!(field_of(ConfigOptions { client_secret: None, ..options() }), "client_secret");
        assert_eq!(
            field_of(ConfigOptions { client_secret: Some(SecretOrSecrets::Many(vec![])), ..options() }),
            "client_secret"
        );
        assert_eq!(
            field_of(ConfigOptions {
                client_secret: Some(SecretOrSecrets::Many(vec!["a".into(), "".into()])),
                ..options()
            }),
            "client_secret[1]"
        );
        assert_eq!(
            field_of(ConfigOptions { scope: Some(ListOrString::List(vec!["a".into(), "".into()])), ..options() }),
            "scope[1]"
        );
        assert_eq!(
            field_of(ConfigOptions { scope: Some(ListOrString::List(vec!["a b".into()])), ..options() }),
            "scope[0]"
        );
        assert_eq!(field_of(ConfigOptions { refresh_ahead: Some(1.5), ..options() }), "refresh_ahead");
        assert_eq!(
            field_of(ConfigOptions { extra_params: Some(vec![("scope".into(), "x".into())]), ..options() }),
            "extra_params"
        );
    }

    #[test]
    fn http_only_on_loopback_unless_allowed() {
        for ok in ["http://127.0.0.1:4444/oauth2/token", "http://localhost/t", "http://[::1]:8080/t"] {
            assert!(Config::from_options(ConfigOptions { token_url: Some(ok.into()), ..options() }).is_ok(), "{ok}");
        }
        let remote = ConfigOptions { token_url: Some("http://auth.example/t".into()), ..options() };
        assert_eq!(field_of(remote.clone()), "token_url");
        assert!(Config::from_options(ConfigOptions { allow_insecure_http: Some(true), ..remote }).is_ok());
        assert_eq!(field_of(ConfigOptions { token_url: Some("ftp://x/t".into()), ..options() }), "token_url");
    }

    #[test]
    fn url_with_credentials_is_refused_without_echo() {
        let e = Config::from_options(ConfigOptions {
            token_url: Some("https://user:hunter2@auth.example/t".into()),
            ..options()
        })
        .unwrap_err();
        assert_eq!(e.field, "token_url");
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Config::from_options(ConfigOptions {
            client_secret: Some(SecretOrSecrets::Many(vec!["very-secret-1".into(), "very-secret-2".into()])),
            ..options()
        })
        .unwrap();
        let text = format!("{c:?} {:?}", options());
        assert!(!text.contains("very-secret"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn json_options_and_unknown_fields() {
        let c = Config::from_json(
            r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":["x","y"],
                "scope":"a b","audience":["https://api"],"auth_method":"client_secret_post"}"#,
        )
        .unwrap();
        assert_eq!(c.scopes(), ["a", "b"]);
        assert_eq!(c.secret_count(), 2);
        assert_eq!(c.auth_method(), AuthMethod::ClientSecretPost);
        let e = Config::from_json(r#"{"token_url":"https://a.example/t","colour":"red"}"#).unwrap_err();
        assert_eq!(e.field, "colour");
        let e = Config::from_json(r#"{"client_secret": 5}"#).unwrap_err();
        assert_eq!((e.field.as_str(), e.problem.as_str()), ("client_secret", "must be a string or a list of strings"));
        let e = Config::from_json(r#"{"token_url":"https://a.example/t","refresh_margin_ms":"hunter2"}"#).unwrap_err();
        assert_eq!(e.field, "refresh_margin_ms");
        assert!(!e.to_string().contains("hunter2"));
        let e = Config::from_json("[1]").unwrap_err();
        assert_eq!(e.field, "options");
    }

    #[test]
    fn fingerprint_ignores_secret_and_order() {
        let a = Config::from_json(
            r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":"x","scope":"a b"}"#,
        )
        .unwrap();
        let b = Config::from_json(
            r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":"y","scope":"b a"}"#,
        )
        .unwrap();
        let c = Config::from_json(
            r#"{"token_url":"https://a.example/t","client_id":"d","client_secret":"x","scope":"a b"}"#,
        )
        .unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }
}
