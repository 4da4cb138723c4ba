//! The cache-level API of issue 12 that the conformance scenarios do not
//! reach: host entropy, key replacement (directly and from a key file), the
//! discovered endpoint and method, and redaction of keys.

use tokenwell::{
    build_signed_token_request, build_token_request, AuthMethod, Config, EntropyPool, EventKind, PollResult,
    SigningAlg, TokenCache,
};

const T0: u64 = 1_700_000_000_000;

fn key(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../tests/conformance/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn key_config(keys: &[&str]) -> Config {
    let keys: Vec<String> = keys.iter().map(|k| key(k)).collect();
    let json = serde_json::json!({"token_url": "https://auth.example/oauth2/token", "client_id": "c",
        "private_key": keys, "config_error_hold_ms": 60_000});
    Config::from_json(&json.to_string()).unwrap()
}

fn sent_body(cache: &mut TokenCache, now: u64) -> String {
    match cache.poll(now) {
        PollResult::Send { request } | PollResult::ReadyAndSend { request, .. } => request.http.body.clone(),
        other => panic!("expected a request, got {other:?}"),
    }
}

fn assertion_header(body: &str) -> serde_json::Value {
    let jwt = body.split("client_assertion=").nth(1).unwrap();
    let header = jwt.split('.').next().unwrap();
    use base64::Engine as _;
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn events(cache: &mut TokenCache) -> Vec<EventKind> {
    std::iter::from_fn(|| cache.poll_event()).map(|e| e.kind).collect()
}

#[test]
fn added_entropy_changes_the_jti_and_the_same_entropy_repeats_it() {
    let config = key_config(&["test-only-p256.pkcs8.pem"]);
    let (mut a, mut b, mut c) =
        (TokenCache::new(config.clone(), 1), TokenCache::new(config.clone(), 1), TokenCache::new(config, 1));
    a.add_entropy(b"fork one");
    b.add_entropy(b"fork two");
    c.add_entropy(b"fork one");
    let (body_a, body_b, body_c) = (sent_body(&mut a, T0), sent_body(&mut b, T0), sent_body(&mut c, T0));
    assert_ne!(body_a, body_b, "two forks that each added their own bytes sign different jtis");
    assert_eq!(body_a, body_c, "the pool holds only what the host gave it");
}

#[test]
fn keys_are_replaced_at_run_time_and_a_change_lifts_the_hold() {
    let mut cache = TokenCache::new(key_config(&["test-only-p256.pkcs8.pem"]), 1);
    assert_eq!(cache.auth_method(), AuthMethod::PrivateKeyJwt);
    assert_eq!(cache.config().configured_auth_method(), None);
    let explicit = Config::from_json(
        r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":"s",
        "auth_method":"client_secret_post"}"#,
    );
    assert_eq!(explicit.unwrap().configured_auth_method(), Some(AuthMethod::ClientSecretPost));
    let PollResult::Send { request } = cache.poll(T0) else { panic!() };
    assert_eq!(assertion_header(&request.http.body)["alg"], "ES256");
    let refused = cache.handle_response(request.fetch_id, 401, &[], br#"{"error":"invalid_client"}"#, T0 + 5);
    assert_eq!(refused.unwrap_err().retry_at, Some(T0 + 5 + 60_000));
    assert!(matches!(cache.poll(T0 + 6), PollResult::Fail { .. }));
    let _ = events(&mut cache);

    let same = tokenwell::parse_private_keys(&key("test-only-p256.pkcs8.pem"), None).unwrap();
    assert_eq!(cache.replace_keys(same, T0 + 7), Ok(false));
    assert_eq!(cache.replace_keys(Vec::new(), T0 + 7).unwrap_err().field, "private_key");
    assert!(events(&mut cache).is_empty());

    let rotated = cache.replace_keys_from_file(&key("test-only-rsa-2048.pkcs1.pem"), "CLIENT_PRIVATE_KEY_FILE", T0 + 8);
    assert_eq!(rotated, Ok(true));
    assert_eq!(events(&mut cache), [EventKind::KeysReplaced { count: 1, hold_lifted: true }]);
    let header = assertion_header(&sent_body(&mut cache, T0 + 9));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], cache.config().keys()[0].kid());
    assert_eq!(cache.config().key_count(), 1);
}

