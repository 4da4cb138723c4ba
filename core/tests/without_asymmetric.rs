//! The engine built without the `asymmetric` feature (the npm package's
//! default wasm engine): a private key is a configuration error that says
//! where the signing build is, never a panic and never the key; HS256
//! assertions and issuer discovery work as in every build.
//!
//! Run with `cargo test -p tokenwell --no-default-features --test without_asymmetric`
//! (`make test-core` does).
#![cfg(not(feature = "asymmetric"))]

use tokenwell::{parse_key_file, AuthMethod, Config, ConfigError, PollResult, TokenCache};

const T0: u64 = 1_700_000_000_000;

fn key(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../tests/conformance/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn config(json: serde_json::Value) -> Result<Config, ConfigError> {
    Config::from_json(&json.to_string())
}

/// Every line of key material, and every JWK member value, that must never appear in an error.
fn secret_parts(text: &str) -> Vec<String> {
    let mut parts: Vec<String> =
        text.lines().filter(|l| !l.starts_with("-----") && l.len() > 16).map(|l| l[..16].to_owned()).collect();
    if let Ok(serde_json::Value::Object(jwk)) = serde_json::from_str::<serde_json::Value>(text) {
        parts.extend(["d", "p", "q", "n"].iter().filter_map(|m| jwk.get(*m)?.as_str()).map(|v| v[..12].to_owned()));
    }
    parts
}

#[test]
fn a_private_key_is_a_configuration_error_naming_the_signed_build() {
    for name in [
        "test-only-rsa-2048.pkcs8.pem",
        "test-only-rsa-2048.pkcs1.pem",
        "test-only-p256.sec1.pem",
        "test-only-p256.jwk.json",
    ] {
        let text = key(name);
        for method in [None, Some("private_key_jwt")] {
            let mut json = serde_json::json!({"token_url": "https://auth.example/oauth2/token", "client_id": "c",
                "private_key": text});
            if let Some(method) = method {
                json["auth_method"] = method.into();
            }
            let error = config(json).unwrap_err();
            assert_eq!(error.field, "private_key", "{name}");
            assert!(error.problem.starts_with("needs RS/PS/ES signing (private_key_jwt)"), "{}", error.problem);
            assert!(error.problem.contains(r#"npm: import from "tokenwell/signed""#), "{}", error.problem);
            assert!(error.problem.contains("Rust: enable the `asymmetric` feature"), "{}", error.problem);
            let shown = format!("{error} {error:?}");
            for part in secret_parts(&text) {
                assert!(!shown.contains(&part), "{name}: the error quotes the key");
            }
        }
    }
    // Several keys: the first is named by its index.
    let two = config(serde_json::json!({"token_url": "https://a.example/t", "client_id": "c",
        "private_key": [key("test-only-p256.pkcs8.pem"), key("test-only-rsa-2048.pkcs8.pem")]}));
    assert_eq!(two.unwrap_err().field, "private_key[0]");
    // With an issuer and a secret too: still refused, not silently dropped.
    let both = config(serde_json::json!({"issuer": "https://a.example", "client_id": "c", "client_secret": "s",
        "private_key": key("test-only-p384.pkcs8.pem")}));
    assert_eq!(both.unwrap_err().field, "private_key");
    // An empty key text says so, as in every build.
    let empty = config(serde_json::json!({"token_url": "https://a.example/t", "client_id": "c", "private_key": " "}));
    assert_eq!(empty.unwrap_err().problem, "holds no key");
}

#[test]
fn a_key_file_is_refused_by_the_variable_that_named_it() {
    let text = key("test-only-rsa-2048.pkcs8.pem");
    let error = parse_key_file(&text, "CLIENT_PRIVATE_KEY_FILE", None).unwrap_err();
    assert_eq!(error.field, "CLIENT_PRIVATE_KEY_FILE");
    assert!(error.problem.starts_with("the key file needs RS/PS/ES signing"), "{}", error.problem);
    assert!(error.problem.contains("tokenwell/signed"), "{}", error.problem);
    for part in secret_parts(&text) {
        assert!(!error.to_string().contains(&part));
    }
}

#[test]
fn client_secret_jwt_signs_with_hs256() {
    let config = config(serde_json::json!({"token_url": "https://auth.example/oauth2/token", "client_id": "c",
        "client_secret": "s3cr3t", "auth_method": "client_secret_jwt"}))
    .unwrap();
    let mut cache = TokenCache::new(config, 1);
    let PollResult::Send { request } = cache.poll(T0) else { panic!("expected a token request") };
    let body = &request.http.body;
    assert!(body.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"));
    let jwt = body.split("client_assertion=").nth(1).unwrap().split('&').next().unwrap();
    let header = jwt.split('.').next().unwrap();
    use base64::Engine as _;
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
    assert!(!body.contains("s3cr3t"));
}

#[test]
fn discovery_picks_among_the_methods_this_build_has() {
    let config =
        config(serde_json::json!({"issuer": "https://auth.example", "client_id": "c", "client_secret": "s"})).unwrap();
    let mut cache = TokenCache::new(config, 1);
    let PollResult::Send { request } = cache.poll(T0) else { panic!("expected the discovery request") };
    assert_eq!((request.http.method.as_str(), request.http.body.as_str()), ("GET", ""));
    let doc = br#"{"issuer":"https://auth.example","token_endpoint":"https://auth.example/token",
        "token_endpoint_auth_methods_supported":["private_key_jwt","client_secret_basic"]}"#;
    let done = cache.handle_response(request.fetch_id, 200, &[], doc, T0 + 1).unwrap_err();
    assert_eq!(done.kind.as_str(), "discovery_complete");
    assert_eq!(cache.token_endpoint(), Some("https://auth.example/token"));
    assert_eq!(cache.auth_method(), AuthMethod::ClientSecretBasic, "no keys: the secret's method");
}
