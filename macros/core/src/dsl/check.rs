//! Compile-time checks: the choreography is rebuilt as a *symbolic* program (roles are
//! names, families have a few stand-in members, messages are their token text) and
//! handed to the algebra's own projection. Its errors are mapped back, through the
//! path every projection error carries, to the tokens of the offending statement.
//!
//! What cannot be known while compiling is left to the projection at run time:
//! effects without `@` (their participants are in their fields), sub-choreographies
//! called with `call` (their text lives elsewhere). A choreography that calls another
//! one still gets the local checks (self-sends, empty choices, duplicate labels, zero
//! timeouts); the whole-program rules (learning a choice, racing parts) are then
//! checked when the program is projected.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use proc_macro2::Span;
use stormchor_choreography::{
    ExtensionEffect, Family, Program, ProjectionError, Step, project_all,
};
use syn::{Expr, Ident};

use super::parse::{LoopSpec, RoleRef, Stmt, error_between, literal_index, text};
use super::{Resolved, RoleKind, Scope};

/// Members every family gets in the symbolic program, besides the ones named by a
/// literal index: two, so that "every member but one" and "one member" differ.
const STAND_IN_MEMBERS: u32 = 2;
/// Where members named by a non-literal index start.
const OPAQUE_MEMBERS: u32 = 1 << 20;
/// The member number of a single role.
const SINGLE: u32 = u32::MAX;

thread_local! {
    /// How each symbolic role reads in an error message.
    static NAMES: RefCell<HashMap<Sym, String>> = RefCell::new(HashMap::new());
}

/// A symbolic role: a declared role and, for a family, a member number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Sym {
    role: u32,
    member: u32,
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        NAMES.with(|names| match names.borrow().get(self) {
            Some(name) => f.write_str(name),
            None => write!(f, "role#{}", self.role),
        })
    }
}

/// A symbolic extension effect with known participants.
#[derive(Clone, Debug)]
struct SymEffect {
    /// Read through `Debug`: two effects are the same when their texts are.
    #[allow(dead_code)]
    text: String,
    roles: Vec<Sym>,
}

impl ExtensionEffect for SymEffect {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        "effect"
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        if self.roles.is_empty() {
            return vec![Box::new(())];
        }
        self.roles
            .iter()
            .map(|role| Box::new(*role) as Box<dyn Any>)
            .collect()
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

/// Where each effect of the symbolic program came from, shaped like the program.
enum Node {
    /// A statement, from its first token to its last.
    Leaf(Span, Span),
    Choice {
        span: Span,
        branches: Vec<(String, Span, Vec<Node>)>,
    },
    Body {
        span: Span,
        body: Vec<Node>,
    },
    Par {
        span: Span,
        parts: Vec<(Span, Vec<Node>)>,
    },
}

impl Node {
    /// The first and last token of what the node stands for: a whole statement for a
    /// leaf, the keyword for a compound statement.
    fn span(&self) -> (Span, Span) {
        match self {
            Node::Leaf(start, end) => (*start, *end),
            Node::Choice { span, .. } | Node::Body { span, .. } | Node::Par { span, .. } => {
                (*span, *span)
            }
        }
    }
}

/// A symbolic message: the tokens of its expression, compacted for error messages.
#[derive(Clone, PartialEq)]
struct SymMsg(String);

impl SymMsg {
    fn new(tokens: &impl quote::ToTokens) -> Self {
        let mut compact = text(tokens);
        for (spaced, tight) in [
            (" :: ", "::"),
            (" (", "("),
            ("( ", "("),
            (" )", ")"),
            (" ,", ","),
        ] {
            compact = compact.replace(spaced, tight);
        }
        SymMsg(compact)
    }
}

impl fmt::Debug for SymMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type SymProgram = Program<Sym, SymMsg>;

struct Builder<'a> {
    scope: &'a Scope,
    /// Per family: its role number and its symbolic members.
    families: HashMap<String, (u32, Vec<u32>)>,
    /// Member numbers given to non-literal indices, by family and index text.
    opaque: HashMap<(String, String), u32>,
    /// The role number of each single role.
    singles: HashMap<String, u32>,
    /// `for` variables in scope and the member each is bound to now.
    vars: Vec<(Ident, Sym)>,
    /// Whether some part is only known at run time (a `call`).
    open: bool,
    /// The roles named after `@` by each `ext start .. as h` seen so far.
    started: HashMap<String, Vec<Sym>>,
}

