//! The report of a scenario run: every role's journal merged, how each role ended,
//! the verdict; as console text, and as JSON by `serde` from the same structs
//! ([`VersionedReport`] adds the schema's header).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};
use stormchor_runtime::{RoleOutcome, RunErrorKind, RunReport};

use crate::journal::{
    ActionRecord, CheckRecord, Entries, EventKind, EventRecord, Figure, LoadSecond, PhaseRecord,
    StressRecord,
};
use crate::node::{KitRole, Node};
use crate::value::Carry;

/// How one role ended.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::RoleRecord;
///
/// let backup = RoleRecord {
///     role: "Backup".into(),
///     completed: false,
///     elapsed: Duration::from_secs(3),
///     phase: Some("restore".into()),
///     failure: Some("Restore failed: pg_ctl start exited 1".into()),
///     sql_log: Vec::new(),
///     peer_down: None,
/// };
/// assert!(!backup.completed && backup.failure.is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleRecord {
    /// The role.
    pub role: String,
    /// Whether it ran to its end.
    pub completed: bool,
    /// How long it ran (`elapsed_s` in the JSON report, in seconds).
    #[serde(rename = "elapsed_s", with = "crate::seconds")]
    pub elapsed: Duration,
    /// The last phase it entered.
    pub phase: Option<String>,
    /// Why it failed, and in which effect.
    pub failure: Option<String>,
    /// The last statements of its SQL log, when it failed and has one.
    pub sql_log: Vec<String>,
    /// A role that completed although a peer died (once its own part was over, while
    /// it waited for its peers to end): which peer, and what happened to it.
    pub peer_down: Option<String>,
}

/// The JSON reports' schema: a reader that knows it can read every report.
pub const REPORT_SCHEMA: &str = "stormchor-report/1";

/// The revision of [`REPORT_SCHEMA`]: it grows when fields are added (never when one
/// changes meaning or goes; that would be a new schema). Revision 2 added a scenario's
/// `events`, `load`, `recoveries`, `diagram_svg` and the `recovery_ms_max` figure, and
/// a workload's `missed`; revision 3 a scenario's `stress`, each stress load's figures
/// per action, and each role's `peer_down` (see `docs/cli.md`).
pub const REPORT_REVISION: u32 = 3;

/// A report as its JSON file holds it: [`REPORT_SCHEMA`], [`REPORT_REVISION`] and the
/// kind of run first, then the report's own fields (its `Serialize`).
///
/// # Example
/// ```
/// use stormchor_kit::{REPORT_REVISION, VersionedReport};
///
/// #[derive(serde::Serialize)]
/// struct Tally { name: &'static str, runs: u64 }
///
/// let json = serde_json::to_value(VersionedReport::new("tally", &Tally { name: "t", runs: 3 }))
///     .expect("serialized");
/// assert_eq!(json["schema"], "stormchor-report/1");
/// assert_eq!(json["revision"], REPORT_REVISION);
/// assert_eq!((json["kind"].as_str(), json["runs"].as_u64()), (Some("tally"), Some(3)));
/// ```
#[derive(Debug, Serialize)]
pub struct VersionedReport<'a, T> {
    /// [`REPORT_SCHEMA`].
    pub schema: &'static str,
    /// [`REPORT_REVISION`].
    pub revision: u32,
    /// The kind of run: `scenario` or `workload`.
    pub kind: &'static str,
    /// The report.
    #[serde(flatten)]
    pub report: &'a T,
}

impl<'a, T: Serialize> VersionedReport<'a, T> {
    /// `report` of a run of `kind`, at this schema and revision.
    pub fn new(kind: &'static str, report: &'a T) -> Self {
        VersionedReport {
            schema: REPORT_SCHEMA,
            revision: REPORT_REVISION,
            kind,
            report,
        }
    }
}

