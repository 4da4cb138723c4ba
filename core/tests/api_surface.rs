//! The engine's public surface that the conformance scenarios do not reach:
//! accessors, `Debug` output and the wording of JSON option errors. Scenarios
//! replayed by every host pin the decisions; these pin what only Rust callers
//! see. All on a virtual clock.

use tokenwell::{
    AuthMethod, CacheState, Config, ConfigOptions, FetchId, FileStamp, ListOrString, PollResult, SecretFileWatch,
    SecretOrSecrets, TokenCache,
};

const T0: u64 = 1_700_000_000_000;

fn config(json: &str) -> Config {
    Config::from_json(json).unwrap()
}

fn cache() -> TokenCache {
    let config = config(r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":"topsecret"}"#);
    TokenCache::new(config, 0)
}

fn send(cache: &mut TokenCache, now: u64) -> FetchId {
    match cache.poll(now) {
        PollResult::Send { request } => request.fetch_id,
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn accessors_follow_the_fetch() {
    let mut cache = cache();
    assert_eq!((cache.state(), cache.in_flight(), cache.current_token()), (CacheState::Idle, None, None));
    let id = send(&mut cache, T0);
    assert_eq!((cache.state(), cache.in_flight()), (CacheState::Fetching, Some(id)));
    let body = br#"{"access_token":"at-1","expires_in":3600}"#;
    let token = cache.handle_response(id, 200, &[], body, T0 + 40).unwrap();
    assert_eq!((cache.state(), cache.in_flight()), (CacheState::Idle, None));
    assert_eq!(cache.current_token(), Some(&token));
    assert_eq!(cache.current_token().unwrap().access_token.expose(), "at-1");
    assert_eq!(cache.config().client_id(), "c");
}

#[test]
fn token_debug_shows_its_instants_but_not_the_token() {
    let mut cache = cache();
    let id = send(&mut cache, T0);
    let token =
        cache.handle_response(id, 200, &[], br#"{"access_token":"at-secret-1","expires_in":3600}"#, T0).unwrap();
    let text = format!("{token:?}");
    assert!(!text.contains("at-secret-1"), "{text}");
    assert!(text.starts_with(r#"Token { access_token: "[redacted]", token_type: "Bearer", scope: [], "#), "{text}");
    assert!(text.contains(&format!("expires_at: {}", T0 + 3_600_000)), "{text}");
    assert!(text.ends_with("lifetime_source: ExpiresIn }"), "{text}");
}

#[test]
fn config_accessors_and_debug() {
    let c = config(
        r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":["very-secret-1","very-secret-2"],
            "audience":["https://api.one","https://api.two"],"extra_params":[["resource","r"]],
            "refresh_margin_ms":12345}"#,
    );
    assert_eq!(c.token_url(), "https://a.example/t");
    assert_eq!(c.audiences(), ["https://api.one", "https://api.two"]);
    assert_eq!(c.extra_params(), [("resource".to_owned(), "r".to_owned())]);
    assert_eq!(c.policy().refresh_margin_ms, 12_345);
    let text = format!("{c:?}");
    assert!(!text.contains("very-secret"), "{text}");
    assert!(text.starts_with(r#"Config { token_url: "https://a.example/t", client_id: "c", "#), "{text}");
    assert!(text.contains("secrets: [[redacted], [redacted]]"), "{text}");
    assert!(text.contains("refresh_margin_ms: 12345"), "{text}");
}

#[test]
fn option_debug_shows_lists_and_strings_but_not_secrets() {
    let options = ConfigOptions {
        client_secret: Some(SecretOrSecrets::Many(vec!["s-one".into(), "s-two".into()])),
        scope: Some(ListOrString::String("a b".into())),
        audience: Some(ListOrString::List(vec!["https://api".into()])),
        ..Default::default()
    };
    let text = format!("{options:?}");
    assert!(text.contains(r#"client_secret: Some([[redacted], [redacted]])"#), "{text}");
    assert!(text.contains(r#"scope: Some("a b")"#), "{text}");
    assert!(text.contains(r#"audience: Some(["https://api"])"#), "{text}");
    assert_eq!(format!("{:?}", SecretOrSecrets::One("s-one".into())), "[redacted]");
}

#[test]
fn auth_method_names() {
    assert_eq!(AuthMethod::ClientSecretBasic.as_str(), "client_secret_basic");
    assert_eq!(AuthMethod::ClientSecretPost.as_str(), "client_secret_post");
    for method in [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost] {
        assert_eq!(AuthMethod::parse(method.as_str()), Ok(method));
    }
}

/// A mistyped option is named with the type it takes; no value is echoed.
#[test]
fn mistyped_options_say_what_they_take() {
    for (option, value, takes) in [
        ("client_secret", "5", "must be a string or a list of strings"),
        ("client_secrets", "{}", "must be a string or a list of strings"),
        ("scope", "5", "must be a space-separated string or a list of strings"),
        ("audience", "true", "must be a space-separated string or a list of strings"),
        ("extra_params", r#"["a"]"#, "must be a list of [name, value] string pairs or a mapping of names to strings"),
        ("allow_insecure_http", r#""yes""#, "must be true or false"),
        ("backoff_jitter", "1", "must be true or false"),
        ("outage_grace", r#""no""#, "must be true or false"),
        ("refresh_ahead", r#""0.5""#, "must be a number"),
        ("refresh_ahead_jitter", "[]", "must be a number"),
        ("token_url", "1", "must be a string"),
        ("client_id", "[]", "must be a string"),
        ("auth_method", "2", "must be a string"),
        ("request_timeout_ms", r#""hunter2""#, "must be a whole number (milliseconds or bytes)"),
    ] {
        let e = Config::from_json(&format!(r#"{{"{option}": {value}}}"#)).unwrap_err();
        assert_eq!((e.field.as_str(), e.problem.as_str()), (option, takes), "{option}: {value}");
        assert!(!e.to_string().contains("hunter2"));
    }
}

/// Options that are not a JSON object at all: serde's message with every
/// quoted value replaced, so a secret pasted in the wrong place is not echoed.
#[test]
fn a_document_that_is_no_object_is_refused_without_echo() {
    let e = Config::from_json(r#""hunter2""#).unwrap_err();
    assert_eq!(e.field, "options");
    assert_eq!(e.problem, r#"invalid type: string "...", expected struct ConfigOptions"#);
    let e = Config::from_json("{").unwrap_err();
    assert_eq!(e.field, "options");
    assert!(!e.problem.contains("..."), "{}", e.problem);
}

/// The rule every host follows to notice a rotated secret file: `stat` at most
/// once a second (at once when forced, or when the clock went back), read when
/// the stamp differs from the one last read.
#[test]
fn secret_file_watch_checks_once_a_second_and_reads_on_change() {
    let stamp = FileStamp { device: 1, inode: 10, size: 12, modified_ns: 5, changed_ns: 5 };
    let mut watch = SecretFileWatch::new();
    assert!(watch.due(T0, false), "never checked");
    assert!(watch.changed(stamp, T0), "never read");
    watch.read(stamp);
    for (now, forced, due) in [
        (T0, false, false),
        (T0 + 1, false, false),
        (T0 + 999, false, false),
        (T0 + 1, true, true),
        (T0 + 1_000, false, true),
        (T0 - 1, false, true),
    ] {
        assert_eq!(watch.due(now, forced), due, "due({now}, {forced})");
    }
    assert!(!watch.changed(stamp, T0 + 1_000), "same stamp");
    assert!(!watch.due(T0 + 1_999, false), "checked at T0 + 1000");
    assert!(watch.changed(FileStamp { inode: 11, ..stamp }, T0 + 2_000), "a symlink swap");
    watch.failed(T0 + 3_000);
    assert!(!watch.due(T0 + 3_500, false), "a failed check counts as a check");
    assert!(watch.due(T0 + 4_000, false));
}

/// A token received near the end of time (its expiry saturates at u64::MAX)
/// through an outage: outage grace serves it past its usable limit, and no
/// deadline arithmetic overflows. Host clocks never get there; the engine must
/// not panic on input that does.
#[test]
fn outage_grace_near_the_end_of_time() {
    let config = config(
        r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":"s","refresh_ahead_jitter":0,
            "backoff_jitter":false,"outage_grace_safety_ms":1000}"#,
    );
    let mut cache = TokenCache::new(config, 0);
    let start = u64::MAX - 10_000;
    let id = send(&mut cache, start);
    let token = cache.handle_response(id, 200, &[], br#"{"access_token":"at-1","expires_in":3600}"#, start).unwrap();
    assert_eq!((token.expires_at, token.usable_until, token.refresh_at), (u64::MAX, u64::MAX - 5_000, start + 3_750));
    let PollResult::ReadyAndSend { request, .. } = cache.poll(token.refresh_at) else {
        panic!("expected a refresh ahead")
    };
    let error = cache.handle_response(request.fetch_id, 503, &[], b"", token.refresh_at).unwrap_err();
    assert_eq!(error.retry_at, Some(token.refresh_at + 1_000));
    match cache.poll(token.usable_until) {
        PollResult::ReadyAndSend { token: served, .. } => assert_eq!(served.access_token.expose(), "at-1"),
        other => panic!("expected the token under outage grace, got {other:?}"),
    }
    assert_eq!(cache.next_wakeup(), Some(u64::MAX - 1_000));
}

#[test]
fn cache_file_problems_are_engine_events_with_one_name_per_problem() {
    use tokenwell::CacheFileProblem;
    let names = [
        (CacheFileProblem::Ignored, "ignored"),
        (CacheFileProblem::PermissionsTightened, "permissions_tightened"),
        (CacheFileProblem::WriteFailed, "write_failed"),
        (CacheFileProblem::LockFailed, "lock_failed"),
        (CacheFileProblem::LockTimeout, "lock_timeout"),
    ];
    for (problem, name) in names {
        assert_eq!(CacheFileProblem::parse(name), Some(problem));
        assert_eq!(serde_json::to_value(problem).unwrap(), name);
    }
    assert_eq!(CacheFileProblem::parse("Ignored"), None);
    let mut cache = cache();
    cache.report_cache_file_problem("/var/cache/t.json", CacheFileProblem::WriteFailed, "ENOSPC", T0);
    let event = serde_json::to_value(cache.poll_event().unwrap()).unwrap();
    assert_eq!(
        event,
        serde_json::json!({"at": T0, "actor_type": "client", "actor_id": "c", "type": "cache_file_problem",
                           "path": "/var/cache/t.json", "problem": "write_failed", "detail": "ENOSPC"})
    );
    assert!(cache.poll_event().is_none());
}
