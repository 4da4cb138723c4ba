//! The blocking driver and the process environment: proxies,
//! `TOKENWELL_CA_FILE` and `from_env`. The environment is process-wide, so the
//! tests here take `ENV_LOCK` (the other test files never touch it).
#![cfg(feature = "blocking")]

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::sync::atomic::Ordering;

use proxy::ConnectProxy;

use support::{counting_listener, serve, serve_logged, token_body, Answer, TestCa};
use tokenwell::blocking::ServiceAccount;
use tokenwell::Config;

static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

const PROXY_VARS: [&str; 8] =
    ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"];

fn config_for(url: &str) -> Config {
    let json = serde_json::json!({"token_url": url, "client_id": "env-test", "client_secret": "s3cr3t-value"});
    Config::from_json(&json.to_string()).unwrap()
}

fn clear_proxy_vars() {
    for name in PROXY_VARS {
        std::env::remove_var(name);
    }
}

#[test]
fn proxies_and_the_ca_file_come_from_the_environment() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    clear_proxy_vars();
    std::env::remove_var("TOKENWELL_CA_FILE");

    // 1. Plain http never goes through a proxy, whatever the variables say.
    let (trap, trapped) = counting_listener();
    for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::set_var(name, &trap);
    }
    let (http_url, http_count) = serve(None, Box::new(|_| Answer::json(200, &token_body("direct-token"))));
    assert_eq!(ServiceAccount::new(config_for(&http_url)).get_token().unwrap(), "direct-token");
    assert_eq!((http_count.load(Ordering::SeqCst), trapped.load(Ordering::SeqCst)), (1, 0));
    clear_proxy_vars();

    // 2. https goes through HTTPS_PROXY's CONNECT tunnel, verified end to end.
    let ca = TestCa::new();
    let ca_file = ca.write_ca_file();
    let (https_url, https_count) =
        serve(Some(ca.server.clone()), Box::new(|n| Answer::json(200, &token_body(&format!("tls-token-{n}")))));
    let proxy = ConnectProxy::start();
    std::env::set_var("HTTPS_PROXY", &proxy.url);
    let account = ServiceAccount::builder(config_for(&https_url)).ca_file(&ca_file).build().unwrap();
    assert_eq!(account.get_token().unwrap(), "tls-token-0");
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["method"], "CONNECT");
    assert_eq!(requests[0]["allowed"], true);
    assert_eq!(requests[0]["target"].as_str(), https_url.strip_prefix("https://").map(|r| &r[..r.find('/').unwrap()]));

    // 3. NO_PROXY names the host: straight there.
    std::env::set_var("NO_PROXY", "localhost, 127.0.0.1");
    let account = ServiceAccount::builder(config_for(&https_url)).ca_file(&ca_file).build().unwrap();
    assert_eq!(account.get_token().unwrap(), "tls-token-1");
    assert_eq!(proxy.requests().len(), 1, "no new proxy request");
    clear_proxy_vars();

    // 4. TOKENWELL_CA_FILE is read by ServiceAccount::new.
    std::env::set_var("TOKENWELL_CA_FILE", &ca_file);
    assert_eq!(ServiceAccount::new(config_for(&https_url)).get_token().unwrap(), "tls-token-2");
    std::env::set_var("TOKENWELL_CA_FILE", "/nonexistent/ca.pem");
    let error = ServiceAccount::new(config_for(&https_url)).get_token().unwrap_err();
    assert_eq!(error.kind, tokenwell::ErrorKind::Config);
    assert!(error.to_string().contains("ca_file"), "{error}");
    std::env::remove_var("TOKENWELL_CA_FILE");
    assert_eq!(https_count.load(Ordering::SeqCst), 3);
}

