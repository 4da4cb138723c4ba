//! Fuzzes the cache with timelines of host actions: polls at chosen times,
//! well-formed, mutated and garbage token responses with chosen status and
//! headers, transport errors, stale reports, invalidation, secret replacement,
//! snapshot export and re-import (mutated, into the same or a fresh cache) and
//! jumps to `next_wakeup`.
//!
//! After every step it checks what `core/tests/properties.rs` checks, on any
//! input: no panic; a token is never served at or after its `usable_until`,
//! except under outage grace (a transient failure in progress, grace enabled),
//! and then never at or after `expires_at` less the grace safety; at
//! most one fetch is in flight and the engine never has one the host was not
//! told about; nothing is sent before the `retry_at` of the last backoff; every
//! request authenticates with a currently configured secret; no secret the
//! cache was ever given (raw, form-encoded, `Debug`-escaped or with control
//! characters removed) appears in an error's `Display`/`Debug`/JSON or an
//! event's `Debug`/JSON; every token handed out is visible ASCII; no token
//! lives longer than `max_lifetime_ms`.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use tokenwell::{
    CacheState, ClientSecret, Config, ErrorKind, EventKind, FetchId, Poll, SnapshotError, Token, TokenCache,
    TokenError, TokenRequest, TransportErrorKind,
};
use tokenwell_fuzz::{
    assert_header_safe_token, assert_no_secret, assert_no_secret_in_json, form_encode, jwt, ExpiresIn, JwtExp,
    SecretChoice, ServerText, TokenText, SECRET_POOL, T0,
};

/// The clock never goes below this, so the model's arithmetic stays clear of zero.
const MIN_NOW: u64 = 1_000_000_000_000;
/// The engine's grace after a request's timeout before it abandons the fetch.
const FETCH_GRACE_MS: u64 = 1_000;

#[derive(Debug, Arbitrary)]
struct Timeline {
    setup: Setup,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
struct Setup {
    first_secret: u8,
    more_secrets: Vec<u8>,
    client: u8,
    post: bool,
    entropy: u64,
    policy: PolicyChoice,
    scope: bool,
}

#[derive(Debug, Arbitrary)]
struct PolicyChoice {
    margin: u8,
    lifetimes: u8,
    timeout: u8,
    backoff: u8,
    jitter: bool,
    refresh_ahead: u8,
    max_retry_after: u8,
    hold: u8,
    invalidate_interval: u8,
    grace: u8,
}

const CLIENT_IDS: [&str; 3] = ["fuzz-client", "client:with+weird é/chars", "c"];

fn pick<T: Copy>(options: &[T], i: u8) -> T {
    options[usize::from(i) % options.len()]
}

impl Setup {
    fn secrets(&self) -> Vec<&'static str> {
        let mut out = vec![SECRET_POOL[usize::from(self.first_secret) % SECRET_POOL.len()]];
        for &i in self.more_secrets.iter().take(2) {
            out.push(SECRET_POOL[usize::from(i) % SECRET_POOL.len()]);
        }
        out
    }

    fn config(&self, client_id: &str, secrets: &[&str]) -> Config {
        let p = &self.policy;
        let (min, default, max) = pick(
            &[
                (1_000u64, 300_000u64, 86_400_000u64),
                (1, 1, 1),
                (1, 10, 5_000),
                (60_000, 60_000, 60_000),
                (1_000, 3_600_000, 365 * 86_400_000),
            ],
            p.lifetimes,
        );
        let (initial, backoff_max, backoff_min) =
            pick(&[(1_000u64, 60_000u64, 100u64), (1, 1, 0), (5_000, 86_400_000, 5_000)], p.backoff);
        let (ahead, ahead_jitter) =
            pick(&[(0.75, 0.05), (0.5, 0.0), (0.01, 0.0), (0.99, 0.0), (0.5, 0.49)], p.refresh_ahead);
        let mut json = serde_json::json!({
            "token_url": "https://auth.example/oauth2/token",
            "client_id": client_id,
            "client_secret": secrets,
            "auth_method": if self.post { "client_secret_post" } else { "client_secret_basic" },
            "scope": if self.scope { "billing:read billing:write" } else { "" },
            "refresh_margin_ms": pick(&[0u64, 1_000, 30_000, 600_000], p.margin),
            "min_lifetime_ms": min,
            "default_lifetime_ms": default,
            "max_lifetime_ms": max,
            "request_timeout_ms": pick(&[1u64, 10_000, 3_600_000], p.timeout),
            "backoff_initial_ms": initial,
            "backoff_max_ms": backoff_max,
            "backoff_min_ms": backoff_min,
            "backoff_jitter": p.jitter,
            "refresh_ahead": ahead,
            "refresh_ahead_jitter": ahead_jitter,
            "max_retry_after_ms": pick(&[0u64, 3_600_000, 86_400_000], p.max_retry_after),
            "config_error_hold_ms": pick(&[1u64, 300_000, 86_400_000], p.hold),
            "invalidate_min_interval_ms": pick(&[0u64, 10_000, 86_400_000], p.invalidate_interval),
        });
        // Outage grace: the default (on), off, or on with no or a long safety.
        match p.grace % 4 {
            0 => {}
            1 => json["outage_grace"] = false.into(),
            n => {
                json["outage_grace"] = true.into();
                json["outage_grace_safety_ms"] = (if n == 2 { 0u64 } else { 600_000 }).into();
            }
        }
        Config::from_json(&json.to_string()).expect("the harness builds only valid configurations")
    }
}

