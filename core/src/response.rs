//! Parsing the token endpoint's answer: a pure function of status, headers,
//! body and the time it arrived.

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{Config, RefreshPolicy};
use crate::error::{ErrorKind, TokenError};
use crate::scrub::{Credentials, WITHHELD};
use crate::secret::AccessToken;

/// Where a token's lifetime came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifetimeSource {
    /// The response's `expires_in` (a number or a numeric string).
    ExpiresIn,
    /// The `exp` claim of the access token, which is a JWT.
    JwtExp,
    /// Neither was available: the configured default lifetime.
    Default,
}

/// A successful token response, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    /// The access token.
    pub access_token: AccessToken,
    /// Always `"Bearer"` (the only accepted type), normalised.
    pub token_type: String,
    /// The lifetime in ms after clamping.
    pub lifetime_ms: u64,
    /// Where the lifetime came from.
    pub lifetime_source: LifetimeSource,
    /// Whether the lifetime was raised or lowered to the configured bounds.
    pub lifetime_clamped: bool,
    /// The granted scope, if the server sent one.
    pub scope: Option<Vec<String>>,
}

/// Parses a token endpoint response received at `now` (ms since the Unix epoch).
///
/// Success is a 2xx JSON object with a non-empty `access_token` of visible
/// ASCII only (it goes into an `Authorization` header) and a `token_type` of
/// `Bearer` (any case; a missing `token_type` is taken as Bearer). Anything
/// else is a [`TokenError`] classified by RFC 6749 §5.2 `error` code and HTTP
/// status. A `Retry-After` header (seconds or HTTP-date) sets `retry_at`.
///
/// This function does not know the client's secrets, so it cannot withhold
/// server text that echoes one: use [`parse_token_response_for`] (or the
/// [`TokenCache`](crate::TokenCache), which does) wherever the error may be shown.
pub fn parse_token_response(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    now: u64,
    policy: &RefreshPolicy,
) -> Result<ParsedToken, TokenError> {
    parse_guarded(status, headers, body, now, policy, &Credentials::new([]))
}

/// [`parse_token_response`] for `config`: server text that holds any spelling
/// of one of its secrets is withheld whole (see [`WITHHELD`](crate::WITHHELD)).
pub fn parse_token_response_for(
    config: &Config,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    now: u64,
) -> Result<ParsedToken, TokenError> {
    parse_guarded(status, headers, body, now, config.policy(), &Credentials::new(&config.secrets))
}

pub(crate) fn parse_guarded(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    now: u64,
    policy: &RefreshPolicy,
    credentials: &Credentials,
) -> Result<ParsedToken, TokenError> {
    let retry_at = retry_after(headers, now, policy.max_retry_after_ms);
    let mut result = parse_inner(status, headers, body, now, policy, credentials);
    if let Err(error) = &mut result {
        error.status = Some(status);
        if error.kind.is_retryable() {
            error.retry_at = retry_at;
        }
    }
    result
}

/// Server-supplied `text` as it may be shown: withheld whole if it holds a
/// credential (checked before anything is cut or stripped), else sanitized.
pub(crate) fn server_text(credentials: &Credentials, text: &str, max_chars: usize) -> String {
    if credentials.found_in(text) {
        WITHHELD.to_owned()
    } else {
        sanitize(text, max_chars)
    }
}

