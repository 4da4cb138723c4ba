//! The blocking driver against a scripted token server on 127.0.0.1 (a fake:
//! it produces on demand what a real server will not, like a 503 or a
//! slow answer). The real authorization servers are in `tests/integration/`.
#![cfg(feature = "blocking")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use tokenwell::blocking::ServiceAccount;
use tokenwell::{Config, ErrorKind};

type Script = Arc<Mutex<Vec<(u16, String)>>>;

/// A scripted fault server: answers each request with the next scripted
/// (status, body), repeating the last one; counts requests.
fn scripted_server(script: Vec<(u16, &str)>) -> (String, Arc<AtomicUsize>, Script) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let script: Script = Arc::new(Mutex::new(script.into_iter().map(|(s, b)| (s, b.to_owned())).collect()));
    let (counter, lines) = (Arc::clone(&count), Arc::clone(&script));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let (mut line, mut length) = (String::new(), 0usize);
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let (status, text) = {
                let lines = lines.lock().unwrap();
                lines[n.min(lines.len() - 1)].clone()
            };
            let _ = write!(
                &stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (url, count, script)
}

fn account(url: &str, secret: &str) -> ServiceAccount {
    let config = Config::from_json(
        &serde_json::json!({"token_url": url, "client_id": "driver-test", "client_secret": secret}).to_string(),
    )
    .unwrap();
    ServiceAccount::new(config)
}

#[test]
fn concurrent_callers_make_one_request() {
    let (url, count, _) =
        scripted_server(vec![(200, r#"{"access_token":"at-1","token_type":"bearer","expires_in":3600}"#)]);
    let account = account(&url, "s");
    let barrier = Arc::new(Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (account, barrier) = (account.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                account.get_token().unwrap()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), "at-1");
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn failures_are_typed_and_fail_fast_without_leaking_the_secret() {
    let (url, count, _) = scripted_server(vec![(401, r#"{"error":"invalid_client","error_description":"no"}"#)]);
    let account = account(&url, "hunter2-secret");
    let error = account.get_token().unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidClient);
    assert!(!error.retryable);
    assert!(!error.to_string().contains("hunter2"));
    assert!(!format!("{account:?}").contains("hunter2"));
    // Held: the second call fails fast without another request.
    assert_eq!(account.get_token().unwrap_err().kind, ErrorKind::InvalidClient);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn transport_failure_is_classified() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
    drop(listener); // nothing listens there now: connection refused
    let error = account(&url, "s").get_token().unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Transport | ErrorKind::Timeout), "{error}");
    assert!(error.retryable && error.retry_at.is_some());
}
