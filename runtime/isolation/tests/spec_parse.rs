//! The spec parser on small hand-written specs: the whole grammar, and each error with
//! its message and position.

use stormchor_isolation::spec::{Blocker, Position, Spec, SpecErrorKind};

fn at(line: usize, column: usize) -> Position {
    Position { line, column }
}

#[test]
fn the_whole_grammar() {
    let text = r#"# A comment before anything.
setup { CREATE TABLE t (x int); }   # trailing comment
setup
{
	VACUUM t;
}
teardown { DROP TABLE t; }

session "s 1"
setup { BEGIN; }
step "a""b" { SELECT '{';
  SELECT 2; }
step plain_1$ {	UPDATE t SET x = 1;	}
teardown { COMMIT; }

session s2
step "step" { }
step w { LOCK t; }

permutation "a""b" plain_1$ "step" w
permutation w(*) "a""b"(w, * ,"step" notices 3) plain_1$ "step"
"#;
    let spec = Spec::parse(text, "all.spec").expect("valid");
    assert_eq!(spec.file, "all.spec");
    let setups: Vec<&str> = spec.setups.iter().map(|b| b.sql.as_str()).collect();
    // Spaces and tabs next to the braces go, newlines stay.
    assert_eq!(setups, ["CREATE TABLE t (x int);", "\n\tVACUUM t;\n"]);
    assert_eq!(spec.setups[1].position, at(4, 1));
    assert_eq!(
        spec.teardown.as_ref().map(|b| b.sql.as_str()),
        Some("DROP TABLE t;")
    );

    assert_eq!(spec.sessions.len(), 2);
    let s1 = &spec.sessions[0];
    assert_eq!(s1.name, "s 1");
    assert_eq!(s1.position, at(9, 1));
    assert_eq!(s1.setup.as_ref().map(|b| b.sql.as_str()), Some("BEGIN;"));
    assert_eq!(
        s1.teardown.as_ref().map(|b| b.sql.as_str()),
        Some("COMMIT;")
    );
    let steps: Vec<(&str, &str)> = s1
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.sql.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("a\"b", "SELECT '{';\n  SELECT 2;"),
            ("plain_1$", "UPDATE t SET x = 1;")
        ]
    );
    assert_eq!(s1.steps[1].position, at(13, 1));
    let s2 = &spec.sessions[1];
    assert_eq!(
        (s2.name.as_str(), s2.setup.is_none(), s2.teardown.is_none()),
        ("s2", true, true)
    );
    assert_eq!(s2.steps[0].name, "step");
    assert_eq!(s2.steps[0].sql, "");

    assert_eq!(spec.permutations.len(), 2);
    let names: Vec<&str> = spec.permutations[0].step_names().collect();
    assert_eq!(names, ["a\"b", "plain_1$", "step", "w"]);
    assert!(
        spec.permutations[0]
            .steps
            .iter()
            .all(|s| s.blockers.is_empty())
    );
    let p = &spec.permutations[1];
    assert_eq!(p.position, Some(at(21, 1)));
    assert_eq!(
        p.steps[0].blockers,
        [Blocker::Once {
            position: at(21, 15)
        }]
    );
    assert_eq!(
        p.steps[1].blockers,
        [
            Blocker::Step {
                name: "w".into(),
                position: at(21, 25)
            },
            Blocker::Once {
                position: at(21, 28)
            },
            Blocker::Notices {
                name: "step".into(),
                count: 3,
                position: at(21, 31)
            },
        ]
    );
    assert_eq!(p.steps[1].position, Some(at(21, 18)));

    assert_eq!(spec.session_of("w"), Some(1));
    assert_eq!(spec.session_of("nope"), None);
    assert_eq!(
        spec.step("plain_1$").map(|s| s.sql.as_str()),
        Some("UPDATE t SET x = 1;")
    );
    assert!(spec.unused_steps().is_empty());
}

#[test]
fn unused_steps_are_sorted_by_bytes_and_only_with_permutation_lines() {
    let text = "session s step b {} step a {} step Z {} step c {} permutation c";
    let spec = Spec::parse(text, "u.spec").expect("valid");
    assert_eq!(spec.unused_steps(), ["Z", "a", "b"]);
    let spec = Spec::parse("session s step b {} step a {}", "u.spec").expect("valid");
    assert!(spec.unused_steps().is_empty());
    // The keyword `step` is a name only when quoted.
    let err = Spec::parse("session s step \"step\" {} permutation step", "k.spec");
    assert!(err.is_err());
}