/// How long the load took to come back after one kill: from the SIGKILL to the first
/// acknowledged commit of any writer after it.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::Recovery;
///
/// let recovery = Recovery {
///     role: "Primary".into(),
///     kill_at: Duration::from_millis(1200),
///     restarted_at: Some(Duration::from_millis(1500)),
///     resumed_at: Some(Duration::from_millis(1650)),
///     resumed_by: Some("Worker(1)".into()),
/// };
/// assert_eq!(recovery.time(), Some(Duration::from_millis(450)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    /// The role whose server was killed.
    pub role: String,
    /// When, from the start of the run.
    pub kill_at: Duration,
    /// When that server accepted connections again (crash recovery done), if it was
    /// restarted before the next kill.
    pub restarted_at: Option<Duration>,
    /// When the first commit after it was acknowledged (none before the next kill or
    /// the end of the run: the load never came back).
    pub resumed_at: Option<Duration>,
    /// The writer whose commit that was.
    pub resumed_by: Option<String>,
}

/// The JSON form of a recovery: its times in seconds, and `recovery_s`, its
/// [`time`](Recovery::time).
impl Serialize for Recovery {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct InSeconds<'a> {
            role: &'a str,
            kill_at_s: f64,
            restarted_at_s: Option<f64>,
            resumed_at_s: Option<f64>,
            resumed_by: Option<&'a str>,
            recovery_s: Option<f64>,
        }
        InSeconds {
            role: &self.role,
            kill_at_s: self.kill_at.as_secs_f64(),
            restarted_at_s: self.restarted_at.as_ref().map(Duration::as_secs_f64),
            resumed_at_s: self.resumed_at.as_ref().map(Duration::as_secs_f64),
            resumed_by: self.resumed_by.as_deref(),
            recovery_s: self.time().as_ref().map(Duration::as_secs_f64),
        }
        .serialize(serializer)
    }
}

impl Recovery {
    /// From the kill to the first acknowledged commit.
    pub fn time(&self) -> Option<Duration> {
        self.resumed_at.map(|at| at.saturating_sub(self.kill_at))
    }

    /// One recovery per kill among `events` (sorted by time): the first resumption
    /// after each kill and before the next one.
    pub fn of(events: &[EventRecord]) -> Vec<Recovery> {
        let kills: Vec<&EventRecord> = events
            .iter()
            .filter(|e| e.kind == EventKind::Kill)
            .collect();
        kills
            .iter()
            .enumerate()
            .map(|(i, kill)| {
                let until = kills.get(i + 1).map(|next| next.at);
                let after = |kind: EventKind, role: Option<&str>| {
                    events.iter().find(|e| {
                        e.kind == kind
                            && role.is_none_or(|role| e.role == role)
                            && e.at > kill.at
                            && until.is_none_or(|until| e.at <= until)
                    })
                };
                let resumed = after(EventKind::Resumed, None);
                Recovery {
                    role: kill.role.clone(),
                    kill_at: kill.at,
                    restarted_at: after(EventKind::Restart, Some(&kill.role)).map(|e| e.at),
                    resumed_at: resumed.map(|e| e.at),
                    resumed_by: resumed.map(|e| e.role.clone()),
                }
            })
            .collect()
    }
}

/// A markdown table of the stress mix's actions: runs, successes, failures by
/// SQLSTATE, latency percentiles.
fn actions_table(actions: &BTreeMap<String, ActionRecord>) -> String {
    let mut out = String::from(
        "| action | runs | ok | failed (by SQLSTATE) | p50 ms | p99 ms |\n|---|---:|---:|---|---:|---:|\n",
    );
    for (name, a) in actions {
        let failed: Vec<String> = a.errors.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {:.2} | {:.2} |\n",
            a.runs,
            a.ok,
            failed.join(", "),
            a.p50_us as f64 / 1e3,
            a.p99_us as f64 / 1e3
        ));
    }
    out
}

