//! `scripts/run-over-ssh` (docs/multi-host.md) with `ssh` and `scp` replaced by local
//! stand-ins: every "host" is this machine and every role listens on loopback, so the
//! script's own work (the peers file, starting each role with the run's options,
//! collecting the results and the exit statuses) is what is tested, not SSH.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("mode");
    path.display().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a port")
}

fn run_over_ssh(dir: &Path, hosts: &str, args: &[&str]) -> Output {
    let hosts_file = dir.join("hosts.txt");
    std::fs::write(&hosts_file, hosts).expect("written");
    // `ssh DEST COMMAND` runs COMMAND here; `scp [HOST:]SRC [HOST:]DST` copies here.
    let ssh = script(dir, "fake-ssh", "shift\nexec sh -c \"$1\"");
    let scp = script(dir, "fake-scp", "exec cp \"${1#*:}\" \"${2#*:}\"");
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run-over-ssh"))
        .args(["crash-recovery"])
        .arg(&hosts_file)
        .args(args)
        .env("SSH", ssh)
        .env("SCP", scp)
        .env("STORMCHOR", env!("CARGO_BIN_EXE_stormchor"))
        .env("REMOTE_DIR", dir.join("remote"))
        .env("OUT", dir.join("results"))
        .env_remove("STORMCHOR_TARGET")
        .output()
        .expect("runs")
}

#[test]
fn the_ssh_script_runs_every_role_and_collects_their_results() {
    let dir = tempfile::tempdir().expect("dir");
    let hosts = format!(
        "# role  destination  address\nCoordinator  host-a  127.0.0.1:{}\nPrimary  host-b  127.0.0.1:{}\n\"Worker(0)\"  host-c  127.0.0.1:{}\n",
        free_port(),
        free_port(),
        free_port()
    );
    let output = run_over_ssh(
        dir.path(),
        &hosts,
        &[
            "--workers",
            "1",
            "--duration",
            "1",
            "--rounds",
            "1",
            "--seed",
            "3",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for role in ["Coordinator", "Primary", "Worker(0)"] {
        assert!(
            stdout.contains(&format!("{role}: exit 0, result in")),
            "{role}: {stdout}"
        );
        let file = dir.path().join("results").join(format!(
            "result-{}.json",
            role.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ));
        let result: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("a result")).expect("JSON");
        assert_eq!(result["role"], role);
        assert_eq!(result["completed"], true, "{result}");
    }
    // Each role's own output, prefixed with its name: the coordinator's checks.
    assert!(stdout.contains("[Coordinator] ## Checks"), "{stdout}");
}

#[test]
fn the_ssh_script_refuses_a_bad_hosts_file_naming_the_line() {
    let dir = tempfile::tempdir().expect("dir");
    let output = run_over_ssh(dir.path(), "Coordinator host-a\n", &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("hosts.txt:1: expected `ROLE SSH-DESTINATION HOST:PORT`"),
        "{stderr}"
    );
}