fn parse_inner(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    now: u64,
    policy: &RefreshPolicy,
    credentials: &Credentials,
) -> Result<ParsedToken, TokenError> {
    if body.len() > policy.max_response_bytes {
        return Err(TokenError::new(
            ErrorKind::MalformedResponse,
            format!("response body is larger than {} bytes", policy.max_response_bytes),
        ));
    }
    let json: Option<Map<String, Value>> = serde_json::from_slice::<Value>(body).ok().and_then(|v| match v {
        Value::Object(map) => Some(map),
        _ => None,
    });

    if let Some(map) = &json {
        if let Some(code) = map.get("error").and_then(Value::as_str) {
            if !(200..300).contains(&status) || !map.contains_key("access_token") {
                return Err(oauth_error(status, code, map, credentials));
            }
        }
    }

    if !(200..300).contains(&status) {
        let kind = match status {
            401 => ErrorKind::InvalidClient,
            429 => ErrorKind::RateLimited,
            408 | 500..=599 => ErrorKind::ServerError,
            404 | 405 => ErrorKind::EndpointNotFound,
            _ => ErrorKind::MalformedResponse,
        };
        let description = match status {
            300..=399 => format!("unexpected HTTP {status} (redirects are not followed; check token_url)"),
            404 | 405 => format!(
                "HTTP {status} {}: nothing takes token requests at this URL; check token_url (TOKEN_URL)",
                describe_body(headers, body, credentials)
            ),
            _ => format!("HTTP {status} {}", describe_body(headers, body, credentials)),
        };
        return Err(TokenError::new(kind, description));
    }

    let Some(map) = json else {
        return Err(TokenError::new(
            ErrorKind::MalformedResponse,
            format!("HTTP {status} {}", describe_body(headers, body, credentials)),
        ));
    };

    let access_token = match map.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => {
            // RFC 6750 b64token is stricter; visible ASCII is the floor that keeps
            // a header line intact (no CR/LF, NUL, spaces or non-ASCII).
            if !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                return Err(TokenError::new(
                    ErrorKind::MalformedResponse,
                    "access_token holds characters that cannot be sent in an Authorization header \
                     (only visible ASCII is allowed)",
                ));
            }
            token.clone()
        }
        Some(Value::String(_)) => {
            return Err(TokenError::new(ErrorKind::MalformedResponse, "access_token is empty"));
        }
        Some(_) => return Err(TokenError::new(ErrorKind::MalformedResponse, "access_token is not a string")),
        None => return Err(TokenError::new(ErrorKind::MalformedResponse, "response has no access_token")),
    };

    match map.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(Value::String(t)) => {
            return Err(TokenError::new(
                ErrorKind::MalformedResponse,
                format!("unsupported token_type \"{}\" (only Bearer is supported)", server_text(credentials, t, 40)),
            ));
        }
        Some(_) => return Err(TokenError::new(ErrorKind::MalformedResponse, "token_type is not a string")),
    }

    let scope = match map.get("scope") {
        // Granted scopes reach the token and the TokenAcquired event: server text like any other.
        Some(Value::String(s)) if credentials.found_in(s) => Some(vec![WITHHELD.to_owned()]),
        Some(Value::String(s)) => Some(s.split_whitespace().map(str::to_owned).collect()),
        _ => None,
    };

    let (raw_ms, lifetime_source) = match map.get("expires_in").and_then(expires_in_ms) {
        Some(ms) => (ms, LifetimeSource::ExpiresIn),
        None => match jwt_exp_ms(&access_token) {
            Some(exp_ms) => (exp_ms - now as f64, LifetimeSource::JwtExp),
            None => (policy.default_lifetime_ms as f64, LifetimeSource::Default),
        },
    };
    let (lifetime_ms, lifetime_clamped) = clamp_lifetime(raw_ms, policy);

    Ok(ParsedToken {
        access_token: AccessToken::new(access_token),
        token_type: "Bearer".to_owned(),
        lifetime_ms,
        lifetime_source,
        lifetime_clamped,
        scope,
    })
}

/// `expires_in` in ms: a JSON number or a numeric string; anything else is absent.
fn expires_in_ms(value: &Value) -> Option<f64> {
    let seconds = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    seconds.is_finite().then(|| (seconds * 1000.0).floor())
}

fn clamp_lifetime(raw_ms: f64, policy: &RefreshPolicy) -> (u64, bool) {
    let min = policy.min_lifetime_ms as f64;
    let max = policy.max_lifetime_ms as f64;
    if raw_ms < min {
        (policy.min_lifetime_ms, true)
    } else if raw_ms > max {
        (policy.max_lifetime_ms, true)
    } else {
        (raw_ms as u64, false)
    }
}

/// The `exp` claim of a JWT, in ms since the epoch, without verifying anything:
/// the client only needs to know when the token stops being accepted.
pub fn jwt_exp_ms(token: &str) -> Option<f64> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    exp.is_finite().then_some(exp * 1000.0)
}