#[test]
fn a_key_file_without_a_key_keeps_the_keys_and_says_so_once() {
    let mut cache = TokenCache::new(key_config(&["test-only-p256.pkcs8.pem", "test-only-rsa-2048.pkcs8.pem"]), 1);
    let error = cache.replace_keys_from_file("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "F", T0);
    let error = error.unwrap_err();
    assert_eq!(error.field, "F");
    assert_eq!(error.problem, "the key file, key 1: not a valid PKCS#8 RSA, P-256 or P-384 private key");
    assert_eq!(
        events(&mut cache),
        [EventKind::SecretFileRejected { source: "F".into(), problem: error.problem.clone() }]
    );
    assert_eq!(cache.config().key_count(), 2);
    // A key file re-read applies the configured algorithm to keys that name none.
    let json = serde_json::json!({"token_url": "https://a.example/t", "client_id": "c",
        "private_key": key("test-only-rsa-2048.pkcs8.pem"), "assertion_signing_alg": "PS256"});
    let mut cache = TokenCache::new(Config::from_json(&json.to_string()).unwrap(), 1);
    assert_eq!(cache.replace_keys_from_file(&key("test-only-rsa-2048.pkcs1.pem"), "F", T0), Ok(false));
    assert_eq!(cache.config().keys()[0].alg(), SigningAlg::PS256);
}

#[test]
fn the_discovered_endpoint_and_method_are_the_caches() {
    let json = serde_json::json!({"issuer": "https://auth.example", "client_id": "c", "client_secret": "s",
        "private_key": key("test-only-p256.jwk.json")});
    let config = Config::from_json(&json.to_string()).unwrap();
    assert_eq!((config.token_url(), config.issuer()), ("", Some("https://auth.example")));
    assert_eq!(config.auth_method(), AuthMethod::ClientSecretBasic);
    let mut cache = TokenCache::new(config, 1);
    assert_eq!((cache.token_endpoint(), cache.auth_method()), (None, AuthMethod::ClientSecretBasic));
    let PollResult::Send { request } = cache.poll(T0) else { panic!() };
    assert_eq!((request.http.method.as_str(), request.http.body.as_str()), ("GET", ""));
    let doc = br#"{"issuer":"https://auth.example","token_endpoint":"https://auth.example/token",
        "token_endpoint_auth_methods_supported":["private_key_jwt","client_secret_basic"]}"#;
    let done = cache.handle_response(request.fetch_id, 200, &[], doc, T0 + 1).unwrap_err();
    assert_eq!((done.kind.as_str(), done.retryable, done.retry_at), ("discovery_complete", true, Some(T0 + 1)));
    assert_eq!(cache.token_endpoint(), Some("https://auth.example/token"));
    assert_eq!(cache.auth_method(), AuthMethod::PrivateKeyJwt);
    let body = sent_body(&mut cache, T0 + 2);
    assert!(body.contains("client_assertion="));
}

