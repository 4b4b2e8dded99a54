//! Specs as choreographies, without a server: every permutation of every spec of the
//! corpus builds a global program that projects and runs clean under the checker
//! (effect order, started effects finished), with one started step per permutation
//! step at its session's role; and the program's shape on a hand-made spec.

mod common;

use stormchor_choreography::{Global, SeededPolicy, Stage, check, project_all, to_mermaid};
use stormchor_isolation::choreo::{Role, Step, permutation_program};
use stormchor_isolation::permutations::permutations;
use stormchor_isolation::spec::Spec;

/// The started steps of a program, in order: (role, step name).
fn started_steps(
    program: &stormchor_choreography::Program<Role, stormchor_isolation::choreo::Msg>,
) -> Vec<(Role, String)> {
    program
        .effects()
        .iter()
        .filter_map(|effect| match effect {
            Global::Ext(ext) if matches!(ext.stage(), Stage::Start(_)) => {
                let step = ext.downcast_ref::<Step>()?;
                Some((step.session, step.name.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_permutation_of_the_corpus_is_a_sound_choreography() {
    let Some(corpus) = common::corpus("every_permutation_of_the_corpus_is_a_sound_choreography")
    else {
        return;
    };
    let (mut programs, mut effects) = (0, 0);
    for name in common::spec_names(&corpus) {
        let spec = corpus.spec(&name).expect("every spec parses");
        for (index, permutation) in permutations(&spec).enumerate() {
            for rollbacks in [false, true] {
                let program = permutation_program(&spec, index, &permutation, rollbacks)
                    .unwrap_or_else(|e| panic!("{name} permutation {}: {e}", index + 1));
                let locals = project_all(&program)
                    .unwrap_or_else(|e| panic!("{name} permutation {}: {e}", index + 1));
                check(&locals, &mut SeededPolicy::new(1))
                    .unwrap_or_else(|e| panic!("{name} permutation {}: {e}", index + 1));
                // One started step per permutation step, at its session, in order.
                let expected: Vec<(Role, String)> = permutation
                    .steps
                    .iter()
                    .map(|ps| {
                        let s = spec.session_of(&ps.name).expect("a step of the spec");
                        (Role::session(&spec, s).expect("a role"), ps.name.clone())
                    })
                    .collect();
                assert_eq!(started_steps(&program), expected, "{name} {}", index + 1);
                programs += 1;
                effects += program.counts().total();
            }
        }
    }
    eprintln!("{programs} permutation programs ({effects} effects) project and check clean");
    assert!(programs > 3000, "{programs}");
}

#[test]
fn a_permutation_program_has_the_expected_shape() {
    let spec = Spec::parse(
        "setup { CREATE TABLE t (x int); }\n\
         teardown { DROP TABLE t; }\n\
         session s1 setup { BEGIN; } step l1 { LOCK t; } step c1 { COMMIT; }\n\
         session \"two words\" step l2 { LOCK t; } step c2 { COMMIT; } teardown { SELECT 1; }\n\
         permutation l1 l2 c1 c2\n\
         permutation l1 c1 l1 l2 c2",
        "shape.spec",
    )
    .expect("parses");
    let program = permutation_program(&spec, 0, &spec.permutations[0], false).expect("builds");
    let diagram = to_mermaid(&program);
    let notes: Vec<&str> = diagram
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Note over"))
        .collect();
    assert_eq!(
        notes,
        [
            "Note over P0: permutation 1: l1 l2 c1 c2, setup CREATE TABLE t (x int)",
            "Note over P1: setup s1: BEGIN",
            "Note over P0: observe setup s1: BEGIN",
            "Note over P1: start step l1: LOCK t as l1",
            "Note over P0: observe l1: done or blocked? poll the waiting",
            "Note over P2: start step l2: LOCK t as l2",
            "Note over P0: observe l2: done or blocked? poll the waiting",
            "Note over P1: finish l1 (Step)",
            "Note over P1: start step c1: COMMIT as c1",
            "Note over P0: observe c1: done or blocked? poll the waiting",
            "Note over P2: finish l2 (Step)",
            "Note over P2: start step c2: COMMIT as c2",
            "Note over P0: observe c2: done or blocked? poll the waiting",
            "Note over P1: finish c1 (Step)",
            "Note over P2: finish c2 (Step)",
            "Note over P2: teardown two words: SELECT 1",
            "Note over P0: observe teardown two words: SELECT 1",
            "Note over P0: teardown DROP TABLE t",
        ]
    );
    assert!(diagram.contains("participant P2 as two words"));
    // A step used twice in a permutation gets a handle of its own each time; with the
    // pre-9.6 rollbacks, one block per session before the teardowns.
    let second = permutation_program(&spec, 1, &spec.permutations[1], true).expect("builds");
    let diagram = to_mermaid(&second);
    assert!(diagram.contains("start step l1: LOCK t as l1\n"));
    assert!(diagram.contains("start step l1: LOCK t as l1.2\n"));
    assert!(diagram.contains("Note over P1: rollback s1 if invalid"));
    assert!(diagram.contains("Note over P2: rollback two words if invalid"));
    let locals = project_all(&second).expect("projects");
    check(&locals, &mut SeededPolicy::new(7)).expect("checks clean");
}

/// The negative case: a permutation naming a step the spec lacks (possible only for a
/// hand-built permutation) is refused with its name.
#[test]
fn an_unknown_step_is_refused() {
    let spec = Spec::parse("session s1 step a { SELECT 1; }", "one.spec").expect("parses");
    let mut permutation = permutations(&spec).next().expect("one permutation");
    permutation.steps[0].name = "nope".into();
    let error = permutation_program(&spec, 0, &permutation, false).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "permutation 1: step \"nope\" is not a step of the spec"
    );
}
