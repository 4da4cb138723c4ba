//! End-to-end, issue 12: the Rust host against real Ory Hydra and Keycloak on
//! 127.0.0.1 (`tests/integration/servers/with-servers.sh`), configured by
//! issuer only (issuer + client id + credential; the engine discovers the
//! token endpoint): a token with a client secret, tokens with signed client
//! assertions (`private_key_jwt` RS256 and ES256 on both servers,
//! `client_secret_jwt` HS256 on Keycloak), a key rotation through the key
//! file under load with no failed call on both servers, a replayed assertion
//! refused as a typed error, and `from_env` with `ISSUER_URL` and
//! `CLIENT_PRIVATE_KEY_FILE`. The Rust twin of
//! `bindings/python/tests/test_integration_signed.py`.
//!
//! The blocking driver takes no transport of its own, so the assertions'
//! headers are read where a host can see them: the requests a sans-IO
//! [`TokenCache`] hands out, sent by [`drive`]. Under load (the rotation),
//! the blocking driver is the host, and which key signed each request is read
//! from the engine's events; the server's key set proves it on the wire (it
//! holds only the old key at the first token and only the new one at the last).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokenwell::blocking::ServiceAccount;
use tokenwell::{AuthMethod, Config, ErrorKind, Event, EventKind, Fault, InvalidateOutcome, PollResult, TokenCache};
use tokenwell_integration::{
    account_with_log, drive, form_value, hydra_set_jwks, jwt_claims, jwt_header, now_ms, os_random, send, servers,
    EventLog, KeycloakAdmin,
};

/// The Keycloak `client-jwt` client's key set is changed by the rotation test:
/// every test that signs for that client holds this lock.
static KEYCLOAK_JWT_CLIENT: Mutex<()> = Mutex::new(());
/// The two rotations run one after the other: each keeps four threads busy.
static ROTATION: Mutex<()> = Mutex::new(());

fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    // A failed test holding the lock leaves nothing half-done that the next must avoid.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keycloak's entry of servers.json, or `None` (with a note) when the harness
/// ran without it (`TOKENWELL_KEYCLOAK=0`).
fn keycloak(s: &Value) -> Option<&Value> {
    let keycloak = &s["keycloak"];
    if keycloak.is_null() {
        eprintln!("skipped the Keycloak part: no keycloak in servers.json (TOKENWELL_KEYCLOAK=0)");
        return None;
    }
    Some(keycloak)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string in servers.json: {v}")).to_owned()
}

/// Options for `client` of `server` by issuer only, asking for the client's
/// scopes and (on Hydra, which takes an `audience` parameter) its audience.
/// Keycloak takes no audience parameter: a mapper on each client sets it.
fn by_issuer(server: &Value, client: &Value) -> Value {
    let mut options = json!({"issuer": server["issuer"], "client_id": client["client_id"]});
    if client["scopes"].is_array() {
        options["scope"] = client["scopes"].clone();
    }
    if server["audience_parameter"] == "audience" {
        options["audience"] = client["audience"].clone();
    }
    options
}

fn with(mut options: Value, extra: Value) -> Value {
    for (name, value) in extra.as_object().unwrap() {
        options[name] = value.clone();
    }
    options
}

fn pem_of(key: &Value) -> String {
    let path = text(&key["private_key_file"]);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Every `discovery_completed` event: the token endpoint and auth method chosen.
fn discoveries(events: &[Event]) -> Vec<(String, AuthMethod)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::DiscoveryCompleted { token_endpoint, auth_method, .. } => {
                Some((token_endpoint.clone(), *auth_method))
            }
            _ => None,
        })
        .collect()
}

fn sans_io_cache(options: &Value) -> TokenCache {
    let config = Config::from_json(&options.to_string()).expect("valid configuration");
    let seed = os_random();
    let mut cache = TokenCache::new(config, u64::from_le_bytes(seed[..8].try_into().unwrap()));
    cache.add_entropy(&os_random());
    cache
}

#[test]
fn by_issuer_only_with_a_client_secret_on_hydra_and_keycloak() {
    let Some(s) = servers() else { return };
    for name in ["hydra", "keycloak"] {
        let server = if name == "keycloak" {
            let Some(k) = keycloak(&s) else { continue };
            k
        } else {
            &s[name]
        };
        let client = &server["clients"]["basic"];
        let options = with(by_issuer(server, client), json!({"client_secret": client["client_secret"]}));
        let (account, log) = account_with_log(&options);
        let token = account.token().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!token.access_token.expose().is_empty());
        for scope in client["scopes"].as_array().unwrap() {
            assert!(token.scope.iter().any(|s| s == scope), "{name}: {scope} not granted: {:?}", token.scope);
        }
        assert_eq!(
            discoveries(&log.snapshot()),
            [(text(&server["token_url"]), AuthMethod::ClientSecretBasic)],
            "{name}: exactly one discovery, of servers.json's token_url"
        );
        // Served from the cache: no second discovery, no second request.
        account.token().unwrap();
        assert_eq!(discoveries(&log.snapshot()).len(), 1, "{name}");
    }
}

