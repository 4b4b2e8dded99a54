//! The command's configuration from Python: the same sources, the same precedence
//! (flags > `STORMCHOR_*` environment variables > the config file > defaults) and
//! the same file, resolved by the command's own code (`stormchor::config`).
//!
//! `settings(config=PATH, workers=..., ...)`: a keyword given (not None) is a flag;
//! the environment is the process's (or `env=`, a dict, for tests and tools).

use std::collections::HashMap;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use stormchor::config::{FileConfig, FlagValues, Setting, Settings};

use crate::errors::{ConfigError, text};

/// `Settings`: every value with its source (`values`, `sources`), the file's
/// workload sections (`workloads`), `describe()` as `--show-config` prints it, and
/// `run_options()` for `Program.run(**...)`.
#[pyclass(name = "Settings", module = "stormchor", frozen)]
pub(crate) struct PySettings {
    settings: Settings,
}

fn put<'py, T: IntoPyObject<'py> + Clone>(
    values: &Bound<'py, PyDict>,
    sources: &Bound<'py, PyDict>,
    name: &str,
    setting: &Setting<T>,
) -> PyResult<()> {
    values.set_item(name, setting.value.clone())?;
    sources.set_item(name, setting.source.to_string())?;
    Ok(())
}

#[pymethods]
impl PySettings {
    /// The values, by name.
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        Ok(self.both(py)?.0)
    }

    /// Where each value came from: "flag", "env", "file" or "default".
    #[getter]
    fn sources<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        Ok(self.both(py)?.1)
    }

    /// The file's `[workload.NAME]` sections, as dicts.
    #[getter]
    fn workloads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let json = py.import("json")?;
        let dict = PyDict::new(py);
        for (name, section) in &self.settings.workloads {
            let text = serde_json::to_string(section).map_err(text::<ConfigError>)?;
            dict.set_item(name, json.call_method1("loads", (text,))?)?;
        }
        Ok(dict)
    }

    /// Every value with its source, one per line.
    fn describe(&self) -> String {
        self.settings.describe()
    }

    /// The keywords of `Program.run` these settings give: workers, seconds, seed,
    /// target and, when set, rounds.
    fn run_options<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.settings;
        let dict = PyDict::new(py);
        dict.set_item("workers", s.workers.value)?;
        dict.set_item("seconds", s.duration.value as f64)?;
        dict.set_item("seed", s.seed.value)?;
        dict.set_item("target", s.target.value.clone())?;
        if let Some(rounds) = s.rounds.value {
            dict.set_item("rounds", rounds)?;
        }
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        format!("Settings(\n{}\n)", self.settings.describe())
    }
}

impl PySettings {
    fn both<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let s = &self.settings;
        let (values, sources) = (PyDict::new(py), PyDict::new(py));
        put(&values, &sources, "target", &s.target)?;
        put(&values, &sources, "workers", &s.workers)?;
        put(&values, &sources, "duration", &s.duration)?;
        put(&values, &sources, "seed", &s.seed)?;
        put(&values, &sources, "scale", &s.scale)?;
        put(&values, &sources, "rounds", &s.rounds)?;
        put(&values, &sources, "rate", &s.rate)?;
        put(&values, &sources, "json", &s.json)?;
        put(&values, &sources, "html", &s.html)?;
        Ok((values, sources))
    }
}

/// Resolves the configuration: keywords given (flags) > `STORMCHOR_*` variables of
/// `env` (default: the process's environment) > the file `config` > defaults. A bad
/// file or variable is a ConfigError with the command's message.
#[pyfunction]
#[pyo3(signature = (config = None, *, target = None, workers = None, duration = None, seed = None, scale = None, rounds = None, rate = None, json = None, html = None, env = None))]
#[allow(clippy::too_many_arguments)]
fn settings(
    config: Option<PathBuf>,
    target: Option<String>,
    workers: Option<u16>,
    duration: Option<u64>,
    seed: Option<u64>,
    scale: Option<u32>,
    rounds: Option<u32>,
    rate: Option<f64>,
    json: Option<PathBuf>,
    html: Option<PathBuf>,
    env: Option<HashMap<String, String>>,
) -> PyResult<PySettings> {
    let file = config
        .map(|path| FileConfig::load(&path))
        .transpose()
        .map_err(text::<ConfigError>)?;
    let flags = FlagValues {
        target,
        workers,
        duration,
        seed,
        scale,
        rounds,
        rate,
        json,
        html,
    };
    let settings = match env {
        Some(env) => Settings::resolve(flags, |name| env.get(name).cloned(), file),
        None => Settings::resolve(flags, |name| std::env::var(name).ok(), file),
    }
    .map_err(text::<ConfigError>)?;
    Ok(PySettings { settings })
}

pub(crate) fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(settings, m)?)?;
    m.add_class::<PySettings>()?;
    Ok(())
}