/// Roles in a canonical order, to compare two lists.
fn sorted(mut roles: Vec<Sym>) -> Vec<Sym> {
    roles.sort_unstable();
    roles.dedup();
    roles
}

/// Checks one choreography body; the first problem found, with its span.
pub(super) fn check(scope: &Scope, body: &[Stmt]) -> syn::Result<()> {
    let mut builder = Builder::new(scope, body);
    let declared: Vec<Sym> = builder.all_roles();
    let (program, nodes) = builder.seq(body)?;
    let program = Program::new().with_roles(declared).then(program);
    let result = project_all(&program).map(|_| ());
    let outcome = match result {
        Ok(()) => Ok(()),
        Err(error) if builder.open && needs_whole_program(&error) => Ok(()),
        Err(error) => {
            let (start, end) =
                locate(&nodes, &error).unwrap_or((Span::call_site(), Span::call_site()));
            Err(error_between(start, end, describe(&error)))
        }
    };
    NAMES.with(|names| names.borrow_mut().clear());
    outcome
}

/// Errors that depend on what every part of the program does.
fn needs_whole_program(error: &ProjectionError) -> bool {
    matches!(
        error,
        ProjectionError::UnlearnedChoice { .. }
            | ProjectionError::ParallelChannelRace { .. }
            | ProjectionError::OrderFrameRace { .. }
            | ProjectionError::UnfinishedStart { .. }
            | ProjectionError::UnknownFinish { .. }
    )
}

/// The algebra's own message for a projection error (its `Display`), without the
/// path: that path is into the symbolic program (`for` unrolled, effects without `@`
/// left out), and the error's span shows the place in the source instead.
fn describe(error: &ProjectionError) -> String {
    let path = format!(" at {}", error.path());
    error.to_string().replacen(&path, "", 1)
}

/// The first and last token an error is about.
fn locate(nodes: &[Node], error: &ProjectionError) -> Option<(Span, Span)> {
    let mut list = nodes;
    let mut node: Option<&Node> = None;
    let mut span = None;
    for step in error.path().steps() {
        match (step, node) {
            (Step::Index(index), _) => {
                let next = list.get(*index)?;
                span = Some(next.span());
                node = Some(next);
            }
            (Step::Branch(label), Some(Node::Choice { branches, .. })) => {
                let (_, label_span, body) = branches.iter().find(|b| b.0 == label.as_str())?;
                span = Some((*label_span, *label_span));
                list = body;
                node = None;
            }
            (Step::Body, Some(Node::Body { body, .. })) => {
                list = body;
                node = None;
            }
            (Step::Part(part), Some(Node::Par { parts, .. })) => {
                let (part_span, body) = parts.get(*part)?;
                span = Some((*part_span, *part_span));
                list = body;
                node = None;
            }
            _ => return span,
        }
    }
    match (error, node) {
        (ProjectionError::UnlearnedChoice { branch, .. }, Some(Node::Choice { branches, .. })) => {
            branches
                .iter()
                .find(|b| b.0 == *branch)
                .map(|b| (b.1, b.1))
                .or(span)
        }
        (ProjectionError::DuplicateLabel { label, .. }, Some(Node::Choice { branches, .. })) => {
            branches
                .iter()
                .filter(|b| b.0 == *label)
                .nth(1)
                .map(|b| (b.1, b.1))
                .or(span)
        }
        (ProjectionError::ParallelChannelRace { second, .. }, Some(Node::Par { parts, .. })) => {
            parts.get(*second).map(|p| (p.0, p.0)).or(span)
        }
        _ => span,
    }
}

/// Calls `visit` on every role reference of `stmts`, nested ones included.
fn visit_roles(stmts: &[Stmt], visit: &mut impl FnMut(&RoleRef)) {
    for stmt in stmts {
        match stmt {
            Stmt::Send { from, to, .. } => {
                visit(from);
                visit(to);
            }
            Stmt::Ext { at, .. } | Stmt::Finish { at, .. } => {
                at.iter().flatten().for_each(&mut *visit)
            }
            Stmt::Choice { at, branches, .. } => {
                visit(at);
                for branch in branches {
                    visit_roles(&branch.body, visit);
                }
            }
            Stmt::Loop { spec, body, .. } => {
                if let LoopSpec::Until(role) = spec {
                    visit(role);
                }
                visit_roles(body, visit);
            }
            Stmt::Par { parts, .. } => parts.iter().for_each(|(_, part)| visit_roles(part, visit)),
            Stmt::Timeout { role, body, .. } => {
                visit(role);
                visit_roles(body, visit);
            }
            Stmt::For { body, .. } => visit_roles(body, visit),
            Stmt::Call { .. } | Stmt::Let(_) => {}
        }
    }
}