#[derive(Debug, Arbitrary)]
struct Step {
    dt: Dt,
    action: Action,
}

/// How the clock moves before the action.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Dt {
    Zero,
    Millis(u8),
    Seconds(u16),
    Minutes(u16),
    ToWakeup,
    JustBeforeWakeup,
    Backwards(u32),
    /// Near the end of `u64` time: saturating arithmetic everywhere.
    Far(u16),
}

#[derive(Debug, Arbitrary)]
enum Action {
    Poll,
    Respond(Box<Response>),
    Transport { kind: u8, message: ServerText },
    Stale { offset: u8, transport: bool },
    Invalidate(Which),
    ReplaceSecrets(Vec<SecretChoice>),
    Snapshot { mutation: SnapshotMutation, fresh: Option<Fresh> },
    NextWakeup,
}

#[derive(Debug, Arbitrary)]
enum Which {
    Current,
    LastServed,
    Other(TokenText),
}

#[derive(Debug, Arbitrary)]
struct Fresh {
    entropy: u64,
    secrets: Vec<u8>,
    other_client: bool,
}

#[derive(Debug, Arbitrary)]
struct Response {
    status: Status,
    headers: Vec<Header>,
    body: Body,
}

#[derive(Debug, Arbitrary)]
enum Status {
    Ok,
    Listed(u8),
    Any(u16),
}

const STATUSES: [u16; 25] = [
    200, 200, 201, 204, 206, 299, 301, 302, 307, 400, 401, 403, 404, 405, 408, 418, 429, 500, 502, 503, 504, 599, 0,
    100, 999,
];

