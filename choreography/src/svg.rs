//! Sequence diagrams of global programs as self-contained SVG: no scripts, no fonts
//! or styles from elsewhere, so a report page that inlines one works offline.

use std::fmt::Write as _;

use crate::diagram::{Diagram, FrameKind, Row};
use crate::program::{Message, Program};
use crate::role::RoleId;

/// Horizontal room of one participant's column, in px.
const COLUMN: f64 = 170.0;
/// Room left and right of the columns.
const MARGIN: f64 = 20.0;
/// Height of a participant's box.
const HEAD: f64 = 34.0;
/// Height of one line of text.
const LINE: f64 = 15.0;
/// Width of one character of the 12 px monospace text, roughly, for wrapping.
const CHAR: f64 = 7.3;
/// How far each nested frame is drawn inside the one around it.
const INSET: f64 = 6.0;

/// Renders a global program as an SVG sequence diagram: a box and a lifeline per
/// participant, messages as arrows labelled with their kind, extension effects as
/// notes over their roles (the full text as a tooltip), and loops, choices, parallel
/// parts and timeouts as labelled frames. The same rows as
/// [`to_mermaid`](crate::to_mermaid) draws.
///
/// # Example
/// ```
/// use stormchor_choreography::{Program, to_svg};
///
/// let program: Program<&str, &str> = Program::new()
///     .send("coordinator", "worker", "start")
///     .loop_n(3, Program::new().send("worker", "coordinator", "rows"));
/// let svg = to_svg(&program);
/// assert!(svg.starts_with("<svg "));
/// assert!(svg.contains(">&quot;coordinator&quot;</text>"));
/// assert!(svg.contains(">rows</text>"));
/// assert!(svg.contains(">loop 3 times</text>"));
/// ```
pub fn to_svg<R: RoleId, M: Message>(program: &Program<R, M>) -> String {
    Canvas::draw(&Diagram::of(program))
}

/// A frame still open while its rows are drawn.
struct OpenFrame {
    top: f64,
    heading: String,
    dividers: Vec<(f64, String)>,
}

/// Lays the rows out top to bottom and writes the SVG.
struct Canvas {
    /// The SVG elements drawn so far (the frames after the rows they hold, so they
    /// stay behind them: frames are drawn unfilled).
    body: String,
    /// Where the next row starts.
    y: f64,
    columns: usize,
}

impl Canvas {
    fn draw(diagram: &Diagram) -> String {
        let columns = diagram.participants.len().max(1);
        let mut canvas = Canvas {
            body: String::new(),
            y: MARGIN + HEAD + 16.0,
            columns,
        };
        let mut open: Vec<OpenFrame> = Vec::new();
        for row in &diagram.rows {
            match row {
                Row::Message { from, to, label } => canvas.message(*from, *to, label),
                Row::Note { first, last, text } => canvas.note(*first, *last, text),
                Row::Open { kind, label } => {
                    let keyword = match kind {
                        FrameKind::Loop => "loop",
                        FrameKind::Alt => "alt",
                        FrameKind::Par => "par",
                        FrameKind::Critical => "critical",
                    };
                    open.push(OpenFrame {
                        top: canvas.y,
                        heading: format!("{keyword} {label}"),
                        dividers: Vec::new(),
                    });
                    canvas.y += LINE + 10.0;
                }
                Row::Divider { label } => {
                    if let Some(frame) = open.last_mut() {
                        frame.dividers.push((canvas.y, label.clone()));
                    }
                    canvas.y += LINE + 8.0;
                }
                Row::Close => {
                    if let Some(frame) = open.pop() {
                        canvas.frame(&frame, open.len());
                    }
                }
            }
        }
        // Rows of frames never closed (not in a well-formed program) still show.
        while let Some(frame) = open.pop() {
            canvas.frame(&frame, open.len());
        }
        canvas.finish(&diagram.participants)
    }

    fn x(&self, column: usize) -> f64 {
        MARGIN + COLUMN * (column as f64 + 0.5)
    }

    fn width(&self) -> f64 {
        2.0 * MARGIN + COLUMN * self.columns as f64
    }

    fn message(&mut self, from: usize, to: usize, label: &str) {
        let (x1, x2) = (self.x(from), self.x(to));
        let text_y = self.y + 11.0;
        let line_y = self.y + LINE + 3.0;
        if from == to {
            let _ = write!(
                self.body,
                r#"<path class="msg" d="M{x1:.1} {line_y:.1} h30 v14 h-28" marker-end="url(#arrow)"/><text class="label" x="{:.1}" y="{text_y:.1}">{}</text>"#,
                x1 + 4.0,
                escape(label)
            );
            self.y += LINE + 24.0;
        } else {
            let _ = write!(
                self.body,
                r#"<line class="msg" x1="{x1:.1}" y1="{line_y:.1}" x2="{x2:.1}" y2="{line_y:.1}" marker-end="url(#arrow)"/><text class="label" x="{:.1}" y="{text_y:.1}" text-anchor="middle">{}</text>"#,
                (x1 + x2) / 2.0,
                escape(label)
            );
            self.y += LINE + 12.0;
        }
    }

