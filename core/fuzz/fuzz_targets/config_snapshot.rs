//! Fuzzes the two ways text from outside becomes engine state without a token
//! endpoint: `Config::from_json` and `TokenCache::import_snapshot`.
//!
//! Input: a first byte `C` then raw configuration JSON; a first byte `S` then
//! raw snapshot text (imported into a cache with a default configuration); or
//! anything else, decoded with `arbitrary` into a configuration built from
//! known and unknown option names with well- and ill-typed values, a token
//! to install first, and a snapshot built field by field.
//!
//! Checks: nothing panics; a refused configuration's message never contains a
//! secret it was given (raw, form-encoded or `Debug`-escaped), and neither does
//! an accepted configuration's `Debug`; an accepted configuration satisfies the
//! documented ranges; an imported token is visible ASCII, was not received in
//! the future, is usable at import, and never lives longer than
//! `max_lifetime_ms` from its `received_at`; an exported snapshot loads back
//! into a fresh cache as the same token.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tokenwell::{Config, Poll, SnapshotError, TokenCache};
use tokenwell_fuzz::{
    arbitrary_from, assert_header_safe_token, assert_no_secret, form_encode, spellings, ExpiresIn, SecretChoice,
    TokenText, INVALID_SECRETS, SECRET_POOL, T0,
};

/// Every option name `ConfigOptions` knows, plus the `client_secrets` alias.
const OPTION_NAMES: [&str; 27] = [
    "token_url",
    "client_id",
    "client_secret",
    "client_secrets",
    "auth_method",
    "scope",
    "audience",
    "extra_params",
    "allow_insecure_http",
    "refresh_margin_ms",
    "refresh_ahead",
    "refresh_ahead_jitter",
    "default_lifetime_ms",
    "min_lifetime_ms",
    "max_lifetime_ms",
    "max_response_bytes",
    "request_timeout_ms",
    "backoff_initial_ms",
    "backoff_max_ms",
    "backoff_min_ms",
    "backoff_jitter",
    "max_retry_after_ms",
    "config_error_hold_ms",
    "invalidate_min_interval_ms",
    "outage_grace",
    "outage_grace_safety_ms",
    "colour",
];

const URLS: [&str; 16] = [
    "https://auth.example/oauth2/token",
    "http://127.0.0.1:4444/oauth2/token",
    "http://localhost/t",
    "http://[::1]:8080/t",
    "http://auth.example/t",
    "ftp://auth.example/t",
    "https://auth.example/t#fragment",
    "not a url",
    "",
    "   ",
    "https://",
    "https://auth.example:99999/t",
    "https://[::1",
    "HTTPS://AUTH.EXAMPLE/T?x=1",
    "data:text/plain,x",
    "http://127.0.0.2.nip.io/t",
];

#[derive(Debug, Arbitrary)]
struct Structured {
    /// Leave out one of the three required options of the valid base.
    drop_required: Option<u8>,
    overrides: Vec<(Key, Value)>,
    install: Option<Install>,
    snapshot: SnapshotText,
    import_at: i32,
}

#[derive(Debug, Arbitrary)]
enum Key {
    Known(u8),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Value {
    Null,
    Bool(bool),
    Small(u16),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Text),
    List(Vec<Text>),
    Pairs(Vec<(Text, Text)>),
    Object,
    Secrets(Vec<SecretChoice>),
}

#[derive(Debug, Arbitrary)]
enum Text {
    Url(u8),
    UrlWithPassword(SecretChoice),
    Secret(SecretChoice),
    Method(u8),
    Token(TokenText),
    Free(String),
    Number(u64),
}

impl Text {
    fn text(&self) -> String {
        match self {
            Text::Url(i) => URLS[usize::from(*i) % URLS.len()].to_owned(),
            Text::UrlWithPassword(s) => format!("https://user:{}@auth.example/t", form_encode(s.text())),
            Text::Secret(s) => s.text().to_owned(),
            Text::Method(i) => ["client_secret_basic", "client_secret_post", "private_key_jwt", "Client_Secret_Basic"]
                [usize::from(*i) % 4]
                .to_owned(),
            Text::Token(t) => t.text(),
            Text::Free(s) => s.chars().take(64).collect(),
            Text::Number(n) => n.to_string(),
        }
    }
}

