//! Property tests over random host timelines and random response bytes, on a
//! virtual clock.
//!
//! Invariants: a token is never served at or past `expires_at - margin`; at most
//! one fetch is in flight; nothing is sent before `retry_at` while backing off;
//! no input makes the engine panic; no secret appears in any error or event.

use proptest::prelude::*;
use tokenwell::{
    parse_token_response, ClientSecret, Config, EventKind, FetchId, PollResult, RefreshPolicy, TokenCache,
    TokenRequest, TransportErrorKind,
};

const T0: u64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
enum Reply {
    Token { expires_in: i64 },
    TokenNoExpiry,
    Status(u16),
    OAuthError(&'static str, u16),
    RetryAfter(u16, u32),
    Garbage(Vec<u8>),
    EchoSecret,
    Transport(bool),
}

#[derive(Debug, Clone)]
enum Action {
    Poll,
    Reply(Reply),
    Invalidate,
    ReplaceSecrets(bool),
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => (-10i64..100_000).prop_map(|expires_in| Reply::Token { expires_in }),
        1 => Just(Reply::TokenNoExpiry),
        2 => prop::sample::select(vec![401u16, 404, 429, 500, 502, 503]).prop_map(Reply::Status),
        2 => (
            prop::sample::select(vec!["invalid_client", "invalid_scope", "invalid_request", "server_error",
                "temporarily_unavailable", "slow_down", "access_denied"]),
            prop::sample::select(vec![200u16, 400, 401, 500]),
        ).prop_map(|(code, status)| Reply::OAuthError(code, status)),
        1 => (prop::sample::select(vec![429u16, 503]), 0u32..100_000).prop_map(|(s, r)| Reply::RetryAfter(s, r)),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Reply::Garbage),
        1 => Just(Reply::EchoSecret),
        1 => any::<bool>().prop_map(Reply::Transport),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => Just(Action::Poll),
        5 => reply().prop_map(Action::Reply),
        1 => Just(Action::Invalidate),
        1 => any::<bool>().prop_map(Action::ReplaceSecrets),
    ]
}

/// Random time steps: mostly small, sometimes large, rarely backwards.
fn step() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..2_000,
        3 => 0i64..200_000,
        1 => 0i64..4_000_000,
    ]
}

const SECRETS: [&str; 3] = ["SECRET-a:+%& é=1", "SECRET-b/old 2", "SECRET-rotated+3"];

fn config(secret_count: usize, lifetime_default: u64, jitter: bool) -> Config {
    let secrets: Vec<String> = SECRETS[..secret_count].iter().map(|s| s.to_string()).collect();
    Config::from_json(
        &serde_json::json!({
            "token_url": "https://auth.example/oauth2/token",
            "client_id": "prop-client",
            "client_secret": secrets,
            "scope": "a b",
            "default_lifetime_ms": lifetime_default,
            "backoff_jitter": jitter,
        })
        .to_string(),
    )
    .unwrap()
}

fn body_for(reply: &Reply, n: u64) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let json = |v: serde_json::Value| v.to_string().into_bytes();
    match reply {
        Reply::Token { expires_in } => (
            200,
            vec![],
            json(
                serde_json::json!({"access_token": format!("at-{n}"), "token_type": "Bearer", "expires_in": expires_in}),
            ),
        ),
        Reply::TokenNoExpiry => (200, vec![], json(serde_json::json!({"access_token": format!("at-{n}")}))),
        Reply::Status(s) => (*s, vec![], b"<html>nope</html>".to_vec()),
        Reply::OAuthError(code, s) => (*s, vec![], json(serde_json::json!({"error": code, "error_description": "x"}))),
        Reply::RetryAfter(s, secs) => (*s, vec![("Retry-After".into(), secs.to_string())], vec![]),
        Reply::Garbage(bytes) => (200, vec![], bytes.clone()),
        Reply::EchoSecret => (
            400,
            vec![],
            json(
                serde_json::json!({"error": "invalid_request", "error_description": format!("bad secret {} / {} / {}", SECRETS[0], SECRETS[1], SECRETS[2])}),
            ),
        ),
        Reply::Transport(_) => unreachable!(),
    }
}

