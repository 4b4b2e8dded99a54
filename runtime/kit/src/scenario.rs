//! Scenarios: a named program with its options, defaults and the faults it can
//! inject; a registry of them (the built-in ones and an author's own); and the runner
//! that gives every role its own [`Node`] and merges their journals into a report.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use stormchor_choreography::{Program, ProjectionError, project_all, to_mermaid, to_svg};
use stormchor_runtime::{
    Identity, Layers, RegistryError, RoleSetup, RunConfig, Stack, TraceLayer, run_all_layered,
};
use thiserror::Error;

use crate::effect::Kit;
use crate::node::{KitRole, Node};
use crate::process::{Placement, ProcessError};
use crate::report::{RoleResult, ScenarioReport};
use crate::value::Carry;

/// A fault a scenario injects on purpose, to show that its verifier catches it.
///
/// # Example
/// ```
/// use stormchor_kit::Fault;
///
/// let fault: Fault = "skip-wal-replay".parse().expect("a fault");
/// assert_eq!(fault, Fault::SkipWalReplay);
/// assert_eq!(fault.to_string(), "skip-wal-replay");
/// assert!("skip-replay".parse::<Fault>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Fault {
    /// Deletes one acknowledged ledger row behind the writers' back.
    DeleteAcknowledgedRow,
    /// Overwrites the line pointers of a page of the ledger's primary-key index while
    /// the server is down: `pg_amcheck` must report it.
    CorruptLedgerIndex,
    /// Empties the file of the largest table holding rows on a restored cluster.
    CorruptRestoredTable,
    /// Restores a backup without replaying the archived WAL to the target.
    SkipWalReplay,
    /// Drops a table behind a catalog's back.
    DropTableBehindCatalog,
    /// Runs every isolation case one level weaker than it is written for.
    WeakerIsolation,
}

impl Fault {
    /// Every fault, with its name.
    pub const ALL: [(&'static str, Fault); 6] = [
        ("delete-acknowledged-row", Fault::DeleteAcknowledgedRow),
        ("corrupt-ledger-index", Fault::CorruptLedgerIndex),
        ("corrupt-restored-table", Fault::CorruptRestoredTable),
        ("skip-wal-replay", Fault::SkipWalReplay),
        ("drop-table-behind-catalog", Fault::DropTableBehindCatalog),
        ("weaker-isolation", Fault::WeakerIsolation),
    ];

    /// The fault's name.
    pub fn name(self) -> &'static str {
        Fault::ALL
            .iter()
            .find(|(_, fault)| *fault == self)
            .map_or("?", |(name, _)| name)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Fault::ALL
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, fault)| *fault)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown fault `{name}`; the faults are {}",
                    names.join(", ")
                )
            })
    }
}

/// How a scenario runs. Every role's [`Node`] is built from a copy of it.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::{Fault, ScenarioOptions};
///
/// let options = ScenarioOptions {
///     duration: Duration::from_secs(2),
///     fault: Some(Fault::DeleteAcknowledgedRow),
///     seed: 7,
///     ..ScenarioOptions::short()
/// };
/// assert!(options.target.is_none());
/// ```
#[derive(Clone, Debug)]
pub struct ScenarioOptions {
    /// Workers.
    pub workers: u16,
    /// How long each load phase runs.
    pub duration: Duration,
    /// Rounds (crashes, recorded points...).
    pub rounds: u32,
    /// The seed of every random choice.
    pub seed: u64,
    /// A server to use instead of a throwaway cluster (scenarios that control the
    /// server's processes refuse it).
    pub target: Option<String>,
    /// A schema to load (a SQL file), for scenarios that start from one.
    pub schema_file: Option<PathBuf>,
    /// A fault to inject.
    pub fault: Option<Fault>,
    /// When the run started: every role's times count from it.
    pub started: SystemTime,
    /// Let effects that change existing tables (the stress mix on a discovered
    /// schema) work on the tables of a user's server (`--target`). Off by default: a
    /// user's data is not ours to change unless they ask.
    pub touch_user_tables: bool,
    /// Run `pg_amcheck` after every crash round as well as at the end (scenarios
    /// that crash their server in rounds: `crash-recovery`), so that damage is
    /// reported with the round that made it. Off by default (it adds a check per round).
    pub amcheck_each_round: bool,
    /// The schemas that discovery reads and catalog validation checks (`Discover`,
    /// `ValidateCatalog`): `None` for the session's own schema (`public` on a
    /// throwaway cluster), as before; tables of the other schemas are named
    /// `schema.table`.
    pub discover_schemas: Option<stormchor_postgres::Schemas>,
}

