//! `stormchor isolation-suite DIR [NAME...]`: PostgreSQL's isolation specs of a
//! directory (laid out as upstream's `src/test/isolation`) run on a throwaway cluster
//! or a given server, each compared with its expected files.
//!
//! # Example
//! ```no_run
//! use std::path::PathBuf;
//! use stormchor::isolation_suite::{run_suite, SuiteOptions};
//!
//! # async fn demo() -> Result<(), String> {
//! let options = SuiteOptions::new(PathBuf::from("../shared/pg-isolation"));
//! let report = run_suite(&options).await?;
//! println!("{} of {} matched", report.matched(), report.results.len());
//! # Ok(()) }
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use stormchor_isolation::corpus::Corpus;
use stormchor_isolation::driver::RunOptions;
use stormchor_isolation::suite::{TestResult, Verdict, run_test};
use stormchor_postgres::{ClusterOptions, PgTarget};

/// The database the specs run in (pg_regress's name for isolation tests).
pub const DATABASE: &str = "isolation_regression";

/// The server settings some specs need (upstream's tests run with prepared
/// transactions enabled for the `prepared-*` specs).
pub const SERVER_SETTINGS: [(&str, &str); 2] = [
    ("max_prepared_transactions", "10"),
    ("max_locks_per_transaction", "128"),
];

/// What to run.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// The corpus directory.
    pub dir: PathBuf,
    /// The tests to run (empty: the whole schedule).
    pub names: Vec<String>,
    /// A server to run on instead of a throwaway cluster.
    pub target: Option<String>,
    /// Upstream's `max_step_wait`.
    pub step_timeout: Duration,
    /// Print a progress line per test on standard error.
    pub progress: bool,
}

impl SuiteOptions {
    /// The whole schedule of `dir` on a throwaway cluster, upstream's step bound.
    pub fn new(dir: PathBuf) -> Self {
        SuiteOptions {
            dir,
            names: Vec::new(),
            target: None,
            step_timeout: Duration::from_secs(360),
            progress: false,
        }
    }

    /// The tests these options run, checked before anything starts: the directory is an
    /// isolation test directory and every named test has a spec.
    pub fn tests(&self) -> Result<Vec<String>, String> {
        let corpus = Corpus::new(&self.dir);
        if !corpus.exists() {
            return Err(format!(
                "{} is not an isolation test directory (no isolation_schedule or specs/)",
                self.dir.display()
            ));
        }
        if self.names.is_empty() {
            return corpus.schedule().map_err(|e| e.to_string());
        }
        for name in &self.names {
            if !corpus.spec_path(name).is_file() {
                return Err(format!("no spec {}", corpus.spec_path(name).display()));
            }
        }
        Ok(self.names.clone())
    }
}

/// The suite's results.
#[derive(Clone, Debug)]
pub struct SuiteReport {
    /// One per test, in the order run.
    pub results: Vec<TestResult>,
    /// The whole run's time.
    pub elapsed: Duration,
    /// The server's version (`SHOW server_version`).
    pub server_version: String,
}

impl SuiteReport {
    fn count(&self, kind: &str) -> usize {
        self.results
            .iter()
            .filter(|r| r.verdict.kind() == kind)
            .count()
    }
    /// Tests that matched.
    pub fn matched(&self) -> usize {
        self.count("matched")
    }
    /// Tests that differed.
    pub fn differed(&self) -> usize {
        self.count("differed")
    }
    /// Tests whose spec did not parse.
    pub fn not_parsed(&self) -> usize {
        self.count("not_parsed")
    }
    /// Tests that need a newer server.
    pub fn needs_newer_server(&self) -> usize {
        self.count("needs_newer_server")
    }

