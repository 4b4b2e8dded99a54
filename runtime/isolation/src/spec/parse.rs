//! The grammar: a loop-based recursive descent over the tokens (no recursion deeper
//! than one level, so no input can exhaust the stack).

use super::scan::{Scanner, Tok};
use super::{
    Blocker, Permutation, PermutationStep, Position, Session, Spec, SpecError, SpecErrorKind,
    SqlBlock, Step,
};

struct Parser<'a> {
    scanner: Scanner<'a>,
    file: &'a str,
    /// The next token, scanned on demand.
    ahead: Option<(Tok, Position)>,
}

/// Parses without the semantic checks.
pub(super) fn parse(text: &str, file: &str) -> Result<Spec, SpecError> {
    let mut p = Parser {
        scanner: Scanner::new(text),
        file,
        ahead: None,
    };
    p.spec()
}

impl Parser<'_> {
    fn error(&self, position: Position, kind: SpecErrorKind) -> SpecError {
        SpecError {
            file: self.file.to_string(),
            position,
            kind,
        }
    }

    fn scan(&mut self) -> Result<(Tok, Position), SpecError> {
        self.scanner
            .next_token()
            .map_err(|(kind, position)| self.error(position, kind))
    }

    fn peek(&mut self) -> Result<&(Tok, Position), SpecError> {
        let next = match self.ahead.take() {
            Some(next) => next,
            None => self.scan()?,
        };
        Ok(self.ahead.insert(next))
    }

    fn next(&mut self) -> Result<(Tok, Position), SpecError> {
        match self.ahead.take() {
            Some(next) => Ok(next),
            None => self.scan(),
        }
    }

    fn unexpected(&self, expected: &str, found: &(Tok, Position)) -> SpecError {
        self.error(
            found.1,
            SpecErrorKind::Unexpected {
                expected: expected.to_string(),
                found: found.0.describe(),
            },
        )
    }

    /// Consumes the next token if it is `tok`.
    fn eat(&mut self, tok: &Tok) -> Result<Option<Position>, SpecError> {
        if &self.peek()?.0 == tok {
            Ok(Some(self.next()?.1))
        } else {
            Ok(None)
        }
    }

    fn sql(&mut self, after: &str) -> Result<SqlBlock, SpecError> {
        let token = self.next()?;
        match token {
            (Tok::Sql(sql), position) => Ok(SqlBlock { sql, position }),
            other => {
                Err(self.unexpected(&format!("a SQL block `{{ ... }}` after {after}"), &other))
            }
        }
    }

    fn name(&mut self, what: &str) -> Result<(String, Position), SpecError> {
        let token = self.next()?;
        match token {
            (Tok::Ident(name), position) => Ok((name, position)),
            other => Err(self.unexpected(what, &other)),
        }
    }

    fn spec(&mut self) -> Result<Spec, SpecError> {
        let mut setups = Vec::new();
        while self.eat(&Tok::Setup)?.is_some() {
            setups.push(self.sql("`setup`")?);
        }
        let teardown = match self.eat(&Tok::Teardown)? {
            Some(_) => Some(self.sql("`teardown`")?),
            None => None,
        };
        let mut sessions = Vec::new();
        loop {
            match self.peek()? {
                (Tok::Session, _) => sessions.push(self.session()?),
                other if sessions.is_empty() => {
                    let expected = if teardown.is_some() {
                        "`session`"
                    } else {
                        "`setup`, `teardown` or `session`"
                    };
                    let other = other.clone();
                    return Err(self.unexpected(expected, &other));
                }
                _ => break,
            }
        }
        let mut permutations = Vec::new();
        loop {
            match self.peek()? {
                (Tok::Permutation, _) => permutations.push(self.permutation()?),
                (Tok::Eof, _) => break,
                other => {
                    let other = other.clone();
                    let expected = if permutations.is_empty() {
                        "`session`, `permutation` or end of file"
                    } else {
                        "a step name, `permutation` or end of file"
                    };
                    return Err(self.unexpected(expected, &other));
                }
            }
        }
        Ok(Spec {
            file: self.file.to_string(),
            setups,
            teardown,
            sessions,
            permutations,
        })
    }

    fn session(&mut self) -> Result<Session, SpecError> {
        let (_, position) = self.next()?;
        let (name, _) = self.name("a session name after `session`")?;
        let setup = match self.eat(&Tok::Setup)? {
            Some(_) => Some(self.sql("`setup`")?),
            None => None,
        };
        let mut steps = Vec::new();
        loop {
            match self.peek()? {
                (Tok::Step, _) => {
                    let (_, position) = self.next()?;
                    let (name, _) = self.name("a step name after `step`")?;
                    let sql = self.sql("the step name")?.sql;
                    steps.push(Step {
                        name,
                        sql,
                        position,
                    });
                }
                other if steps.is_empty() => {
                    let other = other.clone();
                    let expected = if setup.is_some() {
                        "`step` (a session needs at least one step)"
                    } else {
                        "`setup` or `step` (a session needs at least one step)"
                    };
                    return Err(self.unexpected(expected, &other));
                }
                _ => break,
            }
        }
        let teardown = match self.eat(&Tok::Teardown)? {
            Some(_) => Some(self.sql("`teardown`")?),
            None => None,
        };
        Ok(Session {
            name,
            position,
            setup,
            steps,
            teardown,
        })
    }

    fn permutation(&mut self) -> Result<Permutation, SpecError> {
        let (_, position) = self.next()?;
        let mut steps = Vec::new();
        loop {
            let (name, step_position) = match self.peek()? {
                (Tok::Ident(_), _) => self.name("a step name")?,
                other if steps.is_empty() => {
                    let other = other.clone();
                    return Err(self.unexpected("a step name after `permutation`", &other));
                }
                _ => break,
            };
            let mut blockers = Vec::new();
            if self.eat(&Tok::LParen)?.is_some() {
                loop {
                    blockers.push(self.blocker()?);
                    let token = self.next()?;
                    match token {
                        (Tok::Comma, _) => continue,
                        (Tok::RParen, _) => break,
                        other => return Err(self.unexpected("`,` or `)` after a marker", &other)),
                    }
                }
            }
            steps.push(PermutationStep {
                name,
                blockers,
                position: Some(step_position),
            });
        }
        Ok(Permutation {
            steps,
            position: Some(position),
        })
    }

    fn blocker(&mut self) -> Result<Blocker, SpecError> {
        let token = self.next()?;
        match token {
            (Tok::Star, position) => Ok(Blocker::Once { position }),
            (Tok::Ident(name), position) => {
                if self.eat(&Tok::Notices)?.is_none() {
                    return Ok(Blocker::Step { name, position });
                }
                let token = self.next()?;
                match token {
                    (Tok::Integer(digits), at) => {
                        let count = digits
                            .parse::<u32>()
                            .map_err(|_| self.error(at, SpecErrorKind::NumberTooLarge(digits)))?;
                        Ok(Blocker::Notices {
                            name,
                            count,
                            position,
                        })
                    }
                    other => Err(self.unexpected("a number after `notices`", &other)),
                }
            }
            other => {
                Err(self.unexpected("a marker: `*`, a step name, or `STEP notices N`", &other))
            }
        }
    }
}