/// Checks `text` for the secrets this engine was ever given (it cannot scrub
/// strings it never saw).
fn assert_no_secret_of(text: &str, known: &[&str]) {
    for secret in known {
        assert!(!text.contains(secret), "secret leaked: {text}");
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        assert!(!text.contains(&encoded), "encoded secret leaked: {text}");
    }
}

fn assert_no_secret(text: &str) {
    assert_no_secret_of(text, &SECRETS);
}

struct Model {
    /// The request in flight, with the instant after which the engine may abandon it.
    outstanding: Option<(FetchId, u64)>,
    /// While backing off: nothing may be sent before this instant.
    not_before: Option<u64>,
    /// A transient failure streak is in progress (outage grace may serve the
    /// token inside its margin, never within the safety of its expiry).
    outage: bool,
}

fn check_served(token: &tokenwell::Token, now: u64, policy: &RefreshPolicy, outage: bool) {
    let lifetime = token.expires_at - token.received_at;
    let margin = policy.refresh_margin_ms.min(lifetime / 2);
    let limit = if outage && policy.outage_grace { policy.outage_grace_safety_ms.min(margin) } else { margin };
    assert!(
        now < token.expires_at - limit,
        "served at {now}, but usable only until {} (outage: {outage})",
        token.expires_at - limit
    );
}

fn check_send(model: &mut Model, request: &TokenRequest, now: u64, lenient: bool) {
    if lenient {
        model.outstanding = Some((request.fetch_id, now + request.timeout_ms + 1_000));
        return;
    }
    if let Some((id, deadline)) = model.outstanding {
        assert!(
            now >= deadline,
            "fetch {} sent while {} in flight (deadline {deadline}, now {now})",
            request.fetch_id,
            id
        );
    }
    if let Some(not_before) = model.not_before {
        assert!(now >= not_before, "sent at {now} before retry_at {not_before}");
    }
    model.outstanding = Some((request.fetch_id, now + request.timeout_ms + 1_000));
    model.not_before = None;
}

/// Drains the engine's events into `into`, following the outage state they announce.
fn absorb(cache: &mut TokenCache, model: &mut Model, into: &mut Vec<tokenwell::Event>) {
    while let Some(event) = cache.poll_event() {
        match event.kind {
            EventKind::BackoffScheduled { hold, .. } => model.outage = !hold,
            EventKind::TokenAcquired { .. } | EventKind::TokenInvalidated { .. } => model.outage = false,
            _ => {}
        }
        into.push(event);
    }
}