/// The instant a `Retry-After` header points to (delay-seconds or HTTP-date),
/// capped at `now + max_ms`. Absent or unreadable: `None`.
pub fn retry_after(headers: &[(String, String)], now: u64, max_ms: u64) -> Option<u64> {
    let value = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))?.1.trim();
    let delay_ms = if let Ok(seconds) = value.parse::<u64>() {
        seconds.saturating_mul(1000)
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        let at_ms = when.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
        u64::try_from(at_ms).ok()?.saturating_sub(now)
    };
    Some(now.saturating_add(delay_ms.min(max_ms)))
}

fn oauth_error(status: u16, code: &str, map: &Map<String, Value>, credentials: &Credentials) -> TokenError {
    let raw_description = map.get("error_description").and_then(Value::as_str);
    let kind = if status == 429 {
        ErrorKind::RateLimited
    } else {
        match code {
            "invalid_client" => ErrorKind::InvalidClient,
            "invalid_scope" => ErrorKind::InvalidScope,
            "invalid_target" => ErrorKind::InvalidTarget,
            // Ory Hydra answers a forbidden audience with invalid_request.
            "invalid_request" if raw_description.is_some_and(|d| d.contains("audience")) => ErrorKind::InvalidTarget,
            "invalid_request" => ErrorKind::InvalidRequest,
            "unauthorized_client" => ErrorKind::UnauthorizedClient,
            "unsupported_grant_type" => ErrorKind::UnsupportedGrantType,
            "invalid_grant" => ErrorKind::InvalidGrant,
            "slow_down" => ErrorKind::RateLimited,
            "server_error" => ErrorKind::ServerError,
            "temporarily_unavailable" => ErrorKind::TemporarilyUnavailable,
            _ if (500..600).contains(&status) => ErrorKind::ServerError,
            _ => ErrorKind::Rejected,
        }
    };
    let mut error = TokenError::new(kind, "");
    error.description = raw_description.map(|d| server_text(credentials, d, 300));
    error.oauth_error = Some(server_text(credentials, code, 64));
    error
}

fn describe_body(headers: &[(String, String)], body: &[u8], credentials: &Credentials) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "with an empty body".to_owned();
    }
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| server_text(credentials, v, 60))
        .unwrap_or_default();
    let head = String::from_utf8_lossy(&body[..body.len().min(256)]).trim_start().to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") || content_type.contains("html") {
        "with an HTML body (not JSON; a proxy or load balancer page?)".to_owned()
    } else if serde_json::from_slice::<Value>(body).is_ok() {
        "with a JSON body that is not a token response object".to_owned()
    } else if content_type.is_empty() {
        "with a body that is not valid JSON".to_owned()
    } else {
        format!("with a {content_type} body that is not valid JSON")
    }
}

