//! Fuzzes the response parser: any status, `Retry-After` value and body must
//! give a token or a classified error, never a panic. A token is header-safe
//! (visible ASCII) and its lifetime within the policy's clamps; an error's
//! retry time is never in the past.
//!
//! Input: two bytes of status (little-endian), one byte of header length, the
//! `Retry-After` value, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenwell::{parse_token_response, RefreshPolicy};
use tokenwell_fuzz::{assert_header_safe_token, T0};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]);
    let split = (data[2] as usize).min(data.len() - 3);
    let (header, body) = data[3..].split_at(split);
    let headers = vec![("Retry-After".to_owned(), String::from_utf8_lossy(header).into_owned())];
    let policy = RefreshPolicy::default();
    match parse_token_response(status, &headers, body, T0, &policy) {
        Ok(token) => {
            assert!((200..300).contains(&status), "a token from HTTP {status}");
            assert!(token.lifetime_ms >= policy.min_lifetime_ms && token.lifetime_ms <= policy.max_lifetime_ms);
            assert_header_safe_token("parsed token", token.access_token.expose());
        }
        Err(error) => {
            let _ = (error.to_string(), format!("{error:?}"));
            assert_eq!(error.status, Some(status));
            if let Some(at) = error.retry_at {
                assert!(at >= T0 && at <= T0 + policy.max_retry_after_ms, "retry_at {at} out of range");
            }
        }
    }
});