fn run(secret_count: usize, jitter: bool, entropy: u64, timeline: Vec<(i64, Action)>, monotonic: bool) {
    let config = config(secret_count, 300_000, jitter);
    let policy = config.policy().clone();
    let mut cache = TokenCache::new(config, entropy);
    let mut model = Model { outstanding: None, not_before: None, outage: false };
    let mut now = T0;
    let mut issued = 0u64;
    let mut lenient = false;
    let mut known: Vec<&str> = SECRETS[..secret_count].to_vec();
    for (dt, action) in timeline {
        let snapshot_of_known = known.clone();
        let assert_no_secret = |text: &str| assert_no_secret_of(text, &snapshot_of_known);
        let dt = if monotonic { dt.abs() } else { dt };
        let next = now as i64 + dt;
        if next < now as i64 {
            // The engine shifts its deadlines by an amount this model does not
            // track; from here on only the serving and leak invariants are checked.
            model = Model { outstanding: None, not_before: None, outage: model.outage };
            lenient = true;
        }
        now = next.max(0) as u64;
        let mut drained: Vec<tokenwell::Event> = Vec::new();
        match action {
            // The poll's own events (an abandoned fetch is a transient failure)
            // are seen before what it served is checked.
            Action::Poll => match (cache.poll(now), absorb(&mut cache, &mut model, &mut drained)) {
                (PollResult::Ready { token }, ()) => check_served(&token, now, &policy, model.outage),
                (PollResult::ReadyAndSend { token, request }, ()) => {
                    check_served(&token, now, &policy, model.outage);
                    check_send(&mut model, &request, now, lenient);
                }
                (PollResult::Send { request }, ()) => check_send(&mut model, &request, now, lenient),
                (PollResult::Wait { fetch_id }, ()) => {
                    if !lenient {
                        assert_eq!(model.outstanding.map(|o| o.0), Some(fetch_id));
                    }
                    model.outstanding = Some((fetch_id, model.outstanding.map_or(now, |o| o.1)));
                }
                (PollResult::Fail { error }, ()) => {
                    assert_no_secret(&error.to_string());
                    assert!(error.retry_at.is_some_and(|at| at > now), "fail without a future retry_at: {error:?}");
                }
            },
            Action::Reply(reply) => {
                let Some((id, _)) = model.outstanding.take() else { continue };
                issued += 1;
                let result = match &reply {
                    Reply::Transport(timeout) => {
                        let kind = if *timeout { TransportErrorKind::Timeout } else { TransportErrorKind::Connect };
                        Err(cache.handle_transport_error(id, kind, &format!("refused {}", SECRETS[0]), now))
                    }
                    other => {
                        let (status, headers, body) = body_for(other, issued);
                        cache.handle_response(id, status, &headers, &body, now)
                    }
                };
                match result {
                    Ok(token) => assert!(token.usable_until > now && token.refresh_at < token.usable_until),
                    Err(error) => {
                        assert_no_secret(&error.to_string());
                        assert_no_secret(&serde_json::to_string(&error).unwrap());
                        if error.kind != tokenwell::ErrorKind::StaleFetch {
                            model.not_before = error.retry_at;
                        }
                    }
                }
            }
            Action::Invalidate => {
                if let Some(token) = cache.current_token().cloned() {
                    let _ = cache.invalidate(token.access_token.expose(), now);
                }
            }
            Action::ReplaceSecrets(rotate) => {
                let secrets = if rotate { vec![SECRETS[2], SECRETS[0]] } else { vec![SECRETS[0]] };
                for s in &secrets {
                    if !known.contains(s) {
                        known.push(s);
                    }
                }
                if cache.replace_secrets(secrets.into_iter().map(ClientSecret::from).collect(), now).unwrap() {
                    model.not_before = None;
                }
            }
        }
        absorb(&mut cache, &mut model, &mut drained);
        for event in drained {
            let text = serde_json::to_string(&event).unwrap();
            assert_no_secret(&text);
            assert_no_secret(&format!("{event:?}"));
            assert_eq!(event.actor_type, "client");
        }
        if let Some(wakeup) = cache.next_wakeup() {
            assert!(wakeup < u64::MAX);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_on_monotonic_timelines(
        secret_count in 1usize..=2,
        jitter in any::<bool>(),
        entropy in any::<u64>(),
        timeline in prop::collection::vec((step(), action()), 1..120),
    ) {
        run(secret_count, jitter, entropy, timeline, true);
    }

    #[test]
    fn no_panic_and_no_leak_when_the_clock_jumps(
        entropy in any::<u64>(),
        timeline in prop::collection::vec((prop_oneof![9 => step(), 1 => -5_000_000i64..0], action()), 1..80),
    ) {
        run(2, true, entropy, timeline, false);
    }

    #[test]
    fn parser_never_panics_on_random_bytes(
        status in any::<u16>(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        retry_after in proptest::option::of(".{0,40}"),
    ) {
        let headers: Vec<(String, String)> = retry_after.into_iter().map(|v| ("Retry-After".to_owned(), v)).collect();
        let _ = parse_token_response(status, &headers, &body, T0, &RefreshPolicy::default());
    }

    #[test]
    fn parser_never_panics_on_json_shaped_bodies(
        token in proptest::option::of(".{0,20}"),
        token_type in proptest::option::of(prop::sample::select(vec!["Bearer", "bearer", "mac", "", "DPoP"])),
        expires_in in proptest::option::of(prop_oneof![
            any::<f64>().prop_map(|f| serde_json::json!(f)),
            any::<i64>().prop_map(|i| serde_json::json!(i)),
            ".{0,12}".prop_map(|s| serde_json::json!(s)),
        ]),
    ) {
        let mut map = serde_json::Map::new();
        if let Some(t) = token { map.insert("access_token".into(), t.into()); }
        if let Some(t) = token_type { map.insert("token_type".into(), t.into()); }
        if let Some(e) = expires_in { map.insert("expires_in".into(), e); }
        let body = serde_json::Value::Object(map).to_string();
        if let Ok(parsed) = parse_token_response(200, &[], body.as_bytes(), T0, &RefreshPolicy::default()) {
            prop_assert!(parsed.lifetime_ms >= 1_000 && parsed.lifetime_ms <= 86_400_000);
        }
    }
}

#[test]
fn debug_and_display_never_show_secrets() {
    let config = config(3, 300_000, true);
    let mut cache = TokenCache::new(config.clone(), 1);
    let PollResult::Send { request } = cache.poll(T0) else { panic!("expected a request") };
    let error = cache.handle_response(
        request.fetch_id,
        400,
        &[],
        format!(r#"{{"error":"invalid_request","error_description":"{}"}}"#, SECRETS[0]).as_bytes(),
        T0 + 1,
    );
    let texts = [
        format!("{config:?}"),
        format!("{request:?}"),
        format!("{cache:?}"),
        format!("{error:?}"),
        error.as_ref().map(|_| String::new()).unwrap_or_else(|e| e.to_string()),
        format!("{:?}", ClientSecret::new(SECRETS[0])),
        format!("{}", ClientSecret::new(SECRETS[0])),
    ];
    for text in texts {
        assert_no_secret(&text);
    }
}

/// Found by the `engine_timeline` fuzz target (core/fuzz/regressions/): a token
/// received near the end of time saturated `expires_at`, and the margin was
/// taken from the unsaturated lifetime, so `usable_until` fell before
/// `received_at` and the refresh-point arithmetic underflowed.
#[test]
fn tokens_received_at_the_end_of_time_do_not_overflow() {
    for now in [u64::MAX, u64::MAX - 1, u64::MAX - 3_600_000, u64::MAX - 100_000_000] {
        let mut cache = TokenCache::new(config(1, 300_000, true), 9);
        let PollResult::Send { request } = cache.poll(now) else { panic!("expected a request") };
        let body = br#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600}"#;
        let token = cache.handle_response(request.fetch_id, 200, &[], body, now).unwrap();
        assert!(token.received_at <= token.refresh_at && token.refresh_at <= token.usable_until);
        assert!(token.usable_until <= token.expires_at);
        let _ = cache.poll(now);
        let _ = cache.next_wakeup();
        let snapshot = cache.export_snapshot(now);
        let mut other = TokenCache::new(config(1, 300_000, true), 9);
        if let Some(snapshot) = snapshot {
            let _ = other.import_snapshot(&snapshot, now);
        }
    }
}

/// Found by the `engine_timeline` fuzz target (core/fuzz/regressions/): text
/// stored in the backoff's error before a rotation was served, by the fail-fast
/// poll after the rotation, with the *new* secret in it (the server may know
/// the new secret before the client does).
#[test]
fn a_stored_error_never_shows_a_secret_replaced_in_later() {
    let mut cache = TokenCache::new(config(1, 300_000, false), 1);
    let PollResult::Send { request } = cache.poll(T0) else { panic!("expected a request") };
    let next = "SECRET-next-rotation-42";
    let error = cache.handle_transport_error(request.fetch_id, TransportErrorKind::Timeout, &format!("x {next}"), T0);
    assert!(error.to_string().contains(next), "not a secret yet: kept");
    cache.replace_secrets(vec![ClientSecret::from(next)], T0).unwrap();
    match cache.poll(T0) {
        PollResult::Fail { error } => assert!(!error.to_string().contains(next), "{error}"),
        other => panic!("expected fail fast, got {other:?}"),
    }
}
