//! The TCP transport: the scenarios in one process and in separate OS processes,
//! handshake refusals, malformed and truncated frames, crashed peers, and a fuzzed
//! frame decoder.

#[path = "../../choreography/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use stormchor_choreography::project_all;
use stormchor_runtime::tcp::{
    self, LoopbackListeners, TcpError, decode_frame, fingerprint, loopback_addresses,
    run_all_over_tcp, run_role_over_tcp, run_role_over_tcp_on,
};
use stormchor_runtime::{RoleSetup, RunConfig, RunErrorKind, run_all};
use support::*;
use tokio::io::AsyncWriteExt;

const CONNECT: Duration = Duration::from_secs(10);
const CHILD_ENV: &str = "STORMCHOR_TCP_CHILD";

fn config() -> RunConfig {
    RunConfig::default().with_deadline(Duration::from_secs(20))
}

/// Every role's summary after an in-memory run of the scenario: the reference.
async fn in_memory(name: &str) -> BTreeMap<Role, Result<String, String>> {
    let (program, data) = scenario(name);
    let roles: Vec<Role> = program.roles().into_iter().collect();
    let registry = registry();
    let report = run_all(
        &program,
        |r| RoleSetup::with_registry(data(r), registry.clone()),
        config(),
    )
    .await
    .expect("sound");
    report
        .outcomes
        .iter()
        .map(|(role, outcome)| {
            let summary = match (&outcome.result, &outcome.state) {
                (Ok(()), Some(state)) => Ok(summary(state, &roles)),
                (Err(failure), _) => Err(failure.error.to_string()),
                (Ok(()), None) => Err("no state".to_owned()),
            };
            (*role, summary)
        })
        .collect()
}

