//! The sequence diagram of a global program, as rows a renderer draws: participants,
//! arrows, notes and the frames of compound effects. [`to_mermaid`](crate::to_mermaid)
//! and [`to_svg`](crate::to_svg) draw the same rows, so the two never disagree.

use std::fmt::Debug;

use crate::extension::Participation;
use crate::label::Step;
use crate::program::{Global, LoopKind, Message, Program, WalkEvent, walk_events};
use crate::role::RoleId;

/// What kind of frame a compound effect draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// A loop, counted or until a role stops it.
    Loop,
    /// A choice: one block per branch.
    Alt,
    /// Parallel parts.
    Par,
    /// A timeout's body.
    Critical,
}

/// One row of the diagram, top to bottom. Texts are raw: each renderer escapes them
/// its own way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Row {
    /// An arrow between two participants (indices into the participants).
    Message {
        from: usize,
        to: usize,
        label: String,
    },
    /// A note spanning the participants `first..=last`.
    Note {
        first: usize,
        last: usize,
        text: String,
    },
    /// A frame begins, with its heading.
    Open { kind: FrameKind, label: String },
    /// The next block of the open frame (another branch or part) begins.
    Divider { label: String },
    /// The open frame ends.
    Close,
}

/// A diagram: who takes part, and the rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Diagram {
    /// Every role, in role order, as it prints.
    pub participants: Vec<String>,
    /// The rows, top to bottom.
    pub rows: Vec<Row>,
}

impl Diagram {
    /// The diagram of `program`.
    pub(crate) fn of<R: RoleId, M: Message>(program: &Program<R, M>) -> Diagram {
        let roles: Vec<R> = program.roles().into_iter().collect();
        let index = |role: &R| roles.binary_search(role).ok();
        let participants = roles.iter().map(|role| format!("{role:?}")).collect();
        let mut rows = Vec::new();
        let arrow = |rows: &mut Vec<Row>, from: &R, to: &R, msg: &M| {
            if let (Some(from), Some(to)) = (index(from), index(to)) {
                rows.push(Row::Message {
                    from,
                    to,
                    label: kind_name(msg),
                });
            }
        };
        // For every open compound effect: how many of its blocks have started.
        let mut open: Vec<(&Global<R, M>, usize)> = Vec::new();
        // Finishes show over their start's roles (an unsound program shows as written).
        let resolved = crate::background::resolve(program.effects()).ok().flatten();
        walk_events(
            resolved.as_deref().unwrap_or(program.effects()),
            |event| match event {
                WalkEvent::Enter { effect, .. } => match effect {
                    Global::Send { from, to, msg } => arrow(&mut rows, from, to, msg),
                    Global::Broadcast { from, to, msg } => {
                        for member in to.members() {
                            arrow(&mut rows, from, member, msg);
                        }
                    }
                    Global::Gather { from, to, msg } => {
                        for member in from.members() {
                            arrow(&mut rows, member, to, msg);
                        }
                    }
                    Global::Ext(ext) => {
                        let over: Vec<usize> = match ext.participation::<R>() {
                            Participation::Everyone => (0..roles.len()).collect(),
                            Participation::Roles(list) => list.iter().filter_map(index).collect(),
                        };
                        if let (Some(&first), Some(&last)) = (over.iter().min(), over.iter().max())
                        {
                            rows.push(Row::Note {
                                first,
                                last,
                                text: format!("{ext:?}"),
                            });
                        }
                    }
                    Global::Loop { kind, .. } => {
                        let label = match kind {
                            LoopKind::Count(rounds) => format!("{rounds} times"),
                            LoopKind::Until { decider } => format!("until {decider:?} stops"),
                        };
                        rows.push(Row::Open {
                            kind: FrameKind::Loop,
                            label,
                        });
                        open.push((effect, 1));
                    }
                    Global::Timeout { role, duration, .. } => {
                        rows.push(Row::Open {
                            kind: FrameKind::Critical,
                            label: format!("{role:?} within {duration:?}"),
                        });
                        open.push((effect, 1));
                    }
                    Global::Choice { .. } | Global::Par { .. } => open.push((effect, 0)),
                },
                WalkEvent::Block { step } => {
                    if let Some((effect, started)) = open.last_mut() {
                        let first = *started == 0;
                        *started += 1;
                        let row = match (effect, step) {
                            (Global::Choice { at, .. }, Step::Branch(label)) if first => {
                                Row::Open {
                                    kind: FrameKind::Alt,
                                    label: format!("{at:?} chooses {}", label.as_str()),
                                }
                            }
                            (Global::Choice { .. }, Step::Branch(label)) => Row::Divider {
                                label: label.as_str().to_owned(),
                            },
                            (Global::Par { .. }, Step::Part(part)) if first => Row::Open {
                                kind: FrameKind::Par,
                                label: format!("part {part}"),
                            },
                            (Global::Par { .. }, Step::Part(part)) => Row::Divider {
                                label: format!("part {part}"),
                            },
                            _ => return,
                        };
                        rows.push(row);
                    }
                }
                WalkEvent::Leave => {
                    // A choice or par without blocks opened no frame.
                    if let Some((_, started)) = open.pop()
                        && started > 0
                    {
                        rows.push(Row::Close);
                    }
                }
            },
        );
        Diagram { participants, rows }
    }
}

/// The kind of a message template: its variant or type name without the payload
/// (`Rows(3)` and `Rows { n: 3 }` are `Rows`); a name of several words (a string
/// template, a named signal) stays whole.
pub(crate) fn kind_name<M: Debug>(msg: &M) -> String {
    let text = format!("{msg:?}");
    let text = text.trim_matches('"');
    let end = text.find(['(', '{']).unwrap_or(text.len());
    let kind = text[..end].trim_end();
    (if kind.is_empty() { text } else { kind }).to_owned()
}
