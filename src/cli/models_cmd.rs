//! `docqa models list|pull|verify`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use docqa::models::{FileState, ModelStatus, Store};

use super::{human_size, table, GlobalArgs};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// List registered models: role, download size, cached or not, licence
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Fetch models (all embedders and generators when none is named) and verify their sha256;
    /// replaces files that are missing or corrupt
    Pull {
        /// Model names (see `docqa models list`)
        names: Vec<String>,
    },
    /// Hash every cached file and compare with the registry; a file that fails is deleted, so
    /// the next use fetches it again
    Verify {
        /// Model names [default: all cached]
        names: Vec<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

pub fn run(global: &GlobalArgs, command: &ModelsCommand) -> Result<ExitCode> {
    let store = global.store()?;
    match command {
        ModelsCommand::List { json } => {
            let statuses = all_statuses(&store, false)?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list_json(&store, &statuses))?
                );
            } else {
                let rows: Vec<Vec<String>> = statuses
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.role.to_string(),
                            s.download_size.map_or("-".into(), human_size),
                            served_at(&store, &s.name)
                                .map_or_else(|| cached_label(s).to_string(), |_| "served".into()),
                            s.licence.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(&["NAME", "ROLE", "SIZE", "CACHED", "LICENCE"], &rows)
                );
                eprintln!("cache: {}", store.root().display());
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Pull { names } => {
            let names = if names.is_empty() {
                store
                    .registry()
                    .models()
                    .iter()
                    .filter(|m| m.role != docqa::models::ModelRole::Reference)
                    .map(|m| m.name.0.clone())
                    .collect()
            } else {
                names.clone()
            };
            let mut progress = global.progress_printer();
            for name in &names {
                let model = store.pull(name, global.fetch_options(), &mut progress)?;
                eprintln!("{name}: ready in {}", model.dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify { names, json } => {
            let statuses: Vec<ModelStatus> = if names.is_empty() {
                let cached: Vec<String> = all_statuses(&store, false)?
                    .into_iter()
                    .filter(|s| s.files.iter().any(|f| f.state != FileState::Missing))
                    .map(|s| s.name)
                    .collect();
                cached
                    .iter()
                    .map(|n| store.verify(n))
                    .collect::<Result<_, _>>()?
            } else {
                names
                    .iter()
                    .map(|n| store.registry().get(n).map(|_| n.clone()))
                    .collect::<Result<Vec<_>, _>>()?
                    .iter()
                    .map(|n| store.verify(n))
                    .collect::<Result<_, _>>()?
            };
            let ok = statuses.iter().all(|s| s.is_ready());
            if *json {
                println!("{}", serde_json::to_string_pretty(&statuses)?);
            } else {
                let mut rows = Vec::new();
                for s in &statuses {
                    for f in &s.files {
                        let state = match &f.state {
                            FileState::Corrupt { actual, removed } => format!(
                                "CORRUPT: file sha256 {actual}, expected {}{}",
                                f.expected_sha256,
                                if *removed { "; removed" } else { "" }
                            ),
                            other => format!("{other:?}").to_lowercase(),
                        };
                        rows.push(vec![s.name.clone(), f.file.clone(), state]);
                    }
                }
                print!("{}", table(&["MODEL", "FILE", "STATE"], &rows));
                if statuses.is_empty() {
                    eprintln!("no cached models in {}", store.root().display());
                }
                for s in statuses.iter().filter(|s| !s.is_ready()) {
                    eprintln!(
                        "{}: not ready; the next use fetches what is missing, or run `docqa models pull {}`",
                        s.name, s.name
                    );
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::EXIT_ERROR)
            })
        }
    }
}

fn all_statuses(store: &Store, full: bool) -> Result<Vec<ModelStatus>> {
    Ok(store
        .registry()
        .names()
        .iter()
        .map(|n| store.status(n, full))
        .collect::<Result<_, _>>()?)
}

/// A served model's URL and model id, when `name` is one.
fn served_at(store: &Store, name: &str) -> Option<String> {
    let spec = store.registry().get(name).ok()?;
    let served = spec.served.as_ref()?;
    Some(format!("{} at {}", served.api_model, served.base_url))
}

fn cached_label(s: &ModelStatus) -> &'static str {
    if s.is_ready() {
        "yes"
    } else if s.files.iter().all(|f| f.state == FileState::Missing) {
        "no"
    } else {
        "partial"
    }
}

fn list_json(store: &Store, statuses: &[ModelStatus]) -> serde_json::Value {
    let models: Vec<_> = statuses
        .iter()
        .map(|s| {
            let spec = store
                .registry()
                .get(&s.name)
                .expect("status of a registered model");
            serde_json::json!({
                "name": s.name,
                "role": s.role,
                "architecture": spec.architecture,
                "description": spec.description,
                "verify_threshold": spec.verify_threshold,
                "licence": s.licence,
                "download_size": s.download_size,
                "cached": cached_label(s),
                "sources": spec.sources.iter().map(|x| x.kind.to_string()).collect::<Vec<_>>(),
                "files": s.files,
                "served": served_at(store, &s.name),
            })
        })
        .collect();
    serde_json::json!({ "cache": store.root(), "models": models })
}
