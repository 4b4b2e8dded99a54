//! The variants of isolationtester's output, and how to tell from an expected file which
//! one it was written in.

/// How result sets are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResultStyle {
    /// libpq's `PQprint`, with `(N rows)` (PostgreSQL 14 on, and back branches since 2021).
    Aligned,
    /// Columns padded to 15 characters, no row count (before).
    Padded,
}

/// When and how step errors are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorStyle {
    /// Right after the step's completion line and results (current).
    Inline,
    /// Held until the step that was launched (or waited for) and the waiting steps it
    /// unblocked have all been reported, then printed plainly if it completed alone, or
    /// as `error in steps LEAD OTHER...: ...` if others completed with it (before 14).
    Grouped,
}

/// How notices (and warnings) from sessions are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoticeStyle {
    /// `s1: NOTICE:  ...` (current).
    SessionPrefix,
    /// `NOTICE:  ...` (older testers, where libpq printed them).
    Bare,
}

/// One variant of isolationtester's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dialect {
    /// How result sets are printed.
    pub results: ResultStyle,
    /// How step errors are printed.
    pub errors: ErrorStyle,
    /// How notices are printed.
    pub notices: NoticeStyle,
    /// Whether `unused step name: NAME` warnings head the output (testers since 14).
    pub warns_unused_steps: bool,
    /// Whether a step whose session is still waiting ends the permutation with
    /// `invalid permutation detected` (testers before 9.6; see
    /// [`crate::schedule::Scheduler::abandon_invalid_permutations`]) instead of being
    /// waited for.
    pub abandons_invalid_permutations: bool,
}

impl Dialect {
    /// Today's isolationtester.
    pub const CURRENT: Dialect = Dialect {
        results: ResultStyle::Aligned,
        errors: ErrorStyle::Inline,
        notices: NoticeStyle::SessionPrefix,
        warns_unused_steps: true,
        abandons_invalid_permutations: false,
    };

    /// isolationtester before PostgreSQL 14 (as in 13).
    pub const PRE_14: Dialect = Dialect {
        results: ResultStyle::Padded,
        errors: ErrorStyle::Grouped,
        notices: NoticeStyle::SessionPrefix,
        warns_unused_steps: false,
        abandons_invalid_permutations: false,
    };

    /// The dialect an expected file is written in, from what it shows: a `(N rows)`
    /// line means [`ResultStyle::Aligned`]; an `error in steps` line, or a 15-column
    /// padded header followed by an empty line, means the pre-14 format; a notice
    /// without a session prefix means [`NoticeStyle::Bare`]; an `unused step name:`
    /// line means the tester warns about unused steps; an `invalid permutation
    /// detected` line means a tester before 9.6. What a file does not show
    /// is taken from what it does (pre-14 results go with grouped errors), and
    /// otherwise from [`Dialect::CURRENT`]: a file that shows nothing of either prints
    /// the same in both for the runs that match it.
    pub fn detect(expected: &str) -> Dialect {
        let lines: Vec<&str> = expected.lines().collect();
        let mut results = None;
        let mut errors = None;
        let mut notices = None;
        let mut warns = None;
        for (i, line) in lines.iter().enumerate() {
            if is_row_count(line) {
                results = Some(ResultStyle::Aligned);
            }
            if line.starts_with("unused step name: ") {
                warns = Some(true);
            }
            if line.starts_with("error in steps ") {
                errors = Some(ErrorStyle::Grouped);
            }
            if results.is_none()
                && i + 2 < lines.len()
                && is_padded_result(line, lines[i + 1], lines[i + 2])
            {
                results = Some(ResultStyle::Padded);
            }
            if notices.is_none() {
                if starts_with_severity(line) {
                    notices = Some(NoticeStyle::Bare);
                } else if let Some((session, rest)) = line.split_once(": ") {
                    if !session.is_empty() && !session.contains(' ') && starts_with_severity(rest) {
                        notices = Some(NoticeStyle::SessionPrefix);
                    }
                }
            }
        }
        let results = results.unwrap_or(match errors {
            Some(ErrorStyle::Grouped) => ResultStyle::Padded,
            _ => ResultStyle::Aligned,
        });
        let errors = errors.unwrap_or(match results {
            ResultStyle::Padded => ErrorStyle::Grouped,
            ResultStyle::Aligned => ErrorStyle::Inline,
        });
        Dialect {
            results,
            errors,
            notices: notices.unwrap_or(NoticeStyle::SessionPrefix),
            warns_unused_steps: warns.unwrap_or(results == ResultStyle::Aligned),
            abandons_invalid_permutations: lines.contains(&"invalid permutation detected"),
        }
    }
}

