//! Effects that start now and finish later: handles, stages, and the rules that tie
//! every start to exactly one finish.
//!
//! `Program::ext_start(effect, "h")` starts an extension effect at its roles and lets
//! them go on with the program; `Program::ext_finish("h")` is the later step where they
//! wait for its outcome. Both are [`Global::Ext`] effects whose [`Extension`] carries a
//! [`Stage`], so projection, effect order, the checker and diagrams treat each as an
//! effect of its own: a start counts as done once the effect has *started*, its finish
//! once it has finished.
//!
//! Before projection, [`resolve`] checks the handles (every start finished on every
//! path, in the same block: branch, loop round, part or timeout body; no finish without
//! its start; no handle started twice at once) and gives each finish its start's
//! effect, so that a finish has the same participants as its start.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::extension::Extension;
use crate::label::{Path, Step};
use crate::program::Global;
use crate::project::ProjectionError;

/// The name under which a started effect is finished later. Cheap to clone.
///
/// # Example
/// ```
/// use stormchor_choreography::Handle;
///
/// let update = Handle::from("update");
/// assert_eq!(update.as_str(), "update");
/// assert_eq!(update.to_string(), "update");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(Arc<str>);

impl Handle {
    /// The handle's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Handle {
    fn from(text: &str) -> Self {
        Handle(Arc::from(text))
    }
}

impl From<String> for Handle {
    fn from(text: String) -> Self {
        Handle(Arc::from(text))
    }
}

