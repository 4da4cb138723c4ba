//! Records one run of the engine on a virtual clock, as JSON on stdout, for the
//! timeline chart (`scripts/charts/charts.py`, drawn by `make bench-charts`):
//!
//! ```text
//! cargo run -q -p tokenwell --example timeline > bench-results/timeline.json
//! ```
//!
//! A scripted token server answers 200 with 60 s tokens, then 503 for an
//! outage window, then 200 again; a caller asks for a token every second; a
//! background host polls at the engine's `next_wakeup`. Every answer takes
//! [`LATENCY_MS`]. Nothing here reads a clock or draws randomness, so the same
//! engine always records the same run. The run checks what the chart is meant
//! to show (callers served throughout the outage, backoff retries, outage
//! grace) and panics if the engine no longer does it.

use serde_json::{json, Value};
use tokenwell::{Config, PollResult, Token, TokenCache, TokenRequest};

/// The virtual clock starts here (ms since the Unix epoch); the JSON counts from it.
const START: u64 = 1_700_000_000_000;
/// How long the run lasts.
const RUN_MS: u64 = 180_000;
/// One caller every this many ms.
const CALLER_EVERY_MS: u64 = 1_000;
/// The token server's answer time.
const LATENCY_MS: u64 = 150;
/// The `expires_in` the server grants.
const LIFETIME_S: u64 = 60;
/// Requests sent in this window (ms after `START`) get 503.
const OUTAGE_MS: (u64, u64) = (110_000, 132_500);
/// The engine's jitter seed: fixed, so the run is reproducible.
const SEED: u64 = 0x7157;

/// How one caller fared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// Served the cached token, inside its usable life.
    Cached,
    /// Served the cached token inside its refresh margin because refreshes fail (outage grace).
    Grace,
    /// Had no token and waited for a token request to finish.
    Waited,
    /// Got an error.
    Failed,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Cached => "cached",
            Outcome::Grace => "grace",
            Outcome::Waited => "waited",
            Outcome::Failed => "failed",
        }
    }
}

/// The host's side of the run: the request in flight, waiting callers, and the record.
struct Host {
    cache: TokenCache,
    in_flight: Option<(TokenRequest, u64)>,
    waiting: Vec<u64>,
    callers: Vec<Value>,
    requests: Vec<Value>,
    tokens: Vec<Value>,
    events: Vec<Value>,
}

impl Host {
    fn send(&mut self, request: TokenRequest, now: u64) {
        assert!(self.in_flight.is_none(), "the engine sent two requests at once");
        self.in_flight = Some((request, now));
    }

    fn served(&mut self, arrived: u64, now: u64, token: &Token) {
        let outcome = if arrived < now {
            Outcome::Waited
        } else if now >= token.usable_until {
            Outcome::Grace
        } else {
            Outcome::Cached
        };
        self.callers.push(json!({"at": arrived - START, "served_at": now - START, "outcome": outcome.name()}));
    }

    /// A caller asks for a token (or asks again after waiting).
    fn caller(&mut self, arrived: u64, now: u64) {
        match self.cache.poll(now) {
            PollResult::Ready { token } => self.served(arrived, now, &token),
            PollResult::ReadyAndSend { token, request } => {
                self.served(arrived, now, &token);
                self.send(request, now);
            }
            PollResult::Send { request } => {
                self.send(request, now);
                self.waiting.push(arrived);
            }
            PollResult::Wait { .. } => self.waiting.push(arrived),
            PollResult::Fail { .. } => self
                .callers
                .push(json!({"at": arrived - START, "served_at": now - START, "outcome": Outcome::Failed.name()})),
        }
    }

    /// The background host wakes at `next_wakeup` and polls for nobody.
    fn wake(&mut self, now: u64) {
        match self.cache.poll(now) {
            PollResult::ReadyAndSend { request, .. } | PollResult::Send { request } => self.send(request, now),
            PollResult::Ready { .. } | PollResult::Wait { .. } | PollResult::Fail { .. } => {}
        }
    }