#[test]
fn pure_request_builders() {
    let config = key_config(&["test-only-p256.pkcs8.pem"]);
    let unsigned = build_token_request(&config, 0);
    assert_eq!(unsigned.body, "grant_type=client_credentials&client_id=c");
    let mut pool = EntropyPool::new(1);
    let signed = build_signed_token_request(&config, 5, T0, &mut pool).unwrap();
    assert!(signed.body.starts_with("grant_type=client_credentials&client_id=c&client_assertion_type="));
    assert!(format!("{signed:?}").contains("client_assertion=[redacted]"));
    let basic =
        Config::from_json(r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":"s"}"#).unwrap();
    let mut untouched = EntropyPool::new(9);
    assert_eq!(build_signed_token_request(&basic, 0, T0, &mut untouched).unwrap(), build_token_request(&basic, 0));
    let (mut after, mut fresh) = ([0u8; 8], [0u8; 8]);
    untouched.fill(&mut after);
    EntropyPool::new(9).fill(&mut fresh);
    assert_eq!(after, fresh, "a method that signs nothing draws nothing from the pool");
    assert!(!AuthMethod::ClientSecretBasic.signs_assertion() && !AuthMethod::ClientSecretPost.signs_assertion());
    assert!(AuthMethod::PrivateKeyJwt.signs_assertion() && AuthMethod::ClientSecretJwt.signs_assertion());
}

#[test]
fn no_output_shows_a_private_key() {
    let jwk: serde_json::Value = serde_json::from_str(&key("test-only-p256.jwk.json")).unwrap();
    let d = jwk["d"].as_str().unwrap();
    let pem = key("test-only-rsa-2048.pkcs8.pem");
    let pem_line = pem.lines().nth(5).unwrap();
    let json = serde_json::json!({"token_url": "https://a.example/t", "client_id": "c",
        "private_key": [key("test-only-p256.jwk.json"), pem.clone()]});
    let options: tokenwell::ConfigOptions = serde_json::from_value(json.clone()).unwrap();
    let mut cache = TokenCache::new(Config::from_json(&json.to_string()).unwrap(), 1);
    let _ = cache.poll(T0);
    let text = format!("{options:?} {:?} {cache:?} {:?}", cache.config(), cache.config().keys());
    for secret in [d, pem_line] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(text.contains("PrivateKey(ES256 kid=\"test-only-p256\" [redacted])"), "{text}");
    let public = cache.config().keys()[0].public_jwk();
    assert_eq!(
        (public["x"].clone(), public["kid"].clone(), public["use"].clone()),
        (jwk["x"].clone(), jwk["kid"].clone(), "sig".into())
    );
    assert!(public.get("d").is_none());
}

fn config_field(json: serde_json::Value) -> Result<Config, (String, String)> {
    Config::from_json(&json.to_string()).map_err(|e| (e.field, e.problem))
}

#[test]
fn which_credentials_each_method_needs() {
    let ec = key("test-only-p256.pkcs8.pem");
    let ok = config_field(serde_json::json!({"issuer": "https://a.example", "client_id": "c", "private_key": ec}));
    assert_eq!(ok.unwrap().auth_method(), AuthMethod::PrivateKeyJwt, "keys only: private_key_jwt");
    for (method, url) in [("client_secret_basic", "token_url"), ("client_secret_post", "issuer")] {
        let refused = config_field(serde_json::json!({url: "https://a.example/t", "client_id": "c",
            "private_key": ec, "auth_method": method}));
        assert_eq!(refused.unwrap_err().0, "client_secret", "{method}");
    }
    let refused = config_field(serde_json::json!({"token_url": "https://a.example/t", "client_id": "c",
        "private_key": ec, "client_secret": []}));
    assert_eq!(refused.unwrap_err().0, "client_secret", "an empty secret list is still refused");
    let none = config_field(serde_json::json!({"issuer": "https://a.example", "client_id": "c"}));
    assert_eq!(
        none.unwrap_err(),
        ("client_secret".to_owned(), "is required (or private_key for private_key_jwt)".to_owned())
    );
    let both = config_field(serde_json::json!({"token_url": "https://a.example/t", "client_id": "c",
        "private_key": ec, "client_secret": "s"}));
    assert_eq!(both.unwrap().auth_method(), AuthMethod::ClientSecretBasic, "a secret keeps the default");
}

#[test]
fn assertion_options_are_checked_by_name() {
    let base = || serde_json::json!({"token_url": "https://a.example/t", "client_id": "c", "client_secret": "s"});
    let with = |pairs: &[(&str, serde_json::Value)]| {
        let mut json = base();
        for (name, value) in pairs {
            json[*name] = value.clone();
        }
        config_field(json)
    };
    let field = |pairs: &[(&str, serde_json::Value)]| with(pairs).map(|_| String::new()).unwrap_or_else(|e| e.0);
    let ec = serde_json::Value::from(key("test-only-p256.pkcs8.pem"));
    let pkj = serde_json::Value::from("private_key_jwt");
    assert_eq!(
        field(&[("auth_method", pkj.clone()), ("private_key", ec.clone()), ("assertion_signing_alg", "HS256".into())]),
        "assertion_signing_alg"
    );
    assert_eq!(field(&[("assertion_signing_alg", "XS1".into())]), "assertion_signing_alg");
    assert_eq!(field(&[("assertion_audience", "somewhere".into())]), "assertion_audience");
    assert_eq!(field(&[("assertion_audience", "token_endpoint".into())]), "");
    assert_eq!(field(&[("assertion_lifetime_ms", 999.into())]), "assertion_lifetime_ms");
    assert_eq!(field(&[("assertion_lifetime_ms", 1_000.into())]), "");
    assert_eq!(field(&[("assertion_lifetime_ms", 600_000.into())]), "");
    assert_eq!(field(&[("discovery_refresh_ms", 59_999.into())]), "discovery_refresh_ms");
    assert_eq!(field(&[("discovery_refresh_ms", 60_000.into())]), "");
    assert_eq!(field(&[("discovery_refresh_ms", (7 * 86_400_000u64).into())]), "");
    assert_eq!(field(&[("discovery_refresh_ms", (7 * 86_400_000u64 + 1).into())]), "discovery_refresh_ms");
    assert_eq!(field(&[("extra_params", serde_json::json!([["client_assertion", "x"]]))]), "extra_params");
    assert_eq!(field(&[("extra_params", serde_json::json!([["client_assertion_type", "x"]]))]), "extra_params");
    for (name, value, problem) in [
        ("private_key", serde_json::json!(5), "must be a string or a list of strings"),
        ("issuer", serde_json::json!(5), "must be a string"),
        ("assertion_signing_alg", serde_json::json!(5), "must be a string"),
        ("assertion_audience", serde_json::json!(5), "must be a string"),
    ] {
        assert_eq!(with(&[(name, value)]).unwrap_err(), (name.to_owned(), problem.to_owned()));
    }
    // client_secret_jwt with HS512; PS256 as the default of RSA keys that name no alg.
    let hs = with(&[("auth_method", "client_secret_jwt".into()), ("assertion_signing_alg", "HS512".into())]).unwrap();
    let header = assertion_header(&sent_body(&mut TokenCache::new(hs, 1), T0));
    assert_eq!(header, serde_json::json!({"alg": "HS512", "typ": "JWT"}));
    let rsa = serde_json::Value::from(key("test-only-rsa-2048.pkcs8.pem"));
    let ps = with(&[("auth_method", pkj), ("private_key", rsa), ("assertion_signing_alg", "PS256".into())]).unwrap();
    assert_eq!(assertion_header(&sent_body(&mut TokenCache::new(ps, 1), T0))["alg"], "PS256");
}

#[test]
fn a_document_is_fetched_again_exactly_at_its_refresh_time() {
    let json = serde_json::json!({"issuer": "https://auth.example", "client_id": "c", "client_secret": "s",
        "discovery_refresh_ms": 60_000, "refresh_ahead_jitter": 0});
    let doc = br#"{"issuer":"https://auth.example","token_endpoint":"https://auth.example/token"}"#;
    let short = br#"{"access_token":"a","expires_in":10}"#;
    // A document read at T0 and a token that is unusable from T0 + 5 s.
    let primed = || {
        let mut cache = TokenCache::new(Config::from_json(&json.to_string()).unwrap(), 1);
        let PollResult::Send { request } = cache.poll(T0) else { panic!() };
        let _ = cache.handle_response(request.fetch_id, 200, &[], doc, T0);
        let PollResult::Send { request } = cache.poll(T0) else { panic!() };
        cache.handle_response(request.fetch_id, 200, &[], short, T0).unwrap();
        cache
    };
    let method_at = |now: u64| match primed().poll(now) {
        PollResult::Send { request } => request.http.method.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(method_at(T0 + 59_999), "POST", "the document still serves");
    assert_eq!(method_at(T0 + 60_000), "GET", "due at its refresh time");
    // A clock that went back shifts the refresh time with it.
    let mut cache = TokenCache::new(Config::from_json(&json.to_string()).unwrap(), 1);
    let PollResult::Send { request } = cache.poll(T0 + 10_000) else { panic!() };
    let _ = cache.handle_response(request.fetch_id, 200, &[], doc, T0 + 10_000);
    let PollResult::Send { request } = cache.poll(T0) else { panic!() };
    cache.handle_response(request.fetch_id, 200, &[], short, T0).unwrap();
    let PollResult::Send { request } = cache.poll(T0 + 60_000) else { panic!() };
    assert_eq!(request.http.method, "GET", "10 s back: the document is due 10 s earlier");
}

/// A document that changes the method restarts the fallback: the secret that
/// worked says nothing about which key will.
#[test]
fn a_new_method_starts_from_the_first_credential() {
    let json = serde_json::json!({"issuer": "https://auth.example", "client_id": "c", "client_secret": ["s0", "s1"],
        "private_key": [key("test-only-p256.pkcs8.pem"), key("test-only-rsa-2048.pkcs8.pem")]});
    let mut cache = TokenCache::new(Config::from_json(&json.to_string()).unwrap(), 1);
    let respond = |cache: &mut TokenCache, now: u64, status: u16, body: &[u8]| {
        let PollResult::Send { request } = cache.poll(now) else { panic!("expected a request") };
        let _ = cache.handle_response(request.fetch_id, status, &[], body, now);
        request.http
    };
    let basic_only = br#"{"issuer":"https://auth.example","token_endpoint":"https://auth.example/token",
        "token_endpoint_auth_methods_supported":["client_secret_basic"]}"#;
    respond(&mut cache, T0, 200, basic_only);
    respond(&mut cache, T0 + 1, 401, br#"{"error":"invalid_client"}"#);
    let second = respond(&mut cache, T0 + 2, 200, br#"{"access_token":"a","expires_in":10}"#);
    assert_eq!(second.header("authorization"), Some(tokenwell::basic_authorization("c", &"s1".into()).as_str()));
    respond(&mut cache, T0 + 10_000, 404, b"");
    let keys_only = br#"{"issuer":"https://auth.example","token_endpoint":"https://auth.example/token",
        "token_endpoint_auth_methods_supported":["private_key_jwt"]}"#;
    let get = respond(&mut cache, T0 + 10_001, 200, keys_only);
    assert_eq!(get.method, "GET");
    let PollResult::Send { request } = cache.poll(T0 + 10_002) else { panic!() };
    assert_eq!(assertion_header(&request.http.body)["alg"], "ES256", "key 0, not key 1");
}

/// A token imported while the metadata was being fetched is served; when it
/// expires, the refetch is for an expired token, not an initial one.
#[test]
fn a_token_imported_during_discovery_keeps_the_refetch_reason() {
    let json = serde_json::json!({"issuer": "https://auth.example", "client_id": "c", "client_secret": "s"});
    let config = Config::from_json(&json.to_string()).unwrap();
    let snapshot = serde_json::json!({"version": 1, "fingerprint": config.fingerprint(), "access_token": "snap",
        "token_type": "Bearer", "scope": [], "received_at": T0, "expires_at": T0 + 3_600_000});
    let mut cache = TokenCache::new(config, 1);
    let PollResult::Send { request } = cache.poll(T0) else { panic!() };
    cache.import_snapshot(&snapshot.to_string(), T0 + 1).unwrap();
    let doc = br#"{"issuer":"https://auth.example","token_endpoint":"https://auth.example/token"}"#;
    let _ = cache.handle_response(request.fetch_id, 200, &[], doc, T0 + 2);
    assert!(matches!(cache.poll(T0 + 3), PollResult::Ready { .. }));
    let _ = events(&mut cache);
    let PollResult::Send { request } = cache.poll(T0 + 3_600_000 - 30_000) else { panic!() };
    assert_eq!(request.http.method, "POST");
    let started = events(&mut cache).into_iter().find(|e| matches!(e, EventKind::RefreshStarted { .. }));
    assert!(
        matches!(started, Some(EventKind::RefreshStarted { reason: tokenwell::RefreshReason::Expired, .. })),
        "{started:?}"
    );
}