impl ScenarioOptions {
    /// The most workers a scenario runs with.
    pub const MAX_WORKERS: u16 = 1000;
    /// The most rounds a scenario runs.
    pub const MAX_ROUNDS: u32 = 10_000;
    /// The longest load phase: 30 days.
    pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

    /// The short configuration CI runs: 2 workers, 2 s load phases, 3 rounds, seed 1.
    pub fn short() -> Self {
        ScenarioOptions {
            workers: 2,
            duration: Duration::from_secs(2),
            rounds: 3,
            seed: 1,
            target: None,
            schema_file: None,
            fault: None,
            started: SystemTime::now(),
            touch_user_tables: false,
            amcheck_each_round: false,
            discover_schemas: None,
        }
    }
}

/// Why a scenario could not run (a scenario that ran and failed a check returns a
/// report with `success == false` instead).
///
/// # Example
/// ```
/// use stormchor_kit::{ScenarioError, ScenarioRegistry};
///
/// let error = ScenarioRegistry::new().get("backup-restor").err().expect("not registered");
/// assert!(matches!(error, ScenarioError::Unknown { .. }));
/// ```
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// No scenario has that name.
    #[error("unknown scenario `{name}`{hint}; the scenarios are {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// ", did you mean `x`?" or nothing.
        hint: String,
        /// The names there are.
        known: String,
    },
    /// The scenario controls the server's processes and was given a user's server.
    #[error(
        "the {scenario} scenario controls the server's processes (kills, restarts, backups), \
         which a server given with --target does not allow; run it on a throwaway cluster"
    )]
    NeedsProcessControl {
        /// The scenario.
        scenario: String,
    },
    /// The scenario would change a user's tables, which they did not allow.
    #[error(
        "the {scenario} scenario changes and drops the existing tables of the server; on a \
         server given with --target that needs --on-user-tables (or run it on a throwaway cluster)"
    )]
    UserTables {
        /// The scenario.
        scenario: String,
    },
    /// Options that do not go together.
    #[error("the {scenario} scenario: {problem}")]
    Options {
        /// The scenario.
        scenario: String,
        /// What does not go together.
        problem: String,
    },
    /// The scenario cannot inject the fault asked for.
    #[error("the {scenario} scenario cannot inject `{fault}`; it can inject {supported}")]
    UnsupportedFault {
        /// The scenario.
        scenario: String,
        /// The fault asked for.
        fault: Fault,
        /// The faults it can inject ("no fault" when none).
        supported: String,
    },
    /// Two scenarios of one registry have the same name.
    #[error("a scenario named `{0}` is registered already")]
    Duplicate(String),
    /// The scenario's choreography does not project (a bug in the scenario).
    #[error("the {scenario} choreography is unsound: {source}")]
    Projection {
        /// The scenario.
        scenario: String,
        /// Why.
        #[source]
        source: Box<ProjectionError>,
    },
    /// The kit's registry could not be built.
    #[error("the {scenario} scenario's effects do not register: {source}")]
    Registry {
        /// The scenario.
        scenario: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// Setting the scenario up failed.
    #[error("cannot set the {scenario} scenario up: {message}")]
    Setup {
        /// The scenario.
        scenario: String,
        /// What went wrong.
        message: String,
    },
}

