//! Issuer discovery: from an issuer URL to the token endpoint and the auth
//! method, by the authorization server's metadata document.
//!
//! Given `issuer` (and no `token_url`), the engine's first request is a `GET`
//! of the metadata document, through the same `poll` → `Send` →
//! `handle_response` flow as token requests (the host only honours
//! [`HttpRequest::method`](crate::HttpRequest::method)). Two places are tried,
//! in order:
//!
//! 1. RFC 8414 §3: `/.well-known/oauth-authorization-server` **inserted**
//!    between the host and the issuer's path
//!    (`https://a.example/tenant` → `https://a.example/.well-known/oauth-authorization-server/tenant`);
//! 2. OpenID Connect Discovery 1.0 §4: `/.well-known/openid-configuration`
//!    **appended** to the issuer (`https://a.example/tenant/.well-known/openid-configuration`),
//!    where Hydra, Keycloak, Okta and Auth0 serve it.
//!
//! A 404, 405 or 410 from the first moves to the second at once. The document
//! must be a JSON object whose `issuer` is **exactly** the configured issuer
//! (RFC 8414 §3.3, so a document cannot send tokens somewhere else), with a
//! `token_endpoint` that passes the same checks as `token_url` (https, or
//! plain http on loopback or with `allow_insecure_http`). The auth method is
//! the configured one if `token_endpoint_auth_methods_supported` lists it
//! (absent, RFC 8414 says `client_secret_basic` only), else the first the
//! client can use of `private_key_jwt` (with keys), `client_secret_basic`,
//! `client_secret_post`, `client_secret_jwt` (with a secret).
//!
//! Failures are classified like token failures: 5xx, 408, 429 and transport
//! failures are transient (retried with backoff, `Retry-After` honoured); a
//! body that is not a JSON object is a malformed response (transient, loud);
//! an issuer mismatch ([`ErrorKind::IssuerMismatch`]), both documents absent,
//! a missing or refused `token_endpoint` or no usable auth method
//! ([`ErrorKind::DiscoveryFailed`]) are configuration faults, held like other
//! configuration errors.
//!
//! The document is cached and fetched again after `discovery_refresh_ms`
//! (24 h by default) before the next token request, and at once after the
//! token endpoint answers 404 (once: a second 404 is held as
//! `endpoint_not_found`). A periodic refresh that fails for a transient
//! reason keeps the cached document.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{validate_endpoint_url, AuthMethod, Config, RefreshPolicy};
use crate::error::{ErrorKind, TokenError};
use crate::response::{retry_after, server_text};
use crate::scrub::Credentials;

/// The two metadata URLs for `issuer`, in the order they are tried (see the
/// module docs). `issuer` must be a valid URL (configuration checks it).
pub fn discovery_urls(issuer: &str) -> [String; 2] {
    let trimmed = issuer.trim().trim_end_matches('/');
    let (origin, path) = match url::Url::parse(issuer.trim()) {
        Ok(parsed) => {
            let path = parsed.path().trim_end_matches('/').to_owned();
            (parsed.origin().ascii_serialization(), path)
        }
        Err(_) => (trimmed.to_owned(), String::new()),
    };
    [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{trimmed}/.well-known/openid-configuration"),
    ]
}

/// What the engine takes from a metadata document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveryDocument {
    /// The `issuer` (equal to the configured one).
    pub issuer: String,
    /// The `token_endpoint`, validated like `token_url`.
    pub token_endpoint: String,
    /// `token_endpoint_auth_methods_supported` (RFC 8414's default when absent:
    /// `["client_secret_basic"]`).
    pub auth_methods_supported: Vec<String>,
}

/// Whether a discovery failure with this status means "no document here"
/// (the next well-known URL is tried).
pub(crate) fn is_absent(status: Option<u16>) -> bool {
    matches!(status, Some(404 | 405 | 410))
}

