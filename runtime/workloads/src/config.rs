//! Reading a workload's own config section: known keys, bounded integers.

use crate::WorkloadError;

/// Reads an integer key of a config section, within bounds.
pub(crate) fn integer_key(
    workload: &str,
    section: &toml::Table,
    key: &str,
    min: i64,
    default: i64,
) -> Result<i64, WorkloadError> {
    match section.get(key) {
        None => Ok(default),
        Some(value) => match value.as_integer() {
            Some(n) if n >= min => Ok(n),
            _ => Err(WorkloadError::Config {
                workload: workload.to_owned(),
                problem: format!("`{key}` must be a whole number of at least {min}, found {value}"),
            }),
        },
    }
}

/// Refuses keys outside `known`.
pub(crate) fn known_keys(
    workload: &str,
    section: &toml::Table,
    known: &[&str],
) -> Result<(), WorkloadError> {
    match section.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(WorkloadError::Config {
            workload: workload.to_owned(),
            problem: format!("unknown key `{key}` (known keys: {})", known.join(", ")),
        }),
        None => Ok(()),
    }
}
