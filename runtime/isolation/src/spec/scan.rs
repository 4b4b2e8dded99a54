//! The tokens of the spec format, scanned on demand (so that, as with upstream's
//! scanner driven by its parser, a syntax error before a bad character is the one
//! reported).

use super::{Position, SpecErrorKind};

/// A token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    Notices,
    Permutation,
    Session,
    Setup,
    Step,
    Teardown,
    /// A plain or quoted identifier (quotes removed, `""` undoubled).
    Ident(String),
    /// The text of a `{ ... }` block.
    Sql(String),
    /// Digits.
    Integer(String),
    LParen,
    RParen,
    Comma,
    Star,
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Notices => "`notices`".into(),
            Tok::Permutation => "`permutation`".into(),
            Tok::Session => "`session`".into(),
            Tok::Setup => "`setup`".into(),
            Tok::Step => "`step`".into(),
            Tok::Teardown => "`teardown`".into(),
            Tok::Ident(name) => format!("identifier {name:?}"),
            Tok::Sql(_) => "a SQL block".into(),
            Tok::Integer(digits) => format!("number {digits}"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Star => "`*`".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// The position after `c` at `p`.
pub(super) fn advance(p: Position, c: char) -> Position {
    if c == '\n' {
        Position {
            line: p.line + 1,
            column: 1,
        }
    } else {
        Position {
            line: p.line,
            column: p.column + 1,
        }
    }
}

/// Spaces as upstream's scanner has them (newline is separate).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0c')
}

/// Upstream's identifiers are bytes `[A-Za-z\200-\377_]`: in UTF-8 text, any
/// non-ASCII character.
fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_cont(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}

/// The scanner: a cursor over the text.
pub(super) struct Scanner<'a> {
    text: &'a str,
    offset: usize,
    position: Position,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Scanner {
            text,
            offset: 0,
            position: Position { line: 1, column: 1 },
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.offset..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        self.position = advance(self.position, c);
        Some(c)
    }

    /// The next token and where it starts.
    pub(super) fn next_token(&mut self) -> Result<(Tok, Position), (SpecErrorKind, Position)> {
        loop {
            let start = self.position;
            let Some(c) = self.peek() else {
                return Ok((Tok::Eof, start));
            };
            match c {
                '\n' => {
                    self.bump();
                }
                c if is_space(c) => {
                    self.bump();
                }
                '#' => {
                    while let Some(c) = self.peek() {
                        if c == '\n' || c == '\r' {
                            break;
                        }
                        self.bump();
                    }
                }
                '"' => return self.quoted(start).map(|t| (t, start)),
                '{' => return self.sql(start).map(|t| (t, start)),
                c if is_ident_start(c) => {
                    let begin = self.offset;
                    while self.peek().is_some_and(is_ident_cont) {
                        self.bump();
                    }
                    let word = &self.text[begin..self.offset];
                    let tok = match word {
                        "notices" => Tok::Notices,
                        "permutation" => Tok::Permutation,
                        "session" => Tok::Session,
                        "setup" => Tok::Setup,
                        "step" => Tok::Step,
                        "teardown" => Tok::Teardown,
                        _ => Tok::Ident(word.to_string()),
                    };
                    return Ok((tok, start));
                }
                c if c.is_ascii_digit() => {
                    let begin = self.offset;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.bump();
                    }
                    return Ok((Tok::Integer(self.text[begin..self.offset].into()), start));
                }
                '(' | ')' | ',' | '*' => {
                    self.bump();
                    let tok = match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        ',' => Tok::Comma,
                        _ => Tok::Star,
                    };
                    return Ok((tok, start));
                }
                other => return Err((SpecErrorKind::UnexpectedCharacter(other), start)),
            }
        }
    }

    /// A quoted identifier; the opening quote is next.
    fn quoted(&mut self, start: Position) -> Result<Tok, (SpecErrorKind, Position)> {
        self.bump();
        let mut name = String::new();
        loop {
            let here = self.position;
            match self.bump() {
                None => return Err((SpecErrorKind::UnterminatedQuotedIdentifier, start)),
                Some('\n') => return Err((SpecErrorKind::NewlineInQuotedIdentifier, here)),
                Some('"') => {
                    if self.peek() == Some('"') {
                        self.bump();
                        name.push('"');
                    } else {
                        return Ok(Tok::Ident(name));
                    }
                }
                Some(c) => name.push(c),
            }
        }
    }

    /// A SQL block; the `{` is next. Everything up to the first `}`, without the spaces
    /// after `{` and before `}`.
    fn sql(&mut self, start: Position) -> Result<Tok, (SpecErrorKind, Position)> {
        self.bump();
        while self.peek().is_some_and(is_space) {
            self.bump();
        }
        let begin = self.offset;
        loop {
            match self.peek() {
                None => return Err((SpecErrorKind::UnterminatedSqlBlock, start)),
                Some('}') => {
                    let sql = self.text[begin..self.offset].trim_end_matches(is_space);
                    let sql = sql.to_string();
                    self.bump();
                    return Ok(Tok::Sql(sql));
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Tok> {
        let mut s = Scanner::new(text);
        let mut out = Vec::new();
        loop {
            let (t, _) = s.next_token().expect("scans");
            if t == Tok::Eof {
                return out;
            }
            out.push(t);
        }
    }

    #[test]
    fn keywords_are_exact_and_longer_words_are_identifiers() {
        assert_eq!(
            tokens("step steps Step \"step\" s$1 _x é"),
            vec![
                Tok::Step,
                Tok::Ident("steps".into()),
                Tok::Ident("Step".into()),
                Tok::Ident("step".into()),
                Tok::Ident("s$1".into()),
                Tok::Ident("_x".into()),
                Tok::Ident("é".into()),
            ]
        );
    }

    #[test]
    fn quoted_identifiers_undouble_quotes() {
        assert_eq!(
            tokens(r#""a""b" """#),
            vec![Tok::Ident("a\"b".into()), Tok::Ident(String::new())]
        );
    }

    #[test]
    fn sql_blocks_keep_newlines_and_inner_text_but_trim_spaces_at_the_braces() {
        assert_eq!(
            tokens("{ \t SELECT '{' # not a comment\n  }"),
            vec![Tok::Sql("SELECT '{' # not a comment\n".into())]
        );
        assert_eq!(tokens("{}"), vec![Tok::Sql(String::new())]);
    }

    #[test]
    fn comments_numbers_and_punctuation() {
        assert_eq!(
            tokens("# c\nx(y notices 10, *) # trailing"),
            vec![
                Tok::Ident("x".into()),
                Tok::LParen,
                Tok::Ident("y".into()),
                Tok::Notices,
                Tok::Integer("10".into()),
                Tok::Comma,
                Tok::Star,
                Tok::RParen,
            ]
        );
    }

    #[test]
    fn errors_carry_their_position() {
        let mut s = Scanner::new("step a\n  ;");
        assert!(s.next_token().is_ok());
        assert!(s.next_token().is_ok());
        assert_eq!(
            s.next_token(),
            Err((
                SpecErrorKind::UnexpectedCharacter(';'),
                Position { line: 2, column: 3 }
            ))
        );
        let mut s = Scanner::new("\n { SELECT");
        assert_eq!(
            s.next_token(),
            Err((
                SpecErrorKind::UnterminatedSqlBlock,
                Position { line: 2, column: 2 }
            ))
        );
        let mut s = Scanner::new("\"ab\ncd\"");
        assert_eq!(
            s.next_token(),
            Err((
                SpecErrorKind::NewlineInQuotedIdentifier,
                Position { line: 1, column: 4 }
            ))
        );
    }
}