/// The report of one scenario run. Its `Serialize` is the JSON report's body (kind
/// `scenario`; [`versioned`](ScenarioReport::versioned) adds the header): the field
/// names, with durations as seconds in `elapsed_s` and `at_s`.
///
/// # Example
/// ```
/// use stormchor_kit::ScenarioReport;
///
/// // What a test asserts on after a run: the verdict, the failed checks, the figures.
/// fn summary(report: &ScenarioReport) -> String {
///     let failed: Vec<&str> = report.failed_checks().map(|c| c.name.as_str()).collect();
///     format!("{}: {} ({} failed checks: {failed:?})", report.name,
///         if report.success { "PASSED" } else { "FAILED" }, failed.len())
/// }
/// # let _ = summary;
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// The scenario.
    pub name: String,
    /// The seed it ran with.
    pub seed: u64,
    /// The fault injected into the run (`--inject`), by name, if any: its checks are
    /// expected to fail.
    pub fault: Option<String>,
    /// Every role completed and every check held.
    pub success: bool,
    /// How long it ran (`elapsed_s` in the JSON report, in seconds).
    #[serde(rename = "elapsed_s", with = "crate::seconds")]
    pub elapsed: Duration,
    /// Every phase every role entered, in time order.
    pub phases: Vec<PhaseRecord>,
    /// Every check, with its evidence.
    pub checks: Vec<CheckRecord>,
    /// How each role ended.
    pub roles: Vec<RoleRecord>,
    /// Figures: counts (summed over roles), durations, sizes.
    pub figures: BTreeMap<String, Value>,
    /// The stress mix's actions over every role, by name.
    pub actions: BTreeMap<String, ActionRecord>,
    /// Every stress load of every role (in role order, each role's in the order they
    /// ended), with its figures per action.
    pub stress: Vec<StressRecord>,
    /// Every role's moments that matter (kills, restarts, backups, restores,
    /// promotions, points, faults, resumed commits), in time order.
    pub events: Vec<EventRecord>,
    /// Each role's load, second by second (roles without load are absent).
    pub load: BTreeMap<String, Vec<LoadSecond>>,
    /// One per kill: how long until commits were acknowledged again.
    pub recoveries: Vec<Recovery>,
    /// The scenario's mermaid diagram.
    pub diagram: String,
    /// The same diagram as self-contained SVG (empty when the runner drew none).
    pub diagram_svg: String,
    /// The signal that cut the run short, by name (`SIGTERM`), if one did; absent from
    /// the JSON report otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

/// What one role of a run brings to the report: how it ended and its journal. A role
/// in a process of its own writes this down (as JSON) for the launcher, which merges
/// them as the in-process runner merges its roles'.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleResult {
    /// The role.
    pub role: String,
    /// Whether it ran to its end.
    pub completed: bool,
    /// How long it ran.
    pub elapsed: Duration,
    /// Why it failed, and in which effect.
    pub failure: Option<String>,
    /// The last statements of its SQL log, when it failed on its own (not because a
    /// peer did) and has one.
    pub sql_log: Vec<String>,
    /// Its journal.
    pub entries: Entries,
    /// A role that completed although a peer died (once its own part was over, while
    /// it waited for its peers to end): which peer, and what happened to it.
    #[serde(default)]
    pub peer_down: Option<String>,
}

impl RoleResult {
    /// The result of `role` from its outcome in a run.
    pub fn of<R: KitRole>(role: &R, outcome: &RoleOutcome<R, Carry, Node>) -> RoleResult {
        let node = outcome.state.as_ref().map(|state| state.data());
        let failure = outcome.result.as_ref().err();
        RoleResult {
            role: format!("{role:?}"),
            completed: failure.is_none(),
            elapsed: outcome.elapsed,
            failure: failure.map(ToString::to_string),
            // A role that failed only because a peer did has nothing to show.
            sql_log: match failure {
                Some(f) if !matches!(f.error.kind(), RunErrorKind::PeerFailed { .. }) => {
                    node.map(|n| n.sql_log_tail(20)).unwrap_or_default()
                }
                _ => Vec::new(),
            },
            entries: node.map(|n| n.journal().entries_now()).unwrap_or_default(),
            peer_down: outcome.peer_down.as_ref().map(ToString::to_string),
        }
    }

