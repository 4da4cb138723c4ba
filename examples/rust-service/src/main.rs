//! A Rust service that authenticates to an API as itself.
//!
//! With `TOKEN_URL` / `HYDRA_URL`, `CLIENT_ID`, `CLIENT_SECRET` (and optionally
//! `SCOPE`, `AUDIENCE`, and `TOKENWELL_CA_FILE` for a server whose certificate
//! comes from a private CA) set, it asks that authorization server. Without them it
//! starts a tiny scripted token server on 127.0.0.1 (a stand-in, so the example
//! runs anywhere) and asks it.
//!
//!     cargo run -p tokenwell-example-rust-service

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokenwell::blocking::ServiceAccount;
use tokenwell::{options_from_env, Config, ConfigOptions, ListOrString, SecretOrSecrets};

/// A stand-in token endpoint on loopback that counts requests. Not an
/// authorization server: it accepts any credentials.
fn start_stand_in_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let json = format!(
                r#"{{"access_token":"stand-in-token-{n}","token_type":"bearer","expires_in":3600,"scope":"billing:read"}}"#
            );
            let _ = write!(
                &stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
        }
    });
    (url, count)
}

fn main() {
    let from_env = options_from_env("", &|name| std::env::var(name).ok());
    let (options, stand_in) = match from_env {
        Ok(env) if env.secret_file.is_none() => {
            println!("Using the authorization server at {}", env.options.token_url.as_deref().unwrap_or("?"));
            (env.options, None)
        }
        _ => {
            let (url, count) = start_stand_in_server();
            println!("No TOKEN_URL/CLIENT_ID/CLIENT_SECRET set: started a stand-in token server at {url}");
            let options = ConfigOptions {
                token_url: Some(url),
                client_id: Some("billing-worker".into()),
                client_secret: Some(SecretOrSecrets::One("demo-secret".into())),
                scope: Some(ListOrString::String("billing:read".into())),
                ..ConfigOptions::default()
            };
            (options, Some(count))
        }
    };
    let config = match Config::from_options(options) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configuration error: {error}");
            std::process::exit(2);
        }
    };
    // The builder reads TOKENWELL_CA_FILE, and refuses an unusable one here.
    let built = ServiceAccount::builder(config)
        .on_event(Box::new(|event| println!("  event: {}", tokenwell_event_line(event))))
        .build();
    let account = match built {
        Ok(account) => account,
        Err(error) => {
            eprintln!("configuration error: {error}");
            std::process::exit(2);
        }
    };

    // Eight worker threads ask at once: one token request is made.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let account = account.clone();
            std::thread::spawn(move || account.token())
        })
        .collect();
    for handle in handles {
        match handle.join().expect("worker thread") {
            Ok(token) => {
                let preview: String = token.access_token.expose().chars().take(12).collect();
                println!(
                    "got a token ({preview}..., {} s left, scope {:?})",
                    (token.expires_at.saturating_sub(token.received_at)) / 1000,
                    token.scope
                );
            }
            Err(error) => {
                eprintln!("token error [{}]: {error}", error.kind);
                std::process::exit(1);
            }
        }
    }
    if let Some(count) = stand_in {
        println!("8 concurrent callers, {} token request(s) made", count.load(Ordering::SeqCst));
    }
}

fn tokenwell_event_line(event: &tokenwell::Event) -> String {
    // Events serialize without secrets or tokens: safe for audit logs. Show the
    // type and the actor here; a real service would log the whole JSON object.
    let json = serde_json::to_value(event).unwrap_or_default();
    let detail = ["reason", "lifetime_source", "error_kind"]
        .iter()
        .find_map(|key| json.get(*key).and_then(|v| v.as_str()).map(|v| format!(" ({key}: {v})")))
        .unwrap_or_default();
    format!("{}{detail}, actor {} {}", json["type"].as_str().unwrap_or("?"), event.actor_type, event.actor_id)
}
