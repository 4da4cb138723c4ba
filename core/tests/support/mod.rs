//! Scripted loopback servers for the blocking driver's tests (fakes: they
//! produce on demand what a real server will not, like a redirect, a slow
//! answer or a certificate from an unknown CA). The real authorization servers
//! are in `tests/integration/`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

/// What the scripted server answers to the n-th request (0-based).
pub type Script = dyn Fn(usize) -> Answer + Send + Sync;

/// One scripted answer.
pub enum Answer {
    /// Status, extra headers and body, sent at once.
    Whole(u16, Vec<(String, String)>, String),
    /// The first bytes at once, then the rest one byte per `interval` (a slow server).
    Dribble(Vec<u8>, Vec<u8>, Duration),
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Self {
        Answer::Whole(status, vec![], body.to_owned())
    }
}

/// A token response with `token` that lives an hour.
pub fn token_body(token: &str) -> String {
    format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#)
}

/// A test CA and a server certificate for 127.0.0.1 and localhost it signed.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// A rustls server configuration presenting the signed certificate.
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "tokenwell test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone(), ca_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        Self { ca_pem: ca_cert.pem(), server: Arc::new(server) }
    }

    /// Writes the CA certificate to a file in a fresh temp dir and returns its path.
    pub fn write_ca_file(&self) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tokenwell-ca-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

fn unique() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// A scripted server on 127.0.0.1 (TLS when `tls` is given). Returns the token
/// URL (`/oauth2/token`) and the number of requests it has read.
pub fn serve(tls: Option<Arc<rustls::ServerConfig>>, script: Box<Script>) -> (String, Arc<AtomicUsize>) {
    let (url, count, _) = serve_logged(tls, script);
    (url, count)
}

/// Each request's first line and body, in the order they came.
pub type RequestLog = Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// [`serve`], also logging each request's first line (`GET /path HTTP/1.1`) and body.
pub fn serve_logged(
    tls: Option<Arc<rustls::ServerConfig>>,
    script: Box<Script>,
) -> (String, Arc<AtomicUsize>, RequestLog) {
    let log: RequestLog = Arc::default();
    let logger = Arc::clone(&log);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}/oauth2/token", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let script: Arc<Script> = Arc::from(script);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (tls, counter, script) = (tls.clone(), Arc::clone(&counter), Arc::clone(&script));
            let log = Arc::clone(&logger);
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                match tls {
                    Some(config) => {
                        let Ok(connection) = rustls::ServerConnection::new(config) else { return };
                        let mut tls_stream = rustls::StreamOwned::new(connection, stream);
                        answer(&mut tls_stream, &counter, &*script, &log);
                    }
                    None => {
                        let mut stream = stream;
                        answer(&mut stream, &counter, &*script, &log);
                    }
                }
            });
        }
    });
    (url, count, log)
}

fn answer<S: Read + Write>(stream: &mut S, counter: &AtomicUsize, script: &Script, log: &RequestLog) {
    let mut reader = BufReader::new(&mut *stream);
    let (mut line, mut length) = (String::new(), 0usize);
    let mut request_line = String::new();
    let mut first = true;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 => {}
            _ => return, // a client that gave up (e.g. refused our certificate)
        }
        if line == "\r\n" {
            break;
        }
        if first {
            request_line = line.trim_end().to_owned();
        }
        first = false;
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    if first {
        return;
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    log.lock().unwrap_or_else(|p| p.into_inner()).push((request_line, String::from_utf8_lossy(&body).into_owned()));
    let n = counter.fetch_add(1, Ordering::SeqCst);
    match script(n) {
        Answer::Whole(status, headers, text) => {
            let mut head = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n");
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", text.len()));
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(text.as_bytes());
            let _ = stream.flush();
        }
        Answer::Dribble(fast, slow, interval) => {
            if stream.write_all(&fast).and_then(|()| stream.flush()).is_err() {
                return;
            }
            for byte in slow {
                if stream.write_all(&[byte]).and_then(|()| stream.flush()).is_err() {
                    return;
                }
                std::thread::sleep(interval);
            }
        }
    }
}

/// A plain TCP listener that counts connections and never answers: stands
/// for a proxy that must not be used.
pub fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop::<TcpStream>(stream);
        }
    });
    (url, count)
}