async fn over_tcp_in_process(name: &str) -> BTreeMap<Role, Result<String, String>> {
    let (program, data) = scenario(name);
    let roles: Vec<Role> = program.roles().into_iter().collect();
    let registry = registry();
    let report = run_all_over_tcp(
        &program,
        |r| RoleSetup::with_registry(data(r), registry.clone()),
        config(),
        CONNECT,
    )
    .await
    .expect("set up");
    report
        .outcomes
        .into_iter()
        .map(|(role, outcome)| {
            let summary = match (outcome.result, outcome.state) {
                (Ok(()), Some(state)) => Ok(summary(&state, &roles)),
                (Err(failure), _) => Err(failure.error.to_string()),
                (Ok(()), None) => Err("no state".to_owned()),
            };
            (role, summary)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_gives_the_same_results_over_tcp_as_in_memory() {
    for name in [
        "ping-pong",
        "choice",
        "loop-until",
        "par",
        "family-1",
        "family-4",
        "family-16",
    ] {
        let reference = in_memory(name).await;
        assert!(
            reference.values().all(Result::is_ok),
            "{name}: {reference:?}"
        );
        assert_eq!(over_tcp_in_process(name).await, reference, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_over_tcp_fails_its_role_and_is_named_by_the_peer() {
    let outcomes = over_tcp_in_process("timeout").await;
    assert_eq!(
        outcomes[&Worker(0)],
        Err("timed out after 100ms".to_owned())
    );
    let coordinator = outcomes[&Coordinator].as_ref().expect_err("peer failed");
    assert!(
        coordinator.starts_with("peer Worker(0) failed: timed out after 100ms"),
        "{coordinator}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_running_another_program_refuse_to_start() {
    let (program, _) = scenario("ping-pong");
    let (other, _) = scenario("par");
    let other = other.then(program.clone());
    let mut listeners = LoopbackListeners::bind([Coordinator, Worker(0)]).expect("ports");
    let addresses = listeners.addresses().clone();
    let (coordinator, worker) = (
        listeners.take(Coordinator).expect("listener"),
        listeners.take(Worker(0)).expect("listener"),
    );
    let a = {
        let addresses = addresses.clone();
        tokio::spawn(async move {
            run_role_over_tcp_on(
                &program,
                Coordinator,
                coordinator,
                &addresses,
                RoleSetup::with_registry(Data::default(), registry()),
                config(),
                CONNECT,
            )
            .await
        })
    };
    // The worker side runs a different program, over the same roles' addresses.
    let fake_locals = project_all(&other).expect("sound");
    let b = tokio::spawn(async move {
        tcp::connect_on::<Role, Msg>(
            Worker(0),
            worker,
            &addresses,
            fingerprint(&fake_locals),
            CONNECT,
        )
        .await
    });
    let a = a.await.expect("joined").expect_err("refused");
    let b = b.await.expect("joined").expect_err("refused");
    for error in [a.to_string(), b.to_string()] {
        assert!(
            error.contains("it runs another program (fingerprint"),
            "{error}"
        );
    }
    assert!(matches!(a, TcpError::Handshake { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_other_terms_refuse_to_start_naming_the_peer_and_the_terms() {
    let (program, _) = scenario("ping-pong");
    let mut listeners = LoopbackListeners::bind([Coordinator, Worker(0)]).expect("ports");
    let addresses = listeners.addresses().clone();
    let (coordinator, worker) = (
        listeners.take(Coordinator).expect("listener"),
        listeners.take(Worker(0)).expect("listener"),
    );
    let run = |role: Role, listener, terms: tcp::Terms| {
        let (program, addresses) = (program.clone(), addresses.clone());
        tokio::spawn(async move {
            tcp::run_role_with(
                &program,
                role,
                listener,
                &addresses,
                RoleSetup::with_registry(Data::default(), registry()),
                config(),
                &tcp::RoleOptions::new(CONNECT).with_terms(terms),
            )
            .await
        })
    };
    let a = run(
        Coordinator,
        coordinator,
        tcp::Terms::new().with("seed", 1).with("workers", 1),
    );
    let b = run(
        Worker(0),
        worker,
        tcp::Terms::new().with("seed", 2).with("workers", 1),
    );
    let a = a.await.expect("joined").expect_err("refused").to_string();
    let b = b.await.expect("joined").expect_err("refused").to_string();
    // The coordinator (the lower role) dials Worker(0), which refuses it: both say
    // who and what.
    assert!(a.contains("handshake with Worker(0) at"), "{a}");
    assert!(b.contains("handshake with Coordinator at"), "{b}");
    for error in [&a, &b] {
        assert!(
            error.contains("the run's terms differ: seed is 2 at Worker(0), 1 at Coordinator"),
            "{error}"
        );
        assert!(!error.contains("workers"), "{error}");
    }
}

/// The handshake record a dialer sends, written by hand to play a misbehaving peer.
#[derive(Serialize, Deserialize)]
struct Hello {
    protocol: String,
    fingerprint: u64,
    from: String,
    to: String,
    terms: Vec<(String, String)>,
}

async fn raw_peer(
    addresses: &BTreeMap<Role, SocketAddr>,
    from: Role,
    to: Role,
    fingerprint: u64,
) -> tokio::net::TcpStream {
    raw_peer_with(addresses, (from, to), fingerprint, tcp::Liveness::default()).await
}

async fn raw_peer_with(
    addresses: &BTreeMap<Role, SocketAddr>,
    (from, to): (Role, Role),
    fingerprint: u64,
    liveness: tcp::Liveness,
) -> tokio::net::TcpStream {
    use bincode::Options;
    let mut stream = loop {
        match tokio::net::TcpStream::connect(addresses[&to]).await {
            Ok(stream) => break stream,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let hello = Hello {
        protocol: "stormchor/4".into(),
        fingerprint,
        from: format!("{from:?}"),
        to: format!("{to:?}"),
        terms: vec![("liveness".into(), liveness.to_string())],
    };
    let bytes = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .serialize(&hello)
        .expect("encode");
    stream
        .write_all(&(bytes.len() as u32).to_be_bytes())
        .await
        .expect("write");
    stream.write_all(&bytes).await.expect("write");
    let mut reply = [0u8; 8];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut reply)
        .await
        .expect("welcome");
    stream
}

async fn bad_bytes_fail_the_role(garbage: &[u8], close: bool) -> String {
    // Worker(0) (the higher role) listens; our raw peer plays the coordinator.
    let (program, data) = scenario("ping-pong");
    let locals = project_all(&program).expect("sound");
    let mut listeners = LoopbackListeners::bind([Coordinator, Worker(0)]).expect("ports");
    let addresses = listeners.addresses().clone();
    let listener = listeners.take(Worker(0)).expect("listener");
    let worker = {
        let addresses = addresses.clone();
        tokio::spawn(async move {
            run_role_over_tcp_on(
                &program,
                Worker(0),
                listener,
                &addresses,
                RoleSetup::with_registry(data(Worker(0)), registry()),
                config(),
                CONNECT,
            )
            .await
        })
    };
    let mut stream = raw_peer(&addresses, Coordinator, Worker(0), fingerprint(&locals)).await;
    stream.write_all(garbage).await.expect("write");
    if close {
        stream.shutdown().await.expect("shutdown");
    }
    let outcome = worker.await.expect("joined").expect("connected");
    let failure = outcome.result.expect_err("bad bytes");
    assert!(
        matches!(failure.error.kind(), RunErrorKind::PeerFailed { peer, .. } if peer == "Coordinator"),
        "{failure}"
    );
    failure.error.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_is_an_error_naming_the_peer() {
    let error = bad_bytes_fail_the_role(&[0, 0, 0, 3, 0xff, 0xff, 0xff], false).await;
    assert!(
        error.contains("it sent a malformed frame of 3 bytes"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_frame_is_an_error_naming_the_peer() {
    let error = bad_bytes_fail_the_role(&[0, 0, 0, 100, 1, 2, 3], true).await;
    assert!(
        error.contains("Coordinator failed: its connection broke"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_refused_without_allocating_it() {
    let error = bad_bytes_fail_the_role(&[0xff, 0xff, 0xff, 0xff], false).await;
    assert!(error.contains("its connection broke"), "{error}");
}

/// A message type with variable-size parts, to stress the decoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Rich {
    Text(String),
    Numbers(Vec<u64>),
    Nested(Option<Box<Rich>>, (u8, i64)),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_frame_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_frame::<Rich>(&bytes);
        let _ = decode_frame::<Msg>(&bytes);
    }
}

#[test]
fn encoded_frames_decode_to_themselves() {
    use bincode::Options;
    // The wire form of a frame, as the sender writes it (variant 0 of the wire record).
    let frame = stormchor_runtime::Frame::Message(Rich::Nested(
        Some(Box::new(Rich::Text("lsn".into()))),
        (7, -1),
    ));
    let mut bytes = 0u32.to_le_bytes().to_vec();
    bytes.extend(
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .serialize(&frame)
            .expect("encode"),
    );
    assert_eq!(decode_frame::<Rich>(&bytes), Ok(frame));
}

// ---------- separate OS processes ----------

/// Entry point of a child process: runs one role of a scenario over TCP and prints
/// how it ended. Run by the multi-process tests, not on its own.
#[test]
#[ignore = "a child process of the multi-process tests"]
fn tcp_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split(';');
    let (name, index, addresses) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("0"),
        parts.next().unwrap_or(""),
    );
    let (program, data) = scenario(name);
    let roles: Vec<Role> = program.roles().into_iter().collect();
    let index: usize = index.parse().expect("role index");
    let addresses: BTreeMap<Role, SocketAddr> = roles
        .iter()
        .copied()
        .zip(addresses.split(',').map(|a| a.parse().expect("address")))
        .collect();
    let role = roles[index];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let outcome = rt.block_on(run_role_over_tcp(
        &program,
        role,
        &addresses,
        RoleSetup::with_registry(data(role), registry()),
        config(),
        CONNECT,
    ));
    let line = match outcome {
        Ok(outcome) => match (outcome.result, outcome.state) {
            (Ok(()), Some(state)) => format!("OUTCOME ok {}", summary(&state, &roles)),
            (Err(failure), _) => format!(
                "OUTCOME err {} (at {}) after {} ms",
                failure.error,
                failure.effect,
                started.elapsed().as_millis()
            ),
            (Ok(()), None) => "OUTCOME err no state".to_owned(),
        },
        Err(error) => format!("OUTCOME err {error}"),
    };
    println!("{line}");
}

/// Starts one process per role of the scenario and returns each role's outcome line.
///
/// Each process binds its own port, chosen free here and released: another process may
/// take it in between. A run where a role could not listen is run again on new ports.
fn run_processes(name: &str) -> BTreeMap<Role, String> {
    for _ in 0..5 {
        let lines = run_processes_once(name);
        if !lines.values().any(|line| line.contains("cannot listen on")) {
            return lines;
        }
    }
    panic!("{name}: five runs in a row found a port taken");
}

fn run_processes_once(name: &str) -> BTreeMap<Role, String> {
    let (program, _) = scenario(name);
    let roles: Vec<Role> = program.roles().into_iter().collect();
    let addresses = loopback_addresses(roles.iter().copied()).expect("ports");
    let list: Vec<String> = roles.iter().map(|r| addresses[r].to_string()).collect();
    let exe = std::env::current_exe().expect("test binary");
    let mut children: Vec<(Role, Child)> = roles
        .iter()
        .enumerate()
        .map(|(i, role)| {
            let child = Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "tcp_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_ENV, format!("{name};{i};{}", list.join(",")))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn a role process");
            (*role, child)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = BTreeMap::new();
    for (role, child) in &mut children {
        // Reap every child; kill the ones that outlive the deadline.
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        let line = child
            .stdout
            .take()
            .map(BufReader::new)
            .and_then(|out| {
                out.lines()
                    .map_while(Result::ok)
                    .find_map(|l| l.find("OUTCOME").map(|at| l[at..].to_owned()))
            })
            .unwrap_or_else(|| "OUTCOME none (the process printed no outcome)".to_owned());
        lines.insert(*role, line);
    }
    lines
}

#[tokio::test]
async fn separate_processes_give_the_same_results_as_in_memory() {
    for name in [
        "ping-pong",
        "choice",
        "loop-until",
        "par",
        "family-1",
        "family-4",
        "family-16",
    ] {
        let reference = in_memory(name).await;
        let lines = run_processes(name);
        for (role, expected) in reference {
            let expected = format!("OUTCOME ok {}", expected.expect("reference run"));
            assert_eq!(lines[&role], expected, "{name}: {role:?}");
        }
    }
}

#[test]
fn a_crashed_process_is_named_by_every_peer() {
    let lines = run_processes("crash");
    // Backup exits in the middle of the run, without a goodbye; everybody waits on
    // something after that.
    assert!(
        lines[&Backup].starts_with("OUTCOME none"),
        "{}",
        lines[&Backup]
    );
    for role in [Coordinator, Worker(0), Worker(1)] {
        let line = &lines[&role];
        println!("{role:?}: {line}");
        // Each names Backup: directly, or through the peer it waited on, which failed because of it.
        assert!(line.starts_with("OUTCOME err peer "), "{role:?}: {line}");
        assert!(
            line.contains("Backup failed: its connection closed without a goodbye"),
            "{role:?}: {line}"
        );
    }
}

#[test]
fn a_timeout_in_its_own_process_is_named_by_the_peer() {
    let lines = run_processes("timeout");
    assert!(
        lines[&Worker(0)].starts_with("OUTCOME err timed out after 100ms"),
        "{}",
        lines[&Worker(0)]
    );
    assert!(
        lines[&Coordinator].starts_with("OUTCOME err peer Worker(0) failed: timed out after 100ms"),
        "{}",
        lines[&Coordinator]
    );
}

/// Backup's process ends (without a goodbye) while Worker(0) is an hour into an
/// effect: Worker(0) fails at that effect, naming Backup, long before the effect (or
/// the 20 s deadline) would end; the coordinator names Backup too.
#[test]
fn a_peer_that_dies_is_noticed_inside_a_long_effect() {
    let lines = run_processes("crash-in-effect");
    assert!(
        lines[&Backup].starts_with("OUTCOME none"),
        "{}",
        lines[&Backup]
    );
    let worker = &lines[&Worker(0)];
    assert!(
        worker.starts_with(
            "OUTCOME err peer Backup failed: its connection closed without a goodbye (at ext RunWorkload)"
        ),
        "{worker}"
    );
    assert!(
        lines[&Coordinator].contains("Backup failed: its connection closed without a goodbye"),
        "{}",
        lines[&Coordinator]
    );
    println!("Worker(0): {worker}");
}

/// In one process over TCP, a role whose handler panics is a failed role of the
/// report (not dropped), and a peer inside a long effect fails naming it, as in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_role_is_reported_failed_over_tcp_as_in_memory() {
    let (program, data) = scenario("panic-in-effect");
    let registry = registry();
    let setup = |r| RoleSetup::with_registry(data(r), registry.clone());
    let memory = run_all(&program, setup, config()).await.expect("sound");
    let tcp = run_all_over_tcp(&program, setup, config(), CONNECT)
        .await
        .expect("connected");
    for report in [&memory, &tcp] {
        assert_eq!(report.outcomes.len(), 3);
        let failures: BTreeMap<Role, String> = report
            .failures()
            .map(|(role, failure)| (*role, failure.to_string()))
            .collect();
        assert_eq!(
            failures[&Backup],
            "Backup failed at the whole program: peer Backup failed: it panicked"
        );
        assert!(report.outcomes[&Backup].state.is_none());
        let worker = &failures[&Worker(0)];
        assert!(
            worker.starts_with("Worker(0) failed at ext RunWorkload")
                && worker.contains("peer Backup failed: "),
            "{worker}"
        );
        assert!(
            failures[&Coordinator].contains("Backup failed"),
            "{failures:?}"
        );
    }
}

/// Roles over TCP take the same layers as in memory, and the layers see the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tcp_runner_takes_the_same_layers_as_in_memory() {
    use stormchor_runtime::{Layers, Metrics, MetricsLayer, TraceLayer, run_all_layered};
    let (program, data) = scenario("family-4");
    let registry = registry();
    let setup = |r| RoleSetup::with_registry(data(r), registry.clone());
    let (in_memory, over_tcp) = (Metrics::new(), Metrics::new());
    let layers = |metrics| {
        Layers::new()
            .with(TraceLayer)
            .with(MetricsLayer::new(metrics))
    };
    let memory = run_all_layered(&program, setup, config(), &layers(in_memory.clone()))
        .await
        .expect("sound");
    let tcp =
        tcp::run_all_over_tcp_layered(&program, setup, config(), CONNECT, layers(over_tcp.clone()))
            .await
            .expect("connected");
    assert!(memory.is_success() && tcp.is_success());
    let counts = |metrics: &Metrics| {
        metrics
            .snapshot()
            .into_iter()
            .map(|(op, stats)| (op, stats.count, stats.errors))
            .collect::<Vec<_>>()
    };
    assert!(
        counts(&in_memory)
            .iter()
            .any(|(op, n, _)| op == "send" && *n > 0)
    );
    assert_eq!(counts(&over_tcp), counts(&in_memory));
}

/// A peer that shook hands and then says nothing, not even a heartbeat, and keeps its
/// socket open (a host gone without closing anything): down after the silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_down_after_the_silence() {
    let liveness =
        tcp::Liveness::new(Duration::from_millis(100), Duration::from_secs(1)).expect("valid");
    let (program, data) = scenario("ping-pong");
    let locals = project_all(&program).expect("sound");
    let mut listeners = LoopbackListeners::bind([Coordinator, Worker(0)]).expect("ports");
    let addresses = listeners.addresses().clone();
    let listener = listeners.take(Worker(0)).expect("listener");
    let worker = {
        let addresses = addresses.clone();
        tokio::spawn(async move {
            tcp::run_role_with(
                &program,
                Worker(0),
                listener,
                &addresses,
                RoleSetup::with_registry(data(Worker(0)), registry()),
                config(),
                &tcp::RoleOptions::new(CONNECT).with_liveness(liveness),
            )
            .await
        })
    };
    let started = Instant::now();
    let _stream = raw_peer_with(
        &addresses,
        (Coordinator, Worker(0)),
        fingerprint(&locals),
        liveness,
    )
    .await;
    let outcome = worker.await.expect("joined").expect("connected");
    let waited = started.elapsed();
    let failure = outcome.result.expect_err("a silent peer");
    let error = failure.error.to_string();
    assert!(
        error.starts_with("peer Coordinator failed: nothing heard from it for 1.")
            && error.contains("peers send a heartbeat every 100ms"),
        "{error}"
    );
    assert!(waited >= Duration::from_secs(1), "down after {waited:?}");
}

/// A peer inside an effect three times as long as the silence is not down: its
/// heartbeats keep coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_peer_is_alive_while_its_heartbeats_come() {
    use stormchor_macros::ExtensionEffect;
    #[derive(Clone, Debug, ExtensionEffect)]
    struct Pause(#[participant] Role);
    let liveness =
        tcp::Liveness::new(Duration::from_millis(100), Duration::from_secs(1)).expect("valid");
    let program = P::new()
        .send(Coordinator, Worker(0), Msg::Start)
        .ext(Pause(Coordinator))
        .send(Coordinator, Worker(0), Msg::Stop);
    let mut registry = Registry::new();
    registry
        .register::<Pause, (), _>(|_, _| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok(())
            })
        })
        .expect("register");
    let registry = std::sync::Arc::new(registry);
    let mut listeners = LoopbackListeners::bind([Coordinator, Worker(0)]).expect("ports");
    let addresses = listeners.addresses().clone();
    let mut run = |role: Role| {
        let (program, addresses, registry) = (program.clone(), addresses.clone(), registry.clone());
        let listener = listeners.take(role).expect("listener");
        tokio::spawn(async move {
            tcp::run_role_with(
                &program,
                role,
                listener,
                &addresses,
                RoleSetup::with_registry(Data::default(), registry),
                config(),
                &tcp::RoleOptions::new(CONNECT).with_liveness(liveness),
            )
            .await
        })
    };
    let (coordinator, worker) = (run(Coordinator), run(Worker(0)));
    for outcome in [coordinator, worker] {
        let outcome = outcome.await.expect("joined").expect("connected");
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_other_liveness_refuse_to_start() {
    let (program, _) = scenario("ping-pong");
    let mut listeners = LoopbackListeners::bind([Coordinator, Worker(0)]).expect("ports");
    let addresses = listeners.addresses().clone();
    let mut run = |role: Role, silence: u64| {
        let (program, addresses) = (program.clone(), addresses.clone());
        let listener = listeners.take(role).expect("listener");
        let liveness = tcp::Liveness::new(Duration::from_secs(1), Duration::from_secs(silence))
            .expect("valid");
        tokio::spawn(async move {
            tcp::run_role_with(
                &program,
                role,
                listener,
                &addresses,
                RoleSetup::with_registry(Data::default(), registry()),
                config(),
                &tcp::RoleOptions::new(CONNECT).with_liveness(liveness),
            )
            .await
        })
    };
    let (a, b) = (run(Coordinator, 5), run(Worker(0), 10));
    let a = a.await.expect("joined").expect_err("refused").to_string();
    let b = b.await.expect("joined").expect_err("refused").to_string();
    for error in [&a, &b] {
        assert!(
            error.contains(
                "liveness is a heartbeat every 1s, down after 10s of silence at Worker(0), \
                 a heartbeat every 1s, down after 5s of silence at Coordinator"
            ),
            "{error}"
        );
    }
}

#[test]
fn liveness_must_allow_a_late_heartbeat() {
    let error = tcp::Liveness::new(Duration::from_secs(3), Duration::from_secs(5))
        .expect_err("too close")
        .to_string();
    assert!(
        error.contains("heartbeats must come at least twice as often"),
        "{error}"
    );
    assert!(tcp::Liveness::new(Duration::ZERO, Duration::from_secs(5)).is_err());
}
