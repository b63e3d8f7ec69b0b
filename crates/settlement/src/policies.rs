//! The rebate policies of a programme: every `*.toml` file of its policy directory, each one
//! version, checked together (`partnerflow validate` and start-up refuse a bad one).

use std::path::Path;

use partnerflow_core::rebate::policy::{Policy, PolicySet};

use crate::{Error, Result};

/// Reads and checks every policy file of `dir` (none: an empty set, nothing can be settled).
pub fn load(dir: &Path) -> Result<PolicySet> {
    if !dir.is_dir() {
        return Ok(PolicySet::default());
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut texts = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        texts.push((path.display().to_string(), text));
    }
    parse(&texts)
}

/// Checks policy files given as (name, text).
pub fn parse(files: &[(String, String)]) -> Result<PolicySet> {
    let mut problems = Vec::new();
    let mut versions = Vec::new();
    for (name, text) in files {
        match Policy::parse(name, text) {
            Ok(p) => versions.push(p),
            Err(list) => problems.extend(list),
        }
    }
    if problems.is_empty() {
        PolicySet::new(versions).map_err(|list| Error::Config(list.join("; ")))
    } else {
        Err(Error::Config(problems.join("; ")))
    }
}