/// Parses the answer to a metadata request for `issuer`. Server text in
/// errors is scrubbed of `credentials`.
pub(crate) fn parse_discovery_response(
    config: &Config,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    now: u64,
    credentials: &Credentials,
) -> Result<DiscoveryDocument, TokenError> {
    let (issuer, policy) = (config.issuer.as_deref().unwrap_or_default(), &config.policy);
    let mut result = parse_inner(issuer, status, body, policy, config.allow_insecure_http, credentials);
    if let Err(error) = &mut result {
        error.status = Some(status);
        if error.kind.is_retryable() {
            error.retry_at = retry_after(headers, now, policy.max_retry_after_ms);
        }
    }
    result
}

fn parse_inner(
    issuer: &str,
    status: u16,
    body: &[u8],
    policy: &RefreshPolicy,
    allow_insecure_http: bool,
    credentials: &Credentials,
) -> Result<DiscoveryDocument, TokenError> {
    let failed = |description: String| TokenError::new(ErrorKind::DiscoveryFailed, description);
    if !(200..300).contains(&status) {
        return Err(match status {
            429 => TokenError::new(ErrorKind::RateLimited, format!("issuer discovery: HTTP {status}")),
            408 | 500..=599 => TokenError::new(ErrorKind::ServerError, format!("issuer discovery: HTTP {status}")),
            300..=399 => TokenError::new(
                ErrorKind::MalformedResponse,
                format!("issuer discovery: unexpected HTTP {status} (redirects are not followed)"),
            ),
            _ if is_absent(Some(status)) => failed(format!(
                "issuer discovery: HTTP {status}: no metadata document for this issuer; check issuer (ISSUER_URL)"
            )),
            _ => failed(format!("issuer discovery: HTTP {status}")),
        });
    }
    if body.len() > policy.max_response_bytes {
        return Err(TokenError::new(
            ErrorKind::MalformedResponse,
            format!("issuer discovery: the document is larger than {} bytes", policy.max_response_bytes),
        ));
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(TokenError::new(
            ErrorKind::MalformedResponse,
            "issuer discovery: the metadata document is not a JSON object",
        ));
    };
    match map.get("issuer").and_then(Value::as_str) {
        Some(found) if found == issuer => {}
        Some(found) => {
            return Err(TokenError::new(
                ErrorKind::IssuerMismatch,
                format!(
                    "the metadata document names issuer \"{}\", not the configured \"{issuer}\" (they must be equal, \
                     character for character)",
                    server_text(credentials, found, 200)
                ),
            ))
        }
        None => return Err(TokenError::new(ErrorKind::IssuerMismatch, "the metadata document has no issuer")),
    }
    let token_endpoint = match map.get("token_endpoint").and_then(Value::as_str) {
        Some(url) => validate_endpoint_url(Some(url), allow_insecure_http, "token_endpoint")
            .map_err(|e| failed(format!("issuer discovery: token_endpoint {}", e.problem)))?,
        None => return Err(failed("issuer discovery: the metadata document has no token_endpoint".to_owned())),
    };
    Ok(DiscoveryDocument {
        issuer: issuer.to_owned(),
        token_endpoint,
        auth_methods_supported: string_list(&map, "token_endpoint_auth_methods_supported")
            .unwrap_or_else(|| vec!["client_secret_basic".to_owned()]),
    })
}