    /// A role whose process ended without a result (killed, crashed, never started).
    pub fn lost(role: impl Into<String>, why: impl Into<String>) -> RoleResult {
        RoleResult {
            role: role.into(),
            completed: false,
            elapsed: Duration::ZERO,
            failure: Some(why.into()),
            sql_log: Vec::new(),
            entries: Entries::default(),
            peer_down: None,
        }
    }
}

impl ScenarioReport {
    /// Merges the journals of every role of `run` into one report.
    pub fn merge<R: KitRole>(
        name: &str,
        seed: u64,
        elapsed: Duration,
        run: &RunReport<R, Carry, Node>,
        diagram: String,
    ) -> ScenarioReport {
        let roles = run
            .outcomes
            .iter()
            .map(|(role, outcome)| RoleResult::of(role, outcome))
            .collect();
        ScenarioReport::from_roles(name, seed, elapsed, roles, diagram)
    }

    /// Merges the results of every role, in role order, into one report: the same
    /// report whether the roles ran in one process or each in its own.
    pub fn from_roles(
        name: &str,
        seed: u64,
        elapsed: Duration,
        results: Vec<RoleResult>,
        diagram: String,
    ) -> ScenarioReport {
        let mut phases = Vec::new();
        let mut checks = Vec::new();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut figures: BTreeMap<String, Value> = BTreeMap::new();
        let mut roles = Vec::new();
        let mut actions: BTreeMap<String, ActionRecord> = BTreeMap::new();
        let mut events = Vec::new();
        let mut load = BTreeMap::new();
        let mut stress = Vec::new();
        let mut completed = true;
        for result in results {
            let entries = result.entries;
            let role_phase = entries.phases.last().map(|p| p.phase.clone());
            phases.extend(entries.phases);
            events.extend(entries.events);
            if !entries.load.is_empty() {
                load.insert(result.role.clone(), entries.load);
            }
            for (action, record) in &entries.actions {
                actions.entry(action.clone()).or_default().add(record);
            }
            stress.extend(entries.stress);
            checks.extend(entries.checks);
            for (figure, value) in entries.figures {
                match value {
                    Figure::Count(n) => *counts.entry(figure).or_default() += n,
                    Figure::Value(v) => {
                        figures.insert(figure, v);
                    }
                }
            }
            completed &= result.completed;
            roles.push(RoleRecord {
                role: result.role,
                completed: result.completed,
                elapsed: result.elapsed,
                phase: role_phase,
                failure: result.failure,
                sql_log: result.sql_log,
                peer_down: result.peer_down,
            });
        }
        phases.sort_by_key(|p| p.at);
        events.sort_by_key(|e: &EventRecord| e.at);
        let recoveries = Recovery::of(&events);
        if let Some(slowest) = recoveries.iter().filter_map(Recovery::time).max() {
            figures.insert(
                "recovery_ms_max".to_owned(),
                json!(slowest.as_millis() as u64),
            );
        }
        for (figure, n) in counts {
            figures.insert(figure, json!(n));
        }
        let success = completed && checks.iter().all(|c| c.passed);
        ScenarioReport {
            name: name.to_owned(),
            seed,
            fault: None,
            success,
            elapsed,
            phases,
            checks,
            roles,
            figures,
            actions,
            stress,
            events,
            load,
            recoveries,
            diagram,
            diagram_svg: String::new(),
            interrupted: None,
        }
    }

