//! A check that fails while the run is being interrupted is reported as not finished,
//! never as a fault found. (Its own test binary: the interrupt is process-wide.)

use stormchor_kit::{Journal, interrupt};

#[test]
fn a_check_failing_under_an_interrupt_says_it_did_not_finish() {
    let journal = Journal::new("Backup", std::time::SystemTime::now());
    journal.check(
        "before",
        false,
        "the backup does not match its manifest",
        vec![],
    );
    interrupt::request();
    journal.check(
        "during",
        false,
        "the backup does not match its manifest",
        vec![],
    );
    journal.check("held", true, "backup successfully verified", vec![]);
    interrupt::clear();
    let checks = journal.checks();
    let by = |name: &str| checks.iter().find(|c| c.name == name).expect("recorded");
    // Before the signal, a failure is a failure.
    assert!(!by("before").interrupted);
    assert_eq!(
        by("before").summary,
        "the backup does not match its manifest"
    );
    // Under it, the same failure says it did not finish.
    assert!(by("during").interrupted && !by("during").passed);
    assert!(
        by("during")
            .summary
            .starts_with("not finished: the run was interrupted"),
        "{:?}",
        by("during")
    );
    // A check that held is what it is.
    assert!(by("held").passed && !by("held").interrupted);
}
