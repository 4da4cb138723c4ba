//! End-to-end: the Rust host against real Ory Hydra serving TLS with a
//! certificate from a test CA (made by with-servers.sh), with and without that
//! CA, through the repository's loopback CONNECT proxy, and a plain-http token
//! request with `http_proxy` set. One test: proxy variables are process-wide.

#[path = "../../../../core/tests/support/proxy.rs"]
mod proxy;

use std::process::Command;

use proxy::ConnectProxy;
use serde_json::Value;
use tokenwell::blocking::ServiceAccount;
use tokenwell::{Config, ErrorKind, Fault};
use tokenwell_integration::{servers, Client};

const PROXY_VARS: [&str; 8] =
    ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"];

fn config(client: &Client) -> Config {
    Config::from_json(&client.default_options().to_string()).expect("valid configuration")
}

/// Runs examples/rust-service configured from the environment, as an operator would.
fn run_example(client: &Client, ca_file: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO"));
    command
        .args(["run", "-q", "-p", "tokenwell-example-rust-service"])
        .env("TOKEN_URL", &client.token_url)
        .env("CLIENT_ID", &client.client_id)
        .env("CLIENT_SECRET", &client.client_secret)
        .env("SCOPE", client.scopes.join(" "))
        .env_remove("TOKENWELL_CA_FILE");
    for name in PROXY_VARS {
        command.env_remove(name);
    }
    if let Some(ca_file) = ca_file {
        command.env("TOKENWELL_CA_FILE", ca_file);
    }
    command.output().expect("cargo runs the example")
}

#[test]
fn hydra_over_tls_with_and_without_the_ca_and_through_a_proxy() {
    let Some(s) = servers() else { return };
    for name in PROXY_VARS.iter().chain(&["TOKENWELL_CA_FILE"]) {
        std::env::remove_var(name);
    }
    let tls: &Value = &s["hydra_tls"];
    let ca_file = tls["ca_file"].as_str().expect("hydra_tls.ca_file");
    let client = Client::of(&s, "hydra_tls", "basic");
    assert!(client.token_url.starts_with("https://127.0.0.1:"), "{}", client.token_url);

    // With the test CA (TOKENWELL_CA_FILE, as fromEnv hosts read it): a token from Hydra over TLS.
    std::env::set_var("TOKENWELL_CA_FILE", ca_file);
    let token = ServiceAccount::new(config(&client)).token().expect("a token over TLS");
    assert!(token.access_token.expose().starts_with("ory_at_"), "an opaque Hydra token");
    std::env::remove_var("TOKENWELL_CA_FILE");

    // Without it: the platform's store does not trust the test CA. A configuration fault, held.
    let account = ServiceAccount::new(config(&client));
    let error = account.token().unwrap_err();
    assert_eq!((error.kind, error.fault, error.retryable), (ErrorKind::TlsCertificate, Fault::Configuration, false));
    assert!(error.to_string().contains("TOKENWELL_CA_FILE"), "{error}");
    assert!(!error.to_string().contains(&client.client_secret));

    // Through HTTPS_PROXY: one CONNECT to Hydra's TLS port, TLS verified end to end.
    let proxy = ConnectProxy::start();
    std::env::set_var("HTTPS_PROXY", &proxy.url);
    let proxied = ServiceAccount::builder(config(&client)).ca_file(ca_file).build().unwrap();
    assert!(proxied.token().is_ok());
    let requests = proxy.requests();
    let authority = client.token_url.trim_start_matches("https://").split('/').next().unwrap().to_owned();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!((requests[0]["method"].as_str(), requests[0]["target"].as_str()), (Some("CONNECT"), Some(&*authority)));
    std::env::remove_var("HTTPS_PROXY");

    // Plain http to the loopback Hydra with http_proxy set: nothing reaches the proxy.
    for name in ["http_proxy", "HTTP_PROXY", "ALL_PROXY"] {
        std::env::set_var(name, &proxy.url);
    }
    let plain = Client::of(&s, "hydra", "basic");
    assert!(ServiceAccount::new(config(&plain)).token().is_ok());
    assert_eq!(proxy.requests().len(), 1, "the plain-http token request did not go through the proxy");
    for name in PROXY_VARS {
        std::env::remove_var(name);
    }

    // examples/rust-service, configured from the environment, honours TOKENWELL_CA_FILE.
    let ok = run_example(&client, Some(ca_file));
    assert!(ok.status.success(), "example with the CA: {}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("got a token"));
    let refused = run_example(&client, None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("tls_certificate"), "{stderr}");
    assert!(!stderr.contains(&client.client_secret));
}
