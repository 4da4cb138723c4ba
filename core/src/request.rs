//! Building the token request: a pure function of the configuration and the
//! chosen secret, byte-identical in every language.

use std::fmt;

use base64::Engine as _;
use serde::Serialize;
use zeroize::Zeroize;

use crate::assertion::{sign_assertion, AssertionClaims, AssertionKey, CLIENT_ASSERTION_TYPE};
use crate::config::{AssertionAudience, AuthMethod, Config};
use crate::entropy::EntropyPool;
use crate::error::{ErrorKind, TokenError};
use crate::secret::{ClientSecret, REDACTED};

/// Identifies one token request handed to the host. The host reports the
/// outcome of that request against this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FetchId(pub u64);

impl fmt::Display for FetchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An HTTP request as plain data. The host sends exactly this: method, URL,
/// headers in this order, and body bytes.
///
/// It carries the client's credentials (in `Authorization` or the body), so
/// its `Debug` output redacts them and its memory is zeroized on drop.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct HttpRequest {
    /// `POST` for a token request; `GET` (with an empty body, which the host
    /// must not send) for an issuer-discovery request.
    pub method: String,
    /// The token endpoint, or the metadata document's URL.
    pub url: String,
    /// Header name/value pairs, in order.
    pub headers: Vec<(String, String)>,
    /// The `application/x-www-form-urlencoded` body (empty for `GET`).
    pub body: String,
}

impl Drop for HttpRequest {
    fn drop(&mut self) {
        self.body.zeroize();
        for (_, value) in &mut self.headers {
            value.zeroize();
        }
    }
}

impl HttpRequest {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                if n.eq_ignore_ascii_case("authorization") {
                    let scheme = v.split(' ').next().unwrap_or("");
                    (n.as_str(), format!("{scheme} {REDACTED}"))
                } else {
                    (n.as_str(), v.clone())
                }
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &redact_body(&self.body))
            .finish()
    }
}

