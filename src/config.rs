//! The command's configuration: flags, `STORMCHOR_*` environment variables and a TOML
//! file, resolved with the precedence flags > environment > file > default.
//!
//! Every value remembers where it came from, and the precedence is decided by which
//! sources *gave* a value, never by comparing a value against its default: a flag set
//! to the default value still beats the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use thiserror::Error;

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The config file.
    File,
    /// A `STORMCHOR_*` environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Flag => "flag",
        })
    }
}

/// A resolved value and its source.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// A bad configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid (the message names the key and the line).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        message: String,
    },
    /// A value out of its range, or that does not parse (the place says which
    /// flag, variable or file key gave it).
    #[error("{place}: {problem}")]
    Value {
        /// Where the value came from: `--workers 0`, `environment variable
        /// STORMCHOR_WORKERS=0`, `config file x.toml: workers = 0`.
        place: String,
        /// What is wrong.
        problem: String,
    },
    /// An environment variable has a bad value.
    #[error("environment variable {name}={value}: {problem}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        problem: String,
    },
}

/// The config file's keys.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// A libpq connection string.
    pub target: Option<String>,
    /// Workers (scenarios) or clients (workloads).
    pub workers: Option<u16>,
    /// Seconds of load: a number of seconds or a duration (`"1h30m"`).
    #[serde(default, deserialize_with = "file_duration")]
    pub duration: Option<u64>,
    /// The seed.
    pub seed: Option<u64>,
    /// pgbench scale.
    pub scale: Option<u32>,
    /// Rounds of a scenario (crashes, recorded points).
    pub rounds: Option<u32>,
    /// Open-loop rate, operations per second.
    pub rate: Option<f64>,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// Where to write the HTML report.
    pub html: Option<PathBuf>,
    /// Per-workload sections: `[workload.tpcb]`, `[workload.ecommerce.weights]`...
    #[serde(default)]
    pub workload: BTreeMap<String, toml::Table>,
    /// The file it was read from (errors name it).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `duration` in a config file: a whole number of seconds or a duration string.
fn file_duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Seconds(u64),
        Text(String),
    }
    match Option::<Given>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Given::Seconds(seconds)) => Ok(Some(seconds)),
        Some(Given::Text(text)) => parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Parses a duration in whole seconds: `90` (seconds), or numbers with units `d`,
/// `h`, `m`, `s` in that order (`30s`, `5m`, `1h30m`, `2d`).
///
/// # Example
/// ```ignore
/// assert_eq!(parse_duration("1h30m"), Ok(5400));
/// assert_eq!(parse_duration("45"), Ok(45));
/// assert!(parse_duration("5 minutes").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{text}` is not a duration: give seconds (`90`) or numbers with the units d, h, m, s \
             (`30s`, `5m`, `1h30m`)"
        )
    };
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let units = [('d', 86_400u64), ('h', 3600), ('m', 60), ('s', 1)];
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut next_unit = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let Some(at) = units[next_unit..].iter().position(|(u, _)| *u == c) else {
            return Err(bad());
        };
        let (_, factor) = units[next_unit + at];
        next_unit += at + 1;
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total = n
            .checked_mul(factor)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
    }
    if !number.is_empty() || next_unit == 0 {
        return Err(bad());
    }
    Ok(total)
}

impl FileConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }
}

