//! Specs as choreographies: a permutation of a spec is a global stormchor program over
//! a family of session roles (one per `session` of the spec) and a controller role,
//! built at run time with the builder API; [`run_spec`] runs it through stormchor's
//! interpreter, whose extension registry carries the effects out on the server.
//!
//! The program of a permutation, in order (every effect is ordered, so effect order
//! alone says who goes when; the roles exchange no messages of their own):
//!
//! 1. [`MainSetup`] at the controller: the spec's `setup` blocks on the control
//!    connection.
//! 2. Each session's `setup`: a [`SessionBlock`] at its role, then an [`Observe`] at
//!    the controller (it reads the block's result and notices).
//! 3. Each permutation step: `ext finish` of the session's previous step, if any; then
//!    the step as an effect that **starts now and finishes later**
//!    (`ext start Step @ session as NAME`): the session sends its SQL and has started
//!    once it is sent; then an [`Observe`] at the controller, which decides, as
//!    isolationtester does, whether the step completed or waits: it waits boundedly for
//!    the result, asks the server `pg_isolation_test_session_is_blocked`, and polls the
//!    steps still waiting, printing their completions. A step that waits for a lock
//!    holds no one up: the next step starts after the observation, and the step's
//!    `ext finish` comes before its session's next step (or at the end).
//! 4. The `ext finish` of each session's last step; with testers before 9.6, a
//!    `ROLLBACK` [`SessionBlock`] per session (run only if the permutation was
//!    invalid); each session's `teardown`; [`MainTeardown`] at the controller.
//!
//! The controller's logic is the [`crate::schedule::Scheduler`], unchanged: its
//! requests that a session carries out (launch a step, run a session's block) are
//! the session roles' effects, in the order the program holds them; the controller's
//! effects answer the others. An effect the scheduler does not ask for (the steps
//! after an invalid permutation's end, everything after the tester would have died)
//! does nothing.
//!
//! # Example
//! ```
//! use stormchor_isolation::choreo::permutation_program;
//! use stormchor_isolation::spec::Spec;
//!
//! let spec = Spec::parse(
//!     "setup { CREATE TABLE t (x int); }\n\
//!      session s1 setup { BEGIN; } step l1 { LOCK t; } step c1 { COMMIT; }\n\
//!      session s2 step l2 { LOCK t; }\n\
//!      permutation l1 l2 c1",
//!     "x.spec",
//! )?;
//! let program = permutation_program(&spec, 0, &spec.permutations[0], false)?;
//! let diagram = stormchor_choreography::to_mermaid(&program);
//! assert!(diagram.contains("participant P1 as s1"));
//! assert!(diagram.contains("Note over P2: start step l2: LOCK t as l2"));
//! assert!(stormchor_choreography::project_all(&program).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod run;

pub use run::run_spec;

use std::any::{Any, TypeId};
use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use stormchor_choreography::{ExtensionEffect, Family, Program};

use crate::spec::{Permutation, Spec};

/// The roles of a spec's choreography.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Runs the scheduler: the main setup and teardown, the observations.
    Controller,
    /// A session of the spec: its index and its name.
    Session(u16, &'static str),
}

impl fmt::Debug for Role {
    /// `Controller`, or the session's name (as diagrams show it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Controller => f.write_str("Controller"),
            Role::Session(_, name) => f.write_str(name),
        }
    }
}

impl Role {
    /// Session `index` of `spec`.
    pub fn session(spec: &Spec, index: usize) -> Option<Role> {
        let session = spec.sessions.get(index)?;
        Some(Role::Session(
            u16::try_from(index).ok()?,
            intern(&session.name),
        ))
    }

    /// The session's index, for a session role.
    pub fn index(&self) -> Option<usize> {
        match self {
            Role::Controller => None,
            Role::Session(i, _) => Some(usize::from(*i)),
        }
    }
}

/// Session names live as long as the program: each distinct name is stored once.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The messages of a spec's choreography: none (effect order's frames carry the
/// order).
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {}