    /// The console summary.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for r in &self.results {
            match &r.verdict {
                Verdict::Differed { reason, diff, .. } => {
                    text.push_str(&format!("--- {} differed: {reason}\n{diff}", r.name));
                }
                Verdict::NotParsed { error } => {
                    text.push_str(&format!("--- {} not parsed: {error}\n", r.name));
                }
                Verdict::NeedsNewerServer { error, .. } => {
                    text.push_str(&format!("--- {} needs a newer server: {error}\n", r.name));
                }
                Verdict::Matched { .. } => {}
            }
        }
        let runnable = self.results.len() - self.needs_newer_server() - self.not_parsed();
        text.push_str(&format!(
            "isolation suite on PostgreSQL {}: {} tests, {} matched, {} differed, {} not parsed, \
             {} need a newer server ({} of {} runnable matched, {:.1}%) in {:.1} s\n",
            self.server_version,
            self.results.len(),
            self.matched(),
            self.differed(),
            self.not_parsed(),
            self.needs_newer_server(),
            self.matched(),
            runnable,
            if runnable == 0 {
                100.0
            } else {
                100.0 * self.matched() as f64 / runnable as f64
            },
            self.elapsed.as_secs_f64()
        ));
        text
    }

    /// The JSON report: `total`, `matched`, `differed`, `not_parsed`,
    /// `needs_newer_server`, and per-test verdicts under `tests`.
    pub fn json(&self) -> serde_json::Value {
        let tests: Vec<serde_json::Value> = self
            .results
            .iter()
            .map(|r| {
                let mut entry = serde_json::json!({
                    "name": r.name,
                    "verdict": r.verdict.kind(),
                    "seconds": r.elapsed.as_secs_f64(),
                });
                match &r.verdict {
                    Verdict::Matched { file } => entry["file"] = file.clone().into(),
                    Verdict::Differed { file, reason, diff } => {
                        entry["file"] = file.clone().into();
                        entry["reason"] = reason.clone().into();
                        entry["diff"] = diff.clone().into();
                    }
                    Verdict::NotParsed { error } => entry["error"] = error.clone().into(),
                    Verdict::NeedsNewerServer { error, diff } => {
                        entry["error"] = error.clone().into();
                        entry["diff"] = diff.clone().into();
                    }
                }
                entry
            })
            .collect();
        serde_json::json!({
            "server_version": self.server_version,
            "seconds": self.elapsed.as_secs_f64(),
            "total": self.results.len(),
            "matched": self.matched(),
            "differed": self.differed(),
            "not_parsed": self.not_parsed(),
            "needs_newer_server": self.needs_newer_server(),
            "tests": tests,
        })
    }

    /// Whether a test this server can run differed.
    pub fn failed(&self) -> bool {
        self.differed() > 0
    }
}

/// Runs the suite.
pub async fn run_suite(options: &SuiteOptions) -> Result<SuiteReport, String> {
    let names = options.tests()?;
    let started = Instant::now();
    let target = PgTarget::resolve(
        options.target.as_deref(),
        ClusterOptions {
            settings: SERVER_SETTINGS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ClusterOptions::default()
        },
    )
    .await
    .map_err(|e| format!("cannot start a throwaway cluster: {e}"))?;
    let report = run_on(options, &names, &target, started).await;
    let ended = target.shutdown().await.map_err(|e| e.to_string());
    match (report, ended) {
        (Err(first), Err(second)) => Err(format!("{first}; {second}")),
        (report, ended) => ended.and(report),
    }
}

/// [`run_suite`] on a resolved target (shut down by the caller).
async fn run_on(
    options: &SuiteOptions,
    names: &[String],
    target: &PgTarget,
    started: Instant,
) -> Result<SuiteReport, String> {
    let corpus = Corpus::new(&options.dir);
    let conninfo = match target {
        PgTarget::External(connection) => connection.clone(),
        PgTarget::Throwaway(cluster) => {
            let client = cluster
                .connect()
                .await
                .map_err(|e| format!("cannot connect to the throwaway cluster: {e}"))?;
            client
                .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
                .await
                .map_err(|e| format!("cannot create database {DATABASE}: {e}"))?;
            cluster.connection_string_for(DATABASE)
        }
    };
    let server_version = server_version(&conninfo).await?;
    let run = RunOptions {
        step_timeout: options.step_timeout,
        ..RunOptions::default()
    };
    let mut results = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if options.progress {
            eprint!("\r\x1b[K[{}/{}] {name} ...", i + 1, names.len());
            let _ = std::io::stderr().flush();
        }
        let result = run_test(&corpus, name, &conninfo, &run).await;
        if options.progress {
            eprint!(" {}", result.verdict.kind());
            if !matches!(result.verdict, Verdict::Matched { .. }) {
                eprintln!();
            }
        }
        results.push(result);
    }
    if options.progress {
        eprintln!();
    }
    Ok(SuiteReport {
        results,
        elapsed: started.elapsed(),
        server_version,
    })
}

async fn server_version(conninfo: &str) -> Result<String, String> {
    let client = stormchor_postgres::connect(conninfo)
        .await
        .map_err(|e| e.to_string())?;
    let version = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| format!("cannot read the server version: {e}"))?
        .get::<_, String>(0);
    Ok(version)
}
