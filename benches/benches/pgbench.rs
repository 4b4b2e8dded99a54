//! stormchor's `read-only` and `tpcb` workloads against `pgbench -M prepared`, on the same
//! throwaway cluster, with the same number of clients and the same duration, in the same
//! run, interleaved (pgbench, stormchor, pgbench, stormchor, ...) so that a machine whose
//! speed drifts affects both alike; and the cost of recording latencies.
//!
//! For each workload and client count it prints the median over the rounds of
//! transactions per second and of client CPU time (user + system) per transaction: for
//! stormchor the whole bench process's (`getrusage(RUSAGE_SELF)`: its client threads,
//! nothing else runs meanwhile), for pgbench its own (`getrusage(RUSAGE_CHILDREN)` across
//! the run: the bench waits for nothing else meanwhile); and the median of the per-round
//! ratios stormchor / pgbench. `tpcb-pipeline` runs the TPC-B-like transaction with its
//! seven statements sent without waiting for each reply (stormchor's pipeline mode)
//! against pgbench running the same script between `\startpipeline` and `\endpipeline`.
//!
//! Run: `cargo bench -p stormchor-benches --bench pgbench`. Environment:
//! - `STORMCHOR_BENCH_SECONDS` (default 5): each measurement's length;
//! - `STORMCHOR_BENCH_CLIENTS` (default `1,2,8,32`): the client counts;
//! - `STORMCHOR_BENCH_ROUNDS` (default 3): the rounds of each pair;
//! - `STORMCHOR_BENCH_WORKLOADS` (default `select,tpcb,tpcb-pipeline`): which to run;
//! - `STORMCHOR_BENCH_TARGET` (a connection string): run stormchor's clients alone
//!   against that server (which has pgbench's tables, `pgbench -i`), for profiling.

use std::sync::Arc;
use std::time::Duration;

use stormchor_postgres::{ClusterOptions, PgCluster};
use stormchor_workloads::{LoadConfig, Workload, WorkloadRegistry, run_load};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// User + system CPU seconds of `who` (`RUSAGE_SELF` or `RUSAGE_CHILDREN`).
fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we hand it and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// One measurement: transactions per second and client CPU microseconds per transaction.
#[derive(Clone, Copy, Debug)]
struct Figures {
    tps: f64,
    cpu_us: f64,
    transactions: u64,
}

/// The pgbench script of the TPC-B-like transaction in one pipeline.
const TPCB_PIPELINE_SCRIPT: &str = "\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
\\startpipeline
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
\\endpipeline
";

/// pgbench `-M prepared` with `extra` arguments.
async fn pgbench(cluster: &PgCluster, extra: &[String], clients: u64, seconds: u64) -> Figures {
    let mut args = cluster.client_args();
    args.extend(extra.iter().cloned());
    args.extend([
        "--protocol=prepared".to_owned(),
        format!("--client={clients}"),
        format!("--jobs={clients}"),
        format!("--time={seconds}"),
        "postgres".to_owned(),
    ]);
    let before = cpu_seconds(libc::RUSAGE_CHILDREN);
    let output = cluster
        .run_program("pgbench", &args)
        .await
        .expect("pgbench runs");
    let cpu = cpu_seconds(libc::RUSAGE_CHILDREN) - before;
    let field = |prefix: &str| -> f64 {
        output
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix(prefix)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("pgbench prints `{prefix}`:\n{output}"))
    };
    let transactions = field("number of transactions actually processed: ");
    assert_eq!(
        field("number of failed transactions: "),
        0.0,
        "pgbench failed:\n{output}"
    );
    Figures {
        tps: field("tps = "),
        cpu_us: cpu * 1e6 / transactions.max(1.0),
        transactions: transactions as u64,
    }
}

async fn ours(
    cluster: &PgCluster,
    workload: &Arc<dyn Workload>,
    clients: u64,
    seconds: u64,
    pipeline: bool,
) -> Figures {
    ours_on(
        &cluster.connection_string(),
        workload,
        clients,
        seconds,
        pipeline,
    )
    .await
}

