//! The checks isolationtester makes after parsing (its `check_testspec`), as errors
//! with a position.

use std::collections::HashMap;

use super::{Position, Spec, SpecError, SpecErrorKind};

pub(super) fn check(spec: &Spec) -> Result<(), SpecError> {
    let error = |position: Position, kind: SpecErrorKind| SpecError {
        file: spec.file.clone(),
        position,
        kind,
    };

    // Step names are unique across the whole spec; remember each step's session.
    let mut steps: HashMap<&str, (usize, Position)> = HashMap::new();
    for (index, session) in spec.sessions.iter().enumerate() {
        for step in &session.steps {
            if let Some((_, first)) = steps.get(step.name.as_str()) {
                return Err(error(
                    step.position,
                    SpecErrorKind::DuplicateStep {
                        name: step.name.clone(),
                        first: *first,
                    },
                ));
            }
            steps.insert(&step.name, (index, step.position));
        }
    }

    let unknown = Position { line: 0, column: 0 };
    for permutation in &spec.permutations {
        // First every name of the permutation, then the markers (which may name a later
        // step of the same permutation), as upstream does.
        for pstep in &permutation.steps {
            if !steps.contains_key(pstep.name.as_str()) {
                return Err(error(
                    pstep.position.unwrap_or(unknown),
                    SpecErrorKind::UndefinedStep(pstep.name.clone()),
                ));
            }
        }
        for pstep in &permutation.steps {
            let own_session = steps.get(pstep.name.as_str()).map(|(s, _)| *s);
            for blocker in &pstep.blockers {
                let Some(name) = blocker.step_name() else {
                    continue;
                };
                let in_permutation = permutation.steps.iter().any(|other| other.name == name);
                let other_session = steps.get(name).map(|(s, _)| *s);
                if !in_permutation || other_session.is_none() {
                    return Err(error(
                        blocker.position(),
                        SpecErrorKind::UndefinedBlocker {
                            blocker: name.to_string(),
                            step: pstep.name.clone(),
                        },
                    ));
                }
                if other_session == own_session {
                    return Err(error(
                        blocker.position(),
                        SpecErrorKind::BlockerInOwnSession(pstep.name.clone()),
                    ));
                }
            }
        }
    }
    Ok(())
}