#[test]
fn from_env_reads_the_variables_and_explicit_options_win() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Prefixed variables only here, so the other test's unprefixed ones cannot interfere.
    let (url, count) = serve(None, Box::new(|_| Answer::json(200, &token_body("env-token"))));
    let dir = std::env::temp_dir().join(format!("tokenwell-from-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, "new-secret\nold-secret\n").unwrap();
    std::env::set_var("FROMENV_CLIENT_ID", "env-client");
    std::env::set_var("FROMENV_TOKEN_URL", &url);
    std::env::set_var("FROMENV_CLIENT_SECRET_FILE", &secret_file);
    std::env::set_var("FROMENV_SCOPE", "billing:read");
    let account = ServiceAccount::from_env("FROMENV_").unwrap();
    assert_eq!(account.get_token().unwrap(), "env-token");
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let explicit: tokenwell::ConfigOptions =
        serde_json::from_value(serde_json::json!({"scope": ["a", "b c"]})).unwrap();
    let error = ServiceAccount::from_env_with(
        "FROMENV_",
        tokenwell::ExplicitOptions { options: explicit, ..Default::default() },
        None,
    )
    .unwrap_err();
    assert_eq!(error.field, "scope[1]");
    std::env::set_var("FROMENV_SCOPE", "ok");
    std::env::set_var("FROMENV_AUDIENCE", " ");
    std::env::remove_var("FROMENV_CLIENT_ID");
    std::env::remove_var("FROMENV_CLIENT_SECRET_FILE");
    let error = ServiceAccount::from_env("FROMENV_").unwrap_err();
    assert_eq!(error.field, "FROMENV_CLIENT_ID");
    assert!(
        error
            .problem
            .contains("FROMENV_CLIENT_SECRET (or FROMENV_CLIENT_SECRET_FILE / FROMENV_CLIENT_PRIVATE_KEY_FILE)"),
        "{error}"
    );
    for name in ["FROMENV_TOKEN_URL", "FROMENV_SCOPE", "FROMENV_AUDIENCE"] {
        std::env::remove_var(name);
    }
}

/// `ISSUER_URL` + `CLIENT_PRIVATE_KEY_FILE`: the driver honours the engine's
/// GET for discovery (RFC 8414 first, then OpenID Connect after a 404), reads
/// the key file, and sends a signed assertion to the discovered endpoint.
#[test]
fn from_env_discovers_the_issuer_and_signs_with_the_key_file() {
    let _env = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let base: std::sync::Arc<std::sync::OnceLock<String>> = std::sync::Arc::default();
    let issuer = std::sync::Arc::clone(&base);
    let (url, _, log) = serve_logged(
        None,
        Box::new(move |n| match n {
            0 => Answer::json(404, "{}"),
            1 => {
                let issuer = issuer.get().unwrap();
                Answer::json(
                    200,
                    &serde_json::json!({"issuer": issuer, "token_endpoint": format!("{issuer}/oauth2/token"),
                        "token_endpoint_auth_methods_supported": ["private_key_jwt"]})
                    .to_string(),
                )
            }
            _ => Answer::json(200, &token_body("signed-token")),
        }),
    );
    let issuer_url = url.trim_end_matches("/oauth2/token").to_owned();
    base.set(issuer_url.clone()).unwrap();
    let dir = std::env::temp_dir().join(format!("tokenwell-key-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key.pem");
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/conformance/keys/test-only-p256.pkcs8.pem");
    std::fs::copy(keys, &key_file).unwrap();
    std::env::set_var("KEYENV_CLIENT_ID", "key-client");
    std::env::set_var("KEYENV_ISSUER_URL", &issuer_url);
    std::env::set_var("KEYENV_CLIENT_PRIVATE_KEY_FILE", &key_file);
    let account = ServiceAccount::from_env("KEYENV_").unwrap();
    assert_eq!(account.get_token().unwrap(), "signed-token");
    let log = log.lock().unwrap().clone();
    let lines: Vec<&str> = log.iter().map(|(line, _)| line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "GET /.well-known/oauth-authorization-server HTTP/1.1",
            "GET /.well-known/openid-configuration HTTP/1.1",
            "POST /oauth2/token HTTP/1.1"
        ]
    );
    assert_eq!((log[0].1.as_str(), log[1].1.as_str()), ("", ""), "a GET has no body");
    assert!(log[2].1.starts_with("grant_type=client_credentials&client_id=key-client&client_assertion_type="));
    assert!(log[2].1.contains("&client_assertion=eyJ"), "{}", log[2].1);
    for name in ["KEYENV_CLIENT_ID", "KEYENV_ISSUER_URL", "KEYENV_CLIENT_PRIVATE_KEY_FILE"] {
        std::env::remove_var(name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
