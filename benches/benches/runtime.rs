//! The runtime's overhead against raw tokio, measured in the same run.
//!
//! Run: `cargo bench -p stormchor-benches --bench runtime`
//!
//! - ping-pong: a round trip between two tasks on a current-thread runtime, through
//!   the interpreter (a `loop_n` of two sends) against raw tokio mpsc channels
//!   (bounded and unbounded); goal: at most 1.3x the faster raw channel;
//! - TCP ping-pong: the same round trip over the TCP transport on loopback, against
//!   raw 8-byte writes and reads on a TCP socket; goal: at most 1.3x;
//! - extension dispatch: one extension effect through `ExtensionRegistry::handle`,
//!   and through the interpreter; goal: at most 50 ns per effect.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use stormchor_choreography::{Extension, Program, project_all};
use stormchor_macros::ExtensionEffect;
use stormchor_runtime::{EffectFailure, ExtensionRegistry, Interpreter, RoleState, memory_mesh};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::mpsc;

const ROUNDS: u64 = 100_000;

fn runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Raw ping-pong over unbounded channels: `rounds` round trips.
async fn raw_unbounded(rounds: u64) {
    let (to_b, mut at_b) = mpsc::unbounded_channel::<u64>();
    let (to_a, mut at_a) = mpsc::unbounded_channel::<u64>();
    let b = tokio::spawn(async move {
        while let Some(v) = at_b.recv().await {
            if to_a.send(v + 1).is_err() {
                break;
            }
        }
    });
    for i in 0..rounds {
        let _ = to_b.send(i);
        black_box(at_a.recv().await);
    }
    drop(to_b);
    let _ = b.await;
}

/// Raw ping-pong over bounded channels of capacity 1.
async fn raw_bounded(rounds: u64) {
    let (to_b, mut at_b) = mpsc::channel::<u64>(1);
    let (to_a, mut at_a) = mpsc::channel::<u64>(1);
    let b = tokio::spawn(async move {
        while let Some(v) = at_b.recv().await {
            if to_a.send(v + 1).await.is_err() {
                break;
            }
        }
    });
    for i in 0..rounds {
        let _ = to_b.send(i).await;
        black_box(at_a.recv().await);
    }
    drop(to_b);
    let _ = b.await;
}

/// The same ping-pong through two interpreters.
async fn interpreted(rounds: u64) {
    let program: Program<u8, u64> =
        Program::new().loop_n(rounds, Program::new().send(0, 1, 0).send(1, 0, 0));
    let locals = project_all(&program).expect("sound");
    let (mut handlers, _notifier) = memory_mesh::<u8, u64>(&[0, 1]);
    let mut b_end = handlers.pop().expect("b");
    let mut a_end = handlers.pop().expect("a");
    let b_local = locals[&1].clone();
    let b = tokio::spawn(async move {
        let registry = ExtensionRegistry::new();
        let state = RoleState::new(1u8, [0, 1], ());
        let interpreter = Interpreter::new(&state, &registry).with_trace(false);
        interpreter.run(&b_local, &mut b_end).await.0.is_ok()
    });
    let registry = ExtensionRegistry::new();
    let state = RoleState::new(0u8, [0, 1], ());
    let interpreter = Interpreter::new(&state, &registry).with_trace(false);
    let ok = interpreter.run(&locals[&0], &mut a_end).await.0.is_ok();
    assert!(ok && b.await.unwrap_or(false), "ping-pong failed");
}

/// The same ping-pong straight through two endpoints, without the interpreter.
async fn endpoints_only(rounds: u64) {
    use stormchor_runtime::Transport;
    let (mut handlers, _notifier) = memory_mesh::<u8, u64>(&[0, 1]);
    let mut b_end = handlers.pop().expect("b").transport;
    let mut a_end = handlers.pop().expect("a").transport;
    let b = tokio::spawn(async move {
        for _ in 0..rounds {
            let v = b_end.recv(0).await.unwrap_or(0);
            let _ = b_end.send(0, v + 1).await;
        }
    });
    for i in 0..rounds {
        let _ = a_end.send(1, i).await;
        black_box(a_end.recv(1).await.ok());
    }
    let _ = b.await;
}

