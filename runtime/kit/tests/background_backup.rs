//! Bad input to the background backup effects is refused with an error naming it,
//! before anything starts. (A real run: `examples/scenario-crate`.)

use std::time::Duration;

use stormchor_kit::effects::{FinishBackup, StartBackup};
use stormchor_kit::slots::PRIMARY;
use stormchor_kit::{DbEffect, Node, ScenarioOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn a_rate_pg_basebackup_refuses_is_named() {
    let node = Node::new("Backup", None, &ScenarioOptions::short());
    for rate in [0, 31, 1_048_577] {
        let error = runtime()
            .block_on(
                StartBackup {
                    of: PRIMARY,
                    max_rate_kb: Some(rate),
                }
                .run(&node),
            )
            .expect_err("refused");
        let text = error.to_string();
        assert!(
            text.contains(&format!("max_rate_kb {rate}")) && text.contains("Backup"),
            "{text}"
        );
    }
}

#[test]
fn starting_without_a_server_names_the_missing_value() {
    let node = Node::new("Backup", None, &ScenarioOptions::short());
    let error = runtime()
        .block_on(
            StartBackup {
                of: PRIMARY,
                max_rate_kb: None,
            }
            .run(&node),
        )
        .expect_err("no server to back up");
    assert!(error.to_string().contains("`primary`"), "{error}");
}

#[test]
fn finishing_a_backup_never_started_is_an_error() {
    let node = Node::new("Backup", None, &ScenarioOptions::short());
    let error = runtime()
        .block_on(
            FinishBackup {
                within: Duration::from_secs(1),
            }
            .run(&node),
        )
        .expect_err("nothing to finish");
    assert!(
        error.to_string().contains("started no base backup"),
        "{error}"
    );
}
