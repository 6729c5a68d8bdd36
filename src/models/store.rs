//! The local model cache: one folder per model, every file verified by sha256 before first use,
//! written atomically (assembled in `tmp/`, hashed, then renamed) so a killed download never
//! leaves a file that passes as complete.
//!
//! A verified file gets a stamp (`.NAME.verified`: hash, size, mtime). A file whose stamp is
//! missing or stale is hashed again before use; `models verify` always hashes, and a file that
//! fails is deleted with its stamp, so the next use fetches or derives it again instead of
//! trusting a stamp that bit rot left valid.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::registry::{ModelRole, ModelSpec, Registry, Transform};
use super::source::{self, FetchError};

/// Environment variable overriding the cache folder.
pub const CACHE_ENV: &str = "DOCQA_CACHE";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("model manifest {file}: {why}")]
    Manifest { file: String, why: String },
    #[error("unknown model `{name}` (registered: {known}); see `docqa models list`")]
    UnknownModel { name: String, known: String },
    #[error("model `{name}` is a {actual}, not a {expected}")]
    WrongRole {
        name: String,
        expected: ModelRole,
        actual: ModelRole,
    },
    #[error(
        "model `{name}` is not in the cache ({cache}) and network access is off (--offline or \
         HF_HUB_OFFLINE=1); run `docqa models pull {name}` on a machine with network access"
    )]
    OfflineMissing { name: String, cache: PathBuf },
    #[error(
        "{path}: sha256 mismatch: expected {expected}, found {actual}; run `docqa models pull {name}` to replace it"
    )]
    Corrupt {
        name: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model `{name}`: every source failed:\n{}", .attempts.join("\n"))]
    AllSourcesFailed { name: String, attempts: Vec<String> },
    #[error("model `{name}`: deriving {file}: {why}")]
    Derive {
        name: String,
        file: String,
        why: String,
    },
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How a fetch may behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchOptions {
    /// Never touch the network (also implied by `HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Hide progress bars.
    pub quiet: bool,
}

impl FetchOptions {
    fn offline(&self) -> bool {
        self.offline || std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v == "true")
    }

    fn show_progress(&self) -> bool {
        !self.quiet && io::stderr().is_terminal()
    }
}

/// Receives one line per step of a pull, for the caller to show.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// A model whose files are all present and verified.
#[derive(Debug, Clone)]
pub struct LocalModel {
    pub spec: ModelSpec,
    pub dir: PathBuf,
    files: BTreeMap<String, (PathBuf, String)>,
}

impl LocalModel {
    /// Path of a file (downloaded or derived) by its manifest name.
    pub fn path(&self, file: &str) -> &Path {
        &self.files[file].0
    }

    pub fn sha256(&self, file: &str) -> &str {
        &self.files[file].1
    }

