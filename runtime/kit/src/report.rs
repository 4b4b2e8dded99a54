//! The report of a scenario run: every role's journal merged, how each role ended,
//! the verdict; as console text and as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stormchor_runtime::{RoleOutcome, RunErrorKind, RunReport};

use crate::journal::{ActionRecord, CheckRecord, Entries, Figure, PhaseRecord};
use crate::node::{KitRole, Node};
use crate::value::Carry;

/// How one role ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleRecord {
    /// The role.
    pub role: String,
    /// Whether it ran to its end.
    pub completed: bool,
    /// How long it ran.
    pub elapsed: Duration,
    /// The last phase it entered.
    pub phase: Option<String>,
    /// Why it failed, and in which effect.
    pub failure: Option<String>,
    /// The last statements of its SQL log, when it failed and has one.
    pub sql_log: Vec<String>,
}

/// The report of one scenario run.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// The scenario.
    pub name: String,
    /// The seed it ran with.
    pub seed: u64,
    /// Every role completed and every check held.
    pub success: bool,
    /// How long it ran.
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
    /// The scenario's mermaid diagram.
    pub diagram: String,
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
        let mut completed = true;
        for result in results {
            let entries = result.entries;
            let role_phase = entries.phases.last().map(|p| p.phase.clone());
            phases.extend(entries.phases);
            for (action, record) in &entries.actions {
                actions.entry(action.clone()).or_default().add(record);
            }
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
            });
        }
        phases.sort_by_key(|p| p.at);
        for (figure, n) in counts {
            figures.insert(figure, json!(n));
        }
        let success = completed && checks.iter().all(|c| c.passed);
        ScenarioReport {
            name: name.to_owned(),
            seed,
            success,
            elapsed,
            phases,
            checks,
            roles,
            figures,
            actions,
            diagram,
        }
    }

    /// The checks that failed.
    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckRecord> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// The report as console text (markdown).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let verdict = if self.success { "PASSED" } else { "FAILED" };
        out.push_str(&format!(
            "# {}: {verdict} in {:.1} s (seed {})\n\n## Phases\n\n| at s | role | phase |\n|---:|---|---|\n",
            self.name,
            self.elapsed.as_secs_f64(),
            self.seed
        ));
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
            let mark = if check.passed { "ok" } else { "FAILED" };
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
                    "- {}: completed in {:.1} s (last phase: {phase})\n",
                    role.role,
                    role.elapsed.as_secs_f64()
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
        if !self.actions.is_empty() {
            out.push_str(
                "\n## Actions (all workers)\n\n| action | runs | ok | failed (by SQLSTATE) | p50 ms | p99 ms |\n|---|---:|---:|---|---:|---:|\n",
            );
            for (name, a) in &self.actions {
                let failed: Vec<String> =
                    a.errors.iter().map(|(c, n)| format!("{c}: {n}")).collect();
                out.push_str(&format!(
                    "| {name} | {} | {} | {} | {:.2} | {:.2} |\n",
                    a.runs,
                    a.ok,
                    failed.join(", "),
                    a.p50_us as f64 / 1e3,
                    a.p99_us as f64 / 1e3
                ));
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

    /// The report as JSON (schema `stormchor-report/1`, kind `scenario`).
    pub fn to_json(&self) -> Value {
        json!({
            "schema": "stormchor-report/1",
            "kind": "scenario",
            "name": self.name,
            "seed": self.seed,
            "success": self.success,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "phases": self.phases.iter().map(|p| json!({
                "role": p.role, "phase": p.phase, "at_s": p.at.as_secs_f64(),
            })).collect::<Vec<_>>(),
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name, "role": c.role, "passed": c.passed,
                "summary": c.summary, "evidence": c.evidence,
            })).collect::<Vec<_>>(),
            "roles": self.roles.iter().map(|r| json!({
                "role": r.role, "completed": r.completed, "elapsed_s": r.elapsed.as_secs_f64(),
                "phase": r.phase, "failure": r.failure, "sql_log": r.sql_log,
            })).collect::<Vec<_>>(),
            "figures": self.figures,
            "actions": self.actions,
            "diagram": self.diagram,
        })
    }
}
