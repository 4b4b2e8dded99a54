//! `stormchor validate FILE`: a config file checked, workload sections included,
//! without running anything.

use std::path::Path;

use stormchor::runtime::workload::{WorkloadRegistry, weights};

use super::config::FileConfig;

/// Checks a config file, workload sections included.
pub fn validate_config(path: &Path) -> Result<(), String> {
    let file = FileConfig::load(path).map_err(|e| e.to_string())?;
    let registry = WorkloadRegistry::with_builtins();
    for (name, section) in &file.workload {
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