    /// The checks that failed.
    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckRecord> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// The report as console text (markdown).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let interrupted = crate::interrupt::requested();
        let verdict = match (interrupted, self.success) {
            (true, _) => "INTERRUPTED",
            (false, true) => "PASSED",
            (false, false) => "FAILED",
        };
        out.push_str(&format!(
            "# {}: {verdict} in {:.1} s (seed {})\n\n",
            self.name,
            self.elapsed.as_secs_f64(),
            self.seed
        ));
        if let Some(fault) = &self.fault {
            out.push_str(&format!(
                "Fault injected: {fault} (the checks are expected to catch it).\n\n"
            ));
        }
        out.push_str("## Phases\n\n| at s | role | phase |\n|---:|---|---|\n");
        for phase in &self.phases {
            out.push_str(&format!(
                "| {:.2} | {} | {} |\n",
                phase.at.as_secs_f64(),
                phase.role,
                phase.phase
            ));
        }
        out.push_str("\n## Checks\n\n");
        for check in &self.checks {
            let mark = match (check.passed, check.interrupted) {
                (true, _) => "ok",
                (false, true) => "INTERRUPTED",
                (false, false) => "FAILED",
            };
            out.push_str(&format!(
                "- [{mark}] {} ({}): {}\n",
                check.name, check.role, check.summary
            ));
            for line in &check.evidence {
                out.push_str(&format!("    - {line}\n"));
            }
        }
        out.push_str("\n## Roles\n\n");
        for role in &self.roles {
            let phase = role.phase.as_deref().unwrap_or("-");
            match &role.failure {
                None => out.push_str(&format!(
                    "- {}: completed in {:.1} s (last phase: {phase}){}\n",
                    role.role,
                    role.elapsed.as_secs_f64(),
                    role.peer_down
                        .as_ref()
                        .map(|down| format!("; then peer {down}"))
                        .unwrap_or_default()
                )),
                Some(failure) => {
                    out.push_str(&format!(
                        "- {}: FAILED in phase {phase}: {failure}\n",
                        role.role
                    ));
                    for line in &role.sql_log {
                        out.push_str(&format!("    | {line}\n"));
                    }
                }
            }
        }
        if !self.recoveries.is_empty() {
            out.push_str("\n## Recovery after each kill\n\n");
            for (i, r) in self.recoveries.iter().enumerate() {
                let restarted = r.restarted_at.map_or(String::new(), |at| {
                    format!(
                        "; it accepted connections again {:.2} s later",
                        at.saturating_sub(r.kill_at).as_secs_f64()
                    )
                });
                let resumed = match (r.time(), &r.resumed_by) {
                    (Some(time), Some(by)) => format!(
                        "; commits acknowledged again {:.2} s after the kill ({by})",
                        time.as_secs_f64()
                    ),
                    _ => "; no commit acknowledged after it".to_owned(),
                };
                out.push_str(&format!(
                    "- kill {i} of {}'s server at {:.2} s{restarted}{resumed}\n",
                    r.role,
                    r.kill_at.as_secs_f64()
                ));
            }
        }
        if !self.actions.is_empty() {
            out.push_str("\n## Actions (all workers)\n\n");
            out.push_str(&actions_table(&self.actions));
        }
        if !self.stress.is_empty() {
            out.push_str(
                "\n## Stress loads\n\n| load | seed | s | runs | ok | failed | reconnects |\n|---|---:|---:|---:|---:|---:|---:|\n",
            );
            for load in &self.stress {
                out.push_str(&format!(
                    "| {} | {} | {:.1} | {} | {} | {} | {} |\n",
                    load.load,
                    load.seed,
                    load.elapsed_s,
                    load.runs(),
                    load.ok(),
                    load.runs() - load.ok(),
                    load.reconnects
                ));
            }
            for load in &self.stress {
                out.push_str(&format!("\n### {}\n\n", load.load));
                out.push_str(&actions_table(&load.actions));
            }
        }
        if !self.figures.is_empty() {
            out.push_str("\n## Figures\n\n");
            for (name, value) in &self.figures {
                out.push_str(&format!("- {name}: {value}\n"));
            }
        }
        out
    }

    /// Prints [`render`](ScenarioReport::render).
    pub fn print(&self) {
        println!("{}", self.render());
    }

    /// The report as its JSON file holds it (schema [`REPORT_SCHEMA`] at
    /// [`REPORT_REVISION`], kind `scenario`): serialize this.
    pub fn versioned(&self) -> VersionedReport<'_, ScenarioReport> {
        VersionedReport::new("scenario", self)
    }

    /// [`versioned`](ScenarioReport::versioned) as a JSON value.
    pub fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self.versioned())
    }
}
