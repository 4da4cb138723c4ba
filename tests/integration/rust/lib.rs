//! Helpers for the Rust end-to-end suite: reads the `servers.json` written by
//! `tests/integration/servers/with-servers.sh` and builds tokenwell
//! configurations for its clients.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use tokenwell::blocking::ServiceAccount;
use tokenwell::{Config, Event};

/// The servers described by `$TOKENWELL_SERVERS`, or `None` (with a note on
/// stderr) when the suite runs without the harness. With
/// `TOKENWELL_REQUIRE_SERVERS=1` (set by `tests/integration/run.sh`) a missing
/// description is a failure, never a skip.
pub fn servers() -> Option<Value> {
    match std::env::var("TOKENWELL_SERVERS") {
        Ok(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
            Some(serde_json::from_str(&text).expect("servers.json is JSON"))
        }
        Err(_) if std::env::var("TOKENWELL_REQUIRE_SERVERS").as_deref() == Ok("1") => {
            panic!("TOKENWELL_SERVERS is not set but TOKENWELL_REQUIRE_SERVERS=1")
        }
        Err(_) => {
            eprintln!("skipped: run under tests/integration/servers/with-servers.sh to test against real servers");
            None
        }
    }
}

/// The two real servers by name: `hydra` and `oidc_provider`.
pub const SERVERS: [&str; 2] = ["hydra", "oidc_provider"];

/// A client of a server as described in servers.json.
#[derive(Debug, Clone)]
pub struct Client {
    /// `hydra` or `oidc_provider`.
    pub server: String,
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences.
    pub audience: Vec<String>,
    /// `audience` (Hydra) or `resource` (oidc-provider, RFC 8707).
    pub audience_parameter: String,
}

impl Client {
    /// The client with `role` on `server`.
    pub fn of(servers: &Value, server: &str, role: &str) -> Client {
        let s = &servers[server];
        let c = &s["clients"][role];
        assert!(c.is_object(), "no client {role} on {server}");
        Self::from_json(server, s, c)
    }

    /// A client entry of `server` (e.g. one of its bulk clients).
    pub fn from_json(server: &str, s: &Value, c: &Value) -> Client {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
        };
        Client {
            server: server.to_owned(),
            token_url: s["token_url"].as_str().unwrap().to_owned(),
            client_id: c["client_id"].as_str().unwrap().to_owned(),
            client_secret: c["client_secret"].as_str().unwrap().to_owned(),
            auth_method: c["auth_method"].as_str().unwrap_or("client_secret_basic").to_owned(),
            scopes: strings(&c["scopes"]),
            audience: strings(&c["audience"]),
            audience_parameter: s["audience_parameter"].as_str().unwrap_or("audience").to_owned(),
        }
    }

    /// Configuration options for this client, asking for `scopes` and `audiences`
    /// (sent as `audience`, or as `resource` where the server uses RFC 8707).
    pub fn options(&self, scopes: &[&str], audiences: &[&str]) -> Value {
        let mut options = json!({
            "token_url": self.token_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "auth_method": self.auth_method,
            "scope": scopes,
        });
        if self.audience_parameter == "audience" {
            options["audience"] = json!(audiences);
        } else {
            let extra: Vec<[&str; 2]> = audiences.iter().map(|a| [self.audience_parameter.as_str(), *a]).collect();
            options["extra_params"] = json!(extra);
        }
        options
    }

    /// The client's full allowed scopes and audience.
    pub fn default_options(&self) -> Value {
        let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        let audience: Vec<&str> = self.audience.iter().map(String::as_str).collect();
        self.options(&scopes, &audience)
    }
}

/// A driver for `options`, recording every event.
pub fn account(options: &Value) -> (ServiceAccount, std::sync::Arc<std::sync::Mutex<Vec<Event>>>) {
    let config = Config::from_json(&options.to_string()).expect("valid configuration");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&events);
    let account = ServiceAccount::with_event_handler(
        config,
        Some(Box::new(move |e: &Event| sink.lock().unwrap().push(e.clone()))),
    );
    (account, events)
}

/// Runs the real `hydra` CLI (`$HYDRA_BIN`) with `args`; returns stdout, panics with stderr on failure.
pub fn hydra_cli(servers: &Value, args: &[&str]) -> String {
    let bin = PathBuf::from(servers["hydra"]["bin"].as_str().expect("hydra.bin"));
    let output = Command::new(bin).args(args).output().expect("run hydra");
    assert!(output.status.success(), "hydra {:?} failed: {}", args.first(), String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Decodes the claims of a JWT without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