impl Status {
    fn code(&self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::Listed(i) => pick(&STATUSES, *i),
            Status::Any(s) => *s,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Header {
    RetryAfterSeconds(u32),
    RetryAfterDate(i32),
    RetryAfterHuge,
    RetryAfterNegative(u16),
    RetryAfterText(ServerText),
    RetryAfterCase(u8, u16),
    ContentType(ServerText),
    Other(String, String),
}

impl Header {
    fn pair(&self, now: u64, client_id: &str) -> (String, String) {
        let retry = |v: String| ("Retry-After".to_owned(), v);
        match self {
            Header::RetryAfterSeconds(s) => retry(s.to_string()),
            Header::RetryAfterDate(delta) => {
                let secs = (now / 1000) as i64 + i64::from(*delta);
                // httpdate formats years 1970..=9999 only.
                if (0..253_402_300_800).contains(&secs) {
                    retry(httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs as u64)))
                } else {
                    retry("Fri, 31 Dec 9999 23:59:59 GMT".to_owned())
                }
            }
            Header::RetryAfterHuge => retry("99999999999999999999999".to_owned()),
            Header::RetryAfterNegative(s) => retry(format!("-{s}")),
            Header::RetryAfterText(t) => retry(t.text(client_id)),
            Header::RetryAfterCase(case, s) => {
                (pick(&["retry-after", "RETRY-AFTER", " Retry-After", "Retry-After "], *case).to_owned(), s.to_string())
            }
            Header::ContentType(t) => ("Content-Type".to_owned(), t.text(client_id)),
            Header::Other(n, v) => (n.clone(), v.clone()),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Body {
    Token(TokenBody),
    Error(ErrorBody),
    Mutated { base: TokenBody, edits: Vec<Edit> },
    Garbage(Vec<u8>),
    Html,
    Empty,
    NotAnObject(u8),
    Oversized(u8),
}

#[derive(Debug, Arbitrary)]
struct TokenBody {
    token: TokenShape,
    token_type: TokenType,
    expires_in: ExpiresIn,
    scope: Option<ScopeShape>,
    error: Option<ServerText>,
    extra: Option<(String, String)>,
}

#[derive(Debug, Arbitrary)]
enum TokenShape {
    Text(TokenText),
    Jwt { exp: JwtExp, tail: TokenText },
    NotString(u8),
    Empty,
    Missing,
}

#[derive(Debug, Arbitrary)]
enum TokenType {
    Bearer,
    Absent,
    Lower,
    Upper,
    Null,
    Mac,
    Empty,
    Number,
    Echo(ServerText),
}

#[derive(Debug, Arbitrary)]
enum ScopeShape {
    Granted(u8),
    Text(ServerText),
    List,
    Number,
}

#[derive(Debug, Arbitrary)]
struct ErrorBody {
    code: ErrorCode,
    description: Option<ServerText>,
    uri: Option<ServerText>,
    with_token: bool,
}

#[derive(Debug, Arbitrary)]
enum ErrorCode {
    Known(u8),
    Text(ServerText),
    NotString,
}

const ERROR_CODES: [&str; 11] = [
    "invalid_client",
    "invalid_scope",
    "invalid_target",
    "invalid_request",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_grant",
    "slow_down",
    "server_error",
    "temporarily_unavailable",
    "access_denied",
];

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Edit {
    Truncate(u16),
    Flip(u16, u8),
    Insert(u16, u8),
    Remove(u16),
}

fn apply_edits(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for edit in edits.iter().take(8) {
        let at = |i: u16, len: usize| if len == 0 { 0 } else { usize::from(i) % (len + 1) };
        match *edit {
            Edit::Truncate(i) => {
                let n = at(i, bytes.len());
                bytes.truncate(n);
            }
            Edit::Flip(i, x) => {
                if !bytes.is_empty() {
                    let n = usize::from(i) % bytes.len();
                    bytes[n] ^= x;
                }
            }
            Edit::Insert(i, x) => {
                let n = at(i, bytes.len());
                bytes.insert(n, x);
            }
            Edit::Remove(i) => {
                if !bytes.is_empty() {
                    let n = usize::from(i) % bytes.len();
                    bytes.remove(n);
                }
            }
        }
    }
}

impl TokenBody {
    fn json(&self, now: u64, client_id: &str) -> serde_json::Value {
        use serde_json::json;
        let mut map = serde_json::Map::new();
        match &self.token {
            TokenShape::Text(t) => {
                let text = t.text();
                map.insert("access_token".into(), json!(if text.is_empty() { "at".to_owned() } else { text }));
            }
            TokenShape::Jwt { exp, tail } => {
                map.insert("access_token".into(), json!(jwt(*exp, now, &tail.text())));
            }
            TokenShape::NotString(n) => {
                let value = [json!(1), json!(null), json!(["a"]), json!({})][usize::from(*n) % 4].clone();
                map.insert("access_token".into(), value);
            }
            TokenShape::Empty => {
                map.insert("access_token".into(), json!(""));
            }
            TokenShape::Missing => {}
        }
        let token_type = match &self.token_type {
            TokenType::Bearer => Some(json!("Bearer")),
            TokenType::Absent => None,
            TokenType::Lower => Some(json!("bearer")),
            TokenType::Upper => Some(json!("BEARER")),
            TokenType::Null => Some(serde_json::Value::Null),
            TokenType::Mac => Some(json!("mac")),
            TokenType::Empty => Some(json!("")),
            TokenType::Number => Some(json!(7)),
            TokenType::Echo(t) => Some(json!(t.text(client_id))),
        };
        if let Some(t) = token_type {
            map.insert("token_type".into(), t);
        }
        if let Some(e) = self.expires_in.json() {
            map.insert("expires_in".into(), e);
        }
        if let Some(scope) = &self.scope {
            let v = match scope {
                ScopeShape::Granted(i) => {
                    json!(pick(&["billing:read", "billing:read billing:write", "", "  a\tb  "], *i))
                }
                ScopeShape::Text(t) => json!(t.text(client_id)),
                ScopeShape::List => json!(["a", "b"]),
                ScopeShape::Number => json!(3),
            };
            map.insert("scope".into(), v);
        }
        if let Some(e) = &self.error {
            map.insert("error".into(), json!(e.text(client_id)));
        }
        if let Some((k, v)) = &self.extra {
            map.insert(k.clone(), json!(v));
        }
        serde_json::Value::Object(map)
    }
}

impl Body {
    fn bytes(&self, now: u64, client_id: &str) -> Vec<u8> {
        use serde_json::json;
        match self {
            Body::Token(t) => t.json(now, client_id).to_string().into_bytes(),
            Body::Error(e) => {
                let mut map = serde_json::Map::new();
                let code = match &e.code {
                    ErrorCode::Known(i) => json!(pick(&ERROR_CODES, *i)),
                    ErrorCode::Text(t) => json!(t.text(client_id)),
                    ErrorCode::NotString => json!(42),
                };
                map.insert("error".into(), code);
                if let Some(d) = &e.description {
                    map.insert("error_description".into(), json!(d.text(client_id)));
                }
                if let Some(u) = &e.uri {
                    map.insert("error_uri".into(), json!(u.text(client_id)));
                }
                if e.with_token {
                    map.insert("access_token".into(), json!("at-with-error"));
                }
                serde_json::Value::Object(map).to_string().into_bytes()
            }
            Body::Mutated { base, edits } => {
                let mut bytes = base.json(now, client_id).to_string().into_bytes();
                apply_edits(&mut bytes, edits);
                bytes
            }
            Body::Garbage(bytes) => bytes.clone(),
            Body::Html => b"<!DOCTYPE html><html><body>Bad Gateway</body></html>".to_vec(),
            Body::Empty => Vec::new(),
            Body::NotAnObject(i) => {
                pick(&["[]", "\"token\"", "1", "null", "true", "[{\"access_token\":\"a\"}]"], *i).into()
            }
            Body::Oversized(c) => {
                let mut body = br#"{"access_token":"at-big","expires_in":60,"pad":""#.to_vec();
                body.extend(std::iter::repeat_n(b'a' + c % 26, 70_000));
                body.extend_from_slice(b"\"}");
                body
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
enum SnapshotMutation {
    None,
    Field(SnapshotField),
    Bytes(Vec<Edit>),
    Replace(String),
}

#[derive(Debug, Arbitrary)]
enum SnapshotField {
    Version(u64),
    VersionString,
    Fingerprint(String),
    AccessToken(TokenText),
    TokenType(u8),
    Scope(Vec<String>),
    ReceivedAt(i64),
    ReceivedAtAbsolute(u64),
    ExpiresAt(i64),
    ExpiresAtAbsolute(u64),
    Lifetime(u64),
    Remove(u8),
    Extra(String),
    WrongType(u8),
}

const SNAPSHOT_FIELDS: [&str; 7] =
    ["version", "fingerprint", "access_token", "token_type", "scope", "received_at", "expires_at"];

impl SnapshotMutation {
    fn apply(&self, base: &str, now: u64) -> String {
        use serde_json::json;
        let mut value: serde_json::Value = serde_json::from_str(base).expect("exported snapshots are JSON");
        let obj = value.as_object_mut().expect("exported snapshots are objects");
        let received = obj.get("received_at").and_then(serde_json::Value::as_u64).unwrap_or(now);
        let field = match self {
            SnapshotMutation::None => return base.to_owned(),
            SnapshotMutation::Bytes(edits) => {
                let mut bytes = base.as_bytes().to_vec();
                apply_edits(&mut bytes, edits);
                return String::from_utf8_lossy(&bytes).into_owned();
            }
            SnapshotMutation::Replace(text) => return text.clone(),
            SnapshotMutation::Field(field) => field,
        };
        let offset = |t: u64, d: i64| json!(t.saturating_add_signed(d));
        match field {
            SnapshotField::Version(v) => obj.insert("version".into(), json!(v)),
            SnapshotField::VersionString => obj.insert("version".into(), json!("1")),
            SnapshotField::Fingerprint(f) => obj.insert("fingerprint".into(), json!(f)),
            SnapshotField::AccessToken(t) => obj.insert("access_token".into(), json!(t.text())),
            SnapshotField::TokenType(i) => {
                obj.insert("token_type".into(), json!(pick(&["bearer", "BEARER", "mac", "", "Bearer "], *i)))
            }
            SnapshotField::Scope(s) => obj.insert("scope".into(), json!(s)),
            SnapshotField::ReceivedAt(d) => obj.insert("received_at".into(), offset(now, *d)),
            SnapshotField::ReceivedAtAbsolute(t) => obj.insert("received_at".into(), json!(t)),
            SnapshotField::ExpiresAt(d) => obj.insert("expires_at".into(), offset(received, *d)),
            SnapshotField::ExpiresAtAbsolute(t) => obj.insert("expires_at".into(), json!(t)),
            SnapshotField::Lifetime(ms) => obj.insert("expires_at".into(), json!(received.saturating_add(*ms))),
            SnapshotField::Remove(i) => obj.remove(pick(&SNAPSHOT_FIELDS, *i)),
            SnapshotField::Extra(k) => obj.insert(k.clone(), json!(1)),
            SnapshotField::WrongType(i) => obj.insert(pick(&SNAPSHOT_FIELDS, *i).into(), json!([1.5])),
        };
        value.to_string()
    }
}

/// What the harness knows, to check the engine against.
struct Model {
    /// The fetch in flight and the instant the engine may abandon it.
    outstanding: Option<(FetchId, u64)>,
    /// Nothing may be sent before this (the last scheduled backoff or hold).
    not_before: Option<u64>,
    /// The engine's last observed time, mirrored to follow its clock shifts.
    last_now: Option<u64>,
    /// The clock went backwards on this cache at least once.
    shifted: bool,
    /// The last refresh failed for a transient reason and nothing has ended
    /// the streak since (a token, a hold, an invalidation): outage grace may
    /// serve the cached token past `usable_until`.
    outage: bool,
    /// The configured secrets, current first.
    current: Vec<&'static str>,
    /// Every secret this cache was ever given.
    known: Vec<&'static str>,
    /// The last token handed out.
    last_served: Option<String>,
    /// The highest fetch id seen.
    last_fetch: u64,
    client_id: &'static str,
}

impl Model {
    fn new(client_id: &'static str, secrets: &[&'static str]) -> Self {
        Self {
            outstanding: None,
            not_before: None,
            last_now: None,
            shifted: false,
            outage: false,
            current: secrets.to_vec(),
            known: secrets.to_vec(),
            last_served: None,
            last_fetch: 0,
            client_id,
        }
    }

    /// Mirrors the engine's reaction to a clock that went backwards: every
    /// stored instant moves back with it.
    fn observe(&mut self, now: u64) {
        if let Some(last) = self.last_now {
            if now < last {
                let by = last - now;
                if let Some((_, deadline)) = &mut self.outstanding {
                    *deadline = deadline.saturating_sub(by);
                }
                if let Some(at) = &mut self.not_before {
                    *at = at.saturating_sub(by);
                }
                self.shifted = true;
            }
        }
        self.last_now = Some(now);
    }
}

struct Harness {
    cache: TokenCache,
    model: Model,
    now: u64,
}

impl Harness {
    fn check_error(&self, what: &str, error: &TokenError) {
        let known = &self.model.known;
        assert_no_secret(what, &error.to_string(), known);
        assert_no_secret(what, &format!("{error:?}"), known);
        assert_no_secret_in_json(what, &serde_json::to_string(error).expect("errors serialize"), known);
    }

    fn check_token(&self, what: &str, token: &Token) {
        assert_header_safe_token(what, token.access_token.expose());
        assert!(token.usable_until <= token.expires_at, "{what}: usable_until after expires_at: {token:?}");
        assert!(token.received_at <= token.usable_until, "{what}: usable before received: {token:?}");
        let max = self.cache.config().policy().max_lifetime_ms;
        assert!(
            token.expires_at - token.received_at <= max,
            "{what}: token lives {} ms, longer than max_lifetime_ms {max}: {token:?}",
            token.expires_at - token.received_at
        );
        // The scope is checked where it comes from a server (`after_report`):
        // an imported snapshot's scope is the host's own data.
        let without_scope = Token { scope: Vec::new(), ..token.clone() };
        assert_no_secret(what, &format!("{without_scope:?}"), &self.model.known);
    }

    /// Where outage grace stops serving `token`: `expires_at` less the safety,
    /// never more than the margin.
    fn grace_end(&self, token: &Token) -> u64 {
        let safety = self.cache.config().policy().outage_grace_safety_ms;
        token.expires_at - safety.min(token.expires_at - token.usable_until)
    }

    /// `outage_now`: a transient failure is in progress, known from earlier
    /// events or begun in this very call (a fetch abandoned at its deadline).
    fn check_served(&mut self, token: &Token, outage_now: bool) {
        self.check_token("served token", token);
        let now = self.now;
        let grace = self.cache.config().policy().outage_grace && outage_now;
        if now >= token.usable_until {
            assert!(
                grace,
                "served at {now}, but usable only until {} and no outage grace: {token:?}",
                token.usable_until
            );
            let end = self.grace_end(token);
            assert!(now < end, "served at {now} under outage grace, which ends at {end}: {token:?}");
        } else if !self.model.shifted && token.expires_at < u64::MAX / 2 {
            let margin = self.cache.config().policy().refresh_margin_ms.min((token.expires_at - token.received_at) / 2);
            assert!(now < token.expires_at - margin, "served at {now} inside the refresh margin: {token:?}");
        }
        self.model.last_served = Some(token.access_token.expose().to_owned());
    }

    /// The secret a request authenticates with, form-encoded.
    fn credential(&self, request: &TokenRequest) -> String {
        if let Some(basic) = request.http.header("authorization") {
            let encoded = basic.strip_prefix("Basic ").expect("Basic authorization");
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).expect("valid base64");
            let decoded = String::from_utf8(decoded).expect("form-encoded credentials are ASCII");
            let prefix = format!("{}:", form_encode(self.model.client_id));
            decoded.strip_prefix(&prefix).expect("the client id comes first").to_owned()
        } else {
            request
                .http
                .body
                .split('&')
                .find_map(|pair| pair.strip_prefix("client_secret="))
                .expect("a post-auth body carries client_secret")
                .to_owned()
        }
    }

    fn check_send(&mut self, request: &TokenRequest) {
        let now = self.now;
        if let Some((id, deadline)) = self.model.outstanding {
            assert!(
                now >= deadline,
                "fetch {} sent at {now} while {id} is in flight until {deadline}",
                request.fetch_id
            );
        }
        if let Some(not_before) = self.model.not_before {
            assert!(now >= not_before, "fetch {} sent at {now}, before retry_at {not_before}", request.fetch_id);
        }
        assert!(request.fetch_id.0 > self.model.last_fetch, "fetch ids must increase");
        self.model.last_fetch = request.fetch_id.0;
        let credential = self.credential(request);
        assert!(
            self.model.current.iter().any(|s| form_encode(s) == credential),
            "request {} authenticates with a secret that is not configured now",
            request.fetch_id
        );
        assert_no_secret("request Debug", &format!("{request:?}"), &self.model.known);
        let deadline = now.saturating_add(request.timeout_ms).saturating_add(FETCH_GRACE_MS);
        self.model.outstanding = Some((request.fetch_id, deadline));
        self.model.not_before = None;
    }

    fn poll(&mut self) {
        self.model.observe(self.now);
        // A fetch past its deadline is abandoned by this poll, as a timeout:
        // that starts an outage before the token is looked at.
        let abandons = self.model.outstanding.is_some_and(|(_, deadline)| self.now >= deadline);
        let outage_now = self.model.outage || abandons;
        match self.cache.poll(self.now) {
            Poll::Ready { token } => self.check_served(&token, outage_now),
            Poll::ReadyAndSend { token, request } => {
                self.check_served(&token, outage_now);
                self.check_send(&request);
            }
            Poll::Send { request } => self.check_send(&request),
            Poll::Wait { fetch_id } => {
                assert_eq!(self.model.outstanding.map(|o| o.0), Some(fetch_id), "waiting on an unknown fetch");
            }
            Poll::Fail { error } => {
                self.check_error("Poll::Fail", &error);
                assert!(error.retry_at.is_some_and(|at| at > self.now), "fail without a future retry_at: {error:?}");
            }
        }
    }

    /// The reported fetch: the one in flight, or a stale id.
    fn report_target(&self, stale_offset: Option<u8>) -> FetchId {
        match (stale_offset, self.model.outstanding) {
            (None, Some((id, _))) => id,
            (offset, _) => {
                let in_flight = self.cache.in_flight();
                let mut id = FetchId(self.model.last_fetch.wrapping_sub(u64::from(offset.unwrap_or(0))));
                if Some(id) == in_flight {
                    id = FetchId(u64::MAX);
                }
                id
            }
        }
    }

    fn after_report(&mut self, id: FetchId, result: Result<Token, TokenError>, state_before: CacheState) {
        let was_in_flight = self.model.outstanding.is_some_and(|o| o.0 == id);
        match result {
            Ok(token) => {
                assert!(was_in_flight, "a token was accepted for fetch {id}, which was not in flight");
                self.check_token("handle_response", &token);
                assert_no_secret("granted scope", &format!("{:?}", token.scope), &self.model.known);
                assert_eq!(token.received_at, self.now);
                // At the end of u64 time every instant saturates to `now`; elsewhere a
                // fresh token is usable now and refreshes before it becomes unusable.
                let max = self.cache.config().policy().max_lifetime_ms;
                if self.now.checked_add(max).is_some() {
                    assert!(token.usable_until > self.now && token.refresh_at < token.usable_until, "{token:?}");
                }
                assert_eq!(self.cache.state(), CacheState::Idle);
                self.model.outstanding = None;
            }
            Err(error) => {
                self.check_error("handle_* error", &error);
                if was_in_flight {
                    assert_ne!(error.kind, ErrorKind::StaleFetch);
                    self.model.outstanding = None;
                } else {
                    assert_eq!(error.kind, ErrorKind::StaleFetch, "a report of fetch {id}, not in flight: {error:?}");
                    assert_eq!(self.cache.state(), state_before, "a stale report changed the state");
                }
            }
        }
    }

    fn respond(&mut self, response: &Response) {
        let id = self.report_target(None);
        let status = response.status.code();
        let headers: Vec<(String, String)> =
            response.headers.iter().take(4).map(|h| h.pair(self.now, self.model.client_id)).collect();
        let body = response.body.bytes(self.now, self.model.client_id);
        let state_before = self.cache.state();
        self.model.observe(self.now);
        let result = self.cache.handle_response(id, status, &headers, &body, self.now);
        self.after_report(id, result, state_before);
    }

    fn transport(&mut self, kind: u8, message: &ServerText, stale: Option<u8>) {
        let id = self.report_target(stale);
        let kind = pick(
            &[
                TransportErrorKind::Timeout,
                TransportErrorKind::Connect,
                TransportErrorKind::Io,
                TransportErrorKind::Tls,
                TransportErrorKind::Other,
            ],
            kind,
        );
        let message = message.text(self.model.client_id);
        let state_before = self.cache.state();
        self.model.observe(self.now);
        let error = self.cache.handle_transport_error(id, kind, &message, self.now);
        self.after_report(id, Err(error), state_before);
    }

    fn stale(&mut self, offset: u8, transport: bool) {
        if transport {
            self.transport(offset, &ServerText::Free("stale".into()), Some(offset));
        } else {
            let id = self.report_target(Some(offset));
            let state_before = self.cache.state();
            self.model.observe(self.now);
            let body = br#"{"access_token":"at-stale","expires_in":60}"#;
            let result = self.cache.handle_response(id, 200, &[], body, self.now);
            self.after_report(id, result, state_before);
        }
    }

    fn invalidate(&mut self, which: &Which) {
        let token = match which {
            Which::Current => self.cache.current_token().map(|t| t.access_token.expose().to_owned()),
            Which::LastServed => self.model.last_served.clone(),
            Which::Other(t) => Some(t.text()),
        };
        let Some(token) = token else { return };
        self.model.observe(self.now);
        let was_current = self.cache.current_token().is_some_and(|t| t.access_token.expose() == token);
        let outcome = self.cache.invalidate(&token, self.now);
        if !was_current {
            assert_eq!(outcome, tokenwell::InvalidateOutcome::NotCurrent);
        }
        if outcome == tokenwell::InvalidateOutcome::Invalidated {
            assert!(self.cache.current_token().is_none(), "an invalidated token is still cached");
        }
    }

    fn replace_secrets(&mut self, choices: &[SecretChoice]) {
        let secrets: Vec<&'static str> = choices.iter().take(3).map(|c| c.text()).collect();
        let was_held = self.cache.state() == CacheState::Held;
        self.model.observe(self.now);
        match self.cache.replace_secrets(secrets.iter().map(|s| ClientSecret::new(*s)).collect(), self.now) {
            Ok(changed) => {
                assert_eq!(changed, secrets != self.model.current, "replace_secrets misreports a change");
                for s in &secrets {
                    if !self.model.known.contains(s) {
                        self.model.known.push(s);
                    }
                }
                if changed && was_held {
                    self.model.not_before = None;
                }
                self.model.current = secrets;
                assert_eq!(self.cache.config().secret_count(), self.model.current.len());
            }
            Err(error) => {
                let valid = !secrets.is_empty() && secrets.iter().all(|s| SECRET_POOL.contains(s));
                assert!(!valid, "valid secrets refused: {error}");
                let mut given = self.model.known.clone();
                given.extend(secrets.iter().filter(|s| !s.is_empty()));
                assert_no_secret("replace_secrets error", &error.to_string(), &given);
                assert_no_secret("replace_secrets error", &format!("{error:?}"), &given);
            }
        }
    }

    fn snapshot(&mut self, setup: &Setup, mutation: &SnapshotMutation, fresh: Option<&Fresh>) {
        let exported = self.cache.export_snapshot(self.now);
        if let Some(json) = &exported {
            let token = self.cache.current_token().expect("a snapshot was exported, so a token is cached");
            assert!(self.now < token.usable_until, "exported a token that is no longer usable");
            assert_no_secret_in_json("snapshot", json, &self.model.known);
        }
        let base = exported.clone().unwrap_or_else(|| {
            serde_json::json!({
                "version": 1,
                "fingerprint": self.cache.config().fingerprint(),
                "access_token": "at-snapshot",
                "token_type": "Bearer",
                "scope": ["billing:read"],
                "received_at": self.now,
                "expires_at": self.now.saturating_add(3_600_000),
            })
            .to_string()
        });
        let text = mutation.apply(&base, self.now);
        let exported_expiry = self.cache.current_token().map(|t| (t.access_token.expose().to_owned(), t.expires_at));
        // A token whose instants were shifted or saturated may legitimately load
        // differently, and so may one exported while the clock is behind the
        // engine's (export reads no clock, so the token looks received in the
        // future): only a plain round trip must give the same token back.
        let clock_behind = self.model.last_now.is_some_and(|last| self.now < last);
        let untouched = exported.is_some()
            && matches!(mutation, SnapshotMutation::None)
            && !self.model.shifted
            && !clock_behind
            && exported_expiry.as_ref().is_some_and(|(_, expires_at)| *expires_at < u64::MAX / 2);

        let exporter_fingerprint = self.cache.config().fingerprint();
        if let Some(fresh) = fresh {
            // "another-client" may be the one an earlier fresh cache already took:
            // the fingerprints say whether the snapshot must load.
            let client_id = if fresh.other_client { "another-client" } else { self.model.client_id };
            let mut secrets: Vec<&'static str> =
                fresh.secrets.iter().take(3).map(|&i| SECRET_POOL[usize::from(i) % SECRET_POOL.len()]).collect();
            if secrets.is_empty() {
                secrets = setup.secrets();
            }
            self.cache = TokenCache::new(setup.config(client_id, &secrets), fresh.entropy);
            self.model = Model::new(client_id, &secrets);
        }
        self.model.observe(self.now);
        let before = self.cache.current_token().map(|t| t.expires_at);
        let result = self.cache.import_snapshot(&text, self.now);
        match &result {
            Ok(()) => {
                if let Some(token) = self.cache.current_token().cloned() {
                    self.check_token("imported token", &token);
                    if before != Some(token.expires_at) {
                        assert!(token.received_at <= self.now, "imported a token received in the future: {token:?}");
                        assert!(self.now < token.usable_until, "imported a token no longer usable: {token:?}");
                    }
                }
            }
            Err(error) => {
                assert_no_secret("snapshot error", &error.to_string(), &self.model.known);
                assert_no_secret("snapshot error", &format!("{error:?}"), &self.model.known);
            }
        }
        if untouched {
            if self.cache.config().fingerprint() != exporter_fingerprint {
                assert_eq!(result, Err(SnapshotError::FingerprintMismatch), "a snapshot for another client loaded");
            } else {
                assert_eq!(result, Ok(()), "an exported snapshot was refused on re-import");
                let now_cached = self.cache.current_token().map(|t| (t.access_token.expose().to_owned(), t.expires_at));
                assert_eq!(now_cached, exported_expiry, "the re-imported token differs from the exported one");
            }
        }
    }

    fn next_wakeup(&mut self) {
        let wakeup = self.cache.next_wakeup();
        if let Some(token) = self.cache.current_token() {
            let w = wakeup.expect("a cached token, but no wakeup");
            let limit =
                if self.model.outage { self.grace_end(token).max(token.usable_until) } else { token.usable_until };
            assert!(w <= limit, "wakeup {w} after the token's last servable instant {limit}: {token:?}");
        }
        if let Some((_, deadline)) = self.model.outstanding {
            assert!(wakeup.is_some_and(|w| w <= deadline), "wakeup {wakeup:?} after the fetch deadline {deadline}");
        }
    }

    fn advance(&mut self, dt: Dt) {
        let wakeup = self.cache.next_wakeup();
        self.now = match dt {
            Dt::Zero => self.now,
            Dt::Millis(ms) => self.now.saturating_add(u64::from(ms)),
            Dt::Seconds(s) => self.now.saturating_add(u64::from(s) * 1_000),
            Dt::Minutes(m) => self.now.saturating_add(u64::from(m) * 60_000),
            Dt::ToWakeup => wakeup.map_or(self.now, |w| w.max(self.now)),
            Dt::JustBeforeWakeup => wakeup.map_or(self.now, |w| w.saturating_sub(1).max(self.now)),
            Dt::Backwards(ms) => self.now.saturating_sub(u64::from(ms)).max(MIN_NOW),
            Dt::Far(n) => u64::MAX - u64::from(n) * 1_000,
        };
    }

    /// Checks that hold after every step, and drains the events.
    fn after_step(&mut self) {
        let in_flight = self.cache.in_flight();
        match (in_flight, self.model.outstanding) {
            (Some(id), outstanding) => {
                assert_eq!(outstanding.map(|o| o.0), Some(id), "the engine has a fetch in flight the host never got")
            }
            (None, Some((id, deadline))) => {
                assert!(self.now >= deadline, "fetch {id} ended at {} before its deadline {deadline}", self.now);
                self.model.outstanding = None;
            }
            (None, None) => {}
        }
        if let Some(token) = self.cache.current_token().cloned() {
            self.check_token("current_token", &token);
        }
        while let Some(event) = self.cache.poll_event() {
            let known = &self.model.known;
            assert_no_secret("event Debug", &format!("{event:?}"), known);
            assert_no_secret_in_json("event JSON", &serde_json::to_string(&event).expect("events serialize"), known);
            assert_eq!(event.actor_type, "client");
            match event.kind {
                EventKind::RefreshFailed { .. } | EventKind::SecretFallback { .. } => self.model.not_before = None,
                EventKind::BackoffScheduled { retry_at, hold, .. } => {
                    self.model.not_before = Some(retry_at);
                    self.model.outage = !hold;
                }
                EventKind::TokenAcquired { .. } | EventKind::TokenInvalidated { .. } => self.model.outage = false,
                EventKind::SecretsReplaced { hold_lifted: true, .. } => self.model.not_before = None,
                _ => {}
            }
        }
    }
}

fuzz_target!(|timeline: Timeline| {
    let client_id = CLIENT_IDS[usize::from(timeline.setup.client) % CLIENT_IDS.len()];
    let secrets = timeline.setup.secrets();
    let cache = TokenCache::new(timeline.setup.config(client_id, &secrets), timeline.setup.entropy);
    let mut h = Harness { cache, model: Model::new(client_id, &secrets), now: T0 };
    for step in timeline.steps.iter().take(64) {
        h.advance(step.dt);
        match &step.action {
            Action::Poll => h.poll(),
            Action::Respond(response) => h.respond(response),
            Action::Transport { kind, message } => h.transport(*kind, message, None),
            Action::Stale { offset, transport } => h.stale(*offset, *transport),
            Action::Invalidate(which) => h.invalidate(which),
            Action::ReplaceSecrets(choices) => h.replace_secrets(choices),
            Action::Snapshot { mutation, fresh } => h.snapshot(&timeline.setup, mutation, fresh.as_ref()),
            Action::NextWakeup => h.next_wakeup(),
        }
        h.after_step();
    }
});