    fn note(&mut self, first: usize, last: usize, text: &str) {
        let left = self.x(first) - COLUMN / 2.0 + 12.0;
        let right = self.x(last) + COLUMN / 2.0 - 12.0;
        let lines = wrap(
            &compact(text),
            ((right - left - 10.0) / CHAR).max(8.0) as usize,
        );
        let height = LINE * lines.len() as f64 + 8.0;
        let _ = write!(
            self.body,
            r#"<g class="note"><title>{}</title><rect x="{left:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" rx="3"/>"#,
            escape(text),
            self.y,
            right - left
        );
        for (i, line) in lines.iter().enumerate() {
            let _ = write!(
                self.body,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                left + 5.0,
                self.y + 15.0 + LINE * i as f64,
                escape(line)
            );
        }
        self.body.push_str("</g>");
        self.y += height + 8.0;
    }

    fn frame(&mut self, frame: &OpenFrame, depth: usize) {
        let inset = INSET * (depth as f64 + 1.0);
        let left = MARGIN / 2.0 + inset;
        let right = self.width() - MARGIN / 2.0 - inset;
        let bottom = self.y;
        let tag = (frame.heading.chars().count() as f64 * CHAR + 12.0).min(right - left);
        let _ = write!(
            self.body,
            r#"<g class="frame"><rect x="{left:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/><path d="M{left:.1} {:.1} h{tag:.1} v{:.1} l-6 6 h{:.1} z"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            frame.top,
            right - left,
            bottom - frame.top,
            frame.top,
            LINE - 2.0,
            -(tag - 6.0),
            left + 5.0,
            frame.top + 13.0,
            escape(&frame.heading)
        );
        for (y, label) in &frame.dividers {
            let _ = write!(
                self.body,
                r#"<line class="divider" x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}">[{}]</text>"#,
                left + 5.0,
                y + 14.0,
                escape(label)
            );
        }
        self.body.push_str("</g>");
        self.y += 8.0;
    }

    fn finish(self, participants: &[String]) -> String {
        let width = self.width();
        let bottom = self.y + 8.0;
        let height = bottom + HEAD + MARGIN;
        let mut out = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="stormchor-diagram" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="monospace" font-size="12">"#
        );
        out.push_str(concat!(
            "<style>",
            ".head rect{fill:#eef2fb;stroke:#4a5a85}",
            ".life{stroke:#9aa3b5;stroke-dasharray:4 3}",
            ".msg{stroke:#27304a;fill:none}",
            ".label{fill:#27304a}",
            ".note rect{fill:#fff7d6;stroke:#c8a82c}",
            ".frame rect{fill:none;stroke:#6b7390}",
            ".frame path{fill:#e4e7ef;stroke:#6b7390}",
            ".divider{stroke:#6b7390;stroke-dasharray:5 3}",
            "</style>",
            r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#27304a"/></marker></defs>"##,
        ));
        let mut x = MARGIN + COLUMN / 2.0;
        for name in participants {
            let label = escape(name);
            let _ = write!(
                out,
                r#"<line class="life" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}"/>"#,
                MARGIN + HEAD
            );
            for top in [MARGIN, bottom] {
                let _ = write!(
                    out,
                    r#"<g class="head"><rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{HEAD:.1}" rx="4"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text></g>"#,
                    x - COLUMN / 2.0 + 8.0,
                    COLUMN - 16.0,
                    top + 21.0,
                );
            }
            x += COLUMN;
        }
        out.push_str(&self.body);
        out.push_str("</svg>\n");
        out
    }
}

/// `text` in lines of at most `width` characters, broken at spaces where it can.
/// A note's text as drawn: a long effect keeps its name, what it produces and where
/// it runs, and its fields fold to `{…}` (the tooltip keeps the whole text).
fn compact(text: &str) -> String {
    const LONG: usize = 60;
    if text.chars().count() <= LONG {
        return text.to_owned();
    }
    let mut out = String::with_capacity(LONG);
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push_str("{…}");
                }
                depth += 1;
            }
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    if depth > 0 {
        // Unbalanced braces: nothing to fold safely.
        return text.to_owned();
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` as XML character data.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_and_lines_wrap_within_the_width() {
        let lines = wrap(
            "StartServer { archive: true, synchronous: false } => primary",
            20,
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(
            lines.join(" "),
            "StartServer { archive: true, synchronous: false } => primary"
        );
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
    }

    #[test]
    fn long_effects_fold_their_fields_and_keep_name_slot_and_roles() {
        let long = "StartServer { archive: false, synchronous: false, allow_target: false, data_checksums: true } => primary @ [Primary]";
        assert_eq!(compact(long), "StartServer {…} => primary @ [Primary]");
        let short = "WriteLedger { on: primary, duration: 3s } @ [Worker]";
        assert_eq!(compact(short), short);
        let nested = format!(
            "Outer {{ inner: Inner {{ x: 1 }}, y: \"{}\" }} @ [A]",
            "z".repeat(60)
        );
        assert_eq!(compact(&nested), "Outer {…} @ [A]");
        let unbalanced = format!("Odd {{ {}", "z".repeat(60));
        assert_eq!(compact(&unbalanced), unbalanced);
    }

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