/// A symbolic duration: zero when the expression visibly is, one second otherwise.
fn symbolic_duration(expr: &Expr) -> Duration {
    let zero = match expr {
        Expr::Path(path) => path.path.segments.last().is_some_and(|s| s.ident == "ZERO"),
        Expr::Call(call) => {
            call.args.len() == 1 && call.args.first().and_then(literal_index) == Some(0)
        }
        _ => false,
    };
    if zero {
        Duration::ZERO
    } else {
        Duration::from_secs(1)
    }
}

impl<'a> Builder<'a> {
    fn new(scope: &'a Scope, body: &[Stmt]) -> Self {
        let mut builder = Builder {
            scope,
            families: HashMap::new(),
            opaque: HashMap::new(),
            singles: HashMap::new(),
            vars: Vec::new(),
            open: false,
            started: HashMap::new(),
        };
        let mut named: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (number, (name, kind, _)) in (0u32..).zip(&scope.roles) {
            let name = name.to_string();
            match kind {
                RoleKind::Single => {
                    builder.name(
                        Sym {
                            role: number,
                            member: SINGLE,
                        },
                        name.clone(),
                    );
                    builder.singles.insert(name, number);
                }
                RoleKind::Family => {
                    builder.families.insert(name.clone(), (number, Vec::new()));
                    named.insert(name, (0..STAND_IN_MEMBERS).collect());
                }
            }
        }
        // Members named by a literal index, and one stand-in per distinct non-literal
        // index expression, join the family's members.
        visit_roles(body, &mut |role| {
            let (Some(index), Some(members)) = (&role.index, named.get_mut(&role.name.to_string()))
            else {
                return;
            };
            let member = match literal_index(index) {
                Some(literal) => u32::try_from(literal)
                    .unwrap_or(OPAQUE_MEMBERS - 1)
                    .min(OPAQUE_MEMBERS - 1),
                None => {
                    let next = OPAQUE_MEMBERS + builder.opaque.len() as u32;
                    *builder
                        .opaque
                        .entry((role.name.to_string(), text(index)))
                        .or_insert(next)
                }
            };
            members.push(member);
        });
        for (name, mut members) in named {
            members.sort_unstable();
            members.dedup();
            let number = builder.families[&name].0;
            for &member in &members {
                let label = if member >= OPAQUE_MEMBERS {
                    let index = builder
                        .opaque
                        .iter()
                        .find(|(key, value)| key.0 == name && **value == member)
                        .map(|(key, _)| key.1.clone())
                        .unwrap_or_default();
                    format!("{name}[{index}]")
                } else {
                    format!("{name}[{member}]")
                };
                builder.name(
                    Sym {
                        role: number,
                        member,
                    },
                    label,
                );
            }
            if let Some(entry) = builder.families.get_mut(&name) {
                entry.1 = members;
            }
        }
        builder
    }

    fn name(&self, sym: Sym, name: String) {
        NAMES.with(|names| names.borrow_mut().insert(sym, name));
    }

    fn all_roles(&self) -> Vec<Sym> {
        let singles = self.singles.values().map(|&role| Sym {
            role,
            member: SINGLE,
        });
        let members = self.families.values().flat_map(|(role, members)| {
            members.iter().map(move |&member| Sym {
                role: *role,
                member,
            })
        });
        singles.chain(members).collect()
    }

    fn var_names(&self) -> Vec<Ident> {
        self.vars.iter().map(|(var, _)| var.clone()).collect()
    }

    fn family(&self, name: &Ident) -> Family<Sym> {
        let (role, members) = &self.families[&name.to_string()];
        Family::new(
            name.to_string(),
            members.iter().map(|&member| Sym {
                role: *role,
                member,
            }),
        )
    }

