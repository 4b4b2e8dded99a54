//! Hosts, simulated: every role of a scenario in a network namespace of its own, with
//! its own address on a bridge the test makes (and always removes), its servers
//! listening on that address only, and the roles reaching each other and each other's
//! servers across namespaces; and a partition (one namespace's link cut mid-run), which
//! its peers find by its silence. Needs root and `ip`; without them the tests say why and
//! skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{children_of, ledger_rows};

use stormchor::kit::{RoleResult, ScenarioReport};

/// Runs `ip ARGS`; its error output when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The namespaces, links and bridge of one test, and the role processes started in
/// them: all removed (the processes killed first) when dropped, whatever happened.
struct Hosts {
    bridge: String,
    namespaces: Vec<String>,
    links: Vec<String>,
    children: Vec<Child>,
}

impl Hosts {
    /// One namespace per address `10.213.{net}.{2 + i}/24`, on a bridge of its own.
    fn new(net: u8, count: usize) -> Result<Hosts, String> {
        let tag = format!("{}{net}", std::process::id() % 100_000);
        let mut hosts = Hosts {
            bridge: format!("stb{tag}"),
            namespaces: Vec::new(),
            links: Vec::new(),
            children: Vec::new(),
        };
        ip(&["link", "add", &hosts.bridge, "type", "bridge"])?;
        ip(&["link", "set", &hosts.bridge, "up"])?;
        for i in 0..count {
            let namespace = format!("stormchor-{tag}-{i}");
            ip(&["netns", "add", &namespace])?;
            hosts.namespaces.push(namespace.clone());
            let link = format!("stv{tag}{i}");
            ip(&[
                "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
            ])?;
            hosts.links.push(link.clone());
            ip(&["link", "set", &link, "master", &hosts.bridge])?;
            ip(&["link", "set", &link, "up"])?;
            let address = format!("{}/24", Hosts::address(net, i));
            for args in [
                vec!["addr", "add", &address, "dev", "eth0"],
                vec!["link", "set", "eth0", "up"],
                vec!["link", "set", "lo", "up"],
            ] {
                let mut all = vec!["netns", "exec", &namespace, "ip"];
                all.extend(args);
                ip(&all)?;
            }
        }
        Ok(hosts)
    }

    fn address(net: u8, i: usize) -> String {
        format!("10.213.{net}.{}", 2 + i)
    }

    /// A namespace on the same bridge but on another subnet (`10.214.{net}.2/24`),
    /// routed to the hosts' subnet and host `reaches` routed back to it: a client
    /// from outside the run's network that can reach that host. Its index.
    fn add_outsider(&mut self, net: u8, reaches: usize) -> Result<usize, String> {
        let i = self.namespaces.len();
        let namespace = format!("{}-outside", self.namespaces[0]);
        ip(&["netns", "add", &namespace])?;
        self.namespaces.push(namespace.clone());
        let link = format!("{}o", self.links[0]);
        ip(&[
            "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
        ])?;
        self.links.push(link.clone());
        ip(&["link", "set", &link, "master", &self.bridge])?;
        ip(&["link", "set", &link, "up"])?;
        let (address, hosts, outside) = (
            format!("{}/24", Hosts::outsider_address(net)),
            format!("10.213.{net}.0/24"),
            format!("10.214.{net}.0/24"),
        );
        for (inside, args) in [
            (&namespace, vec!["addr", "add", &address, "dev", "eth0"]),
            (&namespace, vec!["link", "set", "eth0", "up"]),
            (&namespace, vec!["route", "add", &hosts, "dev", "eth0"]),
            (
                &self.namespaces[reaches],
                vec!["route", "add", &outside, "dev", "eth0"],
            ),
        ] {
            let mut all = vec!["netns", "exec", inside.as_str(), "ip"];
            all.extend(args);
            ip(&all)?;
        }
        Ok(i)
    }

    fn outsider_address(net: u8) -> String {
        format!("10.214.{net}.2")
    }