/// What a scenario runs with unless told otherwise, and what it needs.
///
/// # Example
/// ```
/// use stormchor_kit::Defaults;
///
/// // A scenario that runs the stress mix on whatever tables it finds.
/// let defaults = Defaults { touches_user_tables: true, ..Defaults::default() };
/// assert!(defaults.touches_user_tables);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// It controls the server's processes (kills, restarts, backups, replicas): a
    /// user's server (`--target`) is refused before anything starts.
    pub controls_processes: bool,
    /// It changes and drops the existing tables of its server (the stress mix on a
    /// discovered schema): on a user's server (`--target`) it needs
    /// [`ScenarioOptions::touch_user_tables`], or it is refused before anything starts.
    pub touches_user_tables: bool,
    /// It starts from a schema file ([`ScenarioOptions::schema_file`], `--schema`); a
    /// scenario that does not refuses one before anything starts.
    pub schema_file: bool,
    /// Workers; 0: it has no workers (an option of workers does not apply).
    pub workers: u16,
    /// Rounds; 0: it has no rounds (an option of rounds does not apply).
    pub rounds: u32,
    /// Load phase length; zero: it has no load phase.
    pub duration: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            controls_processes: false,
            touches_user_tables: false,
            schema_file: false,
            workers: 2,
            rounds: 3,
            duration: Duration::from_secs(10),
        }
    }
}

/// A boxed future of a scenario run.
pub type RunFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ScenarioReport, ScenarioError>> + Send + 'a>>;

/// A scenario: a name, what it proves, its defaults, the faults it can inject, its
/// diagram, and its run.
///
/// Most scenarios are a [`KitScenario`]: a function from options to a kit program.
///
/// # Example
/// ```
/// use stormchor_kit::{Scenario, ScenarioOptions, ScenarioRegistry};
///
/// // Every registered scenario can be drawn and projected before it runs.
/// fn describe(registry: &ScenarioRegistry) -> Vec<String> {
///     registry
///         .iter()
///         .map(|scenario: &dyn Scenario| {
///             let frames = scenario.control_frames(&ScenarioOptions::short()).unwrap_or(0);
///             format!("{}: {} ({frames} control frames)", scenario.name(), scenario.description())
///         })
///         .collect()
/// }
/// assert!(describe(&ScenarioRegistry::new()).is_empty());
/// ```
pub trait Scenario: Send + Sync {
    /// Its name (`backup-restore`).
    fn name(&self) -> &'static str;
    /// One line: what it proves.
    fn description(&self) -> &'static str;
    /// The faults it can inject.
    fn faults(&self) -> &'static [Fault] {
        &[]
    }
    /// Its defaults.
    fn defaults(&self) -> Defaults {
        Defaults::default()
    }
    /// The mermaid diagram of its choreography for these options.
    fn diagram(&self, options: &ScenarioOptions) -> String;
    /// The same diagram as self-contained SVG, for reports and `describe --svg`.
    fn svg(&self, options: &ScenarioOptions) -> String;
    /// Every role's projected program for these options (its local program, as text),
    /// or why the choreography does not project; nothing runs.
    fn local_programs(&self, options: &ScenarioOptions) -> Result<Vec<String>, ScenarioError>;
    /// How many control frames effect order adds to its projections for these options.
    fn control_frames(&self, options: &ScenarioOptions) -> Result<usize, ScenarioError>;
    /// Runs it.
    fn run(&self, options: ScenarioOptions) -> RunFuture<'_>;
    /// Its roles for these options, as the report names them (`Worker(0)`), in order.
    fn roles(&self, options: &ScenarioOptions) -> Result<Vec<String>, ScenarioError>;
    /// Runs one of its roles in this process, talking to its peers over TCP
    /// ([`process::run_role`](crate::process::run_role)).
    fn run_role<'a>(
        &'a self,
        options: ScenarioOptions,
        role: &'a str,
        placement: Placement,
    ) -> RoleFuture<'a> {
        let _ = (options, role, placement);
        Box::pin(async move {
            Err(ProcessError::Unsupported {
                scenario: self.name().to_owned(),
            })
        })
    }
}

/// A boxed future of one role's run in a process of its own.
pub type RoleFuture<'a> =
    Pin<Box<dyn Future<Output = Result<RoleResult, ProcessError>> + Send + 'a>>;