    /// The token server answers the request in flight.
    fn answer(&mut self, now: u64) {
        let (request, sent_at) = self.in_flight.take().expect("an answer needs a request");
        let outage = (OUTAGE_MS.0..OUTAGE_MS.1).contains(&(sent_at - START));
        let (status, body) = if outage {
            (503, r#"{"error":"temporarily_unavailable"}"#.to_owned())
        } else {
            let n = self.tokens.len() + 1;
            (200, format!(r#"{{"access_token":"at-{n}","token_type":"bearer","expires_in":{LIFETIME_S}}}"#))
        };
        self.requests.push(json!({"sent_at": sent_at - START, "answered_at": now - START, "status": status}));
        if let Ok(token) = self.cache.handle_response(request.fetch_id, status, &[], body.as_bytes(), now) {
            self.tokens.push(json!({
                "received_at": token.received_at - START,
                "refresh_at": token.refresh_at - START,
                "usable_until": token.usable_until - START,
                "expires_at": token.expires_at - START,
            }));
        }
        for arrived in std::mem::take(&mut self.waiting) {
            self.caller(arrived, now);
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.cache.poll_event() {
            let mut event = serde_json::to_value(&event).expect("events serialize");
            relative(&mut event);
            if let Some(object) = event.as_object_mut() {
                object.remove("actor_type");
                object.remove("actor_id");
            }
            self.events.push(event);
        }
    }
}

/// Makes every instant in an event count from `START`, like the rest of the record.
fn relative(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, field) in object.iter_mut() {
                match field.as_u64() {
                    Some(at)
                        if at >= START
                            && matches!(key.as_str(), "at" | "retry_at" | "expires_at" | "refresh_at" | "until") =>
                    {
                        *field = json!(at - START)
                    }
                    _ => relative(field),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(relative),
        _ => {}
    }
}

fn main() {
    let options = json!({
        "token_url": "https://auth.example/oauth2/token", "client_id": "timeline", "client_secret": "timeline-secret",
        "refresh_margin_ms": 10_000, "backoff_initial_ms": 1_000, "backoff_max_ms": 4_000,
    });
    let config = Config::from_json(&options.to_string()).expect("a valid configuration");
    let policy = config.policy().clone();
    let mut host = Host {
        cache: TokenCache::new(config, SEED),
        in_flight: None,
        waiting: Vec::new(),
        callers: Vec::new(),
        requests: Vec::new(),
        tokens: Vec::new(),
        events: Vec::new(),
    };

    let end = START + RUN_MS;
    let mut next_caller = START;
    let mut last_wake = None;
    // The clock jumps to the next thing that happens: a caller, an answer, or a wakeup.
    loop {
        let answer_at = host.in_flight.as_ref().map(|(_, sent)| sent + LATENCY_MS);
        let wake_at = host.cache.next_wakeup().filter(|&at| Some(at) != last_wake);
        let now = [Some(next_caller), answer_at, wake_at].into_iter().flatten().min().expect("a caller is always next");
        if now >= end {
            break;
        }
        if answer_at == Some(now) {
            host.answer(now);
        } else if wake_at == Some(now) {
            last_wake = Some(now);
            host.wake(now);
        } else {
            host.caller(now, now);
            next_caller += CALLER_EVERY_MS;
        }
        host.drain_events();
    }

    let count = |outcome: Outcome| host.callers.iter().filter(|c| c["outcome"] == outcome.name()).count();
    let kinds = |kind: &str| host.events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count(Outcome::Failed), 0, "a caller got an error during the outage");
    assert!(count(Outcome::Grace) > 0, "no caller was served in outage grace");
    assert!(kinds("backoff_scheduled") >= 2, "the outage should cause backoff retries");
    assert_eq!(kinds("outage_grace_served"), 1, "outage grace is announced once per outage");
    assert!(host.requests.iter().any(|r| r["status"] == 503), "the outage window missed every request");
    let after_outage = host.tokens.iter().any(|t| t["received_at"].as_u64().unwrap() >= OUTAGE_MS.1);
    assert!(after_outage, "no token after the outage");

    let record = json!({
        "host": "core",
        "versions": {"tokenwell": env!("CARGO_PKG_VERSION")},
        "scenario": {
            "run_ms": RUN_MS, "caller_every_ms": CALLER_EVERY_MS, "latency_ms": LATENCY_MS,
            "lifetime_s": LIFETIME_S, "outage_ms": [OUTAGE_MS.0, OUTAGE_MS.1], "seed": SEED,
            "refresh_margin_ms": policy.refresh_margin_ms, "refresh_ahead": policy.refresh_ahead,
            "backoff_initial_ms": policy.backoff_initial_ms, "backoff_max_ms": policy.backoff_max_ms,
            "outage_grace_safety_ms": policy.outage_grace_safety_ms,
        },
        "tokens": host.tokens,
        "requests": host.requests,
        "events": host.events,
        "callers": host.callers,
    });
    println!("{}", serde_json::to_string_pretty(&record).expect("JSON"));
}
