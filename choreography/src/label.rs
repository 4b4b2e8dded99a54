//! Branch labels and error locations.

use std::fmt;
use std::sync::Arc;

/// The name of a branch of a choice. Cheap to clone.
///
/// # Example
/// ```
/// use stormchor_choreography::Label;
///
/// let commit = Label::from("commit");
/// assert_eq!(commit.as_str(), "commit");
/// assert_eq!(commit, Label::from(String::from("commit")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(Arc<str>);

impl Label {
    /// The label's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Label {
    fn from(text: &str) -> Self {
        Label(Arc::from(text))
    }
}

impl From<String> for Label {
    fn from(text: String) -> Self {
        Label(Arc::from(text))
    }
}

impl From<&Label> for Label {
    fn from(label: &Label) -> Self {
        label.clone()
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One step of a [`Path`] into a global program.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The effect at this index of a sequence (counted from 0).
    Index(usize),
    /// The branch of a choice with this label.
    Branch(Label),
    /// The part of a `par` with this index (counted from 0).
    Part(usize),
    /// The body of a loop or a timeout.
    Body,
}

/// Where an effect sits in a global program: the indices, branch labels and parts
/// that lead to it from the top. Every projection error carries one.
///
/// # Example
/// ```
/// use stormchor_choreography::{Path, Step};
///
/// let path = Path::from_steps(vec![Step::Index(2), Step::Branch("abort".into()), Step::Index(0)]);
/// assert_eq!(path.to_string(), "[2] > branch \"abort\" > [0]");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path(Vec<Step>);

impl Path {
    /// The path made of these steps, outermost first.
    pub fn from_steps(steps: Vec<Step>) -> Self {
        Path(steps)
    }

    /// The steps, outermost first.
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// Whether this is the top of the program.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn push(&mut self, step: Step) {
        self.0.push(step);
    }

    pub(crate) fn pop(&mut self) {
        self.0.pop();
    }

    pub(crate) fn last(&self) -> Option<&Step> {
        self.0.last()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the top of the program");
        }
        for (i, step) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" > ")?;
            }
            match step {
                Step::Index(index) => write!(f, "[{index}]")?,
                Step::Branch(label) => write!(f, "branch {label:?}")?,
                Step::Part(part) => write!(f, "part {part}")?,
                Step::Body => f.write_str("body")?,
            }
        }
        Ok(())
    }
}