/// Makes server-provided text safe to show: no control characters, bounded length.
pub(crate) fn sanitize(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(max_chars).collect();
    if text.chars().filter(|c| !c.is_control()).count() > max_chars {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn parse(status: u16, body: &str) -> Result<ParsedToken, TokenError> {
        parse_token_response(status, &[], body.as_bytes(), NOW, &RefreshPolicy::default())
    }

    #[test]
    fn rfc6749_section_4_4_3_example() {
        let t = parse(
            200,
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,"example_parameter":"example_value"}"#,
        );
        assert_eq!(t.unwrap_err().kind, ErrorKind::MalformedResponse, "only Bearer is supported");
        let t =
            parse(200, r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"bearer","expires_in":3600}"#).unwrap();
        assert_eq!(t.lifetime_ms, 3_600_000);
        assert_eq!(t.lifetime_source, LifetimeSource::ExpiresIn);
        assert_eq!(t.token_type, "Bearer");
    }

    #[test]
    fn expires_in_forms() {
        let l = |v: &str| parse(200, &format!(r#"{{"access_token":"a","expires_in":{v}}}"#)).unwrap();
        assert_eq!(l("\"3600\"").lifetime_ms, 3_600_000);
        assert_eq!(l("1.5").lifetime_ms, 1_500);
        let zero = l("0");
        assert_eq!((zero.lifetime_ms, zero.lifetime_clamped), (1_000, true));
        assert_eq!(l("-5").lifetime_ms, 1_000);
        let huge = l("1000000000000");
        assert_eq!((huge.lifetime_ms, huge.lifetime_clamped), (86_400_000, true));
        assert_eq!(l("\"soon\"").lifetime_source, LifetimeSource::Default);
        assert_eq!(l("null").lifetime_ms, 300_000);
    }

    #[test]
    fn jwt_exp_fallback() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1700000600,"sub":"c"}"#);
        let token = format!("eyJhbGciOiJub25lIn0.{payload}.sig");
        let t = parse(200, &format!(r#"{{"access_token":"{token}","token_type":"Bearer"}}"#)).unwrap();
        assert_eq!(t.lifetime_source, LifetimeSource::JwtExp);
        assert_eq!(t.lifetime_ms, 600_000);
    }

    #[test]
    fn error_bodies_are_classified() {
        let e = parse(400, r#"{"error":"invalid_scope","error_description":"The requested scope is invalid"}"#)
            .unwrap_err();
        assert_eq!(
            (e.kind, e.status, e.oauth_error.as_deref()),
            (ErrorKind::InvalidScope, Some(400), Some("invalid_scope"))
        );
        assert!(!e.retryable);
        let e = parse(401, r#"{"error":"invalid_client"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidClient);
        let e = parse(401, "").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidClient);
        let e = parse(200, r#"{"error":"temporarily_unavailable"}"#).unwrap_err();
        assert_eq!((e.kind, e.status), (ErrorKind::TemporarilyUnavailable, Some(200)));
        assert!(e.retryable);
        let e = parse(502, "<html><body>Bad Gateway</body></html>").unwrap_err();
        assert_eq!(e.kind, ErrorKind::ServerError);
        assert!(e.description.unwrap().contains("HTML"));
        let e = parse(200, "<!DOCTYPE html><html>login</html>").unwrap_err();
        assert_eq!(e.kind, ErrorKind::MalformedResponse);
        let e = parse(200, "").unwrap_err();
        assert!(e.description.unwrap().contains("empty"));
        let e = parse(200, "{not json").unwrap_err();
        assert_eq!(e.kind, ErrorKind::MalformedResponse);
        let e = parse(200, r#"{"token_type":"Bearer"}"#).unwrap_err();
        assert!(e.description.unwrap().contains("no access_token"));
        let e = parse(400, r#"{"error":"invalid_request","error_description":"Requested audience 'x' has not been whitelisted by the OAuth 2.0 Client."}"#).unwrap_err();
        assert_eq!((e.kind, e.oauth_error.as_deref()), (ErrorKind::InvalidTarget, Some("invalid_request")));
        let e = parse(404, "Not Found").unwrap_err();
        assert_eq!((e.kind, e.retryable), (ErrorKind::EndpointNotFound, false));
        assert!(e.description.unwrap().contains("check token_url"));
        let e = parse(405, "").unwrap_err();
        assert_eq!(e.kind, ErrorKind::EndpointNotFound);
        // An OAuth error body on a 404 is the server speaking OAuth: its code wins.
        let e = parse(404, r#"{"error":"invalid_client"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidClient);
    }

    #[test]
    fn header_unsafe_access_tokens_are_refused() {
        for token in [r"at\r\nX-Injected: 1", r"at\u0000x", "a b", r"at\tx", "jeton-é", r"at\u007f"] {
            let e = parse(200, &format!(r#"{{"access_token":"{token}","token_type":"Bearer"}}"#)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::MalformedResponse, "{token}");
            assert!(e.retryable);
            assert!(e.description.as_deref().unwrap().contains("Authorization header"));
        }
        let visible: String = (0x21u8..=0x7e).filter(|b| *b != b'"' && *b != b'\\').map(char::from).collect();
        let t = parse(200, &format!(r#"{{"access_token":"{visible}"}}"#)).unwrap();
        assert_eq!(t.access_token.expose(), visible);
    }

    /// Found by the engine_timeline fuzz target: a granted scope echoing the
    /// secret reached the token and the TokenAcquired event.
    #[test]
    fn a_granted_scope_holding_a_secret_is_withheld() {
        let config = Config::from_json(
            r#"{"token_url":"https://a.example/t","client_id":"id","client_secret":"SECRET-rotated+3"}"#,
        )
        .unwrap();
        for scope in ["SECRET-rotated+3", "read SECRET-rotated%2B3"] {
            let body = serde_json::json!({"access_token": "at", "scope": scope}).to_string();
            let t = parse_token_response_for(&config, 200, &[], body.as_bytes(), NOW).unwrap();
            assert_eq!(t.scope, Some(vec![WITHHELD.to_owned()]), "{scope}");
        }
        let t = parse_token_response_for(&config, 200, &[], br#"{"access_token":"at","scope":"a b"}"#, NOW).unwrap();
        assert_eq!(t.scope, Some(vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn server_text_holding_a_secret_is_withheld_whole() {
        let config = Config::from_json(
            r#"{"token_url":"https://a.example/t","client_id":"id","client_secret":["new-secret","s3cr3t:x"]}"#,
        )
        .unwrap();
        let p = |status, headers: &[(String, String)], body: &str| {
            parse_token_response_for(&config, status, headers, body.as_bytes(), NOW).unwrap_err()
        };
        let long = format!("{}s3cr3t:x", "x".repeat(295));
        let e = p(400, &[], &format!(r#"{{"error":"invalid_request","error_description":"{long}"}}"#));
        assert_eq!(e.description.as_deref(), Some(WITHHELD), "checked before the 300-character cut");
        let e = p(400, &[], r#"{"error":"s3cr3t:x"}"#);
        assert_eq!((e.kind, e.oauth_error.as_deref()), (ErrorKind::Rejected, Some(WITHHELD)));
        let e = p(400, &[], r#"{"error":"invalid_scope","error_description":"scope for s3cr3t%3ax"}"#);
        assert_eq!((e.kind, e.description.as_deref()), (ErrorKind::InvalidScope, Some(WITHHELD)));
        let e = p(502, &[("Content-Type".to_owned(), "text/new-secret".to_owned())], "x");
        assert!(e.description.as_deref().unwrap().contains(WITHHELD), "{e}");
        assert!(!e.to_string().contains("new-secret"));
        let e = p(200, &[], r#"{"access_token":"a","token_type":"new-secret"}"#);
        assert!(!e.to_string().contains("new-secret"), "{e}");
        // Ordinary text is kept as it was.
        let e = p(400, &[], r#"{"error":"invalid_scope","error_description":"The requested scope is invalid"}"#);
        assert_eq!(e.description.as_deref(), Some("The requested scope is invalid"));
    }

    #[test]
    fn body_size_limit() {
        let policy = RefreshPolicy { max_response_bytes: 100, ..RefreshPolicy::default() };
        let body = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(200));
        let e = parse_token_response(200, &[], body.as_bytes(), NOW, &policy).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MalformedResponse);
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let h = |v: &str| vec![("Retry-After".to_owned(), v.to_owned())];
        assert_eq!(retry_after(&h("7"), NOW, 3_600_000), Some(NOW + 7_000));
        // 2023-11-14T22:13:20Z is NOW; 30 s later:
        assert_eq!(retry_after(&h("Tue, 14 Nov 2023 22:13:50 GMT"), NOW, 3_600_000), Some(NOW + 30_000));
        assert_eq!(retry_after(&h("Tue, 14 Nov 2023 22:00:00 GMT"), NOW, 3_600_000), Some(NOW));
        assert_eq!(retry_after(&h("999999"), NOW, 3_600_000), Some(NOW + 3_600_000));
        assert_eq!(retry_after(&h("soon"), NOW, 3_600_000), None);
        let e = parse_token_response(429, &h("7"), b"", NOW, &RefreshPolicy::default()).unwrap_err();
        assert_eq!((e.kind, e.retry_at), (ErrorKind::RateLimited, Some(NOW + 7_000)));
    }
}
