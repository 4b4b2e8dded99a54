//! Mermaid diagrams and the text form of local programs.

mod common;

use std::time::Duration;

use common::*;
use stormchor_choreography::primitives::{TwoPhaseMessages, two_phase_commit};
use stormchor_choreography::{Family, Program, project_all, to_mermaid, to_svg};

type P = Program<Role, Msg>;

fn sample() -> P {
    let workers = Family::indexed("Worker", 2, Worker);
    P::new()
        .role(Coordinator)
        .role(Backup)
        .family(&workers)
        .broadcast(Coordinator, &workers, Msg::Start)
        .ext(RunWorkload {
            on: Worker(0),
            seconds: 30,
        })
        .loop_until(
            Coordinator,
            P::new().send(Worker(1), Coordinator, Msg::Rows(0)),
        )
        .choice(
            Coordinator,
            [
                (
                    "backup",
                    P::new()
                        .send(Coordinator, Backup, Msg::Start)
                        .ext(Checksum {
                            on: vec![Backup, Coordinator],
                        }),
                ),
                ("skip", P::new().send(Coordinator, Backup, Msg::Stop)),
            ],
        )
        .par([
            P::new().send(Backup, Coordinator, Msg::Lsn(0)),
            P::new().loop_n(2, P::new().send(Coordinator, Worker(0), Msg::Verdict(true))),
        ])
        .timeout(
            Backup,
            Duration::from_secs(30),
            P::new().ext(LogPhase("verify")),
        )
}

#[test]
fn mermaid_renders_every_construct() {
    let diagram = to_mermaid(&sample());
    let expected = "\
sequenceDiagram
    participant P0 as Coordinator
    participant P1 as Backup
    participant P2 as Worker(0)
    participant P3 as Worker(1)
    P0->>P2: Start
    P0->>P3: Start
    Note over P2: RunWorkload { on: Worker(0), seconds: 30 }
    loop until Coordinator stops
        P3->>P0: Rows
    end
    alt Coordinator chooses backup
        P0->>P1: Start
        Note over P0,P1: Checksum { on: [Backup, Coordinator] }
    else skip
        P0->>P1: Stop
    end
    par part 0
        P1->>P0: Lsn
    and part 1
        loop 2 times
            P0->>P2: Verdict
        end
    end
    critical Backup within 30s
        Note over P0,P3: LogPhase('verify')
    end
";
    assert_eq!(diagram, expected);
}

#[test]
fn local_programs_have_a_readable_text_form() {
    let projected = project_all(&sample()).expect("sound");
    assert_eq!(
        projected[&Coordinator].to_string(),
        "\
Coordinator:
  send Worker(0) Start
  send Worker(1) Start
  loop while I decide, tell [Worker(1)]
    recv Worker(1) Rows(0)
  wait for order frame from Worker(0)
  order frame to Backup
  select, tell [Backup]
    \"backup\" =>
      send Backup Start
      ext Checksum { on: [Backup, Coordinator] }
    \"skip\" =>
      send Backup Stop
  par
    part 0:
      recv Backup Lsn(0)
    part 1:
      loop 2 times
        send Worker(0) Verdict(true)
  order frame to Backup
  order frame to Worker(0)
  order frame to Worker(1)
  ext LogPhase(\"verify\")
"
    );
    assert_eq!(
        projected[&Backup].to_string(),
        "\
Backup:
  wait for order frame from Coordinator
  branch from Coordinator
    \"backup\" =>
      recv Coordinator Start
      ext Checksum { on: [Backup, Coordinator] }
    \"skip\" =>
      recv Coordinator Stop
  send Coordinator Lsn(0)
  timeout 30s
    wait for order frame from Coordinator
    ext LogPhase(\"verify\")
"
    );
}

#[test]
fn two_phase_commit_diagram_shows_the_decision() {
    let participants = Family::indexed("Worker", 2, Worker);
    let program: P = two_phase_commit(
        Coordinator,
        &participants,
        TwoPhaseMessages {
            prepare: Msg::Start,
            vote: Msg::Verdict(true),
            commit: Msg::Lsn(0),
            abort: Msg::Stop,
            ack: Msg::Rows(0),
        },
    );
    let diagram = to_mermaid(&program);
    assert!(
        diagram.contains("alt Coordinator chooses commit"),
        "{diagram}"
    );
    assert!(diagram.contains("else abort"), "{diagram}");
    assert_eq!(diagram.matches("->>").count(), 4 + 2 * 4);
}

/// A message template named by several words keeps every word on its arrow; a
/// template with a payload shows only its kind.
#[test]
fn message_names_of_several_words_stay_whole() {
    #[derive(Clone, PartialEq)]
    struct Named(&'static str);
    impl std::fmt::Debug for Named {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    let program = Program::new()
        .role(Coordinator)
        .role(Backup)
        .send(Backup, Coordinator, Named("backed up"))
        .send(Backup, Coordinator, Named("checksums (12 bytes)"));
    let diagram = to_mermaid(&program);
    assert!(diagram.contains(": backed up\n"), "{diagram}");
    assert!(diagram.contains(": checksums\n"), "{diagram}");
    let sample = to_mermaid(&sample());
    assert!(sample.contains(": Rows\n"), "{sample}");
}

/// The SVG holds an arrow per message a pass over the program exchanges, a note per
/// extension effect, a frame per compound effect and both boxes of every role.
#[test]
fn svg_draws_every_message_effect_frame_and_role() {
    let program = sample();
    let svg = to_svg(&program);
    let counts = program.counts();
    let count = |needle: &str| svg.matches(needle).count();
    assert_eq!(count(r#"class="msg""#), counts.messages, "{svg}");
    assert_eq!(count(r#"<g class="note">"#), counts.extensions, "{svg}");
    assert_eq!(
        count(r#"<g class="frame">"#),
        counts.loops + counts.choices + counts.pars + counts.timeouts,
        "{svg}"
    );
    assert_eq!(
        count(r#"<g class="head">"#),
        2 * program.roles().len(),
        "{svg}"
    );
    assert!(
        svg.contains(">[skip]</text>"),
        "the second branch's divider: {svg}"
    );
}
