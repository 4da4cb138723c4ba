//! Replays every scenario in `tests/conformance/scenarios/` (format:
//! `tests/conformance/README.md`) against the engine on a virtual clock.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};
use tokenwell::{ClientSecret, Config, FetchId, TokenCache, TransportErrorKind};

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/scenarios")
}

/// Subset match (see the README): returns the path of the first mismatch.
fn subset(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let av = a.get(key).ok_or_else(|| format!("{path}.{key}: missing in actual"))?;
                subset(ev, av, &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!("{path}: expected {} elements, got {}", e.len(), a.len()));
            }
            e.iter().zip(a).enumerate().try_for_each(|(i, (ev, av))| subset(ev, av, &format!("{path}[{i}]")))
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => Ok(()),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, got {a}")),
    }
}

fn str_pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|p| (p[0].as_str().unwrap_or_default().to_owned(), p[1].as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn run_step(cache: &mut TokenCache, step: &Value) -> Value {
    let at = step["at"].as_u64().unwrap_or(0);
    match step["do"].as_str().expect("step without do") {
        "poll" => serde_json::to_value(cache.poll(at)).unwrap(),
        "respond" => {
            let body = match step.get("body_base64").and_then(Value::as_str) {
                Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).unwrap(),
                None => step["body"].as_str().unwrap_or_default().as_bytes().to_vec(),
            };
            let status = step["status"].as_u64().unwrap() as u16;
            let fetch_id = FetchId(step["fetch_id"].as_u64().unwrap());
            match cache.handle_response(fetch_id, status, &str_pairs(&step["headers"]), &body, at) {
                Ok(token) => json!({"result": "token", "token": token}),
                Err(error) => json!({"result": "error", "error": error}),
            }
        }
        "transport_error" => {
            let kind: TransportErrorKind = serde_json::from_value(step["kind"].clone()).unwrap();
            let fetch_id = FetchId(step["fetch_id"].as_u64().unwrap());
            let error = cache.handle_transport_error(fetch_id, kind, step["message"].as_str().unwrap_or(""), at);
            json!({"result": "error", "error": error})
        }
        "invalidate" => json!({"result": cache.invalidate(step["token"].as_str().unwrap(), at)}),
        "replace_secrets" => {
            let secrets =
                step["secrets"].as_array().unwrap().iter().map(|s| ClientSecret::new(s.as_str().unwrap())).collect();
            match cache.replace_secrets(secrets, at) {
                Ok(changed) => json!({"result": "replaced", "changed": changed}),
                Err(error) => json!({"result": "error", "error": error}),
            }
        }
        "next_wakeup" => json!({"at": cache.next_wakeup()}),
        "export_snapshot" => match cache.export_snapshot(at) {
            Some(text) => json!({"result": "snapshot", "snapshot": serde_json::from_str::<Value>(&text).unwrap()}),
            None => json!({"result": "none"}),
        },
        "import_snapshot" => {
            let text = match step.get("snapshot_text").and_then(Value::as_str) {
                Some(text) => text.to_owned(),
                None => step["snapshot"].to_string(),
            };
            match cache.import_snapshot(&text, at) {
                Ok(()) => json!({"result": "imported"}),
                Err(error) => json!({"result": "error", "reason": error.reason()}),
            }
        }
        "events" => {
            let mut events = Vec::new();
            while let Some(event) = cache.poll_event() {
                events.push(serde_json::to_value(event).unwrap());
            }
            json!({"events": events})
        }
        other => panic!("unknown step kind {other}"),
    }
}

fn run_scenario(path: &Path) -> Result<usize, String> {
    let scenario: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).map_err(|e| e.to_string())?;
    let config = Config::from_json(&scenario["config"].to_string());
    if let Some(expected) = scenario.get("expect_config_error") {
        let error = config.err().ok_or("configuration was accepted")?;
        return subset(expected, &serde_json::to_value(&error).unwrap(), "config_error").map(|_| 1);
    }
    let config = config.map_err(|e| format!("config refused: {e}"))?;
    let mut cache = TokenCache::new(config, scenario["entropy"].as_u64().unwrap_or(0));
    let steps = scenario["steps"].as_array().ok_or("no steps")?;
    for (i, step) in steps.iter().enumerate() {
        let actual = run_step(&mut cache, step);
        let what = format!("step {i} ({})", step["do"]);
        if let Some(expected) = step.get("expect") {
            subset(expected, &actual, "").map_err(|e| format!("{what}: {e}\n  actual: {actual}"))?;
        }
        if let Some(forbidden) = step.get("forbid_substrings").and_then(Value::as_array) {
            let text = actual.to_string();
            for needle in forbidden.iter().filter_map(Value::as_str) {
                if text.contains(needle) {
                    return Err(format!("{what}: output contains forbidden {needle:?}: {text}"));
                }
            }
        }
    }
    Ok(steps.len())
}

#[test]
fn every_conformance_scenario_passes() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scenario_dir())
        .expect("tests/conformance/scenarios exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 60, "expected at least 60 scenarios, found {}", paths.len());
    let mut failures = Vec::new();
    let mut steps = 0;
    for path in &paths {
        match run_scenario(path) {
            Ok(n) => steps += n,
            Err(e) => failures.push(format!("{}: {e}", path.file_name().unwrap().to_string_lossy())),
        }
    }
    assert!(failures.is_empty(), "{} of {} scenarios failed:\n{}", failures.len(), paths.len(), failures.join("\n"));
    println!("{} scenarios, {steps} steps replayed", paths.len());
}