/// What a signed-assertion client authenticates with.
enum Credential<'a> {
    /// `private_key_jwt` with this key entry of servers.json.
    Key(&'a Value),
    /// `client_secret_jwt` with this secret.
    SecretJwt(&'a str),
}

/// By issuer only: a token through the sans-IO cache (recording the one
/// assertion sent, whose header and claims are checked) and one through the
/// blocking driver.
fn signed_by_issuer(name: &str, server: &Value, client: &Value, credential: Credential<'_>, alg: &str) {
    let (extra, method, kid) = match credential {
        Credential::Key(key) => {
            (json!({"private_key": pem_of(key)}), AuthMethod::PrivateKeyJwt, Some(text(&key["kid"])))
        }
        Credential::SecretJwt(secret) => {
            (json!({"client_secret": secret, "auth_method": "client_secret_jwt"}), AuthMethod::ClientSecretJwt, None)
        }
    };
    let options = with(by_issuer(server, client), extra);
    let what = format!("{name}/{}/{alg}", text(&client["client_id"]));
    let token_url = text(&server["token_url"]);

    let mut cache = sans_io_cache(&options);
    let mut sent = Vec::new();
    let token = drive(&mut cache, &mut sent).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!token.access_token.expose().is_empty());
    assert_eq!(cache.auth_method(), method, "{what}");
    assert_eq!(cache.token_endpoint(), Some(token_url.as_str()), "{what}");
    let assertions: Vec<String> =
        sent.iter().filter(|r| r.method == "POST").filter_map(|r| form_value(&r.body, "client_assertion")).collect();
    assert_eq!(assertions.len(), 1, "{what}: one token request, one assertion");
    let header = jwt_header(&assertions[0]);
    assert_eq!(header["alg"].as_str(), Some(alg), "{what}: {header}");
    assert_eq!(header["kid"].as_str(), kid.as_deref(), "{what}: {header}");
    let claims = jwt_claims(&assertions[0]);
    assert_eq!(claims["iss"], client["client_id"], "{what}");
    assert_eq!(claims["sub"], client["client_id"], "{what}");
    assert_eq!(claims["aud"].as_str(), Some(token_url.as_str()), "{what}");

    let (account, log) = account_with_log(&options);
    account.token().unwrap_or_else(|e| panic!("{what} (blocking driver): {e}"));
    assert_eq!(discoveries(&log.snapshot()), [(token_url, method)], "{what}");
    println!("{what}: token by issuer only, assertion header {header}");
}

#[test]
fn hydra_private_key_jwt_by_issuer_rs256_and_es256() {
    let Some(s) = servers() else { return };
    let hydra = &s["hydra"];
    for role in ["rs256", "es256"] {
        let client = &hydra["jwt_clients"][role];
        let alg = text(&client["signing_alg"]);
        assert_eq!(alg, role.to_uppercase());
        signed_by_issuer("hydra", hydra, client, Credential::Key(&client["keys"][0]), &alg);
    }
}

#[test]
fn keycloak_signed_jwt_clients_by_issuer_rs256_es256_and_hs256() {
    let Some(s) = servers() else { return };
    let Some(keycloak) = keycloak(&s) else { return };
    let _client_keys = lock(&KEYCLOAK_JWT_CLIENT);
    let pk = &keycloak["jwt_clients"]["private_key_jwt"];
    let algs: Vec<String> = pk["keys"].as_array().unwrap().iter().map(|k| text(&k["alg"])).collect();
    assert_eq!(algs, ["RS256", "ES256"]);
    for key in pk["keys"].as_array().unwrap() {
        signed_by_issuer("keycloak", keycloak, pk, Credential::Key(key), &text(&key["alg"]));
    }
    let hs = &keycloak["jwt_clients"]["client_secret_jwt"];
    signed_by_issuer("keycloak", keycloak, hs, Credential::SecretJwt(&text(&hs["client_secret"])), "HS256");
}

