//! What a scenario run records (phases, checks, figures) and the report made of it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stormchor_choreography::{Message, RoleId};
use stormchor_macros::ExtensionEffect;
use stormchor_runtime::{ExtensionRegistry, RegistryError, RoleState, RunErrorKind, RunReport};

/// One role entering one phase.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseRecord {
    /// The role.
    pub role: String,
    /// The phase.
    pub phase: String,
    /// When, from the start of the run.
    pub at: Duration,
}

/// One check a verifier ran.
#[derive(Clone, Debug, PartialEq)]
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

/// How one role ended.
#[derive(Clone, Debug, PartialEq)]
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

/// What the roles of a run write down as it goes: shared by all of them.
#[derive(Debug)]
pub struct Journal {
    started: Instant,
    phases: Mutex<Vec<PhaseRecord>>,
    checks: Mutex<Vec<CheckRecord>>,
    figures: Mutex<BTreeMap<String, Value>>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new()
    }
}

impl Journal {
    /// An empty journal; times count from now.
    pub fn new() -> Self {
        Journal {
            started: Instant::now(),
            phases: Mutex::new(Vec::new()),
            checks: Mutex::new(Vec::new()),
            figures: Mutex::new(BTreeMap::new()),
        }
    }

    /// `role` enters `phase` now.
    pub fn enter(&self, role: impl Debug, phase: &str) {
        let record = PhaseRecord {
            role: format!("{role:?}"),
            phase: phase.to_owned(),
            at: self.started.elapsed(),
        };
        lock(&self.phases).push(record);
    }

    /// Records a check.
    pub fn check(&self, record: CheckRecord) {
        lock(&self.checks).push(record);
    }

    /// Records a figure.
    pub fn figure(&self, name: &str, value: impl Into<Value>) {
        lock(&self.figures).insert(name.to_owned(), value.into());
    }

    /// Adds `delta` to a counting figure.
    pub fn count(&self, name: &str, delta: u64) {
        let mut figures = lock(&self.figures);
        let entry = figures.entry(name.to_owned()).or_insert(json!(0));
        *entry = json!(entry.as_u64().unwrap_or(0) + delta);
    }

    /// The phases so far.
    pub fn phases(&self) -> Vec<PhaseRecord> {
        lock(&self.phases).clone()
    }

    /// The checks so far.
    pub fn checks(&self) -> Vec<CheckRecord> {
        lock(&self.checks).clone()
    }

    /// The last phase `role` entered.
    pub fn phase_of(&self, role: &str) -> Option<String> {
        lock(&self.phases)
            .iter()
            .rev()
            .find(|p| p.role == role)
            .map(|p| p.phase.clone())
    }

    /// Makes the report of a run from the runner's report and this journal.
    pub fn report<R: RoleId, M, S>(
        &self,
        name: &str,
        seed: u64,
        run: &RunReport<R, M, S>,
        diagram: String,
        sql_log: impl Fn(&R) -> Vec<String>,
    ) -> ScenarioReport {
        let roles: Vec<RoleRecord> = run
            .outcomes
            .iter()
            .map(|(role, outcome)| {
                let name = format!("{role:?}");
                RoleRecord {
                    phase: self.phase_of(&name),
                    role: name,
                    completed: outcome.result.is_ok(),
                    elapsed: outcome.elapsed,
                    failure: outcome.result.as_ref().err().map(ToString::to_string),
                    // A role that failed only because a peer did has nothing to show.
                    sql_log: match &outcome.result {
                        Err(failure)
                            if !matches!(failure.error.kind(), RunErrorKind::PeerFailed { .. }) =>
                        {
                            sql_log(role)
                        }
                        _ => Vec::new(),
                    },
                }
            })
            .collect();
        let checks = self.checks();
        let success = run.is_success() && checks.iter().all(|c| c.passed);
        ScenarioReport {
            name: name.to_owned(),
            seed,
            success,
            elapsed: self.started.elapsed(),
            phases: self.phases(),
            checks,
            roles,
            figures: lock(&self.figures).clone(),
            diagram,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Role data that keeps a [`Journal`].
pub trait Journaled: Send + Sync + 'static {
    /// The run's journal.
    fn journal(&self) -> &Journal;
}

/// Extension effect: the roles taking part enter a named phase. With no `@`, every
/// role does. Pure bookkeeping: it takes no part in effect order (no frames).
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
#[effect(unordered)]
pub struct Phase(pub &'static str);

/// Registers the handler of [`Phase`].
pub fn register_phase<R: RoleId, M: Message, S: Journaled>(
    registry: &mut ExtensionRegistry<RoleState<R, M, S>>,
) -> Result<(), RegistryError> {
    registry.register_unit::<Phase, _>(|state, phase| {
        Box::pin(async move {
            state.data().journal().enter(state.role(), phase.0);
            Ok(())
        })
    })?;
    Ok(())
}

/// The report of one scenario run.
#[derive(Clone, Debug)]
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
    /// Figures: counts, durations, sizes.
    pub figures: BTreeMap<String, Value>,
    /// The scenario's mermaid diagram.
    pub diagram: String,
}

impl ScenarioReport {
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
            "diagram": self.diagram,
        })
    }
}
