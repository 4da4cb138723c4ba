//! The repository's loopback CONNECT proxy (tests/integration/servers/connect-proxy.py)
//! for Rust tests: started per test, stopped on drop, with its request log.
//! Shared by the driver's tests and the Rust end-to-end suite (by `#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The repository's loopback CONNECT proxy (tests/integration/servers/connect-proxy.py).
pub struct ConnectProxy {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: PathBuf,
}

impl ConnectProxy {
    /// Starts the proxy and waits (bounded) until it listens.
    pub fn start() -> Self {
        let script = repo_root().join("tests/integration/servers/connect-proxy.py");
        let dir = std::env::temp_dir().join(format!("tokenwell-proxy-{}-{}", std::process::id(), next_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ready, log) = (dir.join("ready.json"), dir.join("requests.jsonl"));
        let _ = std::fs::remove_file(&ready);
        let child = Command::new("python3")
            .arg(script)
            .args(["--ready-file", ready.to_str().unwrap(), "--log", log.to_str().unwrap()])
            .args(["--parent-pid", &std::process::id().to_string(), "--max-seconds", "120"])
            .spawn()
            .expect("python3 runs the CONNECT proxy");
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                break value["url"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "the CONNECT proxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { child, url, log }
    }

    /// Every request it has logged, oldest first.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository root, found from this crate's manifest directory upwards.
fn repo_root() -> PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    while !dir.join("tests/integration/servers/connect-proxy.py").exists() {
        assert!(dir.pop(), "connect-proxy.py not found above {}", env!("CARGO_MANIFEST_DIR"));
    }
    dir
}

fn next_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}
