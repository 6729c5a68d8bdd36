//! Embedding in worker processes. candle's CPU kernels share process-wide thread pools, and
//! spreading one small model's forward pass over cores leaves them waiting at a barrier after
//! every operation; independent single-threaded copies of the model, one per core, each
//! embedding its own share of the texts, keep every core busy instead. Processes rather than
//! threads, because candle's thread counts are per process.
//!
//! The protocol, over the worker's stdin and stdout, is JSON lines: first a [`WorkerModel`]
//! naming the model files, answered by `{"ready": ID}` once it is loaded, then any number of
//! requests (an array of texts), each answered by one line (an array of vectors). Any failure is
//! answered `{"error": ...}` instead. The worker exits when its stdin closes.
//! [`serve`] is the worker's side; [`WorkerPool`] the caller's.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{EmbedError, Embedder};

/// The files a worker loads its model from (the same ones the caller loaded).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerModel {
    pub weights: PathBuf,
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Reply {
    Vectors(Vec<Vec<f32>>),
    Ready { ready: String },
    Error { error: String },
}

/// Writes `value` as one JSON line and flushes it; `what` names it in errors. Both sides of the
/// protocol send this way.
fn write_line(
    output: &mut impl Write,
    value: &impl Serialize,
    what: &str,
) -> Result<(), EmbedError> {
    let mut text = serde_json::to_string(value)
        .map_err(|e| EmbedError::Worker(format!("encoding {what}: {e}")))?;
    text.push('\n');
    output
        .write_all(text.as_bytes())
        .and_then(|()| output.flush())
        .map_err(|e| EmbedError::Worker(format!("writing {what}: {e}")))
}

fn send(output: &mut impl Write, reply: &Reply) -> Result<(), EmbedError> {
    write_line(output, reply, "a reply")
}

/// The worker's side: reads the model line from `input`, loads the model with `load`, then
/// answers requests until `input` ends. A request that fails is answered with its error and the
/// worker goes on; a model that does not load ends the worker with that error.
pub fn serve<E: Embedder>(
    input: impl BufRead,
    mut output: impl Write,
    load: impl FnOnce(&WorkerModel) -> Result<E, EmbedError>,
) -> Result<(), EmbedError> {
    let mut lines = input.lines();
    let io = |e: std::io::Error| EmbedError::Worker(format!("reading the model line: {e}"));
    let Some(first) = lines.next() else {
        return Ok(());
    };
    let loaded = serde_json::from_str::<WorkerModel>(&first.map_err(io)?)
        .map_err(|e| EmbedError::Worker(format!("bad model line: {e}")))
        .and_then(|model| load(&model).map(|e| (model, e)));
    let embedder = match loaded {
        Ok((model, embedder)) => {
            send(&mut output, &Reply::Ready { ready: model.id })?;
            embedder
        }
        Err(e) => {
            send(
                &mut output,
                &Reply::Error {
                    error: e.to_string(),
                },
            )?;
            return Err(e);
        }
    };
    for line in lines {
        let line = line.map_err(|e| EmbedError::Worker(format!("reading a request: {e}")))?;
        let reply = match serde_json::from_str::<Vec<String>>(&line) {
            Ok(texts) => {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                match embedder.embed(&refs) {
                    Ok(v) => Reply::Vectors(v),
                    Err(e) => Reply::Error {
                        error: e.to_string(),
                    },
                }
            }
            Err(e) => Reply::Error {
                error: format!("bad request: {e}"),
            },
        };
        send(&mut output, &reply)?;
    }
    Ok(())
}

/// A request's index among a call's requests, and its vectors.
type Answered = (usize, Vec<Vec<f32>>);

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn request(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        write_line(&mut self.stdin, &texts, "a request")?;
        match self.reply()? {
            Reply::Vectors(v) if v.len() == texts.len() => Ok(v),
            Reply::Vectors(v) => Err(EmbedError::Worker(format!(
                "{} vectors for {} texts",
                v.len(),
                texts.len()
            ))),
            Reply::Ready { .. } => Err(EmbedError::Worker("unexpected ready line".into())),
            Reply::Error { error } => Err(EmbedError::Worker(error)),
        }
    }

    fn reply(&mut self) -> Result<Reply, EmbedError> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .map_err(|e| EmbedError::Worker(format!("reading a reply: {e}")))?;
        if n == 0 {
            return Err(EmbedError::Worker("the worker exited".into()));
        }
        serde_json::from_str(&line).map_err(|e| EmbedError::Worker(format!("bad reply: {e}")))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin ends the worker; kill covers one that hangs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Worker processes started on first use and kept until the pool is dropped.