/// Why a spec has no choreography.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChoreoError {
    /// The permutation names a step no session defines.
    #[error("permutation {permutation}: step {step:?} is not a step of the spec")]
    UnknownStep {
        /// The permutation (from 1).
        permutation: usize,
        /// The step.
        step: String,
    },
    /// More sessions than roles can number.
    #[error("the spec has {0} sessions; at most 65536 can be roles")]
    TooManySessions(usize),
}

/// The SQL as a diagram note shows it: on one line, at most 60 characters.
fn brief(sql: &str) -> String {
    let line: Vec<&str> = sql.split_whitespace().collect();
    let line = line.join(" ");
    let line = line.trim_end_matches(';');
    if line.chars().count() > 60 {
        let cut: String = line.chars().take(57).collect();
        format!("{cut}...")
    } else {
        line.to_string()
    }
}

/// The controller's first effect of a permutation: the spec's `setup` blocks, on the
/// control connection.
#[derive(Clone, PartialEq, Eq)]
pub struct MainSetup {
    /// The permutation (from 1).
    pub permutation: usize,
    /// Its steps, as `starting permutation:` prints them.
    pub steps: Vec<String>,
    /// The blocks' SQL.
    pub blocks: Vec<String>,
}

impl fmt::Debug for MainSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "permutation {}: {}",
            self.permutation,
            self.steps.join(" ")
        )?;
        for block in &self.blocks {
            write!(f, ", setup {}", brief(block))?;
        }
        Ok(())
    }
}

/// What a session's block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// The session's `setup`.
    Setup,
    /// The session's `teardown`.
    Teardown,
    /// The `ROLLBACK` testers before 9.6 sent after an invalid permutation.
    Rollback,
}

/// A session's block, run to its end on the session's connection.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionBlock {
    /// The session.
    pub session: Role,
    /// Which block.
    pub kind: BlockKind,
    /// Its SQL.
    pub sql: String,
}

impl fmt::Debug for SessionBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            BlockKind::Setup => write!(f, "setup {:?}: {}", self.session, brief(&self.sql)),
            BlockKind::Teardown => write!(f, "teardown {:?}: {}", self.session, brief(&self.sql)),
            BlockKind::Rollback => write!(f, "rollback {:?} if invalid", self.session),
        }
    }
}

/// A permutation step at its session: started (its SQL sent), finished once its
/// results are in.
#[derive(Clone, PartialEq, Eq)]
pub struct Step {
    /// The session.
    pub session: Role,
    /// The step's name.
    pub name: String,
    /// Its SQL.
    pub sql: String,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}: {}", self.name, brief(&self.sql))
    }
}

/// The controller's observation after a session's effect: the scheduler goes on
/// (waiting boundedly for results, asking `pg_isolation_test_session_is_blocked`,
/// polling the waiting steps) up to its next request for a session.
#[derive(Clone, PartialEq, Eq)]
pub struct Observe {
    /// What it follows: a step's name, or a block's description.
    pub after: String,
    /// Whether it follows a step (done, or blocked?).
    pub step: bool,
}

impl fmt::Debug for Observe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.step {
            write!(
                f,
                "observe {}: done or blocked? poll the waiting",
                self.after
            )
        } else {
            write!(f, "observe {}", self.after)
        }
    }
}

/// The controller's last effect of a permutation: the spec's `teardown` on the control
/// connection, and the end of the scheduler's run.
#[derive(Clone, PartialEq, Eq)]
pub struct MainTeardown {
    /// The block's SQL, if the spec has one.
    pub block: Option<String>,
}

impl fmt::Debug for MainTeardown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.block {
            Some(sql) => write!(f, "teardown {}", brief(sql)),
            None => f.write_str("end of permutation"),
        }
    }
}