    /// The GGUF to run: the re-encoded file when the manifest derives one.
    pub fn runtime_gguf(&self) -> (&Path, &str) {
        let name = self
            .spec
            .derived
            .iter()
            .find(|d| d.transform == Transform::RequantQ8_0)
            .map_or("model.gguf", |d| d.name.as_str());
        (self.path(name), self.sha256(name))
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    Missing,
    /// Present with a valid stamp (quick check) or a matching hash (full check).
    Verified,
    /// Present but not verified since it was last written.
    Unverified,
    /// Present with another hash than the registry's; `removed` once [`Store::verify`] has
    /// deleted it.
    Corrupt {
        actual: String,
        removed: bool,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    pub file: String,
    pub path: PathBuf,
    pub expected_sha256: String,
    pub size: Option<u64>,
    pub state: FileState,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub name: String,
    pub role: ModelRole,
    pub licence: String,
    pub download_size: Option<u64>,
    pub files: Vec<FileStatus>,
}

impl ModelStatus {
    pub fn is_ready(&self) -> bool {
        self.files.iter().all(|f| f.state == FileState::Verified)
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Stamp {
    sha256: String,
    size: u64,
    mtime_ns: u128,
}

pub struct Store {
    root: PathBuf,
    registry: Registry,
}

impl Store {
    pub fn new(root: PathBuf, registry: Registry) -> Self {
        Self { root, registry }
    }

    /// The cache at `DOCQA_CACHE`, or `docqa/` under the user's cache folder.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
            return PathBuf::from(dir);
        }
        dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("docqa")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn model_dir(&self, spec: &ModelSpec) -> PathBuf {
        self.root.join("models").join(&spec.name.0)
    }

    fn all_files(spec: &ModelSpec) -> Vec<(String, String, Option<u64>)> {
        let mut v: Vec<_> = spec
            .files
            .iter()
            .map(|f| (f.name.clone(), f.sha256.clone(), f.size))
            .collect();
        v.extend(
            spec.derived
                .iter()
                .map(|d| (d.name.clone(), d.sha256.clone(), None)),
        );
        v
    }

    /// The state of each file; `full` hashes every present file instead of trusting stamps.
    pub fn status(&self, name: &str, full: bool) -> Result<ModelStatus, StoreError> {
        let spec = self.registry.get(name)?;
        let dir = self.model_dir(spec);
        let mut files = Vec::new();
        for (file, expected, size) in Self::all_files(spec) {
            let path = dir.join(&file);
            let state = if !path.exists() {
                FileState::Missing
            } else if !full && stamp_is_valid(&path, &expected) {
                FileState::Verified
            } else if full {
                let actual = sha256_file(&path)?;
                if actual == expected {
                    write_stamp(&path, &actual)?;
                    FileState::Verified
                } else {
                    // A stamp vouching for this file is wrong, whatever happens to the file.
                    remove_stamp(&path)?;
                    FileState::Corrupt {
                        actual,
                        removed: false,
                    }
                }
            } else {
                FileState::Unverified
            };
            files.push(FileStatus {
                file,
                path,
                expected_sha256: expected,
                size,
                state,
            });
        }
        Ok(ModelStatus {
            name: spec.name.0.clone(),
            role: spec.role,
            licence: spec.licence.clone(),
            download_size: spec.download_size(),
            files,
        })
    }

    /// Hashes every present file of `name` (as `status(name, true)`) and deletes each file
    /// that fails, with its stamp: the next use finds it missing and fetches or derives it
    /// again. The cache is docqa's own, and a file with the wrong hash is of no use to it.
    pub fn verify(&self, name: &str) -> Result<ModelStatus, StoreError> {
        let mut status = self.status(name, true)?;
        for f in &mut status.files {
            if let FileState::Corrupt { removed, .. } = &mut f.state {
                remove_if_present(&f.path)?;
                *removed = true;
            }
        }
        Ok(status)
    }

    /// Returns the model with every file verified, fetching what is missing. A present file whose
    /// hash does not match is an error (`pull` replaces it), never silently used.
    pub fn ensure(
        &self,
        name: &str,
        opts: FetchOptions,
        progress: Progress<'_>,
    ) -> Result<LocalModel, StoreError> {
        self.obtain(name, opts, false, progress)
    }

    /// Fetches the model again where a file is missing or does not match its hash.
    pub fn pull(
        &self,
        name: &str,
        opts: FetchOptions,
        progress: Progress<'_>,
    ) -> Result<LocalModel, StoreError> {
        self.obtain(name, opts, true, progress)
    }

    fn obtain(
        &self,
        name: &str,
        opts: FetchOptions,
        replace_corrupt: bool,
        progress: Progress<'_>,
    ) -> Result<LocalModel, StoreError> {
        let spec = self.registry.get(name)?.clone();
        let dir = self.model_dir(&spec);
        if spec.served.is_some() {
            // Served elsewhere: nothing to fetch or keep.
            progress(&format!("{}: served, nothing to fetch", spec.name));
            return Ok(LocalModel {
                spec,
                dir,
                files: BTreeMap::new(),
            });
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;

        let mut need_fetch = false;
        for f in &spec.files {
            let path = dir.join(&f.name);
            match check_file(&spec, &path, &f.sha256)? {
                Check::Ok => {}
                Check::Missing => need_fetch = true,
                Check::Corrupt(e) if replace_corrupt => {
                    progress(&format!("{e}: replacing"));
                    need_fetch = true;
                }
                Check::Corrupt(e) => return Err(e),
            }
        }
        if need_fetch {
            if opts.offline() {
                return Err(StoreError::OfflineMissing {
                    name: spec.name.0.clone(),
                    cache: self.root.clone(),
                });
            }
            self.fetch_all(&spec, &dir, opts, progress)?;
        }

        for d in &spec.derived {
            let path = dir.join(&d.name);
            match check_file(&spec, &path, &d.sha256)? {
                Check::Ok => {}
                Check::Corrupt(e) if !replace_corrupt => return Err(e),
                _ => {
                    progress(&format!(
                        "{}: re-encoding {} as {}",
                        spec.name, d.from, d.name
                    ));
                    self.derive(&spec, &dir, &d.name, &d.from, d.transform, &d.sha256)?;
                }
            }
        }

        let mut files = BTreeMap::new();
        for (file, sha, _) in Self::all_files(&spec) {
            files.insert(file.clone(), (dir.join(&file), sha));
        }
        Ok(LocalModel { spec, dir, files })
    }

    fn fetch_all(
        &self,
        spec: &ModelSpec,
        dir: &Path,
        opts: FetchOptions,
        progress: Progress<'_>,
    ) -> Result<(), StoreError> {
        let mut attempts = Vec::new();
        for source in &spec.sources {
            let work = self.work_dir(&spec.name.0)?;
            progress(&format!("{}: fetching from {}", spec.name, source.kind));
            let started = Instant::now();
            let result = source::fetch(spec, source, &work, opts.show_progress());
            match result {
                Ok(assembled) => {
                    let mut bad = None;
                    for f in &spec.files {
                        let got = &assembled[&f.name];
                        if got.sha256 != f.sha256 {
                            bad = Some(format!(
                                "{}: {} has sha256 {}, expected {}",
                                source.kind, f.name, got.sha256, f.sha256
                            ));
                            break;
                        }
                    }
                    if let Some(why) = bad {
                        attempts.push(why);
                        let _ = fs::remove_dir_all(&work);
                        continue;
                    }
                    for f in &spec.files {
                        let dest = dir.join(&f.name);
                        let got = &assembled[&f.name];
                        fs::rename(&got.path, &dest).map_err(io_err(&dest))?;
                        write_stamp(&dest, &got.sha256)?;
                    }
                    let _ = fs::remove_dir_all(&work);
                    progress(&format!(
                        "{}: fetched from {} in {:.1}s",
                        spec.name,
                        source.kind,
                        started.elapsed().as_secs_f64()
                    ));
                    return Ok(());
                }
                Err(e) => {
                    let _ = fs::remove_dir_all(&work);
                    progress(&format!(
                        "{}: {} source failed: {e}",
                        spec.name, source.kind
                    ));
                    attempts.push(format!("  {}: {}", source.kind, fmt_fetch_error(&e)));
                }
            }
        }
        Err(StoreError::AllSourcesFailed {
            name: spec.name.0.clone(),
            attempts,
        })
    }

    /// A fresh folder under `tmp/` for one fetch; stale ones from killed runs are removed.
    fn work_dir(&self, name: &str) -> Result<PathBuf, StoreError> {
        let tmp = self.root.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let dir = tmp.join(format!("{name}-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(dir)
    }

    fn derive(
        &self,
        spec: &ModelSpec,
        dir: &Path,
        file: &str,
        from: &str,
        transform: Transform,
        expected: &str,
    ) -> Result<(), StoreError> {
        let work = self.work_dir(&format!("{}-derive", spec.name))?;
        let tmp = work.join(file);
        let derive_err = |why: String| StoreError::Derive {
            name: spec.name.0.clone(),
            file: file.to_string(),
            why,
        };
        match transform {
            Transform::RequantQ8_0 => {
                super::requant::requantize_slow_tensors(&dir.join(from), &tmp)
                    .map_err(|e| derive_err(e.to_string()))?;
            }
        }
        let actual = sha256_file(&tmp)?;
        if actual != expected {
            let _ = fs::remove_dir_all(&work);
            return Err(derive_err(format!(
                "result has sha256 {actual}, manifest records {expected}"
            )));
        }
        let dest = dir.join(file);
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        write_stamp(&dest, &actual)?;
        let _ = fs::remove_dir_all(&work);
        Ok(())
    }
}

impl Store {
    /// The sha256 of a file outside the cache (a GGUF given by path), remembered under
    /// `file-hashes/` by its canonical path, size and modification time: a second run does not
    /// read a gigabyte again, and a changed file is hashed anew.
    pub fn file_sha256(&self, path: &Path) -> Result<String, StoreError> {
        let canonical = fs::canonicalize(path).map_err(io_err(path))?;
        let key = hex::encode(Sha256::digest(canonical.to_string_lossy().as_bytes()));
        let dir = self.root.join("file-hashes");
        let record = dir.join(format!("{key}.json"));
        let identity = file_identity(&canonical);
        if let Some((size, mtime_ns)) = identity {
            let known = fs::read_to_string(&record)
                .ok()
                .and_then(|t| serde_json::from_str::<Stamp>(&t).ok());
            if let Some(stamp) = known.filter(|s| s.size == size && s.mtime_ns == mtime_ns) {
                return Ok(stamp.sha256);
            }
        }
        let started = Instant::now();
        let sha256 = sha256_file(&canonical)?;
        tracing::info!(
            "hashed {} in {:.1} s",
            canonical.display(),
            started.elapsed().as_secs_f64()
        );
        // Only a file that did not change while it was read is remembered.
        if let Some((size, mtime_ns)) = identity.filter(|id| file_identity(&canonical) == Some(*id))
        {
            let stamp = Stamp {
                sha256: sha256.clone(),
                size,
                mtime_ns,
            };
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io_err(&dir))?;
            serde_json::to_writer(&mut tmp, &stamp).map_err(|e| io_err(&record)(e.into()))?;
            tmp.persist(&record).map_err(|e| io_err(&record)(e.error))?;
        }
        Ok(sha256)
    }
}

fn fmt_fetch_error(e: &FetchError) -> String {
    e.to_string().replace('\n', " ")
}

enum Check {
    Ok,
    Missing,
    Corrupt(StoreError),
}

fn check_file(spec: &ModelSpec, path: &Path, expected: &str) -> Result<Check, StoreError> {
    if !path.exists() {
        return Ok(Check::Missing);
    }
    if stamp_is_valid(path, expected) {
        return Ok(Check::Ok);
    }
    let actual = sha256_file(path)?;
    if actual == expected {
        write_stamp(path, &actual)?;
        return Ok(Check::Ok);
    }
    Ok(Check::Corrupt(StoreError::Corrupt {
        name: spec.name.0.clone(),
        path: path.to_path_buf(),
        expected: expected.to_string(),
        actual,
    }))
}

fn stamp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.verified"))
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

fn remove_stamp(path: &Path) -> Result<(), StoreError> {
    remove_if_present(&stamp_path(path))
}

fn file_identity(path: &Path) -> Option<(u64, u128)> {
    let meta = fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), mtime.as_nanos()))
}

fn stamp_is_valid(path: &Path, expected: &str) -> bool {
    let Ok(text) = fs::read_to_string(stamp_path(path)) else {
        return false;
    };
    let Ok(stamp) = serde_json::from_str::<Stamp>(&text) else {
        return false;
    };
    let Some((size, mtime_ns)) = file_identity(path) else {
        return false;
    };
    stamp.sha256 == expected && stamp.size == size && stamp.mtime_ns == mtime_ns
}

fn write_stamp(path: &Path, sha256: &str) -> Result<(), StoreError> {
    let (size, mtime_ns) = file_identity(path).ok_or_else(|| StoreError::Io {
        path: path.to_path_buf(),
        source: io::Error::other("cannot read metadata"),
    })?;
    let stamp = Stamp {
        sha256: sha256.to_string(),
        size,
        mtime_ns,
    };
    let sp = stamp_path(path);
    let text = serde_json::to_string(&stamp).expect("stamp serialises");
    fs::write(&sp, text).map_err(io_err(&sp))
}

/// sha256 of a file, in hex.
pub fn sha256_file(path: &Path) -> Result<String, StoreError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_hash_is_remembered_until_it_changes() {
        let cache = tempfile::tempdir().unwrap();
        let store = Store::new(cache.path().to_path_buf(), Registry::builtin());
        let file = cache.path().join("m.gguf");
        fs::write(&file, b"weights one").unwrap();
        let real = sha256_file(&file).unwrap();
        assert_eq!(store.file_sha256(&file).unwrap(), real);
        // The second call trusts the record: a forged one is believed while the file is as
        // recorded...
        let records: Vec<PathBuf> = fs::read_dir(cache.path().join("file-hashes"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(records.len(), 1);
        let mut stamp: Stamp = serde_json::from_slice(&fs::read(&records[0]).unwrap()).unwrap();
        stamp.sha256 = "f".repeat(64);
        fs::write(&records[0], serde_json::to_vec(&stamp).unwrap()).unwrap();
        assert_eq!(store.file_sha256(&file).unwrap(), "f".repeat(64));
        // ...and not once the file changed.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&file, b"weights two").unwrap();
        let changed = store.file_sha256(&file).unwrap();
        assert_eq!(changed, sha256_file(&file).unwrap());
        assert_ne!(changed, real);
    }
}