/// Each error: its kind, its place, and the message a user sees.
#[test]
fn errors_name_file_line_column_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "",
            "e.spec:1:1: syntax error: expected `setup`, `teardown` or `session`, found end of file",
        ),
        (
            "teardown {}\nsetup {}",
            "e.spec:2:1: syntax error: expected `session`, found `setup`",
        ),
        (
            "session s",
            "e.spec:1:10: syntax error: expected `setup` or `step` (a session needs at least one step), found end of file",
        ),
        (
            "session s setup {} setup {}",
            "e.spec:1:20: syntax error: expected `step` (a session needs at least one step), found `setup`",
        ),
        (
            "session {}",
            "e.spec:1:9: syntax error: expected a session name after `session`, found a SQL block",
        ),
        (
            "session s step a",
            "e.spec:1:17: syntax error: expected a SQL block `{ ... }` after the step name, found end of file",
        ),
        (
            "session s step a { x",
            "e.spec:1:18: unterminated SQL block (this `{` has no `}`)",
        ),
        ("session \"s", "e.spec:1:9: unterminated quoted identifier"),
        (
            "session \"s\nt\"",
            "e.spec:1:11: unexpected newline in quoted identifier",
        ),
        (
            "session s step a {} ;",
            "e.spec:1:21: unexpected character ';'",
        ),
        (
            "session s step a {} setup {}",
            "e.spec:1:21: syntax error: expected `session`, `permutation` or end of file, found `setup`",
        ),
        (
            "session s step a {} teardown {} teardown {}",
            "e.spec:1:33: syntax error: expected `session`, `permutation` or end of file, found `teardown`",
        ),
        (
            "SETUP {}",
            "e.spec:1:1: syntax error: expected `setup`, `teardown` or `session`, found identifier \"SETUP\"",
        ),
        (
            "session s step a {} permutation",
            "e.spec:1:32: syntax error: expected a step name after `permutation`, found end of file",
        ),
        (
            "session s step a {} permutation a(",
            "e.spec:1:35: syntax error: expected a marker: `*`, a step name, or `STEP notices N`, found end of file",
        ),
        (
            "session s step a {} permutation a(* b",
            "e.spec:1:37: syntax error: expected `,` or `)` after a marker, found identifier \"b\"",
        ),
        (
            "session s step a {} permutation a(b notices)",
            "e.spec:1:44: syntax error: expected a number after `notices`, found `)`",
        ),
        (
            "session s step a {} permutation a(b notices 99999999999)",
            "e.spec:1:45: number 99999999999 is too large",
        ),
        (
            "session s step a {} permutation a setup",
            "e.spec:1:35: syntax error: expected a step name, `permutation` or end of file, found `setup`",
        ),
        (
            "session s\nstep a {}\nsession t\n  step a {}",
            "e.spec:4:3: duplicate step name \"a\" (first defined at line 2, column 1)",
        ),
        (
            "session s step a {} permutation a\npermutation a b",
            "e.spec:2:15: undefined step \"b\" specified in permutation",
        ),
        (
            "session s step a {} session t step b {} step c {} permutation a(c) b permutation c",
            "e.spec:1:65: undefined blocking step \"c\" referenced in permutation step \"a\"",
        ),
        (
            "session s step a {} session t step b {} permutation a(x) b",
            "e.spec:1:55: undefined blocking step \"x\" referenced in permutation step \"a\"",
        ),
        (
            "session s step a {} step b {} permutation a(b notices 1) b",
            "e.spec:1:45: permutation step \"a\" cannot block on its own session",
        ),
    ];
    let mut failures = Vec::new();
    for (text, message) in cases {
        match Spec::parse(text, "e.spec") {
            Ok(_) => failures.push(format!("{text:?}: parsed, expected {message:?}")),
            Err(e) if e.to_string() != *message => failures.push(format!(
                "{text:?}:\n   got {:?}\n  want {message:?}",
                e.to_string()
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_utf8_is_an_error_at_its_place() {
    let err = Spec::parse_bytes(b"session s\nstep \xff {}", "b.spec").expect_err("not UTF-8");
    assert_eq!(err.kind, SpecErrorKind::InvalidUtf8);
    assert_eq!(err.position, at(2, 6));
    assert_eq!(err.to_string(), "b.spec:2:6: invalid UTF-8");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = Spec::from_file(std::path::Path::new("/nonexistent/x.spec")).expect_err("missing");
    assert!(
        err.to_string()
            .starts_with("cannot read /nonexistent/x.spec: "),
        "{err}"
    );
}

#[test]
fn carriage_returns_are_spaces_outside_sql_and_text_inside() {
    let spec =
        Spec::parse("session s\r\nstep a { SELECT 1;\r\n }\r\n", "crlf.spec").expect("valid");
    assert_eq!(spec.sessions[0].steps[0].sql, "SELECT 1;\r\n");
}