/// What the flags gave (`None`: not given).
#[derive(Clone, Debug, Default)]
pub struct FlagValues {
    /// `--target`.
    pub target: Option<String>,
    /// `--workers`.
    pub workers: Option<u16>,
    /// `--duration`.
    pub duration: Option<u64>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--scale`.
    pub scale: Option<u32>,
    /// `--rounds`.
    pub rounds: Option<u32>,
    /// `--rate`.
    pub rate: Option<f64>,
    /// `--json`.
    pub json: Option<PathBuf>,
    /// `--html`.
    pub html: Option<PathBuf>,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The server, if not a throwaway cluster.
    pub target: Setting<Option<String>>,
    /// Workers or clients.
    pub workers: Setting<u16>,
    /// Seconds of load.
    pub duration: Setting<u64>,
    /// The seed.
    pub seed: Setting<u64>,
    /// pgbench scale.
    pub scale: Setting<u32>,
    /// Rounds of a scenario; each scenario has its own default.
    pub rounds: Setting<Option<u32>>,
    /// Open-loop rate (closed loop when absent).
    pub rate: Setting<Option<f64>>,
    /// The JSON report's path.
    pub json: Setting<Option<PathBuf>>,
    /// The HTML report's path.
    pub html: Setting<Option<PathBuf>>,
    /// Per-workload sections from the file.
    pub workloads: BTreeMap<String, toml::Table>,
}

fn pick<T>(flag: Option<T>, env: Option<T>, file: Option<T>, default: T) -> Setting<T> {
    match (flag, env, file) {
        (Some(value), _, _) => Setting {
            value,
            source: Source::Flag,
        },
        (None, Some(value), _) => Setting {
            value,
            source: Source::Env,
        },
        (None, None, Some(value)) => Setting {
            value,
            source: Source::File,
        },
        (None, None, None) => Setting {
            value: default,
            source: Source::Default,
        },
    }
}

fn pick_optional<T>(flag: Option<T>, env: Option<T>, file: Option<T>) -> Setting<Option<T>> {
    pick(flag.map(Some), env.map(Some), file.map(Some), None)
}

/// The ranges every source's values must be in.
pub mod limits {
    /// The most workers (scenarios) or clients (workloads).
    pub const MAX_WORKERS: u16 = crate::scenarios::ScenarioOptions::MAX_WORKERS;
    /// The longest load, in seconds: 30 days.
    pub const MAX_DURATION_S: u64 = 30 * 24 * 3600;
    /// The most rounds of a scenario.
    pub const MAX_ROUNDS: u32 = crate::scenarios::ScenarioOptions::MAX_ROUNDS;
    /// The largest pgbench scale (100 000 accounts each).
    pub const MAX_SCALE: u32 = 100_000;
    /// The lowest open-loop rate, operations per second.
    pub const MIN_RATE: f64 = 0.001;
    /// The highest open-loop rate, operations per second.
    pub const MAX_RATE: f64 = 10_000_000.0;
}

/// Reads `STORMCHOR_DURATION` through `lookup`: seconds or a duration (`1h30m`).
fn env_duration(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<u64>, ConfigError> {
    match lookup("STORMCHOR_DURATION") {
        None => Ok(None),
        Some(value) => parse_duration(&value)
            .map(Some)
            .map_err(|problem| ConfigError::Env {
                name: "STORMCHOR_DURATION".to_owned(),
                value,
                problem,
            }),
    }
}

/// Reads `STORMCHOR_<name>` through `lookup`, parsed.
fn env_value<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: fmt::Display,
{
    let variable = format!("STORMCHOR_{name}");
    match lookup(&variable) {
        None => Ok(None),
        Some(value) => value
            .parse()
            .map(Some)
            .map_err(|e: T::Err| ConfigError::Env {
                name: variable,
                value,
                problem: e.to_string(),
            }),
    }
}

impl Settings {
    /// Resolves flags, the environment (read through `lookup`, e.g. `std::env::var`)
    /// and the file.
    pub fn resolve(
        flags: FlagValues,
        lookup: impl Fn(&str) -> Option<String>,
        file: Option<FileConfig>,
    ) -> Result<Self, ConfigError> {
        let file = file.unwrap_or_default();
        let path = file.path.clone();
        let settings = Settings {
            target: pick_optional(flags.target, env_value(&lookup, "TARGET")?, file.target),
            workers: pick(
                flags.workers,
                env_value(&lookup, "WORKERS")?,
                file.workers,
                2,
            ),
            duration: pick(flags.duration, env_duration(&lookup)?, file.duration, 10),
            seed: pick(flags.seed, env_value(&lookup, "SEED")?, file.seed, 1),
            scale: pick(flags.scale, env_value(&lookup, "SCALE")?, file.scale, 1),
            rounds: pick_optional(flags.rounds, env_value(&lookup, "ROUNDS")?, file.rounds),
            rate: pick_optional(flags.rate, env_value(&lookup, "RATE")?, file.rate),
            json: pick_optional(flags.json, env_value(&lookup, "JSON")?, file.json),
            html: pick_optional(flags.html, env_value(&lookup, "HTML")?, file.html),
            workloads: file.workload,
        };
        settings.check(path.as_deref())?;
        Ok(settings)
    }

    /// Checks every value against its range, whichever source gave it; the error
    /// names the flag, variable or file key.
    fn check(&self, file: Option<&Path>) -> Result<(), ConfigError> {
        fn place<T: fmt::Display>(
            setting: &Setting<T>,
            flag: &str,
            key: &str,
            file: Option<&Path>,
        ) -> String {
            let value = &setting.value;
            match setting.source {
                Source::Flag | Source::Default => format!("--{flag} {value}"),
                Source::Env => format!(
                    "environment variable STORMCHOR_{}={value}",
                    key.to_uppercase()
                ),
                Source::File => format!(
                    "config file {}: {key} = {value}",
                    file.map_or_else(|| "?".to_owned(), |p| p.display().to_string())
                ),
            }
        }
        let out_of_range = |place: String, problem: String| ConfigError::Value { place, problem };
        if !(1..=limits::MAX_WORKERS).contains(&self.workers.value) {
            return Err(out_of_range(
                place(&self.workers, "workers", "workers", file),
                format!("give from 1 to {} workers", limits::MAX_WORKERS),
            ));
        }
        if !(1..=limits::MAX_DURATION_S).contains(&self.duration.value) {
            return Err(out_of_range(
                place(&self.duration, "duration", "duration", file),
                format!(
                    "give a duration from 1 s to {} s (30 days)",
                    limits::MAX_DURATION_S
                ),
            ));
        }
        if !(1..=limits::MAX_SCALE).contains(&self.scale.value) {
            return Err(out_of_range(
                place(&self.scale, "scale", "scale", file),
                format!("give a scale from 1 to {}", limits::MAX_SCALE),
            ));
        }
        if let Some(rounds) = self.rounds.value {
            if !(1..=limits::MAX_ROUNDS).contains(&rounds) {
                let given = Setting {
                    value: rounds,
                    source: self.rounds.source,
                };
                return Err(out_of_range(
                    place(&given, "rounds", "rounds", file),
                    format!("give from 1 to {} rounds", limits::MAX_ROUNDS),
                ));
            }
        }
        if let Some(rate) = self.rate.value {
            if !(rate.is_finite() && (limits::MIN_RATE..=limits::MAX_RATE).contains(&rate)) {
                // `1e-300`, not three hundred zeros.
                let given = Setting {
                    value: format!("{rate:?}"),
                    source: self.rate.source,
                };
                return Err(out_of_range(
                    place(&given, "rate", "rate", file),
                    format!(
                        "give a rate from {} to {} operations per second",
                        limits::MIN_RATE,
                        limits::MAX_RATE
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every value with its source, one per line (`--show-config`).
    pub fn describe(&self) -> String {
        fn optional<T: fmt::Debug>(value: &Option<T>) -> String {
            value
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), |v| format!("{v:?}"))
        }
        let mut lines = vec![
            format!(
                "target   = {} ({})",
                // Passwords are never printed.
                optional(&self.target.value.as_deref().map(stormchor_postgres::redact)),
                self.target.source
            ),
            format!(
                "workers  = {} ({})",
                self.workers.value, self.workers.source
            ),
            format!(
                "duration = {} ({})",
                self.duration.value, self.duration.source
            ),
            format!("seed     = {} ({})", self.seed.value, self.seed.source),
            format!("scale    = {} ({})", self.scale.value, self.scale.source),
            format!(
                "rounds   = {} ({})",
                optional(&self.rounds.value),
                self.rounds.source
            ),
            format!(
                "rate     = {} ({})",
                optional(&self.rate.value),
                self.rate.source
            ),
            format!(
                "json     = {} ({})",
                optional(&self.json.value),
                self.json.source
            ),
            format!(
                "html     = {} ({})",
                optional(&self.html.value),
                self.html.source
            ),
        ];
        for (name, section) in &self.workloads {
            lines.push(format!("[workload.{name}] = {section} (file)").replace('\n', " "));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    //! Precedence flags > env > file > default, decided by who gave a value; bad files
    //! and variables give errors naming the problem and the place.
    use std::collections::HashMap;

    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("stormchor.toml");
        std::fs::write(&path, text).expect("written");
        (dir, path)
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let (_dir, path) =
            file("workers = 8\nduration = 30\nseed = 5\n[workload.tpcb]\nscale = 3\n");
        let config = FileConfig::load(&path).expect("valid");
        let env: HashMap<&str, &str> =
            [("STORMCHOR_DURATION", "20"), ("STORMCHOR_SEED", "6")].into();
        let flags = FlagValues {
            seed: Some(1),
            ..FlagValues::default()
        };
        let settings = Settings::resolve(
            flags,
            |name| env.get(name).map(|v| (*v).to_owned()),
            Some(config),
        )
        .expect("resolved");
        assert_eq!(
            (settings.workers.value, settings.workers.source),
            (8, Source::File)
        );
        assert_eq!(
            (settings.duration.value, settings.duration.source),
            (20, Source::Env)
        );
        // The flag gives the default value, and still wins: no comparison with defaults.
        assert_eq!(
            (settings.seed.value, settings.seed.source),
            (1, Source::Flag)
        );
        assert_eq!(
            (settings.scale.value, settings.scale.source),
            (1, Source::Default)
        );
        assert_eq!(settings.workloads["tpcb"]["scale"].as_integer(), Some(3));
        let described = settings.describe();
        assert!(
            described.contains("seed     = 1 (flag)") && described.contains("workers  = 8 (file)"),
            "{described}"
        );
    }

    #[test]
    fn bad_files_and_variables_name_the_problem() {
        let (_dir, path) = file("workers = 2\nwrokers = 3\n");
        let error = FileConfig::load(&path)
            .expect_err("unknown key")
            .to_string();
        assert!(
            error.contains("unknown field `wrokers`") && error.contains("line 2"),
            "{error}"
        );
        let (_dir2, path) = file("duration = \"long\"\n");
        let error = FileConfig::load(&path).expect_err("wrong type").to_string();
        assert!(
            error.contains("duration") && error.contains("line 1"),
            "{error}"
        );
        let error = FileConfig::load(std::path::Path::new("/nonexistent/stormchor.toml"))
            .expect_err("missing")
            .to_string();
        assert!(
            error.starts_with("cannot read the config file /nonexistent/stormchor.toml"),
            "{error}"
        );
        let env: HashMap<&str, &str> = [("STORMCHOR_WORKERS", "lots")].into();
        let error = Settings::resolve(
            FlagValues::default(),
            |name| env.get(name).map(|v| (*v).to_owned()),
            None,
        )
        .expect_err("bad variable")
        .to_string();
        assert_eq!(
            error,
            "environment variable STORMCHOR_WORKERS=lots: invalid digit found in string"
        );
    }
}
