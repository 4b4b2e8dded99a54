//! What one role writes down as it runs: the phases it enters, the checks it runs
//! with their evidence, and figures. Every role keeps its own journal; the report of
//! a run merges them ([`ScenarioReport`](crate::ScenarioReport)).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// One role entering one phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// The role.
    pub role: String,
    /// The phase.
    pub phase: String,
    /// When, from the start of the run (`at_s` in the JSON report, in seconds).
    #[serde(rename = "at_s", with = "crate::seconds")]
    pub at: Duration,
}

/// What kind of moment an [`EventRecord`] marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A server was SIGKILLed.
    Kill,
    /// A server was started again (crash recovery done: it accepts connections).
    Restart,
    /// A base backup began.
    BackupStart,
    /// A base backup ended (completed or not: the detail says).
    BackupEnd,
    /// A backup was restored as a new cluster.
    Restore,
    /// A replica was promoted.
    Promote,
    /// A point or recovery goal was recorded.
    Point,
    /// A fault was injected on purpose.
    Fault,
    /// A writer's first acknowledged commit after an outage (its connection lost, or
    /// commits failing).
    Resumed,
}

impl EventKind {
    /// The kind's name, as the JSON report writes it.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Kill => "kill",
            EventKind::Restart => "restart",
            EventKind::BackupStart => "backup-start",
            EventKind::BackupEnd => "backup-end",
            EventKind::Restore => "restore",
            EventKind::Promote => "promote",
            EventKind::Point => "point",
            EventKind::Fault => "fault",
            EventKind::Resumed => "resumed",
        }
    }
}

/// A moment that matters, on a role's timeline: a kill, a restart, a backup's start
/// and end, a restore, a promotion, a recorded point, an injected fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The role it happened at.
    pub role: String,
    /// What happened.
    pub kind: EventKind,
    /// One line about it.
    pub detail: String,
    /// When, from the start of the run (`at_s` in the JSON report, in seconds).
    #[serde(rename = "at_s", with = "crate::seconds")]
    pub at: Duration,
}

/// One second of a role's load: what it committed and what failed in that second of
/// the run, and how long the commits took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadSecond {
    /// Which second of the run (0 is the first).
    pub second: u32,
    /// Operations acknowledged.
    pub ok: u64,
    /// Operations that failed or whose outcome is unknown.
    pub errors: u64,
    /// Median latency of the acknowledged ones, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency of the acknowledged ones, microseconds.
    pub p99_us: u64,
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
    /// The check could not finish because the run was interrupted (a signal): it
    /// neither held nor found a fault, and its summary says so.
    #[serde(default)]
    pub interrupted: bool,
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
    /// Median latency of the successful runs, microseconds (merged: the slowest
    /// load's).
    pub p50_us: u64,
    /// 99th percentile latency of the successful runs, microseconds (merged: the
    /// slowest load's).
    pub p99_us: u64,
}

/// One stress load a role ran ([`StressLoad`](crate::effects::StressLoad), or the
/// Python binding's with its own registry): its stream, how long it ran, how often it
/// reconnected, and what each action of the mix did in it.
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use stormchor_kit::{ActionRecord, StressRecord};
///
/// let create = ActionRecord { runs: 12, ok: 10, errors: BTreeMap::from([("40P01".into(), 2)]), p50_us: 800, p99_us: 2400 };
/// let load = StressRecord {
///     role: "Worker(0)".into(),
///     load: "Worker(0)#0".into(),
///     seed: 7,
///     elapsed_s: 2.0,
///     reconnects: 0,
///     actions: BTreeMap::from([("create_table".into(), create)]),
/// };
/// assert_eq!((load.runs(), load.ok()), (12, 10));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StressRecord {
    /// The role that ran it.
    pub role: String,
    /// Its name: the role and the how-manieth load of the role it is (`Worker(0)#1`).
    pub load: String,
    /// The seed of its random stream (the run's seed mixed with its name).
    pub seed: u64,
    /// How long it ran, in seconds.
    pub elapsed_s: f64,
    /// How many times it connected again after losing its connection.
    pub reconnects: u64,
    /// Per action that ran at least once, by name (latencies: of its successful runs).
    pub actions: BTreeMap<String, ActionRecord>,
}

impl StressRecord {
    /// Actions run, successful or not.
    pub fn runs(&self) -> u64 {
        self.actions.values().map(|a| a.runs).sum()
    }

    /// Successful actions.
    pub fn ok(&self) -> u64 {
        self.actions.values().map(|a| a.ok).sum()
    }
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
    /// The moments that matter, in the order they happened.
    #[serde(default)]
    pub events: Vec<EventRecord>,
    /// The role's load, second by second (seconds without load are absent).
    #[serde(default)]
    pub load: Vec<LoadSecond>,
    /// The role's stress loads, in the order they ended.
    #[serde(default)]
    pub stress: Vec<StressRecord>,
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
        stormchor_postgres::lock(&self.inner)
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
        // A check that fails while the run is being interrupted failed because its
        // tool or server was stopped under it: say so rather than report a fault.
        let interrupted = !passed && crate::interrupt::requested();
        let summary = summary.into();
        let record = CheckRecord {
            name: name.into(),
            role: self.role.clone(),
            passed,
            summary: if interrupted {
                format!("not finished: the run was interrupted ({summary})")
            } else {
                summary
            },
            evidence,
            interrupted,
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

    /// Records that `kind` happened now, with one line about it.
    pub fn event(&self, kind: EventKind, detail: impl Into<String>) {
        self.event_at(self.elapsed(), kind, detail);
    }

    /// Records that `kind` happened `at` (from the start of the run: an effect that
    /// learns only later that something happened when it began, such as a kill that
    /// returns once every process has exited).
    pub fn event_at(&self, at: Duration, kind: EventKind, detail: impl Into<String>) {
        let record = EventRecord {
            role: self.role.clone(),
            kind,
            detail: detail.into(),
            at,
        };
        self.entries().events.push(record);
    }

    /// Adds one second of load (to what the role already did in that second, when two
    /// loads of the role overlap: counts add up, the slower percentiles stay).
    pub fn load_second(&self, second: LoadSecond) {
        let mut entries = self.entries();
        let load = &mut entries.load;
        match load.binary_search_by_key(&second.second, |s| s.second) {
            Ok(i) => {
                let known = &mut load[i];
                known.ok += second.ok;
                known.errors += second.errors;
                known.p50_us = known.p50_us.max(second.p50_us);
                known.p99_us = known.p99_us.max(second.p99_us);
            }
            Err(i) => load.insert(i, second),
        }
    }

    /// The events so far.
    pub fn events(&self) -> Vec<EventRecord> {
        self.entries().events.clone()
    }

    /// Adds what a stress load's action did.
    pub fn action(&self, name: &str, record: &ActionRecord) {
        self.entries()
            .actions
            .entry(name.to_owned())
            .or_default()
            .add(record);
    }

    /// Records a stress load that ended (its actions also go to [`Journal::action`]).
    pub fn stress(&self, record: StressRecord) {
        self.entries().stress.push(record);
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
