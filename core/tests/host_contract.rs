//! Replays the host-contract scenarios in `tests/conformance/host/` (format:
//! `tests/conformance/README.md`, "Host-contract scenarios"): the environment
//! and explicit options in, the configuration or the error out, through the
//! same calls every host's `fromEnv` / `from_env` makes.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};
use tokenwell::{merge_env, read_env, Config, ConfigOptions, ExplicitOptions, InvalidateOutcome, TokenCache};

/// The configuration (or error) a scenario produces, as canonical JSON.
fn run_env_case(case: &Value) -> Value {
    let env: HashMap<String, String> = serde_json::from_value(case["env"].clone()).unwrap();
    let prefix = case["prefix"].as_str().unwrap_or("");
    let explicit = ExplicitOptions {
        options: serde_json::from_value::<ConfigOptions>(case["explicit"].clone()).expect("explicit options"),
        secret_file: case["explicit_secret_file"].as_str().map(str::to_owned),
        ca_file: case["explicit_ca_file"].as_str().map(str::to_owned),
    };
    let error = |e: tokenwell::ConfigError| json!({"error": {"field": e.field, "problem": e.problem}});
    let reading = match read_env(prefix, &|name| env.get(name).cloned()) {
        Ok(reading) => reading,
        Err(e) => return error(e),
    };
    let merged = merge_env(explicit, reading);
    let (secret_file, ca_file, key_file) =
        (merged.secret_file.clone(), merged.ca_file.clone(), merged.key_file.clone());
    match merged.into_config_with_keys(case["secret_file_contents"].as_str(), case["key_file_contents"].as_str()) {
        Ok(config) => json!({"config": {
            "token_url": config.token_url(),
            "issuer": config.issuer(),
            "key_count": config.key_count(),
            "key_file": key_file,
            "client_id": config.client_id(),
            "auth_method": config.auth_method().as_str(),
            "scopes": config.scopes(),
            "audiences": config.audiences(),
            "secret_count": config.secret_count(),
            "secret_file": secret_file,
            "ca_file": ca_file,
        }}),
        Err(e) => error(e),
    }
}

/// The outcome of `replace_secrets_from_file` on a cache holding `current`, with the events it emitted.
fn run_secret_file_case(case: &Value) -> Value {
    let current: Vec<String> = serde_json::from_value(case["current"].clone()).unwrap();
    let options = json!({"token_url": "https://auth.example/oauth2/token", "client_id": "c", "client_secret": current});
    let mut cache = TokenCache::new(Config::from_json(&options.to_string()).unwrap(), 0);
    let source = case["source"].as_str().unwrap();
    let outcome = cache.replace_secrets_from_file(case["contents"].as_str().unwrap(), source, 1_700_000_000_000);
    let events: Vec<Value> =
        std::iter::from_fn(|| cache.poll_event()).map(|e| serde_json::to_value(e).unwrap()).collect();
    let secret_count = cache.config().secret_count();
    match outcome {
        Ok(changed) => {
            json!({"result": "replaced", "changed": changed, "secret_count": secret_count, "events": events})
        }
        Err(e) => json!({"result": "rejected", "error": {"field": e.field, "problem": e.problem},
                         "secret_count": secret_count, "events": events}),
    }
}

/// Every expected key is present and equal (objects recursively; arrays
/// element by element, of equal length); other values compare whole.
fn subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|av| subset(v, av))),
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(ev, av)| subset(ev, av)),
        _ => expected == actual,
    }
}

#[test]
fn every_host_contract_scenario_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/host");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    let mut failures = Vec::new();
    for path in &paths {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let actual = match case["kind"].as_str() {
            Some("env") => run_env_case(&case),
            Some("secret_file") => {
                let actual = run_secret_file_case(&case);
                if !subset(&case["expect"], &actual) {
                    failures.push(format!("{}:\n  expected {}\n  actual   {actual}", path.display(), case["expect"]));
                }
                continue;
            }
            Some("unauthorized") => {
                let outcome: InvalidateOutcome = serde_json::from_value(case["invalidate_outcome"].clone()).unwrap();
                json!({"retry": outcome.retry_request()})
            }
            other => panic!("{}: unknown kind {other:?}", path.display()),
        };
        let expected = match (case.get("expect"), case.get("expect_error")) {
            (Some(expect), None) if case["kind"] == "unauthorized" => expect.clone(),
            (Some(config), None) => json!({"config": config}),
            (None, Some(error)) => json!({"error": error}),
            _ => panic!("{}: needs expect or expect_error", path.display()),
        };
        if !subset(&expected, &actual) {
            failures.push(format!("{}:\n  expected {expected}\n  actual   {actual}", path.display()));
        }
        // No secret value of the environment or the options ever appears in an error.
        if actual.get("error").is_some() {
            let text = actual.to_string();
            for secret in ["s3cr3t", "new-secret", "old-secret"] {
                assert!(!text.contains(secret), "{}: an error shows a secret: {text}", path.display());
            }
        }
    }
    assert!(paths.len() >= 20, "only {} host-contract scenarios found", paths.len());
    assert!(
        failures.is_empty(),
        "{} of {} host-contract scenarios failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}