fn string_list(map: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    let list = map.get(name)?.as_array()?;
    Some(list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
}

/// The auth method to use with `document`: `configured` if the server lists
/// it, else the best the client can use (see the module docs).
pub fn choose_auth_method(
    document: &DiscoveryDocument,
    configured: Option<AuthMethod>,
    have_keys: bool,
    have_secrets: bool,
) -> Result<AuthMethod, TokenError> {
    let supported = |method: AuthMethod| document.auth_methods_supported.iter().any(|m| m == method.as_str());
    let listed = document.auth_methods_supported.join(", ");
    if let Some(method) = configured {
        return if supported(method) {
            Ok(method)
        } else {
            Err(TokenError::new(
                ErrorKind::DiscoveryFailed,
                format!("the server does not support auth_method {method} (it supports: {listed})"),
            ))
        };
    }
    let preference = [
        (AuthMethod::PrivateKeyJwt, have_keys),
        (AuthMethod::ClientSecretBasic, have_secrets),
        (AuthMethod::ClientSecretPost, have_secrets),
        (AuthMethod::ClientSecretJwt, have_secrets),
    ];
    preference.into_iter().find(|&(method, usable)| usable && supported(method)).map(|(method, _)| method).ok_or_else(
        || {
            TokenError::new(
                ErrorKind::DiscoveryFailed,
                format!(
                    "the server supports none of the auth methods this client can use (it supports: {listed}; \
                     the client has {})",
                    match (have_keys, have_secrets) {
                        (true, true) => "private keys and secrets",
                        (true, false) => "private keys",
                        _ => "secrets",
                    }
                ),
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: &str, allow_insecure_http: bool) -> Config {
        let json = serde_json::json!({"issuer": issuer, "client_id": "c", "client_secret": "s",
            "allow_insecure_http": allow_insecure_http});
        Config::from_json(&json.to_string()).unwrap()
    }

    fn parse(issuer: &str, status: u16, body: &str) -> Result<DiscoveryDocument, TokenError> {
        parse_discovery_response(&config(issuer, false), status, &[], body.as_bytes(), 0, &Credentials::new([]))
    }

    #[test]
    fn well_known_urls_follow_rfc8414_then_oidc() {
        assert_eq!(
            discovery_urls("https://a.example"),
            [
                "https://a.example/.well-known/oauth-authorization-server",
                "https://a.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            discovery_urls("https://a.example/"),
            [
                "https://a.example/.well-known/oauth-authorization-server",
                "https://a.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            discovery_urls("https://kc.example:8443/realms/ops/"),
            [
                "https://kc.example:8443/.well-known/oauth-authorization-server/realms/ops",
                "https://kc.example:8443/realms/ops/.well-known/openid-configuration"
            ]
        );
        assert_eq!(discovery_urls("not a url")[1], "not a url/.well-known/openid-configuration");
    }

    #[test]
    fn the_document_must_name_the_configured_issuer_exactly() {
        let doc = r#"{"issuer":"https://a.example/","token_endpoint":"https://a.example/oauth2/token"}"#;
        let ok = parse("https://a.example/", 200, doc).unwrap();
        assert_eq!(ok.token_endpoint, "https://a.example/oauth2/token");
        assert_eq!(ok.auth_methods_supported, ["client_secret_basic"]);
        let e = parse("https://a.example", 200, doc).unwrap_err();
        assert_eq!((e.kind, e.retryable, e.status), (ErrorKind::IssuerMismatch, false, Some(200)));
        assert!(e.description.unwrap().contains("\"https://a.example/\", not the configured \"https://a.example\""));
        let e = parse("https://a.example/", 200, r#"{"token_endpoint":"https://a.example/t"}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::IssuerMismatch);
    }

    #[test]
    fn failures_are_classified_like_token_failures() {
        let kind = |status: u16, body: &str| parse("https://a.example", status, body).unwrap_err().kind;
        assert_eq!(kind(503, ""), ErrorKind::ServerError);
        assert_eq!(kind(500, ""), ErrorKind::ServerError);
        assert_eq!(kind(599, ""), ErrorKind::ServerError);
        assert_eq!(kind(408, ""), ErrorKind::ServerError);
        assert_eq!(kind(429, ""), ErrorKind::RateLimited);
        assert_eq!(kind(301, ""), ErrorKind::MalformedResponse);
        assert_eq!(kind(399, ""), ErrorKind::MalformedResponse);
        assert_eq!(kind(404, ""), ErrorKind::DiscoveryFailed);
        let described = |status: u16| parse("https://a.example", status, "").unwrap_err().description.unwrap();
        assert_eq!(
            described(404),
            "issuer discovery: HTTP 404: no metadata document for this issuer; check issuer (ISSUER_URL)"
        );
        assert_eq!(described(403), "issuer discovery: HTTP 403");
        assert_eq!(kind(403, ""), ErrorKind::DiscoveryFailed);
        assert_eq!(kind(200, "<html>"), ErrorKind::MalformedResponse);
        assert_eq!(kind(200, "[1]"), ErrorKind::MalformedResponse);
        assert_eq!(kind(200, r#"{"issuer":"https://a.example"}"#), ErrorKind::DiscoveryFailed);
        let http = r#"{"issuer":"https://a.example","token_endpoint":"http://a.example/t"}"#;
        let e = parse("https://a.example", 200, http).unwrap_err();
        assert_eq!(e.kind, ErrorKind::DiscoveryFailed);
        assert!(e.description.unwrap().starts_with("issuer discovery: token_endpoint must use https"));
        let policy = RefreshPolicy::default();
        let insecure = config("https://a.example", true);
        let ok = parse_discovery_response(&insecure, 200, &[], http.as_bytes(), 0, &Credentials::new([]));
        assert_eq!(ok.unwrap().token_endpoint, "http://a.example/t");
        let big = format!(r#"{{"issuer":"https://a.example","pad":"{}"}}"#, "x".repeat(policy.max_response_bytes));
        assert_eq!(kind(200, &big), ErrorKind::MalformedResponse);
        let fits = format!(
            r#"{{"issuer":"https://a.example","token_endpoint":"https://a.example/t","p":"{}"}}"#,
            "x".repeat(policy.max_response_bytes - 76)
        );
        assert_eq!(fits.len(), policy.max_response_bytes);
        assert!(parse("https://a.example", 200, &fits).is_ok());
        let retry = [("Retry-After".to_owned(), "7".to_owned())];
        for (status, retry_at) in [(503, Some(7_000)), (404, None)] {
            let e = parse_discovery_response(
                &config("https://a.example", false),
                status,
                &retry,
                b"",
                0,
                &Credentials::new([]),
            );
            assert_eq!(e.unwrap_err().retry_at, retry_at, "{status}");
        }
        assert!(is_absent(Some(404)) && is_absent(Some(405)) && is_absent(Some(410)));
        assert!(!is_absent(Some(400)) && !is_absent(None));
    }

    fn doc(methods: &[&str]) -> DiscoveryDocument {
        DiscoveryDocument {
            issuer: "https://a.example".into(),
            token_endpoint: "https://a.example/t".into(),
            auth_methods_supported: methods.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn the_method_is_the_configured_one_or_the_best_usable() {
        let all = doc(&["client_secret_post", "client_secret_basic", "private_key_jwt", "client_secret_jwt"]);
        assert_eq!(choose_auth_method(&all, None, true, true).unwrap(), AuthMethod::PrivateKeyJwt);
        assert_eq!(choose_auth_method(&all, None, false, true).unwrap(), AuthMethod::ClientSecretBasic);
        assert_eq!(choose_auth_method(&all, None, true, false).unwrap(), AuthMethod::PrivateKeyJwt);
        let post = doc(&["client_secret_post", "client_secret_jwt"]);
        assert_eq!(choose_auth_method(&post, None, true, true).unwrap(), AuthMethod::ClientSecretPost);
        assert_eq!(
            choose_auth_method(&doc(&["client_secret_jwt"]), None, false, true).unwrap(),
            AuthMethod::ClientSecretJwt
        );
        let configured = choose_auth_method(&all, Some(AuthMethod::ClientSecretJwt), false, true);
        assert_eq!(configured.unwrap(), AuthMethod::ClientSecretJwt);
        let e = choose_auth_method(&post, Some(AuthMethod::ClientSecretBasic), false, true).unwrap_err();
        assert_eq!(e.kind, ErrorKind::DiscoveryFailed);
        assert_eq!(
            e.description.unwrap(),
            "the server does not support auth_method client_secret_basic (it supports: client_secret_post, client_secret_jwt)"
        );
        let keys_only = doc(&["client_secret_basic"]);
        for (keys, secrets, has) in [(true, false, "private keys"), (true, true, "private keys and secrets")] {
            let e = choose_auth_method(&keys_only, None, keys, secrets);
            let description = e.map(|_| String::new()).unwrap_or_else(|e| e.description.unwrap());
            if secrets {
                assert_eq!(description, "", "a secret can use client_secret_basic");
            } else {
                assert!(description.ends_with(&format!("the client has {has})")), "{description}");
            }
        }
        let e = choose_auth_method(&doc(&["private_key_jwt"]), None, false, true).unwrap_err();
        assert!(e.description.unwrap().ends_with("the client has secrets)"));
    }
}
