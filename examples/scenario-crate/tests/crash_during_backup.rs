//! The crash-during-backup scenario on throwaway clusters, through a registry as a
//! user's program would run it, with the faults it must catch.

use std::time::Duration;

use stormchor::kit::effects::{
    BackupOutcome, FinishBackup, KillServer, RestartServer, StartBackup, StartServer, VerifyBackup,
};
use stormchor::kit::slots::PRIMARY;
use stormchor::kit::{
    Carry, DbEffect, Fault, Node, Program, ScenarioError, ScenarioOptions, ScenarioRegistry,
    ScenarioReport, run_program,
};
use stormchor::macros::choreography;
use stormchor::postgres::{BaseBackup, ClusterOptions, PgCluster, StopMode};
use stormchor_example_scenario::{
    INTERRUPTED, InterruptedBackupRejected, NAME, REJECTED_CHECK, Role, THROTTLE_KB, kit,
};

fn registry() -> ScenarioRegistry {
    let mut registry = ScenarioRegistry::new();
    stormchor_example_scenario::register(&mut registry).expect("a new name");
    registry
}

fn options() -> ScenarioOptions {
    let mut options = ScenarioOptions::short();
    options.duration = Duration::from_secs(3);
    options
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn check<'a>(report: &'a ScenarioReport, name: &str) -> &'a stormchor::kit::CheckRecord {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check `{name}` in\n{}", report.render()))
}

fn figure(report: &ScenarioReport, name: &str) -> u64 {
    report
        .figures
        .iter()
        .filter(|(figure, _)| figure.ends_with(name))
        .filter_map(|(_, value)| value.as_u64())
        .sum()
}

#[test]
fn the_interrupted_backup_is_rejected_and_the_second_restores_exactly() {
    let report = runtime()
        .block_on(registry().run(NAME, options()))
        .expect("the scenario runs");
    println!("{}", report.render());
    assert!(report.success, "{}", report.render());
    let rejected = check(&report, REJECTED_CHECK);
    assert!(rejected.passed && rejected.role == "Backup", "{rejected:?}");
    assert!(
        rejected
            .evidence
            .iter()
            .any(|e| e.starts_with("pg_basebackup:")),
        "{rejected:?}"
    );
    // The second backup verified, and its restore matched the point.
    assert!(check(&report, "pg_verifybackup").passed);
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.role == "Coordinator" && c.name.contains("checksum") && c.passed),
        "{}",
        report.render()
    );
    assert_eq!(figure(&report, "kills"), 1, "{}", report.render());
    assert_eq!(figure(&report, "backups_interrupted"), 1);
    assert_eq!(figure(&report, "restores"), 1);
}

#[test]
fn a_corrupt_restored_table_fails_the_run() {
    let mut options = options();
    options.fault = Some(Fault::CorruptRestoredTable);
    let report = runtime()
        .block_on(registry().run(NAME, options))
        .expect("the scenario runs");
    assert!(!report.success, "{}", report.render());
    // The interrupted backup was still judged; the restore is what failed.
    assert!(check(&report, REJECTED_CHECK).passed);
    let failed: Vec<_> = report.failed_checks().collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|c| c.role == "Coordinator"),
        "{}",
        report.render()
    );
}

/// A backup that completed, handed to the check as if the kill had interrupted it:
/// `pg_verifybackup` accepts it, so the check must fail; and a backup reported
/// complete fails it too (the kill did not land during it).
#[test]
fn a_complete_backup_fails_the_rejection_check() {
    runtime().block_on(async {
        let mut cluster = PgCluster::start(ClusterOptions::default())
            .await
            .expect("a throwaway cluster");
        let backup = BaseBackup::take(&cluster.connection_string(), false, None)
            .await
            .expect("a base backup");
        for (error, summary) in [
            (Some("pretend it failed".to_owned()), "accepted"),
            (None, "completed"),
        ] {
            let node = Node::new("Backup", None, &ScenarioOptions::short());
            let outcome = BackupOutcome {
                completed: error.is_none(),
                error,
                path: backup.path().to_path_buf(),
            };
            node.values().put(INTERRUPTED, &outcome).expect("encodes");
            let held = InterruptedBackupRejected {
                outcome: INTERRUPTED,
            }
            .run(&node)
            .await
            .expect("the check runs");
            assert!(!held);
            let checks = node.journal().checks();
            assert_eq!(checks.len(), 1);
            assert!(
                !checks[0].passed && checks[0].summary.contains(summary),
                "{checks:?}"
            );
        }
        cluster.stop(StopMode::Fast).await.expect("stops");
        cluster.shutdown().await.expect("removed");
        backup.remove().await.expect("removed");
    });
}

#[test]
fn registration_names_the_scenario_and_its_faults() {
    let mut registry = registry();
    assert!(matches!(
        stormchor_example_scenario::register(&mut registry),
        Err(ScenarioError::Duplicate(name)) if name == NAME
    ));
    let mut options = options();
    options.fault = Some(Fault::WeakerIsolation);
    let refused = registry.check(NAME, &options).err().expect("refused");
    assert!(
        refused.to_string().contains("corrupt-restored-table"),
        "{refused}"
    );
    options.fault = None;
    options.target = Some("host=/nowhere".to_owned());
    assert!(matches!(
        registry.check(NAME, &options),
        Err(ScenarioError::NeedsProcessControl { .. })
    ));
    // The choreography projects, and every role's local program is there.
    let locals = registry
        .get(NAME)
        .expect("registered")
        .local_programs(&ScenarioOptions::short())
        .expect("projects");
    assert_eq!(locals.len(), 5);
}

choreography! {
    /// The backup interrupted as in the scenario, then verified as if it were whole.
    fn strict_verify(throttle_kb: u32) -> Program<Role, Carry> {
        roles Primary, Backup;
        ext StartServer::throwaway().into_slot(PRIMARY) @ Primary;
        Primary -> Backup: PRIMARY.carry();
        ext StartBackup { of: PRIMARY, max_rate_kb: Some(throttle_kb) } @ Backup;
        Backup -> Primary: Carry::signal("backup streaming");
        ext KillServer @ Primary;
        ext RestartServer @ Primary;
        Primary -> Backup: Carry::signal("restarted");
        ext FinishBackup { within: Duration::from_secs(60) }.into_slot(INTERRUPTED) @ Backup;
        ext VerifyBackup { tolerate: false } @ Backup;
    }
}

/// The interrupted backup, verified with the kit's `VerifyBackup` without tolerance,
/// fails the run: its `pg_verifybackup` check fails, and so does the effect.
#[test]
fn verifying_the_interrupted_backup_strictly_fails() {
    let options = ScenarioOptions::short();
    let report = runtime()
        .block_on(run_program(
            "strict-verify",
            &strict_verify(THROTTLE_KB),
            &options,
            kit().expect("registers"),
        ))
        .expect("runs");
    assert!(!report.success, "{}", report.render());
    let verify = check(&report, "pg_verifybackup");
    assert!(!verify.passed, "{verify:?}");
    assert!(
        verify
            .evidence
            .iter()
            .any(|e| e.contains("backup_manifest")),
        "{verify:?}"
    );
    let backup = report
        .roles
        .iter()
        .find(|r| r.role == "Backup")
        .expect("the Backup role");
    assert!(
        !backup.completed
            && backup
                .failure
                .as_deref()
                .is_some_and(|f| f.contains("pg_verifybackup failed")),
        "{backup:?}"
    );
}
