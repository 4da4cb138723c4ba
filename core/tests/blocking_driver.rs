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

mod support;

use std::time::{Duration, Instant};

use support::{serve, token_body, Answer, TestCa};
use tokenwell::Fault;

fn config_for(url: &str) -> Config {
    let json = serde_json::json!({"token_url": url, "client_id": "driver-test", "client_secret": "s3cr3t-value",
                                  "request_timeout_ms": 2000, "backoff_jitter": false});
    Config::from_json(&json.to_string()).unwrap()
}

#[test]
fn https_is_verified_against_the_given_ca_and_refused_without_it() {
    let ca = TestCa::new();
    let (url, count) = serve(Some(ca.server.clone()), Box::new(|_| Answer::json(200, &token_body("tls-token"))));

    let trusted = ServiceAccount::builder(config_for(&url)).ca_file(ca.write_ca_file()).build().unwrap();
    assert_eq!(trusted.get_token().unwrap(), "tls-token");
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // The platform's store does not know the test CA: a configuration fault with a hint, held.
    let untrusted = ServiceAccount::builder(config_for(&url)).build().unwrap();
    let error = untrusted.get_token().unwrap_err();
    assert_eq!((error.kind, error.fault, error.retryable), (ErrorKind::TlsCertificate, Fault::Configuration, false));
    assert!(error.to_string().contains("TOKENWELL_CA_FILE"), "{error}");
    assert_eq!(untrusted.get_token().unwrap_err().kind, ErrorKind::TlsCertificate, "held, not retried");
    assert_eq!(count.load(Ordering::SeqCst), 1, "the untrusted server never got a request");
}

#[test]
fn a_ca_file_that_cannot_be_used_is_refused_by_name() {
    let config = || config_for("https://127.0.0.1:1/oauth2/token");
    let missing = ServiceAccount::builder(config()).ca_file("/nonexistent/tokenwell/ca.pem").build().unwrap_err();
    assert_eq!(missing.field, "ca_file");
    assert!(missing.problem.contains("/nonexistent/tokenwell/ca.pem"), "{missing}");
    let empty = std::env::temp_dir().join(format!("tokenwell-empty-ca-{}.pem", std::process::id()));
    std::fs::write(&empty, "not a certificate").unwrap();
    let error = ServiceAccount::builder(config()).ca_file(&empty).build().unwrap_err();
    assert_eq!((error.field.as_str(), error.problem.starts_with("holds no PEM certificate")), ("ca_file", true));
}