    /// The symbolic roles a resolved reference stands for: one, or a whole family.
    fn syms(&self, resolved: &Resolved) -> Result<Sym, Family<Sym>> {
        match resolved {
            Resolved::Single(name) => Ok(Sym {
                role: self.singles[&name.to_string()],
                member: SINGLE,
            }),
            Resolved::Member(name, index) => {
                let (role, _) = self.families[&name.to_string()];
                let member = match literal_index(index) {
                    Some(literal) => u32::try_from(literal)
                        .unwrap_or(OPAQUE_MEMBERS - 1)
                        .min(OPAQUE_MEMBERS - 1),
                    None => self.opaque[&(name.to_string(), text(*index))],
                };
                Ok(Sym { role, member })
            }
            Resolved::Var(var) => Ok(self
                .vars
                .iter()
                .rev()
                .find(|(name, _)| name == *var)
                .map(|(_, sym)| *sym)
                .unwrap_or(Sym {
                    role: 0,
                    member: SINGLE,
                })),
            Resolved::Family(name) => Err(self.family(name)),
        }
    }

    fn one(&self, role: &RoleRef, what: &str) -> syn::Result<Sym> {
        let resolved = self.scope.resolve_one(role, &self.var_names(), what)?;
        Ok(self.syms(&resolved).unwrap_or(Sym {
            role: 0,
            member: SINGLE,
        }))
    }

    /// The roles after `@`, families expanded to their members.
    fn at_roles(&self, at: &[RoleRef]) -> syn::Result<Vec<Sym>> {
        let vars = self.var_names();
        let mut roles = Vec::new();
        for role in at {
            match self.syms(&self.scope.resolve(role, &vars)?) {
                Ok(sym) => roles.push(sym),
                Err(family) => roles.extend(family.members().iter().copied()),
            }
        }
        Ok(roles)
    }

    fn seq(&mut self, stmts: &[Stmt]) -> syn::Result<(SymProgram, Vec<Node>)> {
        let mut program = SymProgram::new();
        let mut nodes = Vec::new();
        for stmt in stmts {
            match stmt {
                Stmt::Send {
                    span,
                    end,
                    from,
                    to,
                    msg,
                } => {
                    let vars = self.var_names();
                    let from_resolved = self.scope.resolve(from, &vars)?;
                    let to_resolved = self.scope.resolve(to, &vars)?;
                    let msg = SymMsg::new(msg);
                    program = match (self.syms(&from_resolved), self.syms(&to_resolved)) {
                        (Ok(from), Ok(to)) => program.send(from, to, msg),
                        (Ok(from), Err(to)) => program.broadcast(from, to, msg),
                        (Err(from), Ok(to)) => program.gather(from, to, msg),
                        (Err(_), Err(_)) => {
                            return Err(error_between(
                                *span,
                                *end,
                                "a send goes from one role to one role, to a family (broadcast) \
                                 or from a family to one role (gather); for family to family, \
                                 use `for w in Family { .. }`",
                            ));
                        }
                    };
                    nodes.push(Node::Leaf(*span, *end));
                }
                Stmt::Ext {
                    span,
                    end,
                    effect,
                    at,
                    start,
                } => {
                    // Without `@`, the participants are in the effect's fields: known
                    // when the program is built, checked when it is projected. A start
                    // stays in (with no role) so that its handle is checked.
                    let roles = match at {
                        Some(at) => self.at_roles(at)?,
                        None if start.is_some() => Vec::new(),
                        None => continue,
                    };
                    let effect = SymEffect {
                        text: text(effect),
                        roles: roles.clone(),
                    };
                    program = match start {
                        Some(handle) => {
                            if at.is_some() {
                                self.started.insert(handle.to_string(), sorted(roles));
                            }
                            program.ext_start(effect, handle.to_string())
                        }
                        None => program.ext(effect),
                    };
                    nodes.push(Node::Leaf(*span, *end));
                }
                Stmt::Finish {
                    span,
                    end,
                    handle,
                    at,
                } => {
                    if let Some(at) = at {
                        let roles = sorted(self.at_roles(at)?);
                        if let Some(started) = self.started.get(&handle.to_string()) {
                            if *started != roles {
                                return Err(error_between(
                                    *span,
                                    *end,
                                    format!(
                                        "`ext finish {handle}` names other roles than its `ext start`: a finish is carried out by the roles that started the effect"
                                    ),
                                ));
                            }
                        }
                    }
                    program = program.ext_finish(handle.to_string());
                    nodes.push(Node::Leaf(*span, *end));
                }
                Stmt::Choice { span, at, branches } => {
                    let chooser = self.one(at, "a choice is made at")?;
                    let mut programs = Vec::new();
                    let mut branch_nodes = Vec::new();
                    for branch in branches {
                        let (body, body_nodes) = self.seq(&branch.body)?;
                        programs.push((branch.label.clone(), body));
                        branch_nodes.push((branch.label.clone(), branch.label_span, body_nodes));
                    }
                    program = program.choice(chooser, programs);
                    nodes.push(Node::Choice {
                        span: *span,
                        branches: branch_nodes,
                    });
                }
                Stmt::Loop { span, spec, body } => {
                    let (inner, body_nodes) = self.seq(body)?;
                    program = match spec {
                        LoopSpec::Count(count) => {
                            program.loop_n(literal_index(count).unwrap_or(2), inner)
                        }
                        LoopSpec::Until(decider) => {
                            let decider = self.one(decider, "a loop is decided by")?;
                            program.loop_until(decider, inner)
                        }
                    };
                    nodes.push(Node::Body {
                        span: *span,
                        body: body_nodes,
                    });
                }
                Stmt::Par { span, parts } => {
                    let mut programs = Vec::new();
                    let mut part_nodes = Vec::new();
                    for (part_span, part) in parts {
                        let (inner, inner_nodes) = self.seq(part)?;
                        programs.push(inner);
                        part_nodes.push((*part_span, inner_nodes));
                    }
                    program = program.par(programs);
                    nodes.push(Node::Par {
                        span: *span,
                        parts: part_nodes,
                    });
                }
                Stmt::Timeout {
                    span,
                    duration,
                    role,
                    body,
                } => {
                    let role = self.one(role, "a timeout bounds")?;
                    let (inner, body_nodes) = self.seq(body)?;
                    program = program.timeout(role, symbolic_duration(duration), inner);
                    nodes.push(Node::Body {
                        span: *span,
                        body: body_nodes,
                    });
                }
                Stmt::Call { .. } => self.open = true,
                Stmt::Let(_) => {}
                Stmt::For {
                    span: _,
                    var,
                    family,
                    body,
                } => {
                    if self.scope.kind(&family.to_string()) != Some(RoleKind::Family) {
                        return Err(syn::Error::new(
                            family.span(),
                            format!(
                                "`for` runs over a family, and `{family}` is not a declared family"
                            ),
                        ));
                    }
                    for &member in self.family(family).members() {
                        self.vars.push((var.clone(), member));
                        let result = self.seq(body);
                        self.vars.pop();
                        let (inner, inner_nodes) = result?;
                        program = program.then(inner);
                        nodes.extend(inner_nodes);
                    }
                }
            }
        }
        Ok((program, nodes))
    }
}

