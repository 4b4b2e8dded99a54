//! Nothing outlives a run: no task, no socket, also when roles fail. One test in its
//! own binary, so no other test opens sockets meanwhile.

#[path = "../../choreography/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use stormchor_runtime::tcp::run_all_over_tcp;
use stormchor_runtime::{RoleSetup, RunConfig, run_all};
use support::*;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|entries| entries.count())
        .unwrap_or(0)
}

#[test]
fn failed_runs_leave_no_task_and_no_socket_behind() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = RunConfig::default().with_deadline(Duration::from_secs(10));
    let before = open_descriptors();
    for name in ["timeout", "ping-pong", "family-4"] {
        let (program, data) = scenario(name);
        let registry = registry();
        rt.block_on(async {
            let memory = run_all(
                &program,
                |r| RoleSetup::with_registry(data(r), registry.clone()),
                config.clone(),
            )
            .await
            .expect("sound");
            assert_eq!(memory.is_success(), name != "timeout");
            let tcp = run_all_over_tcp(
                &program,
                |r| RoleSetup::with_registry(data(r), registry.clone()),
                config.clone(),
                Duration::from_secs(10),
            )
            .await
            .expect("set up");
            assert_eq!(tcp.outcomes.len(), program.roles().len());
            assert_eq!(tcp.is_success(), name != "timeout");
            // Give aborted tasks a moment to be dropped by the scheduler.
            for _ in 0..100 {
                if tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks()
                    == 0
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks(),
                0,
                "{name}: tasks left"
            );
        });
        assert_eq!(open_descriptors(), before, "{name}: sockets left open");
    }
}