pub struct WorkerPool {
    command: Box<dyn Fn() -> Command + Send + Sync>,
    model: WorkerModel,
    size: usize,
    workers: Mutex<Vec<Worker>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("model", &self.model)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl WorkerPool {
    /// A pool of `size` workers, each started by `command` (a program that runs [`serve`] on
    /// its stdin and stdout) with one thread for candle.
    pub fn new(
        command: impl Fn() -> Command + Send + Sync + 'static,
        model: WorkerModel,
        size: usize,
    ) -> Self {
        Self {
            command: Box::new(command),
            model,
            size: size.max(1),
            workers: Mutex::new(Vec::new()),
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    fn start(&self) -> Result<Worker, EmbedError> {
        let mut cmd = (self.command)();
        cmd.env("RAYON_NUM_THREADS", "1")
            .env("CANDLE_NUM_THREADS", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .map_err(|e| EmbedError::Worker(format!("starting {:?}: {e}", cmd.get_program())))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(EmbedError::Worker("the worker has no pipes".into()));
        };
        write_line(&mut stdin, &self.model, "the model line")?;
        let mut worker = Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        match worker.reply()? {
            Reply::Ready { ready } if ready == self.model.id => Ok(worker),
            Reply::Error { error } => Err(EmbedError::Worker(error)),
            _ => Err(EmbedError::Worker(format!(
                "the worker did not load {}",
                self.model.id
            ))),
        }
    }

    /// Embeds `texts` split over the workers. Texts are sorted by length and cut into requests
    /// of [`super::WORKER_BATCH`]; each worker takes the next request as soon as it has answered
    /// its last, so a worker on a core slowed by other load takes fewer and none waits for a
    /// fixed share of the other's. Vectors come back in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut workers = self
            .workers
            .lock()
            .map_err(|_| EmbedError::Worker("a worker call panicked".into()))?;
        // Workers load their models at the same time: each load is a second or so of one core.
        let missing = self.size.saturating_sub(workers.len());
        let started: Vec<Result<Worker, EmbedError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..missing).map(|_| s.spawn(|| self.start())).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EmbedError::Worker("a worker start panicked".into()))
                    })
                })
                .collect()
        });
        for w in started {
            workers.push(w?);
        }
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| (texts[i].len(), i));
        let requests: Vec<&[usize]> = order.chunks(super::WORKER_BATCH).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<Vec<Answered>, EmbedError>> = std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter_mut()
                .map(|worker| {
                    let (next, requests) = (&next, &requests);
                    s.spawn(move || {
                        let mut answered = Vec::new();
                        loop {
                            let r = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(share) = requests.get(r) else {
                                return Ok(answered);
                            };
                            let batch: Vec<&str> = share.iter().map(|&i| texts[i]).collect();
                            answered.push((r, worker.request(&batch)?));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EmbedError::Worker("a worker call panicked".into()))
                    })
                })
                .collect()
        });
        let mut out = vec![Vec::new(); texts.len()];
        let mut failed = None;
        for result in results {
            match result {
                Ok(answered) => {
                    for (r, vectors) in answered {
                        for (&i, v) in requests[r].iter().zip(vectors) {
                            out[i] = v;
                        }
                    }
                }
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            // A worker in an unknown state is not reused.
            workers.clear();
            return Err(e);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Maps a text to [its length, its number of words], scaled to unit length.
    struct Fake;

    impl Embedder for Fake {
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            texts
                .iter()
                .map(|t| {
                    if t.is_empty() {
                        return Err(EmbedError::Tokenize("empty text".into()));
                    }
                    let v = [t.len() as f32, t.split_whitespace().count() as f32];
                    let n = (v[0] * v[0] + v[1] * v[1]).sqrt();
                    Ok(vec![v[0] / n, v[1] / n])
                })
                .collect()
        }
        fn dim(&self) -> usize {
            2
        }
        fn id(&self) -> &str {
            "fake"
        }
    }

    fn model_line() -> String {
        serde_json::to_string(&WorkerModel {
            weights: "w".into(),
            config: "c".into(),
            tokenizer: "t".into(),
            id: "fake".into(),
        })
        .unwrap()
    }

    #[test]
    fn serve_answers_each_request_on_its_own_line_and_reports_bad_ones() {
        let input = format!(
            "{}\n[\"one two\",\"three\"]\nnot json\n[\"\"]\n[]\n",
            model_line()
        );
        let mut out = Vec::new();
        let mut loaded = None;
        serve(input.as_bytes(), &mut out, |m| {
            loaded = Some(m.id.clone());
            Ok(Fake)
        })
        .unwrap();
        assert_eq!(loaded.as_deref(), Some("fake"));
        let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], r#"{"ready":"fake"}"#);
        let lines = &lines[1..];
        let first: Vec<Vec<f32>> = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first, Fake.embed(&["one two", "three"]).unwrap());
        assert!(lines[1].contains("bad request"), "{}", lines[1]);
        assert!(lines[2].contains("empty text"), "{}", lines[2]);
        assert_eq!(lines[3], "[]");
    }

    #[test]
    fn serve_without_a_loadable_model_fails_naming_it() {
        let input = "{\"weights\": 1}\n";
        let err = serve(input.as_bytes(), Vec::new(), |_| Ok(Fake)).unwrap_err();
        assert!(err.to_string().contains("bad model line"), "{err}");
        let input = format!("{}\n", model_line());
        let mut out = Vec::new();
        let err = serve(input.as_bytes(), &mut out, |m| {
            Err::<Fake, _>(EmbedError::Load {
                what: "weights",
                path: m.weights.display().to_string(),
                why: "missing".into(),
            })
        })
        .unwrap_err();
        assert!(err.to_string().contains("weights w"), "{err}");
        // The caller is told why, not only that the worker exited.
        let reply = String::from_utf8(out).unwrap();
        assert!(
            reply.starts_with(r#"{"error":"#) && reply.contains("weights w"),
            "{reply}"
        );
    }

    #[test]
    fn a_pool_whose_workers_cannot_start_says_so() {
        let pool = WorkerPool::new(
            || Command::new("/nonexistent/docqa-worker"),
            WorkerModel {
                weights: "w".into(),
                config: "c".into(),
                tokenizer: "t".into(),
                id: "x".into(),
            },
            2,
        );
        let err = pool.embed(&["a", "b", "c"]).unwrap_err();
        assert!(err.to_string().contains("docqa-worker"), "{err}");
    }
}