/// A scenario made of a kit program.
///
/// # Example
/// ```
/// use stormchor_kit::effects::{Phase, StartServer};
/// use stormchor_kit::slots::PRIMARY;
/// use stormchor_kit::{Carry, DbEffect, KitRole, KitScenario, Program, Scenario, ScenarioOptions};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Primary }
/// impl KitRole for Role {}
///
/// fn program(_: &ScenarioOptions) -> Program<Role, Carry> {
///     Program::new()
///         .role(Role::Primary)
///         .ext(Phase("start"))
///         .ext(StartServer::throwaway().into_slot(PRIMARY))
/// }
///
/// let scenario = KitScenario::new("start-only", "a server starts", program);
/// assert_eq!(scenario.name(), "start-only");
/// assert!(scenario.diagram(&ScenarioOptions::short()).contains("StartServer"));
/// ```
pub struct KitScenario<R: KitRole> {
    name: &'static str,
    description: &'static str,
    faults: &'static [Fault],
    defaults: Defaults,
    program: fn(&ScenarioOptions) -> Program<R, Carry>,
    kit: fn() -> Result<Kit<R>, RegistryError>,
}

impl<R: KitRole> KitScenario<R> {
    /// The scenario `name`, proving `description`, running `program` with every kit
    /// effect.
    pub fn new(
        name: &'static str,
        description: &'static str,
        program: fn(&ScenarioOptions) -> Program<R, Carry>,
    ) -> Self {
        KitScenario {
            name,
            description,
            faults: &[],
            defaults: Defaults::default(),
            program,
            kit: Kit::new,
        }
    }

    /// The faults it can inject.
    pub fn with_faults(mut self, faults: &'static [Fault]) -> Self {
        self.faults = faults;
        self
    }

    /// Its defaults.
    pub fn with_defaults(mut self, defaults: Defaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// The kit it runs with (every kit effect plus an author's own).
    pub fn with_kit(mut self, kit: fn() -> Result<Kit<R>, RegistryError>) -> Self {
        self.kit = kit;
        self
    }

    /// Its program for these options.
    pub fn program(&self, options: &ScenarioOptions) -> Program<R, Carry> {
        (self.program)(options)
    }
}

impl<R: KitRole> Scenario for KitScenario<R> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn faults(&self) -> &'static [Fault] {
        self.faults
    }
    fn defaults(&self) -> Defaults {
        self.defaults
    }
    fn diagram(&self, options: &ScenarioOptions) -> String {
        to_mermaid(&self.program(options))
    }
    fn svg(&self, options: &ScenarioOptions) -> String {
        to_svg(&self.program(options))
    }
    fn local_programs(&self, options: &ScenarioOptions) -> Result<Vec<String>, ScenarioError> {
        project_all(&self.program(options))
            .map(|locals| locals.values().map(ToString::to_string).collect())
            .map_err(|source| ScenarioError::Projection {
                scenario: self.name.to_owned(),
                source: Box::new(source),
            })
    }
    fn control_frames(&self, options: &ScenarioOptions) -> Result<usize, ScenarioError> {
        stormchor_choreography::order_frames(&self.program(options))
            .map(|frames| frames.total())
            .map_err(|source| ScenarioError::Projection {
                scenario: self.name.to_owned(),
                source: Box::new(source),
            })
    }
    fn run(&self, options: ScenarioOptions) -> RunFuture<'_> {
        Box::pin(async move {
            check_options(self, &options)?;
            let kit = (self.kit)().map_err(|source| ScenarioError::Registry {
                scenario: self.name.to_owned(),
                source,
            })?;
            run_program(self.name, &self.program(&options), &options, kit).await
        })
    }
    fn roles(&self, options: &ScenarioOptions) -> Result<Vec<String>, ScenarioError> {
        project_all(&self.program(options))
            .map(|locals| locals.keys().map(|r| format!("{r:?}")).collect())
            .map_err(|source| ScenarioError::Projection {
                scenario: self.name.to_owned(),
                source: Box::new(source),
            })
    }
    fn run_role<'a>(
        &'a self,
        options: ScenarioOptions,
        role: &'a str,
        placement: Placement,
    ) -> RoleFuture<'a> {
        Box::pin(async move {
            check_options(self, &options)?;
            let kit = (self.kit)().map_err(|source| ScenarioError::Registry {
                scenario: self.name.to_owned(),
                source,
            })?;
            crate::process::run_role(
                self.name,
                &self.program(&options),
                &options,
                kit,
                role,
                placement,
            )
            .await
        })
    }
}