async fn ours_on(
    target: &str,
    workload: &Arc<dyn Workload>,
    clients: u64,
    seconds: u64,
    pipeline: bool,
) -> Figures {
    let mut config = LoadConfig::new(clients as usize, Duration::from_secs(seconds));
    config.record_latency = true;
    config.pipeline = pipeline;
    let before = cpu_seconds(libc::RUSAGE_SELF);
    let report = run_load(workload.clone(), target, &[1], config)
        .await
        .expect("load");
    let cpu = cpu_seconds(libc::RUSAGE_SELF) - before;
    assert_eq!(report.failures(), 0, "{report:?}");
    Figures {
        tps: report.throughput(),
        cpu_us: cpu * 1e6 / (report.successes().max(1) as f64),
        transactions: report.successes(),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() {
    let seconds = env_u64("STORMCHOR_BENCH_SECONDS", 5);
    let rounds = env_u64("STORMCHOR_BENCH_ROUNDS", 3).max(1);
    let clients: Vec<u64> = env_list("STORMCHOR_BENCH_CLIENTS", "1,2,8,32")
        .iter()
        .map(|c| c.parse().expect("STORMCHOR_BENCH_CLIENTS: whole numbers"))
        .collect();
    let workloads = env_list("STORMCHOR_BENCH_WORKLOADS", "select,tpcb,tpcb-pipeline");
    // The bench's own runtime has one thread: stormchor's clients run on threads of their
    // own, and nothing else in the process takes CPU during a measurement.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(target) = std::env::var("STORMCHOR_BENCH_TARGET") {
        // Profiling: stormchor's clients alone, on a server with pgbench's tables.
        rt.block_on(async {
            for name in &workloads {
                let workload: Arc<dyn Workload> = Arc::from(
                    WorkloadRegistry::with_builtins()
                        .create(if name == "select" {
                            "read-only"
                        } else {
                            "tpcb"
                        })
                        .expect("built in"),
                );
                for &n in &clients {
                    let figures =
                        ours_on(&target, &workload, n, seconds, name == "tpcb-pipeline").await;
                    println!(
                        "{name:<14} {n:>7} {:>10.0} tps {:>8.1} us cpu/tx {:>9} transactions",
                        figures.tps, figures.cpu_us, figures.transactions
                    );
                }
            }
        });
        return;
    }
    rt.block_on(async {
        let cluster = PgCluster::start(ClusterOptions::default()).await.expect("cluster");
        let registry = WorkloadRegistry::with_builtins();
        let read_only: Arc<dyn Workload> = Arc::from(registry.create("read-only").expect("built in"));
        let tpcb: Arc<dyn Workload> = Arc::from(registry.create("tpcb").expect("built in"));
        let mut client = cluster.connect().await.expect("connect");
        tpcb.setup(&mut client).await.expect("pgbench tables at scale 1");
        let script = std::env::temp_dir().join(format!("stormchor-bench-{}.sql", std::process::id()));
        std::fs::write(&script, TPCB_PIPELINE_SCRIPT).expect("pgbench script");
        // Owned by us, read by pgbench as the server's user.
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("script readable");

        println!(
            "pgbench -M prepared vs stormchor: {seconds} s per measurement, {rounds} rounds interleaved, \
             scale 1, throwaway cluster on loopback, client CPU = user + sys of the client process\n"
        );
        println!(
            "{:<14} {:>7} {:>10} {:>10} {:>7} {:>12} {:>12} {:>7}",
            "workload", "clients", "pgbench", "stormchor", "tps x", "pgbench", "stormchor", "cpu x"
        );
        println!(
            "{:<14} {:>7} {:>10} {:>10} {:>7} {:>12} {:>12} {:>7}",
            "", "", "tps", "tps", "", "us cpu/tx", "us cpu/tx", ""
        );
        let mut select_operation_ns = None;
        for name in &workloads {
            let (workload, extra, pipeline) = match name.as_str() {
                "select" => (&read_only, vec!["--select-only".to_owned()], false),
                "tpcb" => (&tpcb, vec![], false),
                "tpcb-pipeline" => (&tpcb, vec![format!("--file={}", script.display())], true),
                other => panic!("STORMCHOR_BENCH_WORKLOADS: unknown `{other}` (select, tpcb, tpcb-pipeline)"),
            };
            for &n in &clients {
                let mut theirs = Vec::new();
                let mut mine = Vec::new();
                for _ in 0..rounds {
                    theirs.push(pgbench(&cluster, &extra, n, seconds).await);
                    mine.push(ours(&cluster, workload, n, seconds, pipeline).await);
                }
                let tps_ratio = median(mine.iter().zip(&theirs).map(|(m, t)| m.tps / t.tps).collect());
                let cpu_ratio = median(mine.iter().zip(&theirs).map(|(m, t)| m.cpu_us / t.cpu_us).collect());
                let (pg_tps, our_tps) = (
                    median(theirs.iter().map(|f| f.tps).collect()),
                    median(mine.iter().map(|f| f.tps).collect()),
                );
                println!(
                    "{name:<14} {n:>7} {pg_tps:>10.0} {our_tps:>10.0} {tps_ratio:>7.2} {:>12.1} {:>12.1} {cpu_ratio:>7.2}",
                    median(theirs.iter().map(|f| f.cpu_us).collect()),
                    median(mine.iter().map(|f| f.cpu_us).collect()),
                );
                if name == "select" && select_operation_ns.is_none() {
                    select_operation_ns = Some(n as f64 / our_tps * 1e9);
                }
            }
        }
        let _ = std::fs::remove_file(&script);

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
        if let Some(operation_ns) = select_operation_ns {
            println!(
                "\nlatency recording: {recording_ns:.0} ns per operation, {:.2}% of a select-only operation \
                 ({operation_ns:.0} ns per client at {} clients); goal < 2%",
                recording_ns / operation_ns * 100.0,
                clients[0]
            );
        } else {
            println!("\nlatency recording: {recording_ns:.0} ns per operation");
        }
    });
}