/// Raw TCP ping-pong on loopback: 8 bytes each way per round trip.
async fn tcp_raw(rounds: u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let b = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let _ = stream.set_nodelay(true);
        let mut buf = [0u8; 8];
        for _ in 0..rounds {
            if stream.read_exact(&mut buf).await.is_err() || stream.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 8];
    for i in 0..rounds {
        let _ = stream.write_all(&i.to_le_bytes()).await;
        let _ = stream.read_exact(&mut buf).await;
    }
    let _ = b.await;
}

/// The same ping-pong through two interpreters connected by the TCP transport.
async fn tcp_interpreted(rounds: u64) {
    use stormchor_runtime::tcp::{LoopbackListeners, connect_on, fingerprint};
    let program: Program<u8, u64> =
        Program::new().loop_n(rounds, Program::new().send(0, 1, 0).send(1, 0, 0));
    let locals = project_all(&program).expect("sound");
    let mut listeners = LoopbackListeners::bind([0u8, 1]).expect("ports");
    let addresses = listeners.addresses().clone();
    let (a_listener, b_listener) = (
        listeners.take(0).expect("listener"),
        listeners.take(1).expect("listener"),
    );
    let print = fingerprint(&locals);
    let b_addresses = addresses.clone();
    let b_local = locals[&1].clone();
    let b = tokio::spawn(async move {
        let mut session =
            connect_on::<u8, u64>(1, b_listener, &b_addresses, print, Duration::from_secs(5))
                .await
                .expect("connect");
        let registry = ExtensionRegistry::new();
        let state = RoleState::new(1u8, [0, 1], ());
        let ok = Interpreter::new(&state, &registry)
            .with_trace(false)
            .run(&b_local, &mut session.handler)
            .await
            .0
            .is_ok();
        session.close(Ok(())).await;
        ok
    });
    let mut session =
        connect_on::<u8, u64>(0, a_listener, &addresses, print, Duration::from_secs(5))
            .await
            .expect("connect");
    let registry = ExtensionRegistry::new();
    let state = RoleState::new(0u8, [0, 1], ());
    let ok = Interpreter::new(&state, &registry)
        .with_trace(false)
        .run(&locals[&0], &mut session.handler)
        .await
        .0
        .is_ok();
    session.close(Ok(())).await;
    assert!(ok && b.await.unwrap_or(false), "TCP ping-pong failed");
}

#[derive(Clone, Debug, ExtensionEffect)]
struct Noop;

fn registry<E: Sync + 'static>() -> ExtensionRegistry<E> {
    let mut registry = ExtensionRegistry::new();
    registry
        .register_unit::<Noop, _>(|_, _| Box::pin(async { Ok::<_, EffectFailure>(()) }))
        .expect("register");
    registry
}

async fn dispatch(effects: u64) {
    let registry = registry::<()>();
    let effect = Extension::new(Noop);
    for _ in 0..effects {
        black_box(registry.handle(&(), black_box(&effect), &0u8).await.is_ok());
    }
}

async fn interpreted_effects(effects: u64) {
    let program: Program<u8, u64> = Program::new()
        .role(0)
        .loop_n(effects, Program::new().ext(Noop));
    let locals = project_all(&program).expect("sound");
    let (mut handlers, _notifier) = memory_mesh::<u8, u64>(&[0]);
    let mut handler = handlers.pop().expect("handler");
    let registry = registry();
    let state = RoleState::new(0u8, [0], ());
    let interpreter = Interpreter::new(&state, &registry).with_trace(false);
    assert!(interpreter.run(&locals[&0], &mut handler).await.0.is_ok());
}