impl Dialect {
    /// The dialects an expected file may be written in, the detected one first. A file
    /// shows its error style only through `error in steps` lines: without them both
    /// styles are possible (testers of 2021 printed padded results with inline errors,
    /// as `partition-concurrent-attach.out` shows), so both are listed.
    pub fn candidates(expected: &str) -> Vec<Dialect> {
        let detected = Dialect::detect(expected);
        let mut all = vec![detected];
        if !expected.lines().any(|l| l.starts_with("error in steps ")) {
            let other = match detected.errors {
                ErrorStyle::Inline => ErrorStyle::Grouped,
                ErrorStyle::Grouped => ErrorStyle::Inline,
            };
            all.push(Dialect {
                errors: other,
                ..detected
            });
        }
        all
    }
}

/// `(3 rows)` or `(1 row)`.
fn is_row_count(line: &str) -> bool {
    let Some(inner) = line.strip_prefix('(').and_then(|l| l.strip_suffix(')')) else {
        return false;
    };
    let Some((number, word)) = inner.split_once(' ') else {
        return false;
    };
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && (word == "rows" || (word == "row" && number == "1"))
}

/// Whether `line` is one isolationtester prints itself (not a row of a result set).
fn is_tester_line(line: &str) -> bool {
    const PREFIXES: [&str; 8] = [
        "step ",
        "starting permutation:",
        "error in steps ",
        "isolationtester: ",
        "unused step name: ",
        "Parsed test spec with ",
        "ERROR:  ",
        "FATAL:  ",
    ];
    PREFIXES.iter().any(|p| line.starts_with(p))
        || starts_with_severity(line)
        || line
            .split_once(": ")
            .is_some_and(|(session, rest)| !session.contains(' ') && starts_with_severity(rest))
}

/// The pre-14 layout of a result set: a header line, an empty line, then a row whose
/// fields are each padded to at least 15 characters. (In the current format a header
/// is followed by its border, and a non-empty line followed by an empty one is the end
/// of a row count or of a multi-line step's SQL, which the tester's own lines follow.)
fn is_padded_result(header: &str, empty: &str, row: &str) -> bool {
    !header.is_empty() && empty.is_empty() && row.len() >= 15 && !is_tester_line(row)
}

/// Notices are printed by libpq as `SEVERITY:  message`.
fn starts_with_severity(text: &str) -> bool {
    ["NOTICE:  ", "WARNING:  ", "INFO:  ", "LOG:  ", "DEBUG:  "]
        .iter()
        .any(|s| text.starts_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_counts_mean_current() {
        let text = "step s: SELECT 1;\n?column?\n--------\n       1\n(1 row)\n\n";
        assert_eq!(Dialect::detect(text), Dialect::CURRENT);
    }

    #[test]
    fn padded_headers_or_grouped_errors_mean_pre_14() {
        let padded = "step s: SELECT 1;\n?column?       \n\n1              \n";
        assert_eq!(Dialect::detect(padded), Dialect::PRE_14);
        let void = "step s: SELECT pg_advisory_lock(1);\npg_advisory_lock\n\n               \n";
        assert_eq!(Dialect::detect(void), Dialect::PRE_14);
        // A multi-line step's SQL ends with an empty line: not a result set.
        let sql = "step s: \n  SELECT a_rather_long_function();\n\nstep t: COMMIT;\n";
        assert_eq!(Dialect::detect(sql), Dialect::CURRENT);
        assert_eq!(Dialect::detect(padded), Dialect::PRE_14);
        let grouped = "step b: <... completed>\nerror in steps a b: ERROR:  boom\n";
        assert_eq!(Dialect::detect(grouped), Dialect::PRE_14);
    }

    #[test]
    fn notice_style_is_seen_separately() {
        let bare = "WARNING:  skipping\nstep v: VACUUM;\n";
        assert_eq!(Dialect::detect(bare).notices, NoticeStyle::Bare);
        let prefixed = "s1: NOTICE:  hello\nstep v: SELECT f();\n";
        assert_eq!(
            Dialect::detect(prefixed).notices,
            NoticeStyle::SessionPrefix
        );
    }

    #[test]
    fn the_error_style_is_open_unless_shown() {
        let padded = "step s: SELECT 1;\n?column?       \n\n1              \n";
        let candidates = Dialect::candidates(padded);
        assert_eq!(candidates[0], Dialect::PRE_14);
        assert_eq!(candidates[1].errors, ErrorStyle::Inline);
        assert_eq!(candidates.len(), 2);
        let grouped = "step b: <... completed>\nerror in steps a b: ERROR:  boom\n";
        assert_eq!(Dialect::candidates(grouped), [Dialect::PRE_14]);
    }

    #[test]
    fn nothing_shown_means_current() {
        assert_eq!(Dialect::detect("step a: BEGIN;\n"), Dialect::CURRENT);
        assert!(!is_row_count("(1 rows"));
        assert!(!is_row_count("(2 row)"));
        assert!(!is_row_count("( rows)"));
    }
}