impl Value {
    fn json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => json!(b),
            Value::Small(n) => json!(n),
            Value::Int(n) => json!(n),
            Value::UInt(n) => json!(n),
            Value::Float(f) if f.is_finite() => json!(f),
            Value::Float(_) => serde_json::from_str("1e308").expect("a valid number"),
            Value::Str(t) => json!(t.text()),
            Value::List(items) => json!(items.iter().take(4).map(Text::text).collect::<Vec<_>>()),
            Value::Pairs(pairs) => json!(pairs.iter().take(3).map(|(a, b)| [a.text(), b.text()]).collect::<Vec<_>>()),
            Value::Object => json!({"a": 1}),
            Value::Secrets(s) => json!(s.iter().take(3).map(|c| c.text()).collect::<Vec<_>>()),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Install {
    expires_in: ExpiresIn,
    token: TokenText,
}

#[derive(Debug, Arbitrary)]
enum SnapshotText {
    Raw(String),
    Exported,
    Fields(SnapshotFields),
}

#[derive(Debug, Arbitrary)]
struct SnapshotFields {
    version: Option<VersionValue>,
    fingerprint: Option<Option<String>>,
    access_token: Option<TokenText>,
    token_type: Option<u8>,
    scope: Option<Value>,
    received_at: Option<Instant>,
    expires_at: Option<Instant>,
    extra: Option<String>,
}

#[derive(Debug, Arbitrary)]
enum VersionValue {
    One,
    Other(u64),
    String,
    Float,
}

/// An instant in a snapshot, relative to the import time (or to `received_at`
/// for `expires_at`), or absolute, or not a number at all.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Instant {
    RelativeMs(i32),
    RelativeDays(i16),
    Absolute(u64),
    Negative(i64),
    Float(f64),
    String,
}

impl Instant {
    fn json(self, base: u64) -> serde_json::Value {
        use serde_json::json;
        match self {
            Instant::RelativeMs(d) => json!(base.saturating_add_signed(i64::from(d))),
            Instant::RelativeDays(d) => json!(base.saturating_add_signed(i64::from(d) * 86_400_000)),
            Instant::Absolute(t) => json!(t),
            Instant::Negative(n) => json!(-(n.unsigned_abs() as i128).min(i64::MAX as i128) as i64),
            Instant::Float(f) if f.is_finite() => json!(f),
            Instant::Float(_) => json!(1.5),
            Instant::String => json!("1700000000000"),
        }
    }

    fn absolute(self, base: u64) -> Option<u64> {
        self.json(base).as_u64()
    }
}

const DEFAULT_CONFIG: &str =
    r#"{"token_url":"https://auth.example/oauth2/token","client_id":"fuzz-client","client_secret":"SECRET-a:+%& é=1"}"#;

/// Pool secrets (valid and invalid) that occur in `value`'s strings but in none
/// of its keys: a refusal may name an unknown key, but must not echo a value.
fn secrets_in(value: &serde_json::Value) -> Vec<&'static str> {
    let mut strings = Vec::new();
    let mut keys = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(s) => strings.push(s.as_str()),
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    keys.push(k.as_str());
                    stack.push(item);
                }
            }
            _ => {}
        }
    }
    SECRET_POOL
        .iter()
        .chain(INVALID_SECRETS.iter().filter(|s| !s.is_empty()))
        .copied()
        .filter(|secret| {
            let given = |text: &str| text.contains(secret) || text.contains(&form_encode(secret));
            let spelled = |text: &str| spellings(secret).iter().any(|s| text.contains(s.as_str()));
            strings.iter().any(|s| given(s)) && !keys.iter().any(|k| spelled(k))
        })
        .collect()
}