fn redact_body(body: &str) -> String {
    body.split('&')
        .map(|pair| {
            if pair.starts_with("client_secret=") {
                format!("client_secret={REDACTED}")
            } else if pair.starts_with("client_assertion=") {
                format!("client_assertion={REDACTED}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A token request the engine wants sent: the HTTP request plus the id to
/// report its outcome against and the timeout to apply.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenRequest {
    /// Report the outcome with this id.
    pub fetch_id: FetchId,
    /// What to send.
    #[serde(flatten)]
    pub http: HttpRequest,
    /// Abort the request after this many ms and report a timeout.
    pub timeout_ms: u64,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("fetch_id", &self.fetch_id)
            .field("http", &self.http)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 Appendix B):
/// space becomes `+`, everything but `A-Za-z0-9*-._` is percent-encoded.
pub fn form_urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The `Authorization` header value for `client_secret_basic`: id and secret are
/// form-urlencoded before base64, as RFC 6749 §2.3.1 requires (Hydra decodes
/// them, so a raw `+` would become a space).
pub fn basic_authorization(client_id: &str, secret: &ClientSecret) -> String {
    let mut credentials = format!("{}:{}", form_urlencode(client_id), form_urlencode(secret.expose()));
    let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes()));
    credentials.zeroize();
    header
}

/// Builds the client credentials token request for `config`, authenticating
/// with secret number `secret_index` (0 is the current one; out-of-range
/// indices use the last secret). Pure: the same inputs give the same bytes.
///
/// Body: `grant_type=client_credentials`, then `scope` (space-joined), then one
/// `audience` per value, then the extra parameters, then for
/// `client_secret_post` `client_id` and `client_secret`; every value
/// form-urlencoded. Headers: `Content-Type`, `Accept`, and for
/// `client_secret_basic` `Authorization`.
///
/// For `private_key_jwt` and `client_secret_jwt`, which need the time and
/// entropy, use [`build_signed_token_request`]; this function then sends
/// `client_id` without an assertion.
pub fn build_token_request(config: &Config, secret_index: usize) -> HttpRequest {
    build_request(config, config.token_url(), config.auth_method, secret_index, None)
}

/// Builds the token request for `config` (see [`build_token_request`]) with
/// a signed client assertion for `private_key_jwt` (key number
/// `credential_index`) and `client_secret_jwt` (secret number
/// `credential_index`), made at `now` with a `jti` and signature entropy from
/// `pool` (see the `assertion` module). The body ends with `client_id`,
/// `client_assertion_type` and `client_assertion`; there is no
/// `Authorization` header. Other methods ignore `now` and `pool`.
pub fn build_signed_token_request(
    config: &Config,
    credential_index: usize,
    now: u64,
    pool: &mut EntropyPool,
) -> Result<HttpRequest, TokenError> {
    build_request_at(config, config.token_url(), config.auth_method, credential_index, now, pool)
}

/// [`build_signed_token_request`] for a token endpoint and method that may
/// come from discovery.
pub(crate) fn build_request_at(
    config: &Config,
    endpoint: &str,
    method: AuthMethod,
    index: usize,
    now: u64,
    pool: &mut EntropyPool,
) -> Result<HttpRequest, TokenError> {
    if !method.signs_assertion() {
        return Ok(build_request(config, endpoint, method, index, None));
    }
    let audience = match (config.assertion_audience, config.issuer.as_deref()) {
        (AssertionAudience::Issuer, Some(issuer)) => issuer,
        _ => endpoint,
    };
    let claims = AssertionClaims::new(&config.client_id, audience, now, config.policy.assertion_lifetime_ms, pool);
    let key = match method {
        AuthMethod::PrivateKeyJwt => {
            config.keys.get(index.min(config.keys.len().saturating_sub(1))).map(AssertionKey::Private)
        }
        _ => pick(&config.secrets, index).map(|secret| AssertionKey::Secret(secret, config.hmac_alg)),
    };
    let key = key.ok_or_else(|| TokenError::new(ErrorKind::Config, format!("{method} has no key to sign with")))?;
    let assertion =
        sign_assertion(key, &claims, pool).map_err(|problem| TokenError::new(ErrorKind::Config, problem))?;
    Ok(build_request(config, endpoint, method, index, Some(&assertion)))
}

/// The credential at `index`, or the last one past the end.
fn pick<T>(list: &[T], index: usize) -> Option<&T> {
    list.get(index.min(list.len().saturating_sub(1)))
}

/// A `GET` of an issuer's metadata document.
pub(crate) fn discovery_request(url: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".to_owned(),
        url: url.to_owned(),
        headers: vec![("Accept".to_owned(), "application/json".to_owned())],
        body: String::new(),
    }
}

fn build_request(
    config: &Config,
    endpoint: &str,
    method: AuthMethod,
    index: usize,
    assertion: Option<&str>,
) -> HttpRequest {
    let secret = pick(&config.secrets, index);
    let mut body = String::from("grant_type=client_credentials");
    let mut push = |name: &str, value: &str| {
        body.push('&');
        body.push_str(&form_urlencode(name));
        body.push('=');
        body.push_str(&form_urlencode(value));
    };
    if !config.scopes.is_empty() {
        push("scope", &config.scopes.join(" "));
    }
    for audience in &config.audiences {
        push("audience", audience);
    }
    for (name, value) in &config.extra_params {
        push(name, value);
    }
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
        ("Accept".to_owned(), "application/json".to_owned()),
    ];
    match (method, secret) {
        (AuthMethod::ClientSecretBasic, Some(secret)) => {
            headers.push(("Authorization".to_owned(), basic_authorization(&config.client_id, secret)));
        }
        (AuthMethod::ClientSecretPost, Some(secret)) => {
            push("client_id", &config.client_id);
            push("client_secret", secret.expose());
        }
        _ => {
            push("client_id", &config.client_id);
            if let Some(assertion) = assertion {
                push("client_assertion_type", CLIENT_ASSERTION_TYPE);
                push("client_assertion", assertion);
            }
        }
    }
    HttpRequest { method: "POST".to_owned(), url: endpoint.to_owned(), headers, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        Config::from_json(json).unwrap()
    }

    #[test]
    fn rfc6749_form_encoding_of_basic_credentials() {
        // Values from oauth2-rs's tests of RFC 6749 §2.3.1 encoding.
        let header = basic_authorization("s6BhdRkqt3", &ClientSecret::new("7Fjfp0ZBr1KtDRbnfVdmIw"));
        assert_eq!(header, "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3");
        let header = basic_authorization("a:b", &ClientSecret::new("p+q %&=é"));
        let decoded = base64::engine::general_purpose::STANDARD.decode(&header["Basic ".len()..]).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "a%3Ab:p%2Bq+%25%26%3D%C3%A9");
    }

    #[test]
    fn basic_request_is_exact() {
        let c = config(
            r#"{"token_url":"https://auth.example/oauth2/token","client_id":"billing-worker","client_secret":"s",
                "scope":["billing:read","billing:write"],"audience":["https://api.one","https://api.two"],
                "extra_params":[["resource","x y"]]}"#,
        );
        let r = build_token_request(&c, 0);
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://auth.example/oauth2/token");
        assert_eq!(
            r.body,
            "grant_type=client_credentials&scope=billing%3Aread+billing%3Awrite\
             &audience=https%3A%2F%2Fapi.one&audience=https%3A%2F%2Fapi.two&resource=x+y"
        );
        assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(r.header("accept"), Some("application/json"));
        assert_eq!(r.header("authorization"), Some(basic_authorization("billing-worker", &"s".into()).as_str()));
    }

    #[test]
    fn post_request_carries_credentials_in_body() {
        let c = config(
            r#"{"token_url":"https://a.example/t","client_id":"id 1","client_secret":["new&","old"],
                "auth_method":"client_secret_post"}"#,
        );
        let r = build_token_request(&c, 1);
        assert_eq!(r.body, "grant_type=client_credentials&client_id=id+1&client_secret=old");
        assert_eq!(r.header("authorization"), None);
        let r = build_token_request(&c, 0);
        assert!(r.body.ends_with("client_secret=new%26"));
    }

    #[test]
    fn an_out_of_range_secret_index_uses_the_last_secret() {
        let c = config(
            r#"{"token_url":"https://a.example/t","client_id":"id","client_secret":["new","old"],
                "auth_method":"client_secret_post"}"#,
        );
        for index in [2, 7, usize::MAX] {
            assert!(build_token_request(&c, index).body.ends_with("client_secret=old"), "{index}");
        }
    }

    #[test]
    fn fetch_id_display_and_token_request_debug() {
        assert_eq!(FetchId(42).to_string(), "#42");
        let c = config(r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":"topsecret"}"#);
        let request = TokenRequest { fetch_id: FetchId(7), http: build_token_request(&c, 0), timeout_ms: 1_234 };
        let text = format!("{request:?}");
        assert!(text.starts_with("TokenRequest { fetch_id: FetchId(7), http: HttpRequest {"), "{text}");
        assert!(text.contains("timeout_ms: 1234"), "{text}");
        assert!(text.contains("Basic [redacted]") && !text.contains("topsecret"), "{text}");
    }

    #[test]
    fn debug_redacts_credentials() {
        let c = config(r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":"topsecret"}"#);
        let text = format!("{:?}", build_token_request(&c, 0));
        assert!(text.contains("Basic [redacted]"), "{text}");
        assert!(!text.contains(&basic_authorization("c", &"topsecret".into())["Basic ".len()..]));
        let c = config(
            r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":"topsecret","auth_method":"client_secret_post"}"#,
        );
        let text = format!("{:?}", build_token_request(&c, 0));
        assert!(!text.contains("topsecret"), "{text}");
        assert!(text.contains("client_secret=[redacted]"));
    }
}