#[cfg(test)]
mod tests {
    use stormchor_choreography::{Path, ProjectionError, Step};

    use super::describe;

    fn path() -> Path {
        Path::from_steps(vec![
            Step::Index(2),
            Step::Branch("abort".into()),
            Step::Index(0),
        ])
    }

    #[test]
    fn messages_are_the_algebras_without_the_path() {
        let error = ProjectionError::SelfSend {
            role: "Backup".into(),
            path: path(),
        };
        assert_eq!(
            error.to_string(),
            "Backup sends a message to itself at [2] > branch \"abort\" > [0]"
        );
        assert_eq!(describe(&error), "Backup sends a message to itself");
        let error = ProjectionError::DuplicateLabel {
            chooser: "Coordinator".into(),
            label: "go".into(),
            path: path(),
        };
        assert_eq!(
            describe(&error),
            "the choice at Coordinator has two branches labelled \"go\""
        );
    }

    #[test]
    fn only_the_path_is_cut() {
        // The reason mentions a role "at" something: only the path goes.
        let error = ProjectionError::UnlearnedChoice {
            role: "Worker[1]".into(),
            chooser: "Coordinator".into(),
            branch: "b".into(),
            reason: "it waits at Backup".into(),
            path: Path::from_steps(vec![Step::Index(0)]),
        };
        assert_eq!(
            describe(&error),
            "Worker[1] cannot learn which branch of the choice at Coordinator was taken: \
             in branch \"b\", it waits at Backup"
        );
        let error = ProjectionError::ZeroTimeout {
            role: "Coordinator".into(),
            path: Path::from_steps(Vec::new()),
        };
        assert_eq!(describe(&error), "the timeout for Coordinator is zero");
    }
}