/// Nanoseconds per round (or effect): the best of `samples` runs of `rounds`.
fn per_round<F: std::future::Future<Output = ()>>(
    rt: &Runtime,
    samples: usize,
    rounds: u64,
    run: impl Fn(u64) -> F,
) -> f64 {
    (0..samples)
        .map(|_| {
            let start = Instant::now();
            rt.block_on(run(rounds));
            start.elapsed().as_secs_f64() * 1e9 / rounds as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let rt = runtime();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    let mut group = criterion.benchmark_group("ping_pong_10k");
    group.bench_function("raw_unbounded", |b| {
        b.iter(|| rt.block_on(raw_unbounded(10_000)))
    });
    group.bench_function("raw_bounded", |b| {
        b.iter(|| rt.block_on(raw_bounded(10_000)))
    });
    group.bench_function("interpreter", |b| {
        b.iter(|| rt.block_on(interpreted(10_000)))
    });
    group.finish();
    let mut group = criterion.benchmark_group("tcp_ping_pong_2k");
    group.bench_function("raw_tcp", |b| b.iter(|| rt.block_on(tcp_raw(2_000))));
    group.bench_function("interpreter_tcp", |b| {
        b.iter(|| rt.block_on(tcp_interpreted(2_000)))
    });
    group.finish();
    let mut group = criterion.benchmark_group("extension_10k");
    group.bench_function("registry_handle", |b| {
        b.iter(|| rt.block_on(dispatch(10_000)))
    });
    group.bench_function("interpreter_ext", |b| {
        b.iter(|| rt.block_on(interpreted_effects(10_000)))
    });
    group.finish();
    criterion.final_summary();

    // Interleave the measurements so that the machine's state affects all alike, and
    // report the median of the ratios of back-to-back pairs: a noisy machine moves both
    // sides of a pair together.
    let (mut unbounded, mut bounded, mut interp, mut endpoints) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    for _ in 0..9 {
        let u = per_round(&rt, 2, ROUNDS, raw_unbounded);
        let b = per_round(&rt, 2, ROUNDS, raw_bounded);
        let i = per_round(&rt, 2, ROUNDS, interpreted);
        let e = per_round(&rt, 2, ROUNDS, endpoints_only);
        ratios.push(i / u.min(b));
        unbounded.push(u);
        bounded.push(b);
        interp.push(i);
        endpoints.push(e);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (unbounded, bounded, interp, endpoints) = (
        median(&mut unbounded),
        median(&mut bounded),
        median(&mut interp),
        median(&mut endpoints),
    );
    let ratio = median(&mut ratios);
    println!("\nping-pong round trip, current-thread runtime, medians of 9 rounds of {ROUNDS}:");
    println!("  raw mpsc unbounded     {unbounded:>7.1} ns");
    println!("  raw mpsc bounded(1)    {bounded:>7.1} ns");
    println!(
        "  endpoints, no interp.  {endpoints:>7.1} ns   x{:.2}",
        endpoints / unbounded.min(bounded)
    );
    println!(
        "  interpreter            {interp:>7.1} ns   x{ratio:.2} the faster raw channel, median of paired ratios (goal <= 1.30)"
    );
    const TCP_ROUNDS: u64 = 20_000;
    let (mut tcp_plain, mut tcp_interp, mut tcp_ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let plain = per_round(&rt, 1, TCP_ROUNDS, tcp_raw);
        let through = per_round(&rt, 1, TCP_ROUNDS, tcp_interpreted);
        tcp_ratios.push(through / plain);
        tcp_plain.push(plain);
        tcp_interp.push(through);
    }
    let (tcp_plain, tcp_interp, tcp_ratio) = (
        median(&mut tcp_plain),
        median(&mut tcp_interp),
        median(&mut tcp_ratios),
    );
    println!("TCP ping-pong round trip on loopback, medians of 5 rounds of {TCP_ROUNDS}:");
    println!("  raw TCP                {:>7.1} us", tcp_plain / 1e3);
    println!(
        "  interpreter over TCP   {:>7.1} us   x{tcp_ratio:.2} raw TCP, median of paired ratios (goal <= 1.30)",
        tcp_interp / 1e3
    );
    let mut handle: Vec<f64> = (0..9)
        .map(|_| per_round(&rt, 2, ROUNDS, dispatch))
        .collect();
    let mut through: Vec<f64> = (0..9)
        .map(|_| per_round(&rt, 2, ROUNDS, interpreted_effects))
        .collect();
    let (handle, through) = (median(&mut handle), median(&mut through));
    println!("extension effect, medians of 9 rounds of {ROUNDS}:");
    println!("  ExtensionRegistry::handle   {handle:>6.1} ns per effect (goal <= 50)");
    println!("  through the interpreter     {through:>6.1} ns per effect");
}
