//! What one role writes down as it runs: the phases it enters, the checks it runs
//! with their evidence, and figures. Every role keeps its own journal; the report of
//! a run merges them ([`ScenarioReport`](crate::ScenarioReport)).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// One role entering one phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// The role.
    pub role: String,
    /// The phase.
    pub phase: String,
    /// When, from the start of the run.
    pub at: Duration,
}

/// One check a verifier ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// What was checked.
    pub name: String,
    /// The role that checked.
    pub role: String,
    /// Whether it held.
    pub passed: bool,
    /// One line of figures.
    pub summary: String,
    /// What is wrong, one line each (empty when it held).
    pub evidence: Vec<String>,
}

/// A figure: a count that adds up over roles, or a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Figure {
    /// Adds up: the merged report shows the sum over roles.
    Count(u64),
    /// A value; when several roles give one, the merged report keeps the last role's.
    Value(serde_json::Value),
}

/// The journal of one role.
///
/// # Example
/// ```
/// use std::time::SystemTime;
/// use stormchor_kit::Journal;
///
/// let journal = Journal::new("Coordinator", SystemTime::now());
/// journal.enter("load");
/// journal.count("kills", 1);
/// journal.count("kills", 1);
/// assert_eq!(journal.phases()[0].phase, "load");
/// assert_eq!(journal.counts().get("kills"), Some(&2));
/// ```
#[derive(Debug)]
pub struct Journal {
    role: String,
    started: SystemTime,
    inner: Mutex<Entries>,
}

/// What one action of the stress mix did at one role (or, merged, at all of them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Runs.
    pub runs: u64,
    /// Successful runs.
    pub ok: u64,
    /// Failed runs by SQLSTATE (or `connection`, `no target`).
    pub errors: BTreeMap<String, u64>,
    /// Median latency, microseconds (merged: the slowest role's).
    pub p50_us: u64,
    /// 99th percentile latency, microseconds (merged: the slowest role's).
    pub p99_us: u64,
}

impl ActionRecord {
    /// Adds `other` (another role's, or another load's) to this record.
    pub fn add(&mut self, other: &ActionRecord) {
        self.runs += other.runs;
        self.ok += other.ok;
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
        self.p50_us = self.p50_us.max(other.p50_us);
        self.p99_us = self.p99_us.max(other.p99_us);
    }
}

/// Everything a journal holds, as it travels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entries {
    /// The phases, in the order they were entered.
    pub phases: Vec<PhaseRecord>,
    /// The checks.
    pub checks: Vec<CheckRecord>,
    /// The figures, by name.
    pub figures: BTreeMap<String, Figure>,
    /// The stress mix's actions, by name.
    pub actions: BTreeMap<String, ActionRecord>,
}

impl Journal {
    /// The journal of `role` in a run that started at `started` (the same moment for
    /// every role of the run, so that their times line up).
    pub fn new(role: impl Into<String>, started: SystemTime) -> Self {
        Journal {
            role: role.into(),
            started,
            inner: Mutex::new(Entries::default()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Time since the start of the run.
    pub fn elapsed(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.started)
            .unwrap_or_default()
    }

    /// The role enters `phase` now.
    pub fn enter(&self, phase: &str) {
        let record = PhaseRecord {
            role: self.role.clone(),
            phase: phase.to_owned(),
            at: self.elapsed(),
        };
        self.entries().phases.push(record);
    }

    /// Records a check run by this role: `name` held or not, with a one-line summary
    /// and the evidence of what is wrong.
    pub fn check(
        &self,
        name: impl Into<String>,
        passed: bool,
        summary: impl Into<String>,
        evidence: Vec<String>,
    ) {
        let record = CheckRecord {
            name: name.into(),
            role: self.role.clone(),
            passed,
            summary: summary.into(),
            evidence,
        };
        self.entries().checks.push(record);
    }

    /// Records a figure.
    pub fn figure(&self, name: &str, value: impl Into<serde_json::Value>) {
        self.entries()
            .figures
            .insert(name.to_owned(), Figure::Value(value.into()));
    }

    /// Adds `delta` to a counting figure.
    pub fn count(&self, name: &str, delta: u64) {
        let mut entries = self.entries();
        let entry = entries
            .figures
            .entry(name.to_owned())
            .or_insert(Figure::Count(0));
        match entry {
            Figure::Count(n) => *n += delta,
            Figure::Value(_) => *entry = Figure::Count(delta),
        }
    }

    /// Adds what a stress load's action did.
    pub fn action(&self, name: &str, record: &ActionRecord) {
        self.entries()
            .actions
            .entry(name.to_owned())
            .or_default()
            .add(record);
    }

    /// The phases so far.
    pub fn phases(&self) -> Vec<PhaseRecord> {
        self.entries().phases.clone()
    }

    /// The checks so far.
    pub fn checks(&self) -> Vec<CheckRecord> {
        self.entries().checks.clone()
    }

    /// The counting figures so far.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.entries()
            .figures
            .iter()
            .filter_map(|(name, figure)| match figure {
                Figure::Count(n) => Some((name.clone(), *n)),
                Figure::Value(_) => None,
            })
            .collect()
    }

    /// A copy of everything recorded so far.
    pub fn entries_now(&self) -> Entries {
        self.entries().clone()
    }
}