impl From<&Handle> for Handle {
    fn from(handle: &Handle) -> Self {
        handle.clone()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which part of an extension effect a program step is.
///
/// # Example
/// ```
/// use stormchor_choreography::{Handle, Stage};
///
/// let stage = Stage::Start(Handle::from("backup"));
/// assert_eq!(stage.handle().map(Handle::as_str), Some("backup"));
/// assert_eq!(Stage::Whole.handle(), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The whole effect, from its start to its end (`ext`).
    #[default]
    Whole,
    /// Start the effect and go on; it counts as done once it has started.
    Start(Handle),
    /// Wait for the outcome of the effect started under this handle.
    Finish(Handle),
}

impl Stage {
    /// The handle of a start or finish.
    pub fn handle(&self) -> Option<&Handle> {
        match self {
            Stage::Whole => None,
            Stage::Start(handle) | Stage::Finish(handle) => Some(handle),
        }
    }
}

/// Whether `effects` hold a start or a finish anywhere (iterative: no stack cost).
fn uses_handles<R, M>(effects: &[Global<R, M>]) -> bool {
    let mut found = false;
    crate::program::walk_events(effects, |event| {
        if let crate::program::WalkEvent::Enter {
            effect: Global::Ext(ext),
            ..
        } = event
        {
            found |= ext.stage() != &Stage::Whole;
        }
    });
    found
}

/// A handle started and not yet finished.
struct Open {
    start: Extension,
    path: Path,
}

/// Checks the handles of `effects` and returns a copy in which every finish carries
/// its start's effect, or `None` when the program starts nothing (the common case, at
/// no cost but one walk).
pub(crate) fn resolve<R: Clone, M: Clone>(
    effects: &[Global<R, M>],
) -> Result<Option<Vec<Global<R, M>>>, ProjectionError> {
    if !uses_handles(effects) {
        return Ok(None);
    }
    let mut resolver = Resolver {
        path: Path::default(),
        finished: BTreeMap::new(),
        enclosing: Vec::new(),
        started: Vec::new(),
    };
    let mut open = BTreeMap::new();
    let out = resolver.block(effects, &mut open, "the program")?;
    if let Some((handle, first)) = open.into_iter().next() {
        return Err(unfinished(handle, first.path, "the program"));
    }
    Ok(Some(out))
}

fn unfinished(handle: Handle, path: Path, place: &str) -> ProjectionError {
    ProjectionError::UnfinishedStart {
        handle: handle.to_string(),
        place: place.to_owned(),
        path,
    }
}

struct Resolver {
    path: Path,
    /// Handles finished so far, with where, for a clear message on a second finish.
    finished: BTreeMap<Handle, Path>,
    /// Handles open in the sequences that enclose the block being resolved, with
    /// where they started and in which place their block is.
    enclosing: Vec<(Handle, Path)>,
    /// Every handle started so far in the block being resolved, nested ones included.
    started: Vec<Handle>,
}

impl Resolver {
    /// Resolves a sequence that may finish what `open` holds and leaves open what it
    /// starts and does not finish.
    fn block<R: Clone, M: Clone>(
        &mut self,
        items: &[Global<R, M>],
        open: &mut BTreeMap<Handle, Open>,
        place: &str,
    ) -> Result<Vec<Global<R, M>>, ProjectionError> {
        let mut out = Vec::with_capacity(items.len());
        for (index, effect) in items.iter().enumerate() {
            self.path.push(Step::Index(index));
            if let Global::Ext(ext) = effect {
                let outer = |handle: &Handle| {
                    self.enclosing
                        .iter()
                        .find(|(open, _)| open == handle)
                        .map(|(_, path)| path.clone())
                };
                match ext.stage() {
                    Stage::Finish(handle) if !open.contains_key(handle) => {
                        if let Some(at) = outer(handle) {
                            return Err(ProjectionError::UnknownFinish {
                                handle: handle.to_string(),
                                reason: format!(
                                    "it was started at {at}, outside {place}: finish it in the same block it starts in"
                                ),
                                path: self.path.clone(),
                            });
                        }
                    }
                    Stage::Start(handle) => {
                        if let Some(first) = outer(handle) {
                            return Err(ProjectionError::HandleInUse {
                                handle: handle.to_string(),
                                first,
                                path: self.path.clone(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            out.push(self.effect(effect, open)?);
            self.path.pop();
        }
        Ok(out)
    }

    /// Resolves a block that must finish everything it starts; the handles open
    /// around it cannot be finished in it.
    fn closed<R: Clone, M: Clone>(
        &mut self,
        step: Step,
        items: &[Global<R, M>],
        outer: &BTreeMap<Handle, Open>,
        place: &str,
    ) -> Result<Vec<Global<R, M>>, ProjectionError> {
        let depth = self.enclosing.len();
        self.enclosing.extend(
            outer
                .iter()
                .map(|(handle, open)| (handle.clone(), open.path.clone())),
        );
        self.path.push(step);
        let mut open = BTreeMap::new();
        let result = self.block(items, &mut open, place);
        self.path.pop();
        self.enclosing.truncate(depth);
        let out = result?;
        if let Some((handle, first)) = open.into_iter().next() {
            return Err(unfinished(handle, first.path, place));
        }
        Ok(out)
    }

    fn effect<R: Clone, M: Clone>(
        &mut self,
        effect: &Global<R, M>,
        open: &mut BTreeMap<Handle, Open>,
    ) -> Result<Global<R, M>, ProjectionError> {
        Ok(match effect {
            Global::Ext(ext) => match ext.stage() {
                Stage::Whole => effect.clone(),
                Stage::Start(handle) => {
                    if let Some(first) = open.get(handle) {
                        return Err(ProjectionError::HandleInUse {
                            handle: handle.to_string(),
                            first: first.path.clone(),
                            path: self.path.clone(),
                        });
                    }
                    self.finished.remove(handle);
                    self.started.push(handle.clone());
                    open.insert(
                        handle.clone(),
                        Open {
                            start: ext.clone(),
                            path: self.path.clone(),
                        },
                    );
                    effect.clone()
                }
                Stage::Finish(handle) => match open.remove(handle) {
                    Some(first) => {
                        self.finished.insert(handle.clone(), self.path.clone());
                        Global::Ext(first.start.finishing(ext))
                    }
                    None => {
                        let reason = match self.finished.get(handle) {
                            Some(at) => format!("it was finished already at {at}"),
                            None => format!("no effect was started as `{handle}` before it"),
                        };
                        return Err(ProjectionError::UnknownFinish {
                            handle: handle.to_string(),
                            reason,
                            path: self.path.clone(),
                        });
                    }
                },
            },
            Global::Send { .. } | Global::Broadcast { .. } | Global::Gather { .. } => {
                effect.clone()
            }
            Global::Choice { at, branches } => {
                let mut out = Vec::with_capacity(branches.len());
                for (label, body) in branches {
                    let place = format!("branch {:?} of the choice", label.as_str());
                    let body = self.closed(Step::Branch(label.clone()), body, open, &place)?;
                    out.push((label.clone(), body));
                }
                Global::Choice {
                    at: at.clone(),
                    branches: out,
                }
            }
            Global::Loop { kind, body } => Global::Loop {
                kind: kind.clone(),
                body: self.closed(Step::Body, body, open, "the loop's round")?,
            },
            Global::Timeout {
                role,
                duration,
                body,
            } => Global::Timeout {
                role: role.clone(),
                duration: *duration,
                body: self.closed(Step::Body, body, open, "the timeout's body")?,
            },
            Global::Par { parts } => {
                // Parts run at the same time: a handle may be in use in one of them only.
                let mut out = Vec::with_capacity(parts.len());
                let mut seen: BTreeMap<Handle, Path> = BTreeMap::new();
                for (i, part) in parts.iter().enumerate() {
                    let mark = self.started.len();
                    let place = format!("part {i} of the par");
                    out.push(self.closed(Step::Part(i), part, open, &place)?);
                    let mut path = self.path.clone();
                    path.push(Step::Part(i));
                    for handle in self.started[mark..].iter().cloned() {
                        if let Some(first) = seen.get(&handle) {
                            if first != &path {
                                return Err(ProjectionError::HandleInUse {
                                    handle: handle.to_string(),
                                    first: first.clone(),
                                    path,
                                });
                            }
                        } else {
                            seen.insert(handle, path.clone());
                        }
                    }
                }
                Global::Par { parts: out }
            }
        })
    }
}