macro_rules! effect {
    ($t:ty, $name:literal, |$e:ident| $role:expr) => {
        impl ExtensionEffect for $t {
            fn effect_type_id(&self) -> TypeId {
                TypeId::of::<Self>()
            }
            fn type_name(&self) -> &'static str {
                $name
            }
            fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
                let $e = self;
                vec![Box::new($role)]
            }
            fn as_any(&self) -> &dyn Any {
                self
            }
            fn as_any_mut(&mut self) -> &mut dyn Any {
                self
            }
            fn clone_box(&self) -> Box<dyn ExtensionEffect> {
                Box::new(self.clone())
            }
        }
    };
}

effect!(MainSetup, "MainSetup", |_e| Role::Controller);
effect!(SessionBlock, "SessionBlock", |e| e.session);
effect!(Step, "Step", |e| e.session);
effect!(Observe, "Observe", |_e| Role::Controller);
effect!(MainTeardown, "MainTeardown", |_e| Role::Controller);

/// The session roles of `spec`, as a family.
pub fn sessions(spec: &Spec) -> Result<Family<Role>, ChoreoError> {
    let roles = (0..spec.sessions.len())
        .map(|i| Role::session(spec, i).ok_or(ChoreoError::TooManySessions(spec.sessions.len())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Family::new("sessions", roles))
}

/// The choreography of permutation `index` (from 0) of `spec`, `permutation`. With
/// `rollbacks`, the `ROLLBACK` blocks of testers before 9.6 come before the teardowns.
pub fn permutation_program(
    spec: &Spec,
    index: usize,
    permutation: &Permutation,
    rollbacks: bool,
) -> Result<Program<Role, Msg>, ChoreoError> {
    let family = sessions(spec)?;
    let roles = family.members().to_vec();
    let mut program = Program::new().role(Role::Controller).family(&family);
    program = program.ext(MainSetup {
        permutation: index + 1,
        steps: permutation.steps.iter().map(|s| s.name.clone()).collect(),
        blocks: spec.setups.iter().map(|b| b.sql.clone()).collect(),
    });
    let block = |program: Program<Role, Msg>, s: usize, kind: BlockKind, sql: &str| {
        let effect = SessionBlock {
            session: roles[s],
            kind,
            sql: sql.to_string(),
        };
        let after = format!("{effect:?}");
        program.ext(effect).ext(Observe { after, step: false })
    };
    for (s, session) in spec.sessions.iter().enumerate() {
        if let Some(setup) = &session.setup {
            program = block(program, s, BlockKind::Setup, &setup.sql);
        }
    }
    // Each session's running step (its handle).
    let mut running: Vec<Option<String>> = vec![None; roles.len()];
    let mut handles: HashSet<String> = HashSet::new();
    for ps in &permutation.steps {
        let unknown = || ChoreoError::UnknownStep {
            permutation: index + 1,
            step: ps.name.clone(),
        };
        let s = spec.session_of(&ps.name).ok_or_else(unknown)?;
        let step = spec.step(&ps.name).ok_or_else(unknown)?;
        if let Some(handle) = running[s].take() {
            program = program.ext_finish(handle);
        }
        // A handle per use: the step's name, then `NAME.2`, `NAME.3` ... (never one
        // another use already has, whatever the names).
        let mut handle = ps.name.clone();
        let mut n = 1;
        while !handles.insert(handle.clone()) {
            n += 1;
            handle = format!("{}.{n}", ps.name);
        }
        program = program.ext_start(
            Step {
                session: roles[s],
                name: ps.name.clone(),
                sql: step.sql.clone(),
            },
            handle.clone(),
        );
        program = program.ext(Observe {
            after: ps.name.clone(),
            step: true,
        });
        running[s] = Some(handle);
    }
    for handle in running.into_iter().flatten() {
        program = program.ext_finish(handle);
    }
    if rollbacks {
        for s in 0..roles.len() {
            program = block(program, s, BlockKind::Rollback, "ROLLBACK");
        }
    }
    for (s, session) in spec.sessions.iter().enumerate() {
        if let Some(teardown) = &session.teardown {
            program = block(program, s, BlockKind::Teardown, &teardown.sql);
        }
    }
    Ok(program.ext(MainTeardown {
        block: spec.teardown.as_ref().map(|b| b.sql.clone()),
    }))
}