    /// Starts `program ARGS` in namespace `i`, its output into `log`.
    fn spawn(
        &mut self,
        i: usize,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> Result<(), String> {
        let file = std::fs::File::create(log)
            .map_err(|e| format!("cannot make {}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespaces[i]])
            .arg(program)
            .args(args)
            .env_remove("STORMCHOR_TARGET")
            .env_remove("STORMCHOR_JSON")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("cannot start a role in {}: {e}", self.namespaces[i]))?;
        self.children.push(child);
        Ok(())
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for namespace in &self.namespaces {
            if let Err(error) = ip(&["netns", "del", namespace]) {
                eprintln!("cleanup: {error}");
            }
        }
        for link in &self.links {
            // Gone with its peer's namespace already, normally.
            let _ = ip(&["link", "del", link]);
        }
        if let Err(error) = ip(&["link", "del", &self.bridge]) {
            eprintln!("cleanup: {error}");
        }
    }
}

/// What `psql` says, run in `namespace`, connecting over TCP to `host:port`: its
/// standard output when it connected, its error when not.
fn psql_from(namespace: &str, host: &str, port: &str) -> Result<String, String> {
    let output = Command::new("ip")
        .args(["netns", "exec", namespace])
        .arg(common::psql())
        .args([
            "-X", "-At", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres",
        ])
        .args(["-c", "SELECT 'admitted'"])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if output.status.success() {
        Ok(common::text(&output.stdout))
    } else {
        Err(common::text(&output.stderr))
    }
}

/// The server at `server` (`host:port`) admits a client from the run's subnet (in
/// namespace `insider`) and refuses one from another subnet that reaches it (in
/// namespace `outsider`), by its `pg_hba.conf`. Polls each (the server may be
/// between a start and a stop) while `running` says the run goes on.
fn admits_its_subnet_only(
    hosts: &Hosts,
    server: &str,
    (insider, outsider): (usize, usize),
    mut running: impl FnMut() -> bool,
) -> Result<(), String> {
    let (host, port) = server.rsplit_once(':').expect("host:port");
    let limit = Instant::now() + Duration::from_secs(60);
    let mut last = (None, None);
    while running() && Instant::now() < limit {
        if last.0.is_none() {
            if let Ok(out) = psql_from(&hosts.namespaces[insider], host, port) {
                last.0 = Some(out);
            }
        }
        if last.1.is_none() {
            match psql_from(&hosts.namespaces[outsider], host, port) {
                Ok(out) => {
                    return Err(format!(
                        "a client from outside the run's subnet was admitted: {out}"
                    ));
                }
                Err(error) if error.contains("no pg_hba.conf entry for host") => {
                    last.1 = Some(error);
                }
                // Not up (yet, or any more): ask again.
                Err(_) => {}
            }
        }
        if let (Some(admitted), Some(refused)) = &last {
            println!(
                "from the run's subnet: {}; from outside it: {}",
                admitted.trim(),
                refused.trim()
            );
            return if admitted.trim() == "admitted" {
                Ok(())
            } else {
                Err(format!("the insider's query said {admitted:?}"))
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "the server at {server} did not answer both clients: {last:?}"
    ))
}

/// The local addresses of the TCP sockets listening in `namespace`.
fn listening(namespace: &str) -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "exec", namespace, "ss", "-ltnH"])
        .output()
        .expect("ss runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3).map(str::to_owned))
        .collect()
}

/// Why namespaces cannot be made here, if they cannot.
fn cannot_make_namespaces(net: u8) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root: network namespaces need root".to_owned());
    }
    if Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Some("no `ip` command (iproute2)".to_owned());
    }
    let probe = format!("stormchor-probe-{}-{net}", std::process::id());
    match ip(&["netns", "add", &probe]) {
        Ok(()) => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Err(error) => Some(format!("cannot make a network namespace: {error}")),
    }
}

