//! The real `resonance` binary as the tests run it: `resonance serve` on port 0 in a fresh
//! data folder, its address read from its log.

#![allow(dead_code)] // Each test binary uses a different part.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub base: String,
    /// Every line the server has logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
    pub data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Waits up to `limit` for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if self.logged(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// The binary with no settings from the environment that runs the tests, and Hugging Face
/// unreachable, so that no test downloads the real model.
pub fn resonance() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_resonance"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("RESONANCE_CONFIG")
        .env_remove("RESONANCE_ENGINE")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("RESONANCE_LOG_FORMAT", "pretty")
        .env("NO_COLOR", "1");
    cmd
}

/// Starts `resonance serve` on port 0 with `envs` in a new data folder.
pub fn start(envs: &[(&str, &str)]) -> Server {
    start_in(tempfile::tempdir().unwrap(), envs)
}

/// Starts `resonance serve` on port 0 with `envs`, keeping its data in `data`.
pub fn start_in(data: tempfile::TempDir, envs: &[(&str, &str)]) -> Server {
    let mut child = resonance()
        .arg("serve")
        .env("RESONANCE_BIND", "127.0.0.1:0")
        .env("RESONANCE_DATA_DIR", data.path())
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let lines = log.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("serving on http://") {
                let addr: String = line[at + "serving on ".len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send(addr);
            }
            lines.lock().unwrap().push(line);
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server did not log its address");
    Server {
        child,
        base,
        log,
        data,
    }
}
