//! The flagship scenarios in their short configuration, each against its own
//! throwaway cluster, and one injected fault per verifier that must make it fail with
//! the right evidence.

use std::time::Duration;

use stormchor::kit::{CheckRecord, EventKind};
use stormchor::scenarios::{Fault, ScenarioOptions, ScenarioReport, registry};

fn options() -> ScenarioOptions {
    ScenarioOptions {
        duration: Duration::from_secs(2),
        rounds: 2,
        ..ScenarioOptions::short()
    }
}

async fn scenario(name: &str, options: ScenarioOptions) -> ScenarioReport {
    let report = registry()
        .run(name, options)
        .await
        .expect("the scenario runs");
    println!("{}", report.render());
    report
}

fn check<'a>(report: &'a ScenarioReport, name: &str) -> &'a CheckRecord {
    report
        .checks
        .iter()
        .find(|c| c.name.contains(name))
        .unwrap_or_else(|| panic!("no check named {name:?} in {:?}", report.checks))
}

/// Every check whose name holds `name` (one per worker for catalog checks).
fn checks<'a>(report: &'a ScenarioReport, name: &str) -> Vec<&'a CheckRecord> {
    let found: Vec<&CheckRecord> = report
        .checks
        .iter()
        .filter(|c| c.name.contains(name))
        .collect();
    assert!(
        !found.is_empty(),
        "no check named {name:?} in {:?}",
        report.checks
    );
    found
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
    assert!(check(&report, "data checksums on").passed);
    // Without --amcheck-each-round, pg_amcheck runs once, at the end.
    assert_eq!(checks(&report, "pg_amcheck").len(), 1);
    let phases: Vec<&str> = report.phases.iter().map(|p| p.phase.as_str()).collect();
    assert!(phases.contains(&"write and crash") && phases.contains(&"verify"));
    // Every kill and restart is on the timeline, with one recovery per kill; every
    // round but the last is followed by one whose commits resumed.
    let kinds = |kind: EventKind| report.events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(kinds(EventKind::Kill), 2, "{:?}", report.events);
    assert_eq!(kinds(EventKind::Restart), 2, "{:?}", report.events);
    assert_eq!(report.recoveries.len(), 2);
    let first = &report.recoveries[0];
    let restarted = first.restarted_at.expect("restarted before the next kill");
    let resumed = first
        .resumed_at
        .expect("commits resumed before the next kill");
    assert!(
        first.kill_at < restarted && first.kill_at < resumed,
        "{first:?}"
    );
    // The writers' load, second by second, adds up to what they wrote.
    let written: u64 = report.load.values().flatten().map(|s| s.ok).sum();
    assert_eq!(
        written,
        figure(&report, "acknowledged"),
        "{:?}",
        report.load
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_recovery_can_run_pg_amcheck_after_every_crash_round() {
    let report = scenario(
        "crash-recovery",
        ScenarioOptions {
            amcheck_each_round: true,
            ..options()
        },
    )
    .await;
    assert!(report.success, "crash-recovery failed");
    let mut names: Vec<&str> = checks(&report, "pg_amcheck")
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "pg_amcheck reports no corruption",
            "pg_amcheck reports no corruption after crash 1",
            "pg_amcheck reports no corruption after crash 2",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_check_after_a_crash_round_catches_the_index_damaged_in_that_round() {
    let report = scenario(
        "crash-recovery",
        ScenarioOptions {
            amcheck_each_round: true,
            fault: Some(Fault::CorruptLedgerIndex),
            rounds: 1,
            ..options()
        },
    )
    .await;
    assert!(!report.success);
    let first = check(&report, "no corruption after crash 1");
    assert!(!first.passed, "{first:?}");
    assert!(
        first
            .evidence
            .iter()
            .any(|l| l.contains("stormchor_ledger_pkey")),
        "{:?}",
        first.evidence
    );
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
    // A failed check fails the report; the coordinator still runs the checks after it.
    assert_eq!(coordinator.phase.as_deref(), Some("verify"));
    assert!(check(&report, "pg_amcheck").passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_restore_restores_the_recorded_point_exactly() {
    let report = scenario("backup-restore", options()).await;
    assert!(report.success, "backup-restore failed");
    assert!(check(&report, "pg_verifybackup").passed);
    let checksums = check(&report, "checksums at point 0");
    assert!(checksums.passed && checksums.evidence.is_empty());
    let catalogs = checks(&report, "catalog matches the schema");
    assert_eq!(catalogs.len(), 2, "one per worker");
    assert!(catalogs.iter().all(|c| c.passed));
    assert!(figure(&report, "stress_actions") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_restore_catches_a_corrupted_restored_table() {
    let report = scenario(
        "backup-restore",
        ScenarioOptions {
            fault: Some(Fault::CorruptRestoredTable),
            ..options()
        },
    )
    .await;
    assert!(!report.success);
    let checksums = check(&report, "checksums at point 0");
    assert!(!checksums.passed);
    assert!(
        checksums
            .evidence
            .iter()
            .any(|l| l.contains("found 0 rows")),
        "{:?}",
        checksums.evidence
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_restore_catches_a_skipped_wal_replay() {
    // The workers load on after the backup ended: the point is always beyond it.
    let report = scenario(
        "backup-restore",
        ScenarioOptions {
            fault: Some(Fault::SkipWalReplay),
            ..options()
        },
    )
    .await;
    assert!(!report.success);
    assert!(!check(&report, "checksums at point 0").evidence.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pitr_restores_every_recorded_point() {
    let report = scenario("pitr", options()).await;
    assert!(report.success, "pitr failed");
    for point in 0..2 {
        assert!(check(&report, &format!("checksums at point {point}")).passed);
    }
    assert_eq!(figure(&report, "restores"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pitr_catches_a_skipped_wal_replay() {
    let report = scenario(
        "pitr",
        ScenarioOptions {
            fault: Some(Fault::SkipWalReplay),
            ..options()
        },
    )
    .await;
    assert!(!report.success);
    let first = check(&report, "checksums at point 0");
    assert!(!first.passed);
    assert!(
        first
            .evidence
            .iter()
            .any(|l| l.contains("is missing") || l.contains("expected")),
        "{:?}",
        first.evidence
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_keeps_every_acknowledged_write() {
    let report = scenario("failover", options()).await;
    assert!(report.success, "failover failed");
    assert_eq!(figure(&report, "kills"), 1);
    assert_eq!(figure(&report, "promotions"), 1);
    assert_eq!(figure(&report, "acknowledged"), figure(&report, "found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_catches_a_deleted_acknowledged_row() {
    let report = scenario(
        "failover",
        ScenarioOptions {
            fault: Some(Fault::DeleteAcknowledgedRow),
            ..options()
        },
    )
    .await;
    assert!(!report.success);
    assert!(!check(&report, "acknowledged transaction is whole").passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn existing_database_discovers_and_validates_the_schemas_it_is_given() {
    use stormchor::postgres::Schemas;
    let two = || ScenarioOptions {
        schema_file: Some("tests/data/two_schemas.sql".into()),
        ..options()
    };
    // By default only `public`: its 2 tables, dealt out to the workers.
    let report = scenario("existing-database", two()).await;
    assert!(report.success, "existing-database failed");
    assert_eq!(figure(&report, "tables_discovered"), 2);
    // `public` and `sales`: 7 tables, and every worker's catalog still exact.
    let report = scenario(
        "existing-database",
        ScenarioOptions {
            discover_schemas: Some(Schemas::Named(vec!["public".into(), "sales".into()])),
            ..two()
        },
    )
    .await;
    assert!(report.success, "existing-database on two schemas failed");
    assert_eq!(figure(&report, "tables_discovered"), 7);
    assert!(
        checks(&report, "catalog matches the schema")
            .iter()
            .all(|c| c.passed)
    );
    // Every schema but the system's, and a table dropped behind a catalog is caught.
    let report = scenario(
        "existing-database",
        ScenarioOptions {
            discover_schemas: Some(Schemas::AllUser),
            fault: Some(Fault::DropTableBehindCatalog),
            ..two()
        },
    )
    .await;
    assert!(!report.success);
    assert!(
        checks(&report, "catalog matches the schema")
            .iter()
            .any(|c| !c.passed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn existing_database_keeps_the_catalog_exact() {
    let report = scenario("existing-database", options()).await;
    assert!(report.success, "existing-database failed");
    assert!(
        figure(&report, "tables_discovered") >= 7,
        "the schema file's tables are discovered"
    );
    let catalogs = checks(&report, "catalog matches the schema");
    assert_eq!(catalogs.len(), 2, "one per worker");
    assert!(catalogs.iter().all(|c| c.passed));
    // The stress workers' load, second by second, adds up to every action they ran.
    let ran: u64 = report
        .load
        .values()
        .flatten()
        .map(|s| s.ok + s.errors)
        .sum();
    assert_eq!(ran, figure(&report, "stress_actions"), "{:?}", report.load);
    assert_eq!(
        report.load.len(),
        2,
        "one load per worker: {:?}",
        report.load
    );
    // Each worker's stress load, with its figures per action, reaches the JSON report:
    // its actions add up to that worker's load seconds, and over every load, to the
    // merged actions.
    let json = report.to_json().expect("the report as JSON");
    let loads = json["stress"].as_array().expect("stress loads");
    assert_eq!(loads.len(), 2, "one stress load per worker: {json:#}");
    let count = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("a count: {v}"));
    for load in loads {
        let role = load["role"].as_str().expect("its role");
        let runs: u64 = load["actions"]
            .as_object()
            .expect("its actions")
            .values()
            .map(|a| count(&a["runs"]))
            .sum();
        let seconds: u64 = report.load[role].iter().map(|s| s.ok + s.errors).sum();
        assert!(runs > 0, "{load:#}");
        assert_eq!(runs, seconds, "{role}: {load:#}");
    }
    for (action, merged) in &report.actions {
        let per_load: u64 = loads
            .iter()
            .map(|l| l["actions"][action]["runs"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(per_load, merged.runs, "{action}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn existing_database_catches_a_table_dropped_behind_the_catalog() {
    let report = scenario(
        "existing-database",
        ScenarioOptions {
            fault: Some(Fault::DropTableBehindCatalog),
            ..options()
        },
    )
    .await;
    assert!(!report.success);
    // The fault drops a table of worker 0's share: its check fails, the other holds.
    let validation = check(&report, "Worker(0)'s catalog matches the schema");
    assert!(!validation.passed);
    assert!(
        validation
            .evidence
            .iter()
            .any(|l| l.contains("in the catalog but not in the database")),
        "{:?}",
        validation.evidence
    );
    assert!(check(&report, "Worker(1)'s catalog matches the schema").passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn isolation_cases_behave_as_documented() {
    let report = scenario("isolation", options()).await;
    assert_eq!(report.checks.len(), 12);
    let failed: Vec<_> = report.failed_checks().collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(report.success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn isolation_catches_a_weaker_level() {
    let report = scenario(
        "isolation",
        ScenarioOptions {
            fault: Some(Fault::WeakerIsolation),
            ..options()
        },
    )
    .await;
    assert!(!report.success);
    let failed: Vec<&str> = report.failed_checks().map(|c| c.name.as_str()).collect();
    // Every case that relies on its level being strong enough now fails; the cases
    // about what a level allows still pass.
    assert_eq!(
        failed,
        [
            "non-repeatable read at read committed",
            "phantom read at read committed",
            "lost update at read committed",
            "read skew at read committed",
            "write skew at repeatable read",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_recovery_catches_a_corrupted_index_with_pg_amcheck() {
    let report = scenario(
        "crash-recovery",
        ScenarioOptions {
            fault: Some(Fault::CorruptLedgerIndex),
            ..options()
        },
    )
    .await;
    assert!(!report.success);
    let amcheck = check(&report, "pg_amcheck");
    assert!(!amcheck.passed);
    assert!(
        amcheck
            .evidence
            .iter()
            .any(|l| l.contains("stormchor_ledger_pkey")),
        "{:?}",
        amcheck.evidence
    );
}

#[test]
fn every_builtin_scenario_is_registered_once_with_its_faults() {
    let registry = registry();
    let names: Vec<&str> = registry.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "backup-restore",
            "crash-recovery",
            "pitr",
            "failover",
            "existing-database",
            "isolation",
            "stress-check"
        ]
    );
    // Every fault is injected by some scenario, and a scenario refuses the others.
    for (_, fault) in Fault::ALL {
        assert!(
            registry.iter().any(|s| s.faults().contains(&fault)),
            "{fault} is injected nowhere"
        );
    }
    let options = ScenarioOptions {
        fault: Some(Fault::WeakerIsolation),
        ..ScenarioOptions::short()
    };
    let error = registry
        .check("backup-restore", &options)
        .err()
        .expect("refused");
    assert!(
        error
            .to_string()
            .contains("corrupt-restored-table, skip-wal-replay"),
        "{error}"
    );
    let unknown = registry
        .check("backup-restor", &ScenarioOptions::short())
        .err()
        .expect("refused");
    assert!(
        unknown
            .to_string()
            .contains("did you mean `backup-restore`"),
        "{unknown}"
    );
}

#[test]
fn every_scenario_projects_and_draws() {
    for scenario in registry().iter() {
        let locals = scenario.local_programs(&options()).expect("sound");
        assert!(locals.len() >= 3, "{}: {locals:?}", scenario.name());
        let diagram = scenario.diagram(&options());
        assert!(
            diagram.starts_with("sequenceDiagram"),
            "{}: {diagram}",
            scenario.name()
        );
    }
}

/// Each scenario's SVG diagram is well-formed SVG with a box for every participant
/// and an arrow for every message of its mermaid diagram.
#[test]
fn every_scenario_draws_as_svg_with_every_participant_and_message() {
    for scenario in registry().iter() {
        let name = scenario.name();
        let svg = scenario.svg(&options());
        let document = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("{name}: the SVG does not parse: {e}\n{svg}"));
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "svg", "{name}");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        let mermaid = scenario.diagram(&options());
        let texts: Vec<&str> = document.descendants().filter_map(|n| n.text()).collect();
        let heads = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("head"))
            .count();
        let roles = scenario.local_programs(&options()).expect("sound").len();
        assert_eq!(
            heads,
            2 * roles,
            "{name}: a box above and below each role's lifeline"
        );
        for participant in mermaid
            .lines()
            .filter_map(|l| l.trim().strip_prefix("participant "))
        {
            let (_, role) = participant.split_once(" as ").expect("an alias");
            assert!(texts.contains(&role), "{name}: no box for {role}");
        }
        let arrows = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("msg"))
            .count();
        let messages = mermaid.lines().filter(|l| l.contains("->>")).count();
        assert_eq!(arrows, messages, "{name}: arrows in the SVG vs messages");
        assert!(messages > 0 || name == "isolation", "{name} sends nothing?");
        let notes = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("note"))
            .count();
        assert_eq!(notes, mermaid.matches("Note over").count(), "{name}: notes");
    }
}
