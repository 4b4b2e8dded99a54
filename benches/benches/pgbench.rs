//! stormchor's `read-only` and `tpcb` workloads against `pgbench` itself, on the same
//! throwaway cluster, with the same number of clients and the same duration, in the same
//! run; and the cost of recording latencies.
//!
//! Run: `cargo bench -p stormchor-benches --bench pgbench`
//! (`STORMCHOR_BENCH_SECONDS`, default 10, sets each measurement's length;
//! `STORMCHOR_BENCH_CLIENTS`, default 2, the clients.)

use std::sync::Arc;
use std::time::Duration;

use stormchor_runtime::postgres::{ClusterOptions, PgCluster};
use stormchor_runtime::workload::{LoadConfig, Workload, WorkloadRegistry, run_load};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// pgbench's TPS (without initial connection time).
async fn pgbench(cluster: &PgCluster, extra: &[&str], clients: u64, seconds: u64) -> f64 {
    let mut args = cluster.client_args();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args.extend([
        format!("--client={clients}"),
        format!("--jobs={clients}"),
        format!("--time={seconds}"),
        "postgres".to_owned(),
    ]);
    let output = cluster
        .run_program("pgbench", &args)
        .await
        .expect("pgbench runs");
    output
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .expect("pgbench prints its tps")
}

async fn ours(
    cluster: &PgCluster,
    workload: &Arc<dyn Workload>,
    clients: u64,
    seconds: u64,
    record: bool,
) -> f64 {
    let mut config = LoadConfig::new(clients as usize, Duration::from_secs(seconds));
    config.record_latency = record;
    let report = run_load(workload.clone(), &cluster.connection_string(), &[1], config)
        .await
        .expect("load");
    assert_eq!(report.failures(), 0, "{report:?}");
    report.throughput()
}

fn main() {
    let (seconds, clients) = (
        env("STORMCHOR_BENCH_SECONDS", 10),
        env("STORMCHOR_BENCH_CLIENTS", 2),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cluster = PgCluster::start(ClusterOptions::default()).await.expect("cluster");
        let registry = WorkloadRegistry::with_builtins();
        let read_only: Arc<dyn Workload> = Arc::from(registry.create("read-only").expect("built in"));
        let tpcb: Arc<dyn Workload> = Arc::from(registry.create("tpcb").expect("built in"));
        let mut client = cluster.connect().await.expect("connect");
        tpcb.setup(&mut client).await.expect("pgbench tables at scale 1");

        println!("{clients} clients, {seconds} s per measurement, scale 1, throwaway cluster on loopback\n");
        let pg_select = pgbench(&cluster, &["--select-only"], clients, seconds).await;
        let pg_select_prepared = pgbench(&cluster, &["--select-only", "--protocol=prepared"], clients, seconds).await;
        let our_select = ours(&cluster, &read_only, clients, seconds, true).await;
        println!("select-only  pgbench (simple)   {pg_select:>9.0} tps");
        println!("             pgbench (prepared) {pg_select_prepared:>9.0} tps");
        println!(
            "             stormchor          {our_select:>9.0} tps   x{:.2} pgbench simple, x{:.2} pgbench prepared",
            our_select / pg_select,
            our_select / pg_select_prepared
        );

        let pg_tpcb = pgbench(&cluster, &[], clients, seconds).await;
        let pg_tpcb_prepared = pgbench(&cluster, &["--protocol=prepared"], clients, seconds).await;
        let our_tpcb = ours(&cluster, &tpcb, clients, seconds, true).await;
        println!("tpcb         pgbench (simple)   {pg_tpcb:>9.0} tps");
        println!("             pgbench (prepared) {pg_tpcb_prepared:>9.0} tps");
        println!(
            "             stormchor          {our_tpcb:>9.0} tps   x{:.2} pgbench simple, x{:.2} pgbench prepared",
            our_tpcb / pg_tpcb,
            our_tpcb / pg_tpcb_prepared
        );

        // The cost of recording: what a client does per operation to time it (two clock
        // reads and two histogram records: the operation's and its second's), measured
        // directly, against the time of one select-only operation measured above.
        let mut latency = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
        let mut second = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).expect("bounds");
        let rounds = 2_000_000u32;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            let began = std::time::Instant::now();
            let took = std::hint::black_box(began.elapsed().as_micros().max(1) as u64);
            let _ = latency.record(took);
            let _ = second.record(took);
        }
        let recording_ns = started.elapsed().as_secs_f64() * 1e9 / f64::from(rounds);
        let operation_ns = clients as f64 / our_select * 1e9;
        println!(
            "\nlatency recording: {recording_ns:.0} ns per operation, {:.2}% of a select-only operation ({operation_ns:.0} ns per client); goal < 2%",
            recording_ns / operation_ns * 100.0
        );
    });
}
