//! Writing a user manifest: `docqa eval --write-threshold` pins the verification threshold it
//! proposes for the generator it ran, in `$XDG_CONFIG_HOME/docqa/models/NAME.toml` (or
//! `--models-dir`), where the registry reads it on the next run. A registered model's manifest
//! is copied with the new threshold (and then replaces the built-in one); a GGUF file gets a
//! manifest pinning its sha256 and path (`--model PATH` finds it by the hash, `--model NAME`
//! copies the file into the cache); a served model one naming its URL and model id.

use std::path::{Path, PathBuf};

use super::registry::{
    ModelFile, ModelName, ModelRole, ModelSpec, Registry, ServedSpec, Source, SourceKind,
};
use super::store::StoreError;

/// What a manifest is written for.
pub enum Pinned<'a> {
    /// A registered model, by name.
    Registry(&'a str),
    /// A GGUF file with its sha256, size and `general.architecture`.
    File {
        path: &'a Path,
        sha256: &'a str,
        size: u64,
        architecture: &'a str,
    },
    /// A served model.
    Served {
        base_url: &'a str,
        api_model: &'a str,
    },
}

/// The manifest of `model` with `threshold` as its calibrated verification threshold, named
/// `name`.
pub fn calibrated_manifest(
    registry: &Registry,
    model: &Pinned<'_>,
    name: &str,
    threshold: f64,
) -> Result<ModelSpec, StoreError> {
    let mut spec = match model {
        Pinned::Registry(registered) => registry.get(registered)?.clone(),
        Pinned::File {
            path,
            sha256,
            size,
            architecture,
        } => ModelSpec {
            name: ModelName(name.to_string()),
            role: ModelRole::Generator,
            architecture: architecture.to_string(),
            licence: "unknown (a local file)".into(),
            description: format!("GGUF file {}", path.display()),
            dim: None,
            verify_threshold: None,
            files: vec![ModelFile {
                name: "model.gguf".into(),
                sha256: sha256.to_string(),
                size: Some(*size),
            }],
            derived: Vec::new(),
            sources: vec![Source {
                kind: SourceKind::File,
                wheels: Vec::new(),
                repo: None,
                revision: None,
                endpoint: None,
                package: None,
                version: None,
                files: [("model.gguf".to_string(), vec![path.display().to_string()])]
                    .into_iter()
                    .collect(),
            }],
            served: None,
        },
        Pinned::Served {
            base_url,
            api_model,
        } => ModelSpec {
            name: ModelName(name.to_string()),
            role: ModelRole::Generator,
            architecture: "served".into(),
            licence: "unknown (a served model)".into(),
            description: format!("{api_model} served at {base_url}"),
            dim: None,
            verify_threshold: None,
            files: Vec::new(),
            derived: Vec::new(),
            sources: Vec::new(),
            served: Some(ServedSpec {
                base_url: base_url.to_string(),
                api_model: api_model.to_string(),
            }),
        },
    };
    spec.name = ModelName(name.to_string());
    spec.verify_threshold = Some(threshold);
    Ok(spec)
}

/// Writes `spec` to `dir/NAME.toml` (atomically, the folder created if need be) after the
/// comment lines of `header`; returns the path. The text is parsed back as the registry would
/// before it replaces anything.
pub fn write_manifest(dir: &Path, spec: &ModelSpec, header: &str) -> Result<PathBuf, StoreError> {
    let path = dir.join(format!("{}.toml", spec.name));
    let bad = |why: String| StoreError::Manifest {
        file: path.display().to_string(),
        why,
    };
    let body = toml::to_string(spec).map_err(|e| bad(e.to_string()))?;
    let mut text: String = header.lines().map(|l| format!("# {l}\n")).collect();
    text.push_str(&body);
    Registry::from_manifests([(path.display().to_string(), text.clone())])?;
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
    tmp.persist(&path).map_err(|e| io(e.error))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_manifests_round_trip_through_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::builtin();
        let sha = "a".repeat(64);
        let gguf = dir.path().join("mine.gguf");
        let cases = [
            (
                Pinned::Registry("qwen2.5-coder-0.5b-instruct"),
                "qwen2.5-coder-0.5b-instruct",
            ),
            (
                Pinned::File {
                    path: &gguf,
                    sha256: &sha,
                    size: 12,
                    architecture: "llama",
                },
                "mine",
            ),
            (
                Pinned::Served {
                    base_url: "http://127.0.0.1:8080/v1",
                    api_model: "big",
                },
                "big-served",
            ),
        ];
        for (model, name) in &cases {
            let spec = calibrated_manifest(&registry, model, name, -1.5).unwrap();
            write_manifest(dir.path(), &spec, "calibrated on seeds\nAUC 0.8").unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join("mine.toml")).unwrap();
        assert!(
            text.starts_with("# calibrated on seeds\n# AUC 0.8\n"),
            "{text}"
        );
        let r = Registry::with_user_manifests(dir.path()).unwrap();
        let q = r.get("qwen2.5-coder-0.5b-instruct").unwrap();
        assert_eq!(q.verify_threshold, Some(-1.5));
        assert_eq!(
            q.derived.len(),
            1,
            "the copy keeps the built-in's derived file"
        );
        let mine = r.generator_by_sha256(&sha).unwrap();
        assert_eq!(
            (mine.name.0.as_str(), mine.verify_threshold),
            ("mine", Some(-1.5))
        );
        assert_eq!(mine.sources[0].kind, SourceKind::File);
        let served = r.served("http://127.0.0.1:8080/v1", "big").unwrap();
        assert_eq!(served.verify_threshold, Some(-1.5));
    }
}
