//! Mermaid sequence diagrams of global programs.

use std::fmt::Write as _;

use crate::diagram::{Diagram, FrameKind, Row};
use crate::program::{Message, Program};
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
    let diagram = Diagram::of(program);
    let mut out = String::from("sequenceDiagram\n");
    for (i, name) in diagram.participants.iter().enumerate() {
        let _ = writeln!(out, "    participant P{i} as {}", sanitize(name));
    }
    // The kinds of the open frames: a divider reads `else` in a choice, `and` in a par.
    let mut open: Vec<FrameKind> = Vec::new();
    for row in &diagram.rows {
        let depth = open.len() + 1;
        let text = match row {
            Row::Message { from, to, label } => format!("P{from}->>P{to}: {}", sanitize(label)),
            Row::Note { first, last, text } if first == last => {
                format!("Note over P{first}: {}", sanitize(text))
            }
            Row::Note { first, last, text } => {
                format!("Note over P{first},P{last}: {}", sanitize(text))
            }
            Row::Open { kind, label } => {
                open.push(*kind);
                let keyword = match kind {
                    FrameKind::Loop => "loop",
                    FrameKind::Alt => "alt",
                    FrameKind::Par => "par",
                    FrameKind::Critical => "critical",
                };
                format!("{keyword} {}", sanitize(label))
            }
            Row::Divider { label } => {
                let keyword = match open.last() {
                    Some(FrameKind::Par) => "and",
                    _ => "else",
                };
                format!("{keyword} {}", sanitize(label))
            }
            Row::Close => {
                open.pop();
                "end".to_owned()
            }
        };
        let depth = match row {
            Row::Open { .. } => depth,
            Row::Divider { .. } | Row::Close => depth - 1,
            _ => depth,
        };
        for _ in 0..depth {
            out.push_str("    ");
        }
        out.push_str(&text);
        out.push('\n');
    }
    out
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
