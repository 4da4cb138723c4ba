//! Fuzzes the response parser: any status, headers and body must give a token
//! or a classified error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenwell::{parse_token_response, RefreshPolicy};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]);
    let split = (data[2] as usize).min(data.len() - 3);
    let (header, body) = data[3..].split_at(split);
    let headers = vec![("Retry-After".to_owned(), String::from_utf8_lossy(header).into_owned())];
    if let Ok(token) = parse_token_response(status, &headers, body, 1_700_000_000_000, &RefreshPolicy::default()) {
        assert!(token.lifetime_ms >= 1_000);
    }
});
