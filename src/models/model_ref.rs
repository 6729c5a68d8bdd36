//! [`ModelRef`]: what a `--model` value names, resolved once: a registered generator, a GGUF
//! file given by path, or a model behind an OpenAI-compatible server. Front ends resolve it
//! (usage errors name the registered generators); the session loads it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::registry::{ModelRole, Registry};
use crate::served::is_url;

/// A generator, by where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelRef {
    /// A registered model (`models/*.toml` or a user manifest), fetched into the cache.
    Registry { name: String },
    /// A GGUF file run in place: its architecture, tokenizer and chat template read from it.
    File { path: PathBuf },
    /// A model behind an OpenAI-compatible API at `base_url` (`http(s)://host:port/v1`);
    /// `api_model` `None` asks for the first model the server lists.
    Served {
        base_url: String,
        api_model: Option<String>,
    },
}

/// The kind of a [`ModelRef`], as reports and the leaderboard name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Registry,
    File,
    Served,
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Registry => "registry",
            ModelKind::File => "file",
            ModelKind::Served => "server",
        })
    }
}

impl ModelRef {
    /// Resolves a `--model` value: an `http(s)://` URL is a server's API (asked for
    /// `api_model`); a registered generator's name (a served manifest's name asks its server);
    /// anything else with a `/` or ending in `.gguf` a file, which must exist. The message of
    /// an error says what was expected.
    pub fn parse(
        value: &str,
        api_model: Option<&str>,
        registry: &Registry,
    ) -> Result<ModelRef, String> {
        if is_url(value) {
            return Ok(ModelRef::Served {
                base_url: value.trim_end_matches('/').to_string(),
                api_model: api_model.map(str::to_string),
            });
        }
        if let Ok(spec) = registry.get(value) {
            if spec.role != ModelRole::Generator {
                return Err(format!(
                    "`{value}` is not a registered generator (it is a registered {})",
                    spec.role
                ));
            }
            return Ok(match &spec.served {
                Some(s) => ModelRef::Served {
                    base_url: s.base_url.clone(),
                    api_model: Some(s.api_model.clone()),
                },
                None => ModelRef::Registry {
                    name: value.to_string(),
                },
            });
        }
        let looks_like_path = value.contains(std::path::MAIN_SEPARATOR)
            || value.contains('/')
            || value.to_ascii_lowercase().ends_with(".gguf");
        if looks_like_path {
            let path = PathBuf::from(value);
            return match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => Ok(ModelRef::File {
                    path: std::fs::canonicalize(&path).unwrap_or(path),
                }),
                Ok(_) => Err(format!(
                    "{value} is not a file (a GGUF model file was expected)"
                )),
                Err(e) => Err(format!("cannot read the model file {value}: {e}")),
            };
        }
        let known: Vec<&str> = registry
            .models()
            .iter()
            .filter(|m| m.role == ModelRole::Generator)
            .map(|m| m.name.0.as_str())
            .collect();
        Err(format!(
            "`{value}` is not a registered generator (registered generators: {}; see `docqa \
             models list`), a path to a .gguf file, or a server's URL (http://host:port/v1)",
            known.join(", ")
        ))
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            ModelRef::Registry { .. } => ModelKind::Registry,
            ModelRef::File { .. } => ModelKind::File,
            ModelRef::Served { .. } => ModelKind::Served,
        }
    }

    /// A short name for tables and file names: the registry name, the file's name, or
    /// `MODEL@host:port`.
    pub fn label(&self) -> String {
        match self {
            ModelRef::Registry { name } => name.clone(),
            ModelRef::File { path } => path.file_name().map_or_else(
                || path.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            ),
            ModelRef::Served {
                base_url,
                api_model,
            } => {
                let host = base_url
                    .split("://")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .unwrap_or(base_url);
                format!("{}@{host}", api_model.as_deref().unwrap_or("default"))
            }
        }
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Registry { name } => f.write_str(name),
            ModelRef::File { path } => write!(f, "{}", path.display()),
            ModelRef::Served {
                base_url,
                api_model: Some(m),
            } => write!(f, "{m} at {base_url}"),
            ModelRef::Served { base_url, .. } => f.write_str(base_url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_values_resolve_by_their_form() {
        let r = Registry::builtin();
        let parse = |v: &str, m: Option<&str>| ModelRef::parse(v, m, &r);
        assert_eq!(
            parse("qwen2.5-coder-0.5b-instruct", None).unwrap(),
            ModelRef::Registry {
                name: "qwen2.5-coder-0.5b-instruct".into()
            }
        );
        let served = parse("http://127.0.0.1:8080/v1/", Some("m")).unwrap();
        assert_eq!(
            served,
            ModelRef::Served {
                base_url: "http://127.0.0.1:8080/v1".into(),
                api_model: Some("m".into())
            }
        );
        assert_eq!(served.label(), "m@127.0.0.1:8080");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tiny.gguf");
        std::fs::write(&file, b"GGUF").unwrap();
        let f = parse(file.to_str().unwrap(), None).unwrap();
        assert_eq!(f.kind(), ModelKind::File);
        assert_eq!(f.label(), "tiny.gguf");
        let e = parse("./missing.gguf", None).unwrap_err();
        assert!(e.contains("missing.gguf"), "{e}");
        let e = parse(dir.path().to_str().unwrap(), None).unwrap_err();
        assert!(e.contains("not a file"), "{e}");
        let e = parse("gpt-9", None).unwrap_err();
        assert!(
            e.contains("qwen2.5-coder-1.5b-instruct") && e.contains(".gguf"),
            "{e}"
        );
        let e = parse("all-minilm-l6-v2", None).unwrap_err();
        assert!(e.contains("is not a registered generator"), "{e}");
    }
}
