//! Mermaid sequence diagrams of global programs.

use std::fmt::Debug;
use std::fmt::Write as _;

use crate::extension::Participation;
use crate::label::Step;
use crate::program::{Global, LoopKind, Message, Program, WalkEvent, walk_events};
use crate::role::RoleId;

/// Renders a global program as a mermaid sequence diagram: messages as arrows,
/// choices as `alt`, loops as `loop`, parallel parts as `par`, timeouts as `critical`
/// and extension effects as notes over their roles.
///
/// Messages show their kind (the template's variant name), since the values are only
/// known at run time.
///
/// # Example
/// ```
/// use stormchor_choreography::{to_mermaid, Program};
///
/// let program: Program<&str, &str> = Program::new()
///     .send("coordinator", "worker", "start")
///     .loop_n(3, Program::new().send("worker", "coordinator", "rows"));
/// let diagram = to_mermaid(&program);
/// assert!(diagram.starts_with("sequenceDiagram"));
/// assert!(diagram.contains("P0->>P1: start"));
/// assert!(diagram.contains("loop 3 times"));
/// ```
pub fn to_mermaid<R: RoleId, M: Message>(program: &Program<R, M>) -> String {
    let roles: Vec<R> = program.roles().into_iter().collect();
    let alias = |role: &R| match roles.binary_search(role) {
        Ok(i) => format!("P{i}"),
        Err(_) => sanitize(&format!("{role:?}")),
    };
    let mut out = String::from("sequenceDiagram\n");
    for (i, role) in roles.iter().enumerate() {
        let _ = writeln!(
            out,
            "    participant P{i} as {}",
            sanitize(&format!("{role:?}"))
        );
    }
    // For every open compound effect: how many of its blocks have started.
    let mut open: Vec<(&Global<R, M>, usize)> = Vec::new();
    let mut depth = 1;
    // A note over the first and last of `over` (mermaid spans notes between two).
    let span = |over: &[R]| match (over.first(), over.last()) {
        (Some(first), Some(last)) if first != last => {
            Some(format!("{},{}", alias(first), alias(last)))
        }
        (Some(only), _) => Some(alias(only)),
        _ => None,
    };
    let line = |out: &mut String, depth: usize, text: String| {
        for _ in 0..depth {
            out.push_str("    ");
        }
        out.push_str(&text);
        out.push('\n');
    };
    // Finishes show over their start's roles (an unsound program shows as written).
    let resolved = crate::background::resolve(program.effects()).ok().flatten();
    walk_events(
        resolved.as_deref().unwrap_or(program.effects()),
        |event| match event {
            WalkEvent::Enter { effect, .. } => match effect {
                Global::Send { from, to, msg } => {
                    line(
                        &mut out,
                        depth,
                        format!("{}->>{}: {}", alias(from), alias(to), kind_name(msg)),
                    );
                }
                Global::Broadcast { from, to, msg } => {
                    for member in to.members() {
                        line(
                            &mut out,
                            depth,
                            format!("{}->>{}: {}", alias(from), alias(member), kind_name(msg)),
                        );
                    }
                }
                Global::Gather { from, to, msg } => {
                    for member in from.members() {
                        line(
                            &mut out,
                            depth,
                            format!("{}->>{}: {}", alias(member), alias(to), kind_name(msg)),
                        );
                    }
                }
                Global::Ext(ext) => {
                    let over = match ext.participation::<R>() {
                        Participation::Everyone => span(&roles),
                        Participation::Roles(list) => span(&list),
                    };
                    if let Some(over) = over {
                        line(
                            &mut out,
                            depth,
                            format!("Note over {over}: {}", sanitize(&format!("{ext:?}"))),
                        );
                    }
                }
                Global::Loop { kind, .. } => {
                    let text = match kind {
                        LoopKind::Count(rounds) => format!("loop {rounds} times"),
                        LoopKind::Until { decider } => {
                            format!("loop until {} stops", sanitize(&format!("{decider:?}")))
                        }
                    };
                    line(&mut out, depth, text);
                    depth += 1;
                    open.push((effect, 0));
                }
                Global::Timeout { role, duration, .. } => {
                    line(
                        &mut out,
                        depth,
                        format!("critical {role:?} within {duration:?}").replace(['"', ';'], ""),
                    );
                    depth += 1;
                    open.push((effect, 0));
                }
                Global::Choice { .. } | Global::Par { .. } => {
                    depth += 1;
                    open.push((effect, 0));
                }
            },
            WalkEvent::Block { step } => {
                if let Some((effect, started)) = open.last_mut() {
                    let first = *started == 0;
                    *started += 1;
                    let text = match (effect, step) {
                        (Global::Choice { at, .. }, Step::Branch(label)) => Some(if first {
                            format!(
                                "alt {} chooses {}",
                                sanitize(&format!("{at:?}")),
                                sanitize(label.as_str())
                            )
                        } else {
                            format!("else {}", sanitize(label.as_str()))
                        }),
                        (Global::Par { .. }, Step::Part(part)) => Some(if first {
                            format!("par part {part}")
                        } else {
                            format!("and part {part}")
                        }),
                        _ => None,
                    };
                    if let Some(text) = text {
                        line(&mut out, depth - 1, text);
                    }
                }
            }
            WalkEvent::Leave => {
                open.pop();
                depth -= 1;
                line(&mut out, depth, "end".to_owned());
            }
        },
    );
    out
}

/// The kind of a message template: its variant or type name without the payload.
pub(crate) fn kind_name<M: Debug>(msg: &M) -> String {
    let text = format!("{msg:?}");
    let text = text.trim_matches('"');
    let end = text.find(['(', '{', ' ']).unwrap_or(text.len());
    let kind = if end == 0 { text } else { &text[..end] };
    sanitize(kind)
}

/// Removes what mermaid would read as syntax.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ';' | '#' | '\n' | '\r' => ' ',
            '"' => '\'',
            c => c,
        })
        .collect()
}
