//! Shared by the integration tests that use the real embedder: models come from the user's model
//! store (fetched on first use, as the CLI does), and the embedder gets the id the CLI gives it,
//! so indexes cached by the CLI and by the tests agree.
//!
//! Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use docqa::embed::BertEmbedder;
use docqa::models::{FetchOptions, LocalModel, Registry, Store, DEFAULT_EMBEDDER};

/// A model from the store, fetched if missing.
pub fn model(name: &str) -> LocalModel {
    Store::new(Store::default_root(), Registry::builtin())
        .ensure(
            name,
            FetchOptions {
                offline: false,
                quiet: true,
            },
            &mut |_: &str| {},
        )
        .unwrap_or_else(|e| panic!("model `{name}`: {e}"))
}

/// The default embedding model's files.
pub fn embedder_model() -> &'static LocalModel {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    MODEL.get_or_init(|| model(DEFAULT_EMBEDDER))
}

/// The real embedder, loaded once per test binary, on the threads `DOCQA_THREADS` asks for (the
/// binary turns it into candle's thread count; so does this).
pub fn embedder() -> &'static BertEmbedder {
    static EMBEDDER: OnceLock<BertEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        if let Ok(n) = std::env::var("DOCQA_THREADS") {
            std::env::set_var("RAYON_NUM_THREADS", n);
        }
        BertEmbedder::from_model(DEFAULT_EMBEDDER, embedder_model())
            .unwrap_or_else(|e| panic!("embedder `{DEFAULT_EMBEDDER}`: {e}"))
    })
}

/// A temporary folder with `docs/` holding these files of the repository's `seeds/`, and the
/// path of an index file beside `docs/` (not yet built).
pub fn seeds_corpus(files: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for f in files {
        std::fs::copy(seeds.join(f), docs.join(f)).unwrap();
    }
    let index = dir.path().join("index.docqa");
    (dir, docs, index)
}

/// A running `docqa serve` over `docs` (its index at `index`), its stderr kept line by line;
/// killed when dropped if still running.
pub struct Server {
    child: Child,
    /// `http://host:port` the server said it listens on.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(docs: &Path, index: &Path, extra: &[&str]) -> Server {
        Server::start_at("127.0.0.1:0", docs, index, extra)
    }

    pub fn start_at(addr: &str, docs: &Path, index: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_docqa"))
            .args(["serve", "--addr", addr, "-k", "2", "--corpus"])
            .arg(docs)
            .arg("--index")
            .arg(index)
            .args(extra)
            .env(
                "DOCQA_THREADS",
                std::env::var("DOCQA_THREADS").unwrap_or("1".into()),
            )
            .env_remove("DOCQA_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        // Drains stderr for the server's whole life, so its logging never blocks.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    // Every address of this machine includes loopback.
                    let _ = tx.send(addr.replace("0.0.0.0", "127.0.0.1"));
                }
                lines.lock().unwrap().push(line);
            }
        });
        let started = Instant::now();
        let base = match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start: {:#?}", log.lock().unwrap());
            }
        };
        eprintln!(
            "server up at {base} after {:.1} s (models and index loaded)",
            started.elapsed().as_secs_f64()
        );
        Server { child, base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn sigterm(&self) {
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
    }

    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "the server did not exit within {limit:?}: {:#?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