#[test]
fn redirects_are_never_followed() {
    let (elsewhere, substituted) = serve(None, Box::new(|_| Answer::json(200, &token_body("substituted-token"))));
    for status in [301u16, 302, 303, 307, 308] {
        let location = elsewhere.clone();
        let (url, count) = serve(
            None,
            Box::new(move |_| Answer::Whole(status, vec![("Location".to_owned(), location.clone())], String::new())),
        );
        let error = ServiceAccount::new(config_for(&url)).get_token().unwrap_err();
        assert_eq!((error.kind, error.status), (ErrorKind::MalformedResponse, Some(status)), "{status}: {error}");
        assert!(error.to_string().contains("redirects are not followed"), "{error}");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
    assert_eq!(substituted.load(Ordering::SeqCst), 0, "no request reached the redirect target");
}

#[test]
fn a_wrong_token_url_is_a_configuration_fault() {
    let (url, count) = serve(None, Box::new(|_| Answer::Whole(404, vec![], "404 page not found".to_owned())));
    let account = ServiceAccount::new(config_for(&url));
    let error = account.get_token().unwrap_err();
    assert_eq!((error.kind, error.fault, error.retryable), (ErrorKind::EndpointNotFound, Fault::Configuration, false));
    assert!(error.to_string().contains("check token_url"), "{error}");
    assert_eq!(account.get_token().unwrap_err().kind, ErrorKind::EndpointNotFound);
    assert_eq!(count.load(Ordering::SeqCst), 1, "held, not retried");
}

#[test]
fn a_slow_server_is_cut_off_at_the_request_timeout_whatever_the_stage() {
    let body = token_body("slow-token");
    let response =
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let status_end = response.find("\r\n").unwrap() + 2;
    let headers_end = response.find("\r\n\r\n").unwrap() + 4;
    for (stage, split) in [("status line", 0), ("headers", status_end), ("body", headers_end)] {
        let bytes = response.clone().into_bytes();
        let (url, count) = serve(
            None,
            Box::new(move |_| {
                Answer::Dribble(bytes[..split].to_vec(), bytes[split..].to_vec(), Duration::from_millis(500))
            }),
        );
        let account = ServiceAccount::new(config_for(&url));
        let started = Instant::now();
        let error = account.get_token().unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(error.kind, ErrorKind::Timeout, "{stage}: {error}");
        assert!(elapsed < Duration::from_millis(3000), "{stage}: took {elapsed:?} with a 2 s timeout");
        assert_eq!(count.load(Ordering::SeqCst), 1, "{stage}");
    }
}

#[test]
fn a_kubernetes_style_symlink_swap_of_the_secret_file_is_picked_up() {
    use std::os::unix::fs::symlink;
    // A mounted secret: secret -> ..data/secret, ..data -> ..v1; the kubelet
    // writes ..v2 and swaps the ..data symlink atomically.
    let root = std::env::temp_dir().join(format!("tokenwell-k8s-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (version, secret) in [("..v1", "old-secret"), ("..v2", "new-secret")] {
        std::fs::create_dir_all(root.join(version)).unwrap();
        std::fs::write(root.join(version).join("secret"), format!("{secret}\n")).unwrap();
    }
    symlink("..v1", root.join("..data")).unwrap();
    symlink("..data/secret", root.join("secret")).unwrap();

    let (url, count) = serve(
        None,
        Box::new(|n| {
            Answer::json(200, &format!(r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":1}}"#))
        }),
    );
    let json = serde_json::json!({"token_url": url, "client_id": "k8s", "client_secret": "bootstrap",
                                  "min_lifetime_ms": 1000, "refresh_margin_ms": 0});
    let events = Arc::new(Mutex::new(Vec::<tokenwell::Event>::new()));
    let sink = Arc::clone(&events);
    let account = ServiceAccount::builder(Config::from_json(&json.to_string()).unwrap())
        .on_event(Box::new(move |e| sink.lock().unwrap().push(e.clone())))
        .secret_file(root.join("secret"))
        .build()
        .unwrap();
    account.get_token().unwrap();
    let replaced = |events: &[tokenwell::Event]| {
        events.iter().filter(|e| matches!(e.kind, tokenwell::EventKind::SecretsReplaced { .. })).count()
    };
    assert_eq!(replaced(&events.lock().unwrap()), 1, "the first read replaced the bootstrap secret");

    // The swap: a new ..data symlink renamed over the old one.
    symlink("..v2", root.join("..data.tmp")).unwrap();
    std::fs::rename(root.join("..data.tmp"), root.join("..data")).unwrap();
    // The next check (at most a second later) sees a new inode and reads the new secret.
    let deadline = Instant::now() + Duration::from_secs(5);
    while replaced(&events.lock().unwrap()) < 2 {
        assert!(Instant::now() < deadline, "the swapped secret was not picked up");
        let _ = account.get_token();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(count.load(Ordering::SeqCst) >= 1);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_discovered_endpoint_and_auth_method_are_visible() {
    // A scripted server: the RFC 8414 document is absent (404), the OpenID
    // Connect one names this server's token endpoint and post auth.
    let (token_url, count, script) = scripted_server(vec![(404, "")]);
    let issuer = token_url.trim_end_matches("/oauth2/token").to_owned();
    let document = serde_json::json!({
        "issuer": issuer, "token_endpoint": token_url,
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    })
    .to_string();
    *script.lock().unwrap() = vec![
        (404, String::new()),
        (200, document),
        (200, r#"{"access_token":"tok-1","token_type":"bearer","expires_in":3600}"#.to_owned()),
    ];
    let config = Config::from_json(
        &serde_json::json!({"issuer": issuer, "client_id": "driver-test", "client_secret": "s3cr3t"}).to_string(),
    )
    .unwrap();
    let account = ServiceAccount::new(config);
    assert_eq!(account.token_endpoint(), None);
    assert_eq!(account.auth_method(), tokenwell::AuthMethod::ClientSecretBasic);
    assert_eq!(account.get_token().unwrap(), "tok-1");
    assert_eq!(account.token_endpoint().as_deref(), Some(token_url.as_str()));
    assert_eq!(account.auth_method(), tokenwell::AuthMethod::ClientSecretPost);
    assert_eq!(count.load(Ordering::SeqCst), 3);
}