/// The longest any role of a run with `options` may take: generous, since every wait
/// in the effects is bounded on its own; this catches the rest.
pub fn run_deadline(options: &ScenarioOptions) -> Duration {
    options
        .duration
        .saturating_mul(options.rounds.saturating_add(4).saturating_mul(4))
        .saturating_add(Duration::from_secs(600))
}

/// The middleware every role of a kit program runs with, in one process and in a
/// process of its own alike: a `tracing` span around every send, receive and effect
/// (with the role and the peer or effect), seen by whatever subscriber the program
/// installs.
pub type KitLayers = Layers<Stack<TraceLayer, Identity>>;

/// The [`KitLayers`].
pub fn kit_layers() -> KitLayers {
    Layers::new().with(TraceLayer)
}

/// Runs a kit program with every role in this process (the in-memory transport),
/// each role with its own [`Node`] built from `options`, and merges their journals
/// into the report. Every server a role started is stopped and removed before it
/// returns.
pub async fn run_program<R: KitRole>(
    name: &str,
    program: &Program<R, Carry>,
    options: &ScenarioOptions,
    kit: Kit<R>,
) -> Result<ScenarioReport, ScenarioError> {
    run_program_within(name, program, options, kit, run_deadline(options)).await
}

/// [`run_program`] with every role given at most `deadline` (instead of
/// [`run_deadline`]): a role still running then fails as timed out, the others are
/// told, and the report comes back.
pub async fn run_program_within<R: KitRole>(
    name: &str,
    program: &Program<R, Carry>,
    options: &ScenarioOptions,
    kit: Kit<R>,
    deadline: Duration,
) -> Result<ScenarioReport, ScenarioError> {
    project_all(program).map_err(|source| ScenarioError::Projection {
        scenario: name.to_owned(),
        source: Box::new(source),
    })?;
    let registry = std::sync::Arc::new(kit.into_registry());
    let began = Instant::now();
    let run = run_all_layered(
        program,
        |role: R| {
            RoleSetup::with_registry(
                Node::new(format!("{role:?}"), role.member(), options),
                registry.clone(),
            )
        },
        RunConfig::default().with_deadline(deadline),
        &kit_layers(),
    )
    .await
    .map_err(|source| ScenarioError::Projection {
        scenario: name.to_owned(),
        source: Box::new(source),
    })?;
    let mut report = ScenarioReport::merge(
        name,
        options.seed,
        began.elapsed(),
        &run,
        to_mermaid(program),
    );
    report.diagram_svg = to_svg(program);
    report.fault = options.fault.map(|f| f.name().to_owned());
    for outcome in run.outcomes.values() {
        if let Some(state) = &outcome.state {
            state.data().release().await;
        }
    }
    Ok(report)
}

/// Checks that `scenario` can run with `options`, before anything starts: a fault it
/// does not inject, a `--target` it cannot use, options that do not go together.
pub fn check_options(
    scenario: &dyn Scenario,
    options: &ScenarioOptions,
) -> Result<(), ScenarioError> {
    let name = scenario.name().to_owned();
    let defaults = scenario.defaults();
    if options.target.is_some() {
        if defaults.controls_processes {
            return Err(ScenarioError::NeedsProcessControl { scenario: name });
        }
        if defaults.touches_user_tables && !options.touch_user_tables {
            return Err(ScenarioError::UserTables { scenario: name });
        }
        if options.schema_file.is_some() {
            return Err(ScenarioError::Options {
                scenario: name,
                problem: "--schema loads a schema into a throwaway cluster; with --target the \
                          server's own schema is used"
                    .to_owned(),
            });
        }
    }
    let problem = |problem: String| ScenarioError::Options {
        scenario: scenario.name().to_owned(),
        problem,
    };
    if options.schema_file.is_some() && !defaults.schema_file {
        return Err(problem(
            "it does not start from a schema file: --schema does not apply".to_owned(),
        ));
    }
    // Zero workers, rounds or load time are refused the same way by every scenario
    // that has them (rather than quietly run as one).
    if defaults.workers > 0 && options.workers == 0 {
        return Err(problem("it needs at least 1 worker".to_owned()));
    }
    if defaults.rounds > 0 && options.rounds == 0 {
        return Err(problem("it needs at least 1 round".to_owned()));
    }
    if !defaults.duration.is_zero() && options.duration.is_zero() {
        return Err(problem(
            "its load phases need a duration above 0".to_owned(),
        ));
    }
    if options.workers > ScenarioOptions::MAX_WORKERS
        || options.rounds > ScenarioOptions::MAX_ROUNDS
        || options.duration > ScenarioOptions::MAX_DURATION
    {
        return Err(problem(format!(
            "at most {} workers, {} rounds and {} s load phases",
            ScenarioOptions::MAX_WORKERS,
            ScenarioOptions::MAX_ROUNDS,
            ScenarioOptions::MAX_DURATION.as_secs()
        )));
    }
    if let Some(fault) = options.fault {
        if !scenario.faults().contains(&fault) {
            let supported: Vec<&str> = scenario.faults().iter().map(|f| f.name()).collect();
            return Err(ScenarioError::UnsupportedFault {
                scenario: name,
                fault,
                supported: if supported.is_empty() {
                    "no fault".to_owned()
                } else {
                    supported.join(", ")
                },
            });
        }
    }
    Ok(())
}

