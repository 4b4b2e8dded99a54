//! The flagship scenarios in their short configuration, each against its own
//! throwaway cluster, and one injected fault per verifier that must make it fail with
//! the right evidence.

use std::time::Duration;

use stormchor::scenarios::{Fault, ScenarioOptions, ScenarioReport, run};

fn options() -> ScenarioOptions {
    ScenarioOptions {
        duration: Duration::from_secs(2),
        rounds: 2,
        ..ScenarioOptions::short()
    }
}

async fn scenario(name: &str, options: ScenarioOptions) -> ScenarioReport {
    let report = run(name, options).await.expect("the scenario runs");
    println!("{}", report.render());
    report
}

fn check<'a>(report: &'a ScenarioReport, name: &str) -> &'a stormchor::scenarios::CheckRecord {
    report
        .checks
        .iter()
        .find(|c| c.name.contains(name))
        .unwrap_or_else(|| panic!("no check named {name:?} in {:?}", report.checks))
}

fn figure(report: &ScenarioReport, name: &str) -> u64 {
    report
        .figures
        .get(name)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("no figure {name}: {:?}", report.figures))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_recovery_loses_nothing_acknowledged() {
    let report = scenario("crash-recovery", options()).await;
    assert!(report.success, "crash-recovery failed");
    assert_eq!(figure(&report, "kills"), 2);
    assert!(figure(&report, "acknowledged") > 0);
    assert_eq!(figure(&report, "acknowledged"), figure(&report, "found"));
    assert!(check(&report, "pg_amcheck").passed);
    let phases: Vec<&str> = report.phases.iter().map(|p| p.phase.as_str()).collect();
    assert!(phases.contains(&"write and crash") && phases.contains(&"verify"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_recovery_catches_a_deleted_acknowledged_row() {
    let report = scenario(
        "crash-recovery",
        ScenarioOptions {
            fault: Some(Fault::DeleteAcknowledgedRow),
            ..options()
        },
    )
    .await;
    assert!(!report.success);
    let ledger = check(&report, "acknowledged transaction is whole");
    assert!(!ledger.passed);
    assert!(
        ledger
            .evidence
            .iter()
            .any(|line| line.contains("missing acknowledged") && line.contains("2 of its rows")),
        "{:?}",
        ledger.evidence
    );
    let coordinator = report
        .roles
        .iter()
        .find(|r| r.role == "Coordinator")
        .expect("role");
    assert_eq!(coordinator.phase.as_deref(), Some("verify"));
    assert!(
        coordinator
            .failure
            .as_deref()
            .unwrap_or("")
            .contains("VerifyLedger")
    );
}