/// Parses a configuration and checks the outcome. The secrets checked are the
/// pool secrets present in `json` (when it is not JSON at all, anywhere in it).
fn check_config(json: &str) -> Option<Config> {
    let secrets = match serde_json::from_str::<serde_json::Value>(json) {
        Ok(value) => secrets_in(&value),
        Err(_) => SECRET_POOL.iter().copied().filter(|s| json.contains(s)).collect(),
    };
    match Config::from_json(json) {
        Err(error) => {
            assert_no_secret("ConfigError Display", &error.to_string(), &secrets);
            assert_no_secret("ConfigError Debug", &format!("{error:?}"), &secrets);
            assert_no_secret("ConfigError JSON", &serde_json::to_string(&error).expect("serializes"), &secrets);
            None
        }
        Ok(config) => {
            // A secret may also be used, in clear, as the URL, the client id, a
            // scope, an audience or an extra parameter: those are shown.
            let mut shown: Vec<String> = vec![config.token_url().to_owned(), config.client_id().to_owned()];
            shown.extend(config.scopes().iter().cloned());
            shown.extend(config.audiences().iter().cloned());
            shown.extend(config.extra_params().iter().flat_map(|(n, v)| [n.clone(), v.clone()]));
            let hidden: Vec<&str> = secrets
                .iter()
                .copied()
                .filter(|s| !shown.iter().any(|t| spellings(s).iter().any(|sp| t.contains(sp.as_str()))))
                .collect();
            assert_no_secret("Config Debug", &format!("{config:?}"), &hidden);
            check_ranges(&config);
            Some(config)
        }
    }
}

fn check_ranges(config: &Config) {
    let p = config.policy();
    assert!(config.secret_count() >= 1);
    assert!(!config.client_id().is_empty());
    let url = config.token_url();
    assert!(url.starts_with("https://") || url.starts_with("http://"), "token_url {url:?} accepted");
    assert!(1 <= p.min_lifetime_ms && p.min_lifetime_ms <= p.default_lifetime_ms);
    assert!(p.default_lifetime_ms <= p.max_lifetime_ms);
    assert!(p.backoff_min_ms <= p.backoff_initial_ms && p.backoff_initial_ms <= p.backoff_max_ms);
    assert!(p.refresh_ahead - p.refresh_ahead_jitter > 0.0 && p.refresh_ahead + p.refresh_ahead_jitter < 1.0);
    assert!(p.request_timeout_ms >= 1 && p.config_error_hold_ms >= 1);
}

/// Installs a token through a real fetch, if asked to.
fn install(cache: &mut TokenCache, install: &Install, now: u64) {
    let Poll::Send { request } = cache.poll(now) else { panic!("a fresh cache must ask to send") };
    let mut body = serde_json::json!({"access_token": format!("at-{}", install.token.text()), "token_type": "Bearer"});
    if let Some(e) = install.expires_in.json() {
        body["expires_in"] = e;
    }
    let _ = cache.handle_response(request.fetch_id, 200, &[], body.to_string().as_bytes(), now);
}

/// Imports `text` at `now` and checks what got in.
fn check_import(cache: &mut TokenCache, text: &str, now: u64) -> Result<(), SnapshotError> {
    let before = cache.current_token().map(|t| t.expires_at);
    let result = cache.import_snapshot(text, now);
    if let Err(error) = &result {
        let _ = (error.to_string(), format!("{error:?}"), error.reason());
    }
    if let Some(token) = cache.current_token().cloned() {
        let max = cache.config().policy().max_lifetime_ms;
        assert_header_safe_token("cached token", token.access_token.expose());
        assert!(
            token.expires_at - token.received_at <= max,
            "a token lives {} ms from its received_at, longer than max_lifetime_ms {max}: {token:?}",
            token.expires_at - token.received_at
        );
        assert!(token.usable_until <= token.expires_at && token.refresh_at < token.usable_until, "{token:?}");
        if result.is_ok() && before != Some(token.expires_at) {
            assert!(token.received_at <= now, "imported a token received in the future ({now}): {token:?}");
            assert!(now < token.usable_until, "imported a token that is not usable at {now}: {token:?}");
            match cache.poll(now) {
                Poll::Ready { token: served } | Poll::ReadyAndSend { token: served, .. } => {
                    assert_eq!(served.access_token, token.access_token)
                }
                other => panic!("an imported usable token was not served: {other:?}"),
            }
        }
    }
    while cache.poll_event().is_some() {}
    result
}

