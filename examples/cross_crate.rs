//! A choreography composed from primitives of two crates: the built-in barrier and
//! two-phase commit, and `checkpoint_all` from the example crate
//! `stormchor-example-primitives`.
//!
//! Run it with `cargo run --example cross_crate`; `cargo test` runs its test.

use stormchor::prelude::*;
use stormchor_example_primitives::checkpoint_all;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Coordinator,
    Worker(u16),
}

#[derive(Clone, Debug, PartialEq)]
enum Msg {
    Ready,
    Go,
    Checkpoint,
    Done,
    Prepare,
    Vote,
    Commit,
    Abort,
    Ack,
}

fn choreography(workers: u16) -> Program<Role, Msg> {
    let workers = Family::indexed("Worker", workers, Role::Worker);
    primitives::barrier(Role::Coordinator, &workers, Msg::Ready, Msg::Go)
        .then(checkpoint_all(
            Role::Coordinator,
            &workers,
            Msg::Checkpoint,
            Msg::Done,
        ))
        .then(primitives::two_phase_commit(
            Role::Coordinator,
            &workers,
            primitives::TwoPhaseMessages {
                prepare: Msg::Prepare,
                vote: Msg::Vote,
                commit: Msg::Commit,
                abort: Msg::Abort,
                ack: Msg::Ack,
            },
        ))
        .end()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let program = choreography(3);
    let locals = project_all(&program)?;
    for local in locals.values() {
        println!("{local}");
    }
    let report = check(&locals, &mut SeededPolicy::new(1))?;
    println!(
        "checked: {} messages, {} labels, {} extension effects",
        report.messages,
        report.control,
        report.extensions.len()
    );
    println!("{}", to_mermaid(&program));
    Ok(())
}

#[test]
fn primitives_from_two_crates_compose() {
    use stormchor_example_primitives::FlushWal;

    for workers in [1, 4, 16] {
        let program = choreography(workers);
        let locals = project_all(&program).expect("sound");
        let worker = &locals[&Role::Worker(0)];
        let flushes = worker
            .effects()
            .iter()
            .filter(
                |e| matches!(e, Local::Ext(ext) if ext.downcast_ref::<FlushWal<Role>>().is_some()),
            )
            .count();
        assert_eq!(flushes, 1, "each worker flushes its own WAL once");
        let report = check(&locals, &mut SeededPolicy::new(3)).expect("runs");
        assert_eq!(report.extensions.len(), workers as usize);
        // barrier 2n + checkpoint 2n + prepare/vote 2n + outcome/ack 2n
        assert_eq!(report.messages, 8 * workers as usize);
    }
}
