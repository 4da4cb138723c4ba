//! End-to-end: the Rust host (tokenwell's blocking driver) against real
//! authorization servers on 127.0.0.1, Ory Hydra v2.3.0 and oidc-provider,
//! started by `tests/integration/servers/with-servers.sh`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokenwell::{ErrorKind, EventKind, Fault, RefreshReason};
use tokenwell_integration::{account, hydra_cli, jwt_claims, servers, Client, SERVERS};

fn refresh_count(events: &[tokenwell::Event]) -> usize {
    events.iter().filter(|e| matches!(e.kind, EventKind::RefreshStarted { .. })).count()
}

#[test]
fn basic_and_post_auth_get_the_requested_scopes() {
    let Some(s) = servers() else { return };
    for server in SERVERS {
        for role in ["basic", "post"] {
            let client = Client::of(&s, server, role);
            let (account, _) = account(&client.default_options());
            let token = account.token().unwrap_or_else(|e| panic!("{server}/{role}: {e}"));
            assert!(!token.access_token.expose().is_empty());
            for scope in &client.scopes {
                assert!(token.scope.contains(scope), "{server}/{role}: {scope} not granted: {:?}", token.scope);
            }
            // Asking for less gets less.
            let (narrow, _) = account_for(&client, &["billing:read"]);
            assert_eq!(narrow.token().unwrap().scope, ["billing:read"], "{server}/{role}");
        }
    }
}

fn account_for(
    client: &Client,
    scopes: &[&str],
) -> (tokenwell::blocking::ServiceAccount, Arc<std::sync::Mutex<Vec<tokenwell::Event>>>) {
    let audience: Vec<&str> = client.audience.iter().map(String::as_str).collect();
    account(&client.options(scopes, &audience))
}

#[test]
fn a_scope_the_client_may_not_have_is_a_held_configuration_error() {
    let Some(s) = servers() else { return };
    for server in SERVERS {
        let client = Client::of(&s, server, "basic");
        let (account, events) = account_for(&client, &["billing:read", "billing:admin"]);
        let started = Instant::now();
        let error = account.token().unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidScope, "{server}: {error}");
        assert_eq!(error.fault, Fault::Configuration);
        assert!(!error.retryable);
        assert_eq!(error.status, Some(400));
        // No retry storm: the next calls fail fast from the hold, without a request.
        for _ in 0..20 {
            assert_eq!(account.token().unwrap_err().kind, ErrorKind::InvalidScope);
        }
        assert_eq!(refresh_count(&events.lock().unwrap()), 1, "{server}: one request only");
        assert!(error.retry_at.unwrap() >= tokenwell_now() + 60_000 - started.elapsed().as_millis() as u64);
    }
}

fn tokenwell_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn an_audience_the_client_may_not_have_is_a_configuration_error() {
    let Some(s) = servers() else { return };
    for server in SERVERS {
        let client = Client::of(&s, server, "basic");
        let (account, events) = account(&client.options(&["billing:read"], &["https://not-allowed.tokenwell.test"]));
        let error = account.token().unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidTarget, "{server}: {error}");
        assert_eq!(error.fault, Fault::Configuration);
        assert!(!error.retryable);
        assert_eq!(account.token().unwrap_err().kind, ErrorKind::InvalidTarget);
        assert_eq!(refresh_count(&events.lock().unwrap()), 1, "{server}");
    }
}

#[test]
fn a_wrong_secret_is_invalid_client_and_never_shown() {
    let Some(s) = servers() else { return };
    for server in SERVERS {
        let mut client = Client::of(&s, server, "basic");
        client.client_secret = format!("wrong-{}", client.client_secret);
        let (account, events) = account(&client.default_options());
        let error = account.token().unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidClient, "{server}: {error}");
        assert_eq!(error.fault, Fault::Credentials);
        assert_eq!(error.status, Some(401));
        for text in [error.to_string(), format!("{error:?}"), format!("{account:?}")] {
            assert!(!text.contains(&client.client_secret), "{server}: secret in {text}");
        }
        for event in events.lock().unwrap().iter() {
            assert!(!serde_json::to_string(event).unwrap().contains(&client.client_secret));
        }
    }
}

#[test]
fn secrets_with_reserved_characters_work() {
    let Some(s) = servers() else { return };
    for server in SERVERS {
        let client = Client::of(&s, server, "special_secret");
        assert!(client.client_secret.contains(['%', '+', ' ', ':', '&', '=']));
        let (account, _) = account(&client.default_options());
        account.token().unwrap_or_else(|e| panic!("{server}: {e}"));
    }
}

