//! The blocking driver and the process environment: proxies and
//! `TOKENWELL_CA_FILE`. One test, because the environment is process-wide and
//! the other test files run their tests in parallel threads.
#![cfg(feature = "blocking")]

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::sync::atomic::Ordering;

use proxy::ConnectProxy;

use support::{counting_listener, serve, token_body, Answer, TestCa};
use tokenwell::blocking::ServiceAccount;
use tokenwell::Config;

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
