//! `cargo bench -p tokenwell --bench engine` (or `make bench`): ns per operation
//! of the engine, each next to a baseline measured in the same run.
//!
//! - cache-hit `poll` vs. the floor every host pays anyway: cloning the cached
//!   token string after a clock compare;
//! - a full request/response cycle (poll → build request → parse a Hydra-like
//!   JSON response → install) vs. parsing that JSON body alone with serde_json;
//! - signing one client assertion per algorithm (`private_key_jwt`,
//!   `client_secret_jwt`) vs. building a `client_secret_basic` request.
//!
//! The numbers are also written as JSON to `$TOKENWELL_BENCH_RESULTS/core.json`
//! (default `bench-results/` at the repo root), which `make bench-charts` draws.

use std::hint::black_box;
use std::time::Instant;

use tokenwell::{build_signed_token_request, build_token_request, Config, EntropyPool, PollResult, TokenCache};

const T0: u64 = 1_700_000_000_000;
const BODY: &[u8] = br#"{"access_token":"ory_at_Xq2b6qXl5cWw0eCjJ6l8rjv1u0hQm1p2S3rT4uV5wX6.y7Z8a9B0c1D2e3F4g5H6i7J8k9L0m1N2o3P4q5R6s7","expires_in":3599,"scope":"billing:read billing:write","token_type":"bearer"}"#;

fn config() -> Config {
    Config::from_json(
        r#"{"token_url":"https://hydra.example/oauth2/token","client_id":"billing-worker",
            "client_secret":"s3cr3t: with+chars","scope":"billing:read billing:write",
            "audience":["https://billing.example"]}"#,
    )
    .unwrap()
}

/// Median ns/op of `rounds` rounds of `iters` calls.
fn measure(iters: u64, rounds: usize, mut f: impl FnMut(u64)) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for i in 0..iters {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[rounds / 2]
}

fn main() {
    let mut cache = TokenCache::new(config(), 7);
    let PollResult::Send { request } = cache.poll(T0) else { panic!("expected a request") };
    cache.handle_response(request.fetch_id, 200, &[], BODY, T0).unwrap();
    while cache.poll_event().is_some() {}

    let hit = measure(1_000_000, 9, |i| match cache.poll(black_box(T0 + 1_000 + i / 1024)) {
        PollResult::Ready { token } => {
            black_box(token);
        }
        other => panic!("expected a hit, got {other:?}"),
    });
    let cached =
        String::from("ory_at_Xq2b6qXl5cWw0eCjJ6l8rjv1u0hQm1p2S3rT4uV5wX6.y7Z8a9B0c1D2e3F4g5H6i7J8k9L0m1N2o3P4q5R6s7");
    let deadline = T0 + 3_000_000;
    let floor = measure(1_000_000, 9, |i| {
        if black_box(T0 + 1_000 + i / 1024) < black_box(deadline) {
            black_box(cached.clone());
        }
    });

    let cycle = measure(50_000, 9, |i| {
        let mut cache = TokenCache::new(config(), i);
        let now = T0 + i;
        let PollResult::Send { request } = cache.poll(now) else { panic!("expected a request") };
        black_box(&request.http.body);
        black_box(cache.handle_response(request.fetch_id, 200, &[], BODY, now + 5).unwrap());
    });
    let json_only = measure(50_000, 9, |_| {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(BODY)).unwrap());
    });

    println!("{:<48} {:>10} {:>12} {:>8}", "operation", "ns/op", "baseline", "ratio");
    println!("{:<48} {:>10.1} {:>12.1} {:>8.2}", "poll, cache hit (vs clone cached token)", hit, floor, hit / floor);
    println!(
        "{:<48} {:>10.1} {:>12.1} {:>8.2}",
        "full cycle: new cache, poll, request, response (vs JSON parse only)",
        cycle,
        json_only,
        cycle / json_only
    );
    let signing = assertion_table();
    write_results(serde_json::json!({
        "cache_hit": [{"label": "poll()", "hit_ns": hit, "floor_ns": floor,
                       "floor_label": "clone cached token after a clock compare"}],
        "full_cycle": {"ns": cycle, "baseline_ns": json_only, "baseline_label": "JSON parse only"},
        "signing": signing,
    }));
}

/// Writes `results` (plus the versions and machine they were measured on) for
/// the charts; the printed tables above stay the record for humans.
fn write_results(mut results: serde_json::Value) {
    let dir = std::env::var_os("TOKENWELL_BENCH_RESULTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results"));
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_default();
    results["host"] = "core".into();
    results["versions"] = serde_json::json!({"tokenwell": env!("CARGO_PKG_VERSION"), "runtime": rustc});
    results["machine"] = serde_json::json!({"cpu": cpu, "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "os": std::env::consts::OS, "arch": std::env::consts::ARCH});
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("core.json"), serde_json::to_string_pretty(&results).unwrap()).unwrap();
}

/// The key files the assertion rows sign with (test keys only).
fn key_config(key_file: &str, alg: Option<&str>) -> Config {
    let path = format!("{}/../tests/conformance/keys/{key_file}", env!("CARGO_MANIFEST_DIR"));
    let mut options = serde_json::json!({"token_url": "https://hydra.example/oauth2/token",
        "client_id": "billing-worker", "auth_method": "private_key_jwt",
        "private_key": std::fs::read_to_string(path).unwrap(), "scope": "billing:read billing:write"});
    if let Some(alg) = alg {
        options["assertion_signing_alg"] = alg.into();
    }
    Config::from_json(&options.to_string()).unwrap()
}

/// Signing one client assertion per algorithm (the whole token request:
/// claims, jti, signature, body), against building a `client_secret_basic`
/// request measured in the same run. Returns the rows.
fn assertion_table() -> Vec<serde_json::Value> {
    let basic = config();
    let baseline = measure(200_000, 9, |_| {
        black_box(build_token_request(black_box(&basic), 0));
    });
    let hs256 = Config::from_json(
        r#"{"token_url":"https://hydra.example/oauth2/token","client_id":"billing-worker",
            "client_secret":"s3cr3t: with+chars","auth_method":"client_secret_jwt","scope":"billing:read billing:write"}"#,
    )
    .unwrap();
    let rows = [
        ("RS256 (RSA 2048)", key_config("test-only-rsa-2048.pkcs8.pem", None), 300),
        ("PS256 (RSA 2048)", key_config("test-only-rsa-2048.pkcs8.pem", Some("PS256")), 300),
        ("ES256 (P-256)", key_config("test-only-p256.pkcs8.pem", None), 3_000),
        ("ES384 (P-384)", key_config("test-only-p384.pkcs8.pem", None), 1_000),
        ("HS256 (client_secret_jwt)", hs256, 100_000),
    ];
    println!();
    println!(
        "{:<48} {:>10} {:>12} {:>8}",
        "sign one client assertion (vs basic request)", "ns/op", "baseline", "ratio"
    );
    let mut results = Vec::new();
    for (name, config, iters) in rows {
        let mut pool = EntropyPool::new(7);
        let ns = measure(iters, 5, |i| {
            black_box(build_signed_token_request(&config, 0, T0 + i, &mut pool).unwrap());
        });
        println!("{:<48} {:>10.0} {:>12.1} {:>8.0}", name, ns, baseline, ns / baseline);
        results.push(serde_json::json!({"label": name, "ns": ns, "baseline_ns": baseline}));
    }
    results
}