#[test]
fn two_hundred_random_secrets_are_each_accepted() {
    let Some(s) = servers() else { return };
    for server in SERVERS {
        let bulk = s[server]["bulk_clients"].as_array().unwrap_or_else(|| panic!("{server}: no bulk_clients"));
        assert!(bulk.len() >= 200, "{server}: {} bulk clients", bulk.len());
        let failures: Vec<String> = bulk
            .iter()
            .filter_map(|c| {
                let client = Client::from_json(server, &s[server], c);
                let (account, _) = account(&client.options(&[], &[]));
                account.token().err().map(|e| format!("{}: {e}", client.client_id))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{server}: {} of {} refused:\n{}",
            failures.len(),
            bulk.len(),
            failures.join("\n")
        );
    }
}

#[test]
fn jwt_access_token_exp_matches_the_engine_expiry() {
    let Some(s) = servers() else { return };
    for server in SERVERS {
        let client = Client::of(&s, server, "jwt");
        let (account, _) = account(&client.default_options());
        let token = account.token().unwrap();
        let claims = jwt_claims(token.access_token.expose());
        let exp_ms = claims["exp"].as_u64().expect("exp") * 1000;
        let diff = exp_ms.abs_diff(token.expires_at);
        assert!(diff <= 2_000, "{server}: exp {exp_ms} vs engine expires_at {} ({diff} ms apart)", token.expires_at);
    }
}

#[test]
fn hydra_introspection_says_the_token_is_active_for_the_client() {
    let Some(s) = servers() else { return };
    for role in ["basic", "jwt"] {
        let client = Client::of(&s, "hydra", role);
        let (account, _) = account(&client.default_options());
        let token = account.get_token().unwrap();
        let admin = s["hydra"]["admin_url"].as_str().unwrap();
        let out = hydra_cli(&s, &["introspect", "token", "--endpoint", admin, "--format", "json", &token]);
        let info: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(info["active"], json!(true), "{role}: {info}");
        assert_eq!(info["sub"].as_str(), Some(client.client_id.as_str()), "{role}: {info}");
        assert_eq!(info["client_id"].as_str(), Some(client.client_id.as_str()));
    }
}

/// Callers hammer a 5-second token for 30 seconds: every call succeeds and no
/// caller ever waits on the network after the first token, because every
/// refresh after the first is a background refresh-ahead (a caller waits only
/// when a refresh has reason `initial`, `expired` or `invalidated`).
#[test]
fn five_second_tokens_are_refreshed_ahead_for_thirty_seconds() {
    let Some(s) = servers() else { return };
    let seconds: u64 = std::env::var("TOKENWELL_E2E_SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let handles: Vec<_> = SERVERS
        .iter()
        .map(|server| {
            let client = Client::of(&s, server, "short_ttl");
            std::thread::spawn(move || soak(client, seconds))
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

fn soak(client: Client, seconds: u64) {
    let server = client.server.clone();
    let (account, events) = account(&client.default_options());
    let first = account.token().unwrap();
    let lifetime = first.expires_at - first.received_at;
    assert!(lifetime <= 5_000, "{server}: short_ttl token lives {lifetime} ms");
    let calls = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (account, calls) = (account.clone(), Arc::clone(&calls));
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while Instant::now() < deadline {
                    if let Err(e) = account.token() {
                        failures.push(e.to_string());
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    std::thread::yield_now();
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert!(failures.is_empty(), "{server}: {} failed calls: {:?}", failures.len(), &failures[..failures.len().min(3)]);
    let events = events.lock().unwrap();
    let reasons: Vec<RefreshReason> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::RefreshStarted { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons[0], RefreshReason::Initial);
    assert!(reasons[1..].iter().all(|r| *r == RefreshReason::Ahead), "{server}: a caller waited: {reasons:?}");
    let acquired = events.iter().filter(|e| matches!(e.kind, EventKind::TokenAcquired { .. })).count();
    let expected_min = (seconds * 1000 / lifetime) as usize;
    assert!(acquired > expected_min, "{server}: only {acquired} tokens in {seconds} s of {lifetime} ms tokens");
    // Single flight: every refresh finished before the next one started.
    let mut open = 0i32;
    for event in events.iter() {
        match event.kind {
            EventKind::RefreshStarted { .. } => open += 1,
            EventKind::TokenAcquired { .. } | EventKind::RefreshFailed { .. } => open -= 1,
            _ => {}
        }
        assert!((0..=1).contains(&open), "{server}: two refreshes in flight");
    }
    println!(
        "{server}: {} calls in {seconds} s, {acquired} tokens, 0 failures, every refresh ahead of expiry",
        calls.load(Ordering::Relaxed)
    );
}

/// The Kubernetes order of a rotation: the mounted secret file gets `[new, old]`,
/// then the operator changes the client's secret in Hydra, then the file drops
/// the old one. A worker calling all the time sees no failed call.
#[test]
fn secret_rotation_in_hydra_has_zero_failed_calls() {
    let Some(s) = servers() else { return };
    let admin = s["hydra"]["admin_url"].as_str().unwrap().to_owned();
    let dir = std::env::temp_dir().join(format!("tokenwell-rotation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old_secret, new_secret) = (format!("old:+% {}", std::process::id()), format!("new&= é{}", std::process::id()));
    let client_file = dir.join("client.json");
    let write_client = |secret: &str| {
        let doc = json!({
            "client_name": "Rotating Worker",
            "client_secret": secret,
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "billing:read",
            "client_credentials_grant_access_token_lifespan": "4s",
        });
        std::fs::write(&client_file, doc.to_string()).unwrap();
    };
    write_client(&old_secret);
    let created: Value = serde_json::from_str(&hydra_cli(
        &s,
        &["create", "client", "--endpoint", &admin, "--format", "json", "--file", client_file.to_str().unwrap()],
    ))
    .unwrap();
    let client_id = created["client_id"].as_str().unwrap().to_owned();

    let secret_file = dir.join("client-secret");
    std::fs::write(&secret_file, format!("{old_secret}\n")).unwrap();
    let options = json!({"token_url": s["hydra"]["token_url"], "client_id": client_id, "client_secret": "unused",
                         "scope": "billing:read"});
    let (account, events) = account(&options);
    let account = account.with_secret_file(&secret_file).unwrap();
    account.token().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (account, stop) = (account.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut calls, mut failures) = (0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = account.token() {
                    failures.push(e.to_string());
                }
                calls += 1;
                std::thread::sleep(Duration::from_millis(5)); // pacing of a busy worker, not synchronization
            }
            (calls, failures)
        })
    };
    let acquired_since = |from: usize| {
        events.lock().unwrap()[from..].iter().filter(|e| matches!(e.kind, EventKind::TokenAcquired { .. })).count()
    };
    let wait_for = |what: &str, condition: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // 1. The mounted file gets [new, old].
    std::fs::write(&secret_file, format!("{new_secret}\n{old_secret}\n")).unwrap();
    let mark = events.lock().unwrap().len();
    wait_for("the new secret file to be read", &|| {
        events.lock().unwrap()[mark..].iter().any(|e| matches!(e.kind, EventKind::SecretsReplaced { .. }))
    });
    // The next refresh tries the new secret first; Hydra refuses it; the old one works.
    let mark = events.lock().unwrap().len();
    wait_for("a refresh with [new, old]", &|| acquired_since(mark) >= 1);
    // 2. The operator rotates the secret in Hydra.
    write_client(&new_secret);
    hydra_cli(
        &s,
        &[
            "update",
            "client",
            &client_id,
            "--endpoint",
            &admin,
            "--format",
            "json",
            "--file",
            client_file.to_str().unwrap(),
        ],
    );
    let mark = events.lock().unwrap().len();
    wait_for("two refreshes after the rotation", &|| acquired_since(mark) >= 2);
    // 3. The file drops the old secret.
    std::fs::write(&secret_file, format!("{new_secret}\n")).unwrap();
    let mark = events.lock().unwrap().len();
    wait_for("two refreshes with only the new secret", &|| acquired_since(mark) >= 2);

    stop.store(true, Ordering::Relaxed);
    let (calls, failures) = worker.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(calls > 100, "the worker made only {calls} calls");
    let fallbacks =
        events.lock().unwrap().iter().filter(|e| matches!(e.kind, EventKind::SecretFallback { .. })).count();
    println!("rotation: {calls} calls, 0 failures, {fallbacks} secret fallback(s) used");
    let _ = std::fs::remove_dir_all(&dir);
}
