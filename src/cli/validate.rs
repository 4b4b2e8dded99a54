//! `stormchor validate FILE`: a config file (its keys, the ranges of its values, its
//! workload sections) or a workload file (TOML or YAML, read as `run` reads it),
//! checked without running anything.

use std::path::Path;

use stormchor::workloads::{SqlWorkload, Workload, WorkloadRegistry, weights};

use super::config::{FileConfig, FlagValues, Settings};

/// Whether `path` is a workload file rather than a config file: YAML (config files
/// are TOML), or TOML with `operations` (a key no config file has).
fn is_workload_file(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => true,
        _ => std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .is_some_and(|table| table.contains_key("operations")),
    }
}

/// Checks a config file or a workload file.
pub fn validate(path: &Path) -> Result<(), String> {
    if is_workload_file(path) {
        let workload = SqlWorkload::from_file(path).map_err(|e| e.to_string())?;
        weights(&workload.info(), None).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    validate_config(path)
}

/// Checks a config file, workload sections included.
fn validate_config(path: &Path) -> Result<(), String> {
    let file = FileConfig::load(path).map_err(|e| e.to_string())?;
    let sections = file.workload.clone();
    Settings::resolve(FlagValues::default(), |_| None, Some(file)).map_err(|e| e.to_string())?;
    let registry = WorkloadRegistry::with_builtins();
    for (name, section) in &sections {
        let mut section = section.clone();
        let overrides = section.remove("weights");
        let mut workload = registry
            .create(name)
            .map_err(|e| format!("{}: [workload.{name}]: {e}", path.display()))?;
        workload
            .configure(&section)
            .map_err(|e| format!("{}: [workload.{name}]: {e}", path.display()))?;
        let overrides = match overrides {
            Some(toml::Value::Table(table)) => Some(table),
            Some(other) => {
                return Err(format!(
                    "{}: [workload.{name}].weights must be a table, found {other}",
                    path.display()
                ));
            }
            None => None,
        };
        weights(&workload.info(), overrides.as_ref())
            .map_err(|e| format!("{}: [workload.{name}]: {e}", path.display()))?;
    }
    Ok(())
}