/// Scenarios by name.
///
/// # Example
/// ```
/// use stormchor_kit::{Fault, KitScenario, Program, ScenarioError, ScenarioOptions, ScenarioRegistry, Carry, KitRole};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Primary }
/// impl KitRole for Role {}
/// fn nothing(_: &ScenarioOptions) -> Program<Role, Carry> { Program::new().role(Role::Primary) }
///
/// let mut registry = ScenarioRegistry::new();
/// registry.register(KitScenario::new("nothing", "does nothing", nothing)).expect("new name");
/// assert!(registry.get("nothing").is_ok());
/// assert!(matches!(registry.get("nothin"), Err(ScenarioError::Unknown { .. })));
/// let mut options = ScenarioOptions::short();
/// options.fault = Some(Fault::SkipWalReplay);
/// assert!(matches!(registry.check("nothing", &options), Err(ScenarioError::UnsupportedFault { .. })));
/// ```
#[derive(Default)]
pub struct ScenarioRegistry {
    scenarios: Vec<Box<dyn Scenario>>,
}

impl ScenarioRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ScenarioRegistry::default()
    }

    /// Adds a scenario; its name must be new.
    pub fn register(
        &mut self,
        scenario: impl Scenario + 'static,
    ) -> Result<&mut Self, ScenarioError> {
        if self.scenarios.iter().any(|s| s.name() == scenario.name()) {
            return Err(ScenarioError::Duplicate(scenario.name().to_owned()));
        }
        self.scenarios.push(Box::new(scenario));
        Ok(self)
    }

    /// Every scenario, in the order they were registered.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Scenario> {
        self.scenarios.iter().map(|s| s.as_ref())
    }

    /// Whether `name` is a scenario of this registry.
    pub fn contains(&self, name: &str) -> bool {
        self.scenarios.iter().any(|s| s.name() == name)
    }

    /// The scenario `name`; an unknown name lists the known ones, with the closest.
    pub fn get(&self, name: &str) -> Result<&dyn Scenario, ScenarioError> {
        self.iter().find(|s| s.name() == name).ok_or_else(|| {
            let names: Vec<&str> = self.iter().map(|s| s.name()).collect();
            ScenarioError::Unknown {
                name: name.to_owned(),
                hint: crate::closest(name, &names)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default(),
                known: names.join(", "),
            }
        })
    }

    /// Checks that scenario `name` exists and can run with `options` (the fault asked
    /// for is one it injects), before anything starts.
    pub fn check(
        &self,
        name: &str,
        options: &ScenarioOptions,
    ) -> Result<&dyn Scenario, ScenarioError> {
        let scenario = self.get(name)?;
        check_options(scenario, options)?;
        Ok(scenario)
    }

    /// Runs scenario `name` after [`check`](ScenarioRegistry::check)ing it.
    pub async fn run(
        &self,
        name: &str,
        options: ScenarioOptions,
    ) -> Result<ScenarioReport, ScenarioError> {
        self.check(name, &options)?.run(options).await
    }
}