/// A key rotation as an operator does it, with four threads calling
/// `token()` all the time: the server learns the new key (`[new, old]`), the
/// mounted key file is swapped atomically to `[new, old]`, a fresh token is
/// signed with the new key, the server drops the old key, and a fresh token
/// still works. Not one call may fail.
struct Rotation<'a> {
    name: &'a str,
    /// Issuer, client id and scopes; the key comes from the key file.
    options: Value,
    /// Key entries of servers.json (kid, private_key_file, public_jwk).
    old: &'a Value,
    new: &'a Value,
    /// Sets the server's key set for the client.
    set_server_keys: &'a dyn Fn(&[Value]),
    /// The server's key set to leave behind, even if the test fails.
    restore: Vec<Value>,
}

/// Runs its closure when dropped, also while a failed assertion unwinds.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn rotate_under_load(rotation: Rotation<'_>) {
    let Rotation { name, options, old, new, set_server_keys, restore } = rotation;
    let (old_kid, new_kid) = (text(&old["kid"]), text(&new["kid"]));
    let (old_pem, new_pem) = (pem_of(old), pem_of(new));
    let dir = std::env::temp_dir().join(format!("tokenwell-e2e-key-rotation-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("client-key.pem");
    std::fs::write(&key_file, &old_pem).unwrap();

    let _restore = OnDrop(|| {
        // Never panic here (it may run while a failure unwinds): say what went wrong.
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| set_server_keys(&restore))) {
            eprintln!("{name}: restoring the client's keys failed: {panic:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
    set_server_keys(&[old["public_jwk"].clone()]); // the server knows only the old key
    let options = with(options, json!({"private_key": old_pem, "invalidate_min_interval_ms": 0}));
    let (account, log) = account_with_log(&options);
    let account = account.with_key_file(&key_file).expect("the key file is usable");

    let first = account.token().unwrap_or_else(|e| panic!("{name}: first token: {e}"));
    assert!(!first.access_token.expose().is_empty());
    // (Discovery's first well-known URL may answer 404: a refresh_failed before this mark.)
    let mark = log.len();

    let stop = Arc::new(AtomicBool::new(false));
    let _stop_workers = OnDrop({
        let stop = Arc::clone(&stop);
        move || stop.store(true, Ordering::Relaxed)
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (account, stop, calls) = (account.clone(), Arc::clone(&stop), Arc::clone(&calls));
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
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
    let fresh_token = |step: &str| {
        let current = account.get_token().unwrap_or_else(|e| panic!("{name}: {step}: {e}"));
        assert_eq!(account.invalidate(&current), InvalidateOutcome::Invalidated, "{name}: {step}");
        account.get_token().unwrap_or_else(|e| panic!("{name}: {step}: {e}"));
    };

    set_server_keys(&[new["public_jwk"].clone(), old["public_jwk"].clone()]); // the server learns the new key
    swap(&key_file, &format!("{new_pem}{old_pem}")); // the mounted file: [new, old]
    let replaced = log.wait_for(Duration::from_secs(30), |events| {
        events[mark..].iter().any(|e| matches!(e.kind, EventKind::KeysReplaced { .. }))
    });
    assert!(replaced, "{name}: no keys_replaced event within 30 s of the key file swap");
    fresh_token("a token signed with the new key");
    set_server_keys(&[new["public_jwk"].clone()]); // the old key is removed
    fresh_token("a token after the old key was removed");

    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let elapsed = started.elapsed();
    let calls = calls.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{name}: {} of {calls} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let events = log.snapshot();
    let refresh_failed: Vec<&Event> =
        events[mark..].iter().filter(|e| matches!(e.kind, EventKind::RefreshFailed { .. })).collect();
    assert!(refresh_failed.is_empty(), "{name}: refresh_failed after the first token: {refresh_failed:?}");
    let replacements: Vec<usize> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::KeysReplaced { count, .. } => Some(count),
            _ => None,
        })
        .collect();
    assert_eq!(replacements, [2], "{name}: one replacement, by [new, old]");
    let kids = signing_kids(&events, &[vec![old_kid.clone()], vec![new_kid.clone(), old_kid.clone()]]);
    assert!(kids.len() >= 3, "{name}: {kids:?}");
    assert_eq!(kids[0], old_kid, "{name}: the first token is signed with the old key: {kids:?}");
    assert_eq!(kids[kids.len() - 2..], [new_kid.clone(), new_kid], "{name}: the last two with the new key");
    println!(
        "{name}: key rotation under load: {calls} calls by 4 threads in {} ms, 0 failed, {} token requests \
         (kids in order: {kids:?})",
        elapsed.as_millis(),
        kids.len()
    );
}

/// Replaces `path` with `contents` atomically (write beside it, then rename),
/// as a mounted secret changes.
fn swap(path: &Path, contents: &str) {
    let staged: PathBuf = path.with_file_name("staged");
    std::fs::write(&staged, contents).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

/// The `kid` that signed each token request, in order, from the engine's
/// events: a request signs with key `min(secret_index, count - 1)` of the key
/// set in force when it started (the first of `key_sets`, then the next at
/// each `keys_replaced`).
fn signing_kids(events: &[Event], key_sets: &[Vec<String>]) -> Vec<String> {
    let mut set = 0;
    let mut kids = Vec::new();
    for event in events {
        match event.kind {
            EventKind::KeysReplaced { .. } => set += 1,
            EventKind::RefreshStarted { secret_index, .. } => {
                let keys = &key_sets[set];
                kids.push(keys[secret_index.min(keys.len() - 1)].clone());
            }
            _ => {}
        }
    }
    kids
}

#[test]
fn hydra_key_rotation_through_the_key_file_with_no_failed_call() {
    let Some(s) = servers() else { return };
    let _one_at_a_time = lock(&ROTATION);
    let hydra = &s["hydra"];
    let client = &hydra["jwt_clients"]["rotating"];
    let client_id = text(&client["client_id"]);
    let old = &client["keys"][0];
    rotate_under_load(Rotation {
        name: "hydra",
        options: by_issuer(hydra, client),
        old,
        new: &client["next_key"],
        set_server_keys: &|keys: &[Value]| hydra_set_jwks(&s, &client_id, keys),
        restore: vec![old["public_jwk"].clone()], // as with-servers.sh made it
    });
}

/// The same rotation on Keycloak, whose `client-jwt` client keeps its public
/// keys in the client attribute `jwks.string`, changed with the admin REST
/// API. A client update invalidates Keycloak's cache of the client's keys
/// (`InfinispanPublicKeyStorageProviderFactory` listens for
/// `ClientUpdatedEvent`), so each change takes effect at once.
#[test]
fn keycloak_key_rotation_through_the_key_file_with_no_failed_call() {
    let Some(s) = servers() else { return };
    let Some(keycloak) = keycloak(&s) else { return };
    let _one_at_a_time = lock(&ROTATION);
    let _client_keys = lock(&KEYCLOAK_JWT_CLIENT);
    let client = &keycloak["jwt_clients"]["private_key_jwt"];
    let client_id = text(&client["client_id"]);
    let (rsa, ec) = (&client["keys"][0], &client["keys"][1]);
    let admin = KeycloakAdmin::of(&s);
    rotate_under_load(Rotation {
        name: "keycloak",
        options: by_issuer(keycloak, client),
        old: rsa,
        new: ec,
        set_server_keys: &|keys: &[Value]| {
            admin.set_client_jwks(&client_id, keys).unwrap_or_else(|e| panic!("{e}"));
        },
        restore: vec![rsa["public_jwk"].clone(), ec["public_jwk"].clone()], // as with-servers.sh made it
    });
}

/// Sends one token request twice, as if someone had copied it: the server
/// takes the first and refuses the replay, which the engine reports as a
/// typed, non-retryable error.
fn replayed(name: &str, token_url: &str, client: &Value, key: &Value) -> tokenwell::TokenError {
    let mut options = json!({"token_url": token_url, "client_id": client["client_id"], "private_key": pem_of(key)});
    if client["scopes"].is_array() {
        options["scope"] = client["scopes"].clone();
    }
    let mut cache = sans_io_cache(&options);
    let PollResult::Send { request } = cache.poll(now_ms()) else { panic!("{name}: the first poll sends") };
    assert_eq!(request.http.method, "POST");
    let (stolen, _, _) = send(&request.http); // someone sent the assertion first
    assert_eq!(stolen, 200, "{name}: the first use of the assertion is accepted");
    let (status, headers, body) = send(&request.http);
    let error = cache
        .handle_response(request.fetch_id, status, &headers, &body, now_ms())
        .expect_err("a replayed assertion is refused");
    println!(
        "{name}: replayed assertion: kind {} fault {} status {:?} error {:?} description {:?}",
        error.kind, error.fault, error.status, error.oauth_error, error.description
    );
    assert!(error.status.is_some_and(|s| (400..500).contains(&s)), "{name}: {error:?}");
    assert!(!error.retryable, "{name}: {error:?}");
    assert!(matches!(error.fault, Fault::Credentials | Fault::Configuration), "{name}: {error:?}");
    // The next poll does not send it again: the refusal is held.
    assert!(matches!(cache.poll(now_ms()), PollResult::Fail { .. }), "{name}: held, not retried");
    error
}

#[test]
fn a_replayed_assertion_is_refused_as_a_typed_error_by_hydra_and_keycloak() {
    let Some(s) = servers() else { return };
    let hydra = &s["hydra"];
    let client = &hydra["jwt_clients"]["es256"];
    let error = replayed("hydra", &text(&hydra["token_url"]), client, &client["keys"][0]);
    // Hydra's `jti_known` is no RFC 6749 code: another refusal, held like a configuration error.
    assert_eq!((error.kind, error.oauth_error.as_deref()), (ErrorKind::Rejected, Some("jti_known")), "{error:?}");

    let Some(keycloak) = keycloak(&s) else { return };
    let _client_keys = lock(&KEYCLOAK_JWT_CLIENT);
    let client = &keycloak["jwt_clients"]["private_key_jwt"];
    let error = replayed("keycloak", &text(&keycloak["token_url"]), client, &client["keys"][0]);
    assert_eq!(error.kind, ErrorKind::InvalidClient, "{error:?}");
    assert_eq!(error.description.as_deref(), Some("Token reuse detected"), "{error:?}");
}

/// The child process of [`hydra_private_key_jwt_from_env_with_a_prefix`]
/// marks itself with this variable.
const FROM_ENV_CHILD: &str = "TOKENWELL_E2E_FROM_ENV_CHILD";
const PREFIX: &str = "BILLING_";

/// `ServiceAccount::from_env` reads the process environment, which a test
/// must not change while other tests run: this test runs
/// [`from_env_in_a_child_process`] in a child process of this test binary,
/// with `BILLING_ISSUER_URL`, `BILLING_CLIENT_PRIVATE_KEY_FILE`,
/// `BILLING_CLIENT_ID` and `BILLING_SCOPE` set for it only.
#[test]
fn hydra_private_key_jwt_from_env_with_a_prefix() {
    let Some(s) = servers() else { return };
    let hydra = &s["hydra"];
    let client = &hydra["jwt_clients"]["es256"];
    let scopes: Vec<String> = client["scopes"].as_array().unwrap().iter().map(text).collect();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "from_env_in_a_child_process", "--nocapture", "--test-threads=1"])
        .env(FROM_ENV_CHILD, "1")
        .env(format!("{PREFIX}CLIENT_ID"), text(&client["client_id"]))
        .env(format!("{PREFIX}ISSUER_URL"), text(&hydra["issuer"]))
        .env(format!("{PREFIX}CLIENT_PRIVATE_KEY_FILE"), text(&client["keys"][0]["private_key_file"]))
        .env(format!("{PREFIX}SCOPE"), scopes.join(" "));
    for name in ["CLIENT_SECRET", "CLIENT_SECRET_FILE", "TOKEN_URL", "HYDRA_URL", "AUTH_METHOD", "AUDIENCE"] {
        child.env_remove(format!("{PREFIX}{name}"));
    }
    let output = child.output().expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the child failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}");
    assert!(stdout.contains("from_env: token by"), "the child did not get a token:\n{stdout}");
}

/// Runs only as the child of [`hydra_private_key_jwt_from_env_with_a_prefix`]
/// (a no-op otherwise).
#[test]
fn from_env_in_a_child_process() {
    if std::env::var_os(FROM_ENV_CHILD).is_none() {
        return;
    }
    let Some(s) = servers() else { panic!("the child needs TOKENWELL_SERVERS") };
    let log = Arc::new(EventLog::default());
    let account = {
        let sink = Arc::clone(&log);
        ServiceAccount::from_env_with(
            PREFIX,
            tokenwell::ExplicitOptions::default(),
            Some(Box::new(move |e: &Event| sink.record(e))),
        )
        .expect("configured from the environment")
    };
    let token = account.token().unwrap_or_else(|e| panic!("from_env: {e}"));
    assert!(!token.access_token.expose().is_empty());
    assert_eq!(
        discoveries(&log.snapshot()),
        [(text(&s["hydra"]["token_url"]), AuthMethod::PrivateKeyJwt)],
        "discovered from {PREFIX}ISSUER_URL, signed with the key of {PREFIX}CLIENT_PRIVATE_KEY_FILE"
    );
    println!("from_env: token by {PREFIX}ISSUER_URL discovery and private_key_jwt");
}