fn snapshot_from_fields(f: &SnapshotFields, fingerprint: &str, now: u64) -> String {
    use serde_json::json;
    let mut map = serde_json::Map::new();
    match &f.version {
        None => {}
        Some(VersionValue::One) => drop(map.insert("version".into(), json!(1))),
        Some(VersionValue::Other(v)) => drop(map.insert("version".into(), json!(v))),
        Some(VersionValue::String) => drop(map.insert("version".into(), json!("1"))),
        Some(VersionValue::Float) => drop(map.insert("version".into(), json!(1.0))),
    }
    match &f.fingerprint {
        None => {}
        Some(None) => drop(map.insert("fingerprint".into(), json!(fingerprint))),
        Some(Some(other)) => drop(map.insert("fingerprint".into(), json!(other))),
    }
    if let Some(t) = &f.access_token {
        map.insert("access_token".into(), json!(t.text()));
    }
    if let Some(i) = f.token_type {
        map.insert("token_type".into(), json!(["Bearer", "bearer", "mac", "", " Bearer"][usize::from(i) % 5]));
    }
    if let Some(s) = &f.scope {
        map.insert("scope".into(), s.json());
    }
    if let Some(r) = f.received_at {
        map.insert("received_at".into(), r.json(now));
    }
    let received = f.received_at.and_then(|r| r.absolute(now)).unwrap_or(now);
    if let Some(e) = f.expires_at {
        map.insert("expires_at".into(), e.json(received));
    }
    if let Some(k) = &f.extra {
        map.insert(k.clone(), json!(null));
    }
    serde_json::Value::Object(map).to_string()
}

fn structured(input: &Structured) {
    let mut options = serde_json::json!({
        "token_url": "https://auth.example/oauth2/token",
        "client_id": "fuzz-client",
        "client_secret": SECRET_POOL[0],
    });
    let object = options.as_object_mut().expect("an object");
    if let Some(i) = input.drop_required {
        object.remove(["token_url", "client_id", "client_secret"][usize::from(i) % 3]);
    }
    for (key, value) in input.overrides.iter().take(24) {
        let key = match key {
            Key::Known(i) => OPTION_NAMES[usize::from(*i) % OPTION_NAMES.len()].to_owned(),
            Key::Other(s) => s.chars().take(32).collect(),
        };
        object.insert(key, value.json());
    }
    let json = options.to_string();
    let config = check_config(&json).unwrap_or_else(|| Config::from_json(DEFAULT_CONFIG).expect("valid"));

    let now = T0;
    let mut cache = TokenCache::new(config.clone(), 7);
    if let Some(i) = &input.install {
        install(&mut cache, i, now);
    }
    let exported = cache.export_snapshot(now);
    if let Some(text) = &exported {
        // A plain round trip into a fresh cache gives the same token back.
        let mut fresh = TokenCache::new(config.clone(), 8);
        assert_eq!(check_import(&mut fresh, text, now), Ok(()), "an exported snapshot was refused: {text}");
        let (a, b) = (cache.current_token().expect("exported"), fresh.current_token().expect("imported"));
        assert_eq!((&a.access_token, a.received_at, a.expires_at), (&b.access_token, b.received_at, b.expires_at));
    }
    let import_at = now.saturating_add_signed(i64::from(input.import_at));
    let text = match &input.snapshot {
        SnapshotText::Raw(text) => text.clone(),
        SnapshotText::Exported => exported.unwrap_or_default(),
        SnapshotText::Fields(fields) => snapshot_from_fields(fields, &config.fingerprint(), import_at),
    };
    let _ = check_import(&mut cache, &text, import_at);
}

fuzz_target!(|data: &[u8]| {
    match data.first() {
        Some(b'C') => {
            let _ = check_config(&String::from_utf8_lossy(&data[1..]));
        }
        Some(b'S') => {
            let config = Config::from_json(DEFAULT_CONFIG).expect("valid");
            let mut cache = TokenCache::new(config, 7);
            let _ = check_import(&mut cache, &String::from_utf8_lossy(&data[1..]), T0);
        }
        _ => {
            if let Some(input) = arbitrary_from::<Structured>(data) {
                structured(&input);
            }
        }
    }
});
