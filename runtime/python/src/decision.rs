//! Run-time decisions from Python: the branch a choice takes and whether a decided
//! loop runs another round.
//!
//! The deciding role decides in an effect of its own just before the decision (the
//! kit's `Decisions`, which the choice or loop that follows takes): `choice(at, ...,
//! decide=f)` puts a [`PyDecide`] at `at` right before the choice, `loop_until(d,
//! body, until=f)` one at `d` before the loop and one at the end of every round. `f`
//! is a Python callable (called like a handler, on the blocking pool, with a
//! `Context`; a loop's has `ctx.round`, the rounds run so far) or a slot whose
//! latest value at the role decides. The effect is unordered: it reads only what the
//! role knows, so it needs no order frame.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyString;
use stormchor_choreography::ExtensionEffect;
use stormchor_kit::{Node, Slot};
use stormchor_runtime::EffectFailure;

use crate::cancel::Abandoned;
use crate::effect::{Call, apply, traceback};
use crate::role::{Role, type_name};
use crate::slot::SlotSpec;

/// What decides: a Python callable or a slot's latest value.
#[derive(Clone)]
pub(crate) enum By {
    Call(Arc<Py<PyAny>>, String),
    Slot(SlotSpec),
}

impl By {
    /// The decider as failures name it: the callable's name or the slot's.
    fn name(&self) -> String {
        match self {
            By::Call(_, name) => name.clone(),
            By::Slot(slot) => format!("slot `{}`", slot.name),
        }
    }
}

impl fmt::Debug for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            By::Call(_, name) => write!(f, "by {name}()"),
            By::Slot(slot) => write!(f, "by slot {}", slot.name),
        }
    }
}

/// What is decided.
#[derive(Clone, Debug)]
pub(crate) enum What {
    /// The branch of a choice with these labels.
    Choice(Vec<String>),
    /// Whether a loop goes on: `first` before its first round; `counter` keeps the
    /// rounds run so far at the role; at most `max_rounds` rounds.
    Loop {
        first: bool,
        counter: &'static str,
        max_rounds: Option<u64>,
    },
}

/// The decision effect at the deciding role.
#[derive(Clone)]
pub(crate) struct PyDecide {
    pub(crate) role: Role,
    pub(crate) what: What,
    pub(crate) by: By,
    pub(crate) reads: Vec<SlotSpec>,
}

impl fmt::Debug for PyDecide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.what {
            What::Choice(labels) => write!(f, "decide {} {:?}", labels.join("|"), self.by),
            What::Loop { first: true, .. } => write!(f, "decide the first round {:?}", self.by),
            What::Loop { first: false, .. } => write!(f, "decide the next round {:?}", self.by),
        }
    }
}

impl ExtensionEffect for PyDecide {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        "decide"
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        vec![Box::new(self.role)]
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
    fn ordered(&self) -> bool {
        false
    }
}

/// A JSON value as Python's truth would take it.
fn truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => !o.is_empty(),
    }
}

impl PyDecide {
    fn describe(&self) -> String {
        match &self.what {
            What::Choice(_) => format!("the decision of the choice at {:?}", self.role),
            What::Loop { .. } => format!("the decision of the loop at {:?}", self.role),
        }
    }

    /// Decides at `node` and records the decision in its `Decisions`.
    pub(crate) async fn run(
        &self,
        node: &Node,
        abandoned: &Abandoned,
    ) -> Result<(), EffectFailure> {
        match &self.what {
            What::Choice(labels) => {
                let label = self.label(node, abandoned).await?;
                if !labels.contains(&label) {
                    return Err(EffectFailure::permanent(format!(
                        "{} ({}) gave `{label}`, which is not one of its branches ({})",
                        self.describe(),
                        self.by.name(),
                        labels.join(", ")
                    )));
                }
                node.decisions().choose(label);
                Ok(())
            }
            What::Loop {
                first,
                counter,
                max_rounds,
            } => {
                let counter = Slot::<u64>::new(counter);
                let round = if *first { 0 } else { node.value(counter)? + 1 };
                node.values()
                    .put(counter, &round)
                    .map_err(|e| EffectFailure::permanent(e.to_string()))?;
                let go_on = if max_rounds.is_some_and(|max| round >= max) {
                    false
                } else {
                    !self.stop(node, round, abandoned).await?
                };
                node.decisions().go_on(go_on);
                Ok(())
            }
        }
    }

    /// The label a choice's decider gives.
    async fn label(&self, node: &Node, abandoned: &Abandoned) -> Result<String, EffectFailure> {
        let what = self.describe();
        match &self.by {
            By::Slot(slot) => {
                let json = slot
                    .read_json(node.values())
                    .map_err(EffectFailure::permanent)?;
                match serde_json::from_str::<serde_json::Value>(&json) {
                    Ok(serde_json::Value::String(label)) => Ok(label),
                    _ => Err(EffectFailure::permanent(format!(
                        "{what} reads slot `{}`, whose value is not a branch's label (a string): {json}",
                        slot.name
                    ))),
                }
            }
            By::Call(callable, name) => {
                let mut call = Call::at(
                    node,
                    format!("{what} ({name})"),
                    "{}".to_owned(),
                    &self.reads,
                    &[],
                )?;
                call.abandoned = Some(abandoned.clone());
                let label_of = format!("{what} ({name})");
                let (label, journal) = call
                    .run(callable.clone(), move |_py, returned| {
                        returned
                            .downcast::<PyString>()
                            .map(|s| s.to_string())
                            .map_err(|_| {
                                EffectFailure::permanent(format!(
                                    "{label_of} returned {} ({}), not a branch's label (a str)",
                                    returned.repr().map(|r| r.to_string()).unwrap_or_default(),
                                    type_name(returned)
                                ))
                            })
                    })
                    .await?;
                apply(node, journal);
                Ok(label)
            }
        }
    }

    /// Whether the loop's decider says stop before round `round`.
    async fn stop(
        &self,
        node: &Node,
        round: u64,
        abandoned: &Abandoned,
    ) -> Result<bool, EffectFailure> {
        match &self.by {
            By::Slot(slot) => {
                let json = slot
                    .read_json(node.values())
                    .map_err(EffectFailure::permanent)?;
                let value: serde_json::Value = serde_json::from_str(&json)
                    .map_err(|e| EffectFailure::permanent(e.to_string()))?;
                Ok(truthy(&value))
            }
            By::Call(callable, name) => {
                let what = format!("{} ({name})", self.describe());
                let mut call = Call::at(node, what.clone(), "{}".to_owned(), &self.reads, &[])?;
                call.round = Some(round);
                call.abandoned = Some(abandoned.clone());
                let (stop, journal) = call
                    .run(callable.clone(), move |py, returned| {
                        returned.is_truthy().map_err(|error| {
                            EffectFailure::permanent(format!(
                                "{what} raised:\n{}",
                                traceback(py, &error)
                            ))
                        })
                    })
                    .await?;
                apply(node, journal);
                Ok(stop)
            }
        }
    }
}

/// A decider argument: a callable or a slot.
pub(crate) fn by_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<By> {
    if let Ok(slot) = obj.extract::<crate::slot::PySlot>() {
        return Ok(By::Slot(slot.0));
    }
    if obj.is_callable() {
        let name = obj
            .getattr("__name__")
            .and_then(|n| n.extract::<String>())
            .unwrap_or_else(|_| type_name(obj));
        return Ok(By::Call(Arc::new(obj.clone().unbind()), name));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "{what} takes a callable (given the Context) or a Slot, not {}",
        type_name(obj)
    )))
}
