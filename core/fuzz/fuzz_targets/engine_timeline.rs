//! Fuzzes the cache with a byte-coded timeline of host actions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenwell::{Config, Poll, TokenCache, TransportErrorKind};

fuzz_target!(|data: &[u8]| {
    let config = Config::from_json(
        r#"{"token_url":"https://a.example/t","client_id":"c","client_secret":["x","y"],"scope":"s"}"#,
    )
    .unwrap();
    let mut cache = TokenCache::new(config, 1);
    let mut now = 1_700_000_000_000u64;
    let mut in_flight = None;
    for chunk in data.chunks(4) {
        now = now.wrapping_add(u64::from(chunk[0]) * 997);
        match chunk.get(1).copied().unwrap_or(0) % 4 {
            0 => match cache.poll(now) {
                Poll::Send { request } | Poll::ReadyAndSend { request, .. } => in_flight = Some(request.fetch_id),
                _ => {}
            },
            1 => {
                if let Some(id) = in_flight.take() {
                    let status = 200 + u16::from(chunk.get(2).copied().unwrap_or(0));
                    let _ = cache.handle_response(id, status, &[], &chunk[..], now);
                }
            }
            2 => {
                if let Some(id) = in_flight.take() {
                    let _ = cache.handle_transport_error(id, TransportErrorKind::Io, "reset", now);
                }
            }
            _ => {
                let _ = cache.invalidate("x", now);
            }
        }
        while cache.poll_event().is_some() {}
    }
});