/// Writes the peers file (every role on its namespace's address, port 7400) and starts
/// every role in its namespace; returns where each writes its result and its output.
fn start_roles(
    hosts: &mut Hosts,
    dir: &Path,
    scenario: &str,
    roles: &[&str],
    net: u8,
    options: &[&str],
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut peers = String::from("[roles]\n");
    for (i, role) in roles.iter().enumerate() {
        peers.push_str(&format!("{role:?} = \"{}:7400\"\n", Hosts::address(net, i)));
    }
    // Where each role's servers listen: its own host's address (the default, said
    // explicitly here for the node roles).
    peers.push_str("\n[servers]\n");
    for (i, role) in roles.iter().enumerate() {
        if ["Primary", "Backup", "Replica"].contains(role) {
            peers.push_str(&format!("{role} = \"{}\"\n", Hosts::address(net, i)));
        }
    }
    let peers_file = dir.join("peers.toml");
    std::fs::write(&peers_file, &peers).expect("written");
    let program = PathBuf::from(env!("CARGO_BIN_EXE_stormchor"));
    let results: Vec<PathBuf> = (0..roles.len())
        .map(|i| dir.join(format!("role-{i}.json")))
        .collect();
    let logs: Vec<PathBuf> = (0..roles.len())
        .map(|i| dir.join(format!("role-{i}.log")))
        .collect();
    for (i, role) in roles.iter().enumerate() {
        let mut args: Vec<String> = ["role", scenario, role, "--peers"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.push(peers_file.display().to_string());
        args.extend(["--result".to_owned(), results[i].display().to_string()]);
        args.extend(options.iter().map(|s| (*s).to_owned()));
        hosts.spawn(i, &program, &args, &logs[i]).expect("started");
    }
    (results, logs)
}

/// Runs every role of `scenario` in a namespace of its own and merges their results.
fn run_on_hosts(
    scenario: &str,
    roles: &[&str],
    net: u8,
    options: &[&str],
) -> Option<ScenarioReport> {
    if let Some(why) = cannot_make_namespaces(net) {
        println!("SKIPPED: {why}");
        return None;
    }
    let mut hosts = Hosts::new(net, roles.len()).expect("the namespaces and the bridge are made");
    let node = roles
        .iter()
        .position(|r| *r == "Primary")
        .expect("a Primary");
    let outsider = hosts
        .add_outsider(net, node)
        .expect("the outsider's namespace is made");
    let dir = tempfile::tempdir().expect("dir");
    let began = Instant::now();
    let (results, logs) = start_roles(&mut hosts, dir.path(), scenario, roles, net, options);
    // Every role ends on its own (each wait of a role is bounded); this bound only
    // keeps a broken run from hanging the suite.
    let limit = Instant::now() + Duration::from_secs(600);
    // The first node role's server, once it listens, listens on its host's address
    // only: every listening socket of that namespace is there (the role's own, and
    // the server's).
    let host = Hosts::address(net, node);
    let sockets = loop {
        let sockets = listening(&hosts.namespaces[node]);
        if sockets.iter().any(|s| !s.ends_with(":7400")) {
            break sockets;
        }
        assert!(
            Instant::now() < limit && hosts.children[node].try_wait().expect("waits").is_none(),
            "the Primary's server never listened: {sockets:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        sockets.iter().all(|s| s.starts_with(&format!("{host}:"))),
        "the Primary's namespace listens elsewhere than on {host}: {sockets:?}"
    );
    // And it lets in the run's subnet only: a worker's host is admitted, a host of
    // another subnet that reaches it is refused.
    let server = sockets
        .iter()
        .find(|s| !s.ends_with(":7400"))
        .expect("the server's socket");
    let worker = roles
        .iter()
        .position(|r| r.starts_with("Worker"))
        .expect("a worker");
    let primary = hosts.children[node].id();
    let running = || common::alive(primary);
    if let Err(error) = admits_its_subnet_only(&hosts, server, (worker, outsider), running) {
        panic!("{error}");
    }
    let mut outputs = Vec::new();
    for (i, child) in hosts.children.iter_mut().enumerate() {
        loop {
            match child.try_wait().expect("waits") {
                Some(status) => {
                    outputs.push((roles[i], status));
                    break;
                }
                None if Instant::now() > limit => panic!("{} did not end in time", roles[i]),
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    let mut merged = Vec::new();
    for (i, (role, status)) in outputs.iter().enumerate() {
        let log = std::fs::read_to_string(&logs[i]).unwrap_or_default();
        assert!(status.success(), "{role} ended with {status}:\n{log}");
        let text = std::fs::read_to_string(&results[i]).expect("a result");
        merged.push(serde_json::from_str::<RoleResult>(&text).expect("a role's result"));
    }
    let report = ScenarioReport::from_roles(scenario, 5, began.elapsed(), merged, String::new());
    println!("{}", report.render());
    Some(report)
}

#[test]
fn backup_restore_with_every_role_on_its_own_host() {
    let Some(report) = run_on_hosts(
        "backup-restore",
        &["Coordinator", "Primary", "Backup", "Worker(0)"],
        1,
        &["--workers", "1", "--duration", "2", "--seed", "5"],
    ) else {
        return;
    };
    assert!(report.success);
    let checksums = report
        .checks
        .iter()
        .find(|c| c.name == "checksums at point 0")
        .expect("compared");
    assert!(checksums.passed && checksums.summary.ends_with("; 0 differences"));
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "pg_verifybackup" && c.passed)
    );
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "Worker(0)'s catalog matches the schema" && c.passed)
    );
}

#[test]
fn failover_with_every_role_on_its_own_host() {
    let Some(report) = run_on_hosts(
        "failover",
        &["Coordinator", "Primary", "Replica", "Worker(0)"],
        2,
        &["--workers", "1", "--duration", "2", "--seed", "5"],
    ) else {
        return;
    };
    assert!(report.success);
    assert_eq!(
        report.figures.get("promotions"),
        Some(&serde_json::json!(1))
    );
    assert!(report.figures.get("acknowledged").and_then(|v| v.as_u64()) > Some(0));
    assert_eq!(
        report.figures.get("acknowledged"),
        report.figures.get("found")
    );
    assert!(report.checks.iter().all(|c| c.passed));
}

/// A partition: the coordinator's host is cut off (its link to the bridge down, so
/// nothing closes a connection and nothing more arrives) while the worker is inside a
/// 60 s load. With `--peer-silence 3` the worker and the primary's node find it silent
/// and fail where they are, naming it; the cut-off coordinator finds them silent too;
/// every role ends (its servers stopped) long before the load would have. Prints how
/// long after the cut each ended.
#[test]
fn a_partitioned_host_is_found_silent_by_its_peers() {
    let net = 3;
    if let Some(why) = cannot_make_namespaces(net) {
        println!("SKIPPED: {why}");
        return;
    }
    let roles = ["Coordinator", "Primary", "Worker(0)"];
    let mut hosts = Hosts::new(net, roles.len()).expect("the namespaces and the bridge are made");
    let dir = tempfile::tempdir().expect("dir");
    let options = [
        "--workers",
        "1",
        "--duration",
        "60",
        "--rounds",
        "1",
        "--seed",
        "5",
        "--peer-silence",
        "3",
    ];
    let (results, logs) = start_roles(
        &mut hosts,
        dir.path(),
        "crash-recovery",
        &roles,
        net,
        &options,
    );
    let primary = hosts.children[1].id();
    let limit = Instant::now() + Duration::from_secs(300);
    loop {
        let loading = children_of(primary)
            .iter()
            .any(|(pid, name)| name == "postgres" && ledger_rows(*pid) > Some(0));
        if loading {
            break;
        }
        assert!(
            Instant::now() < limit
                && hosts
                    .children
                    .iter_mut()
                    .all(|c| c.try_wait().expect("waits").is_none()),
            "the worker did not start its load:\n{}",
            logs.iter()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cut = Instant::now();
    ip(&["link", "set", &hosts.links[0], "down"]).expect("the coordinator is cut off");
    let mut ended: Vec<Option<Duration>> = vec![None; roles.len()];
    let mut statuses = vec![None; roles.len()];
    while statuses.iter().any(Option::is_none) {
        for (i, child) in hosts.children.iter_mut().enumerate() {
            if statuses[i].is_some() {
                continue;
            }
            if let Some(status) = child.try_wait().expect("waits") {
                statuses[i] = Some(status);
                ended[i] = Some(cut.elapsed());
            }
        }
        assert!(
            Instant::now() < limit + Duration::from_secs(60),
            "the roles did not end: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "cut off the coordinator: ended after {:?} ({roles:?})",
        ended
    );
    let result = |i: usize| -> RoleResult {
        serde_json::from_str(&std::fs::read_to_string(&results[i]).expect("a result"))
            .expect("JSON")
    };
    let worker = result(2);
    let failure = worker.failure.clone().unwrap_or_default();
    assert!(
        failure.starts_with("Worker(0) failed at ext WriteLedger")
            && failure.contains("peer Coordinator failed: nothing heard from it for 3."),
        "{failure}"
    );
    let coordinator = result(0).failure.unwrap_or_default();
    assert!(
        coordinator.contains("nothing heard from it for"),
        "{coordinator}"
    );
    for (i, status) in statuses.iter().enumerate() {
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", roles[i]);
    }
    // The primary's node stopped its server: nothing of it runs.
    assert!(
        children_of(primary).is_empty(),
        "{:?}",
        children_of(primary)
    );
}
