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
            let spec = corpus.spec_path(name);
            if spec.is_dir() {
                return Err(format!("spec {} is a directory", spec.display()));
            }
            if !spec.is_file() {
                return Err(format!("no spec {}", spec.display()));
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

    /// The HTML report: one self-contained page (inline style, no script, nothing
    /// fetched) with the counts, each differing test's reason and unified diff, the
    /// tests that need a newer server (the server's error and the diff), those that did
    /// not parse, and the matched ones with the file each matched. Every text from a
    /// spec, a file or the server is escaped.
    pub fn html(&self) -> String {
        let runnable = self.results.len() - self.needs_newer_server() - self.not_parsed();
        let rate = if runnable == 0 {
            100.0
        } else {
            100.0 * self.matched() as f64 / runnable as f64
        };
        let mut page = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>stormchor isolation suite</title>\n<style>\n\
             body { font-family: sans-serif; margin: 2em; }\n\
             table { border-collapse: collapse; }\n\
             td, th { border: 1px solid #999; padding: 0.2em 0.6em; text-align: left; }\n\
             pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }\n\
             .del { color: #a00; } .add { color: #070; } .hunk { color: #55a; }\n\
             </style>\n</head>\n<body>\n",
        );
        page.push_str(&format!(
            "<h1>Isolation suite on PostgreSQL {}</h1>\n",
            escape(&self.server_version)
        ));
        page.push_str("<table class=\"summary\">\n");
        for (label, value) in [
            ("tests", self.results.len().to_string()),
            ("matched", self.matched().to_string()),
            ("differed", self.differed().to_string()),
            ("not parsed", self.not_parsed().to_string()),
            ("need a newer server", self.needs_newer_server().to_string()),
            (
                "runnable matched",
                format!("{} of {runnable} ({rate:.1}%)", self.matched()),
            ),
            ("seconds", format!("{:.1}", self.elapsed.as_secs_f64())),
        ] {
            page.push_str(&format!("<tr><th>{label}</th><td>{value}</td></tr>\n"));
        }
        page.push_str("</table>\n");
        let differed: Vec<&TestResult> = self
            .results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Differed { .. }))
            .collect();
        page.push_str(&format!("<h2>Differed ({})</h2>\n", differed.len()));
        for r in differed {
            if let Verdict::Differed { file, reason, diff } = &r.verdict {
                page.push_str(&format!(
                    "<h3 id=\"{id}\">{name}</h3>\n<p>{reason}{against}</p>\n{diff}",
                    id = escape(&r.name),
                    name = escape(&r.name),
                    reason = escape(reason),
                    against = if file.is_empty() {
                        String::new()
                    } else {
                        format!(" (against <code>{}</code>)", escape(file))
                    },
                    diff = diff_html(diff),
                ));
            }
        }
        let newer: Vec<&TestResult> = self
            .results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::NeedsNewerServer { .. }))
            .collect();
        page.push_str(&format!("<h2>Need a newer server ({})</h2>\n", newer.len()));
        for r in newer {
            if let Verdict::NeedsNewerServer { error, diff } = &r.verdict {
                page.push_str(&format!(
                    "<h3 id=\"{id}\">{name}</h3>\n<p>the server's error: <code>{error}</code></p>\n{diff}",
                    id = escape(&r.name),
                    name = escape(&r.name),
                    error = escape(error),
                    diff = diff_html(diff),
                ));
            }
        }
        let not_parsed: Vec<&TestResult> = self
            .results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::NotParsed { .. }))
            .collect();
        page.push_str(&format!(
            "<h2>Not parsed ({})</h2>\n<ul>\n",
            not_parsed.len()
        ));
        for r in not_parsed {
            if let Verdict::NotParsed { error } = &r.verdict {
                page.push_str(&format!(
                    "<li>{}: <code>{}</code></li>\n",
                    escape(&r.name),
                    escape(error)
                ));
            }
        }
        page.push_str("</ul>\n");
        page.push_str(&format!("<h2>Matched ({})</h2>\n<ul>\n", self.matched()));
        for r in &self.results {
            if let Verdict::Matched { file } = &r.verdict {
                page.push_str(&format!(
                    "<li>{} <small>({}, {:.2} s)</small></li>\n",
                    escape(&r.name),
                    escape(file),
                    r.elapsed.as_secs_f64()
                ));
            }
        }
        page.push_str("</ul>\n</body>\n</html>\n");
        page
    }

    /// Whether a test this server can run differed or a spec did not parse.
    pub fn failed(&self) -> bool {
        self.differed() > 0 || self.not_parsed() > 0
    }
}

/// How the name of the database a run against a target works in begins.
pub const RUN_DATABASE_PREFIX: &str = "stormchor_run_isolation_";

/// How long dropping the run's database may take.
const DROP_BOUND: Duration = Duration::from_secs(60);

/// Runs the suite.
pub async fn run_suite(options: &SuiteOptions) -> Result<SuiteReport, String> {
    run_suite_until(options, std::future::pending()).await
}

/// [`run_suite`], cut short when `stop` resolves (a signal): the tests stop at once,
/// then the run's own database is dropped and the throwaway cluster removed as after
/// a whole run, and the result is an error saying the run was interrupted.
pub async fn run_suite_until(
    options: &SuiteOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<SuiteReport, String> {
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
    let report = match prepare(&target).await {
        Ok((conninfo, own_database)) => {
            let report = tokio::select! {
                report = run_on(options, &names, &conninfo, started) => report,
                () = stop => Err("interrupted: the run stopped before its end".to_string()),
            };
            match own_database {
                Some(database) => {
                    let dropped = drop_run_database(target_control(&target), &database).await;
                    match (report, dropped) {
                        (Err(first), Err(second)) => Err(format!("{first}; {second}")),
                        (report, dropped) => dropped.and(report),
                    }
                }
                None => report,
            }
        }
        Err(e) => Err(e),
    };
    let ended = target.shutdown().await.map_err(|e| e.to_string());
    match (report, ended) {
        (Err(first), Err(second)) => Err(format!("{first}; {second}")),
        (report, ended) => ended.and(report),
    }
}

/// The control connection string of a target given by the user.
fn target_control(target: &PgTarget) -> &str {
    match target {
        PgTarget::External(connection) => connection,
        PgTarget::Throwaway(_) => "",
    }
}

/// The connection string the specs run on, and the name of the database made for
/// the run on a user's server (none on a throwaway cluster, which goes as a whole).
async fn prepare(target: &PgTarget) -> Result<(String, Option<String>), String> {
    match target {
        PgTarget::External(connection) => {
            let name = run_database_name();
            let client = stormchor_postgres::connect(connection)
                .await
                .map_err(|e| e.to_string())?;
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .map_err(|e| format!("cannot create the run's database {name}: {e}"))?;
            Ok((with_database(connection, &name), Some(name)))
        }
        PgTarget::Throwaway(cluster) => {
            let client = cluster
                .connect()
                .await
                .map_err(|e| format!("cannot connect to the throwaway cluster: {e}"))?;
            client
                .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
                .await
                .map_err(|e| format!("cannot create database {DATABASE}: {e}"))?;
            Ok((cluster.connection_string_for(DATABASE), None))
        }
    }
}

/// `stormchor_run_isolation_<pid>_<clock>`: two runs at once never share one.
fn run_database_name() -> String {
    // The clock's nanoseconds: with the process id, distinct for runs at once.
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u32);
    format!("{RUN_DATABASE_PREFIX}{}_{suffix:08x}", std::process::id())
}

/// `connection` aimed at database `name` (a later `dbname` replaces an earlier one;
/// in a URL, a `dbname` parameter replaces the path's).
fn with_database(connection: &str, name: &str) -> String {
    let text = connection.trim();
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let separator = if text.contains('?') { '&' } else { '?' };
        format!("{text}{separator}dbname={name}")
    } else {
        format!("{text} dbname={name}")
    }
}

/// Drops the run's database over the control connection, ending the sessions still
/// in it (`WITH (FORCE)`), within [`DROP_BOUND`].
async fn drop_run_database(control: &str, name: &str) -> Result<(), String> {
    let drop = async {
        let client = stormchor_postgres::connect(control)
            .await
            .map_err(|e| e.to_string())?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(DROP_BOUND, drop).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot drop the run's database {name}: {e}")),
        Err(_) => Err(format!(
            "cannot drop the run's database {name}: no answer in {} s",
            DROP_BOUND.as_secs()
        )),
    }
}

/// The tests of `names` run on the server of `conninfo`.
async fn run_on(
    options: &SuiteOptions,
    names: &[String],
    conninfo: &str,
    started: Instant,
) -> Result<SuiteReport, String> {
    let corpus = Corpus::new(&options.dir);
    let server_version = server_version(conninfo).await?;
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
        let result = run_test(&corpus, name, conninfo, &run).await;
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

/// `text` with the characters HTML gives a meaning escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A unified diff as a `<pre>` block, each line escaped, removed and added lines
/// marked.
fn diff_html(diff: &str) -> String {
    if diff.is_empty() {
        return String::new();
    }
    let mut out = String::from("<pre class=\"diff\">");
    for line in diff.lines() {
        let class = if line.starts_with("@@") {
            Some("hunk")
        } else if line.starts_with('-') && !line.starts_with("---") {
            Some("del")
        } else if line.starts_with('+') && !line.starts_with("+++") {
            Some("add")
        } else {
            None
        };
        match class {
            Some(class) => out.push_str(&format!(
                "<span class=\"{class}\">{}</span>\n",
                escape(line)
            )),
            None => {
                out.push_str(&escape(line));
                out.push('\n');
            }
        }
    }
    out.push_str("</pre>\n");
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, verdict: Verdict) -> TestResult {
        TestResult {
            name: name.into(),
            verdict,
            elapsed: Duration::from_millis(120),
            output: String::new(),
        }
    }

    fn report() -> SuiteReport {
        SuiteReport {
            results: vec![
                result("plain", Verdict::Matched { file: "plain.out".into() }),
                result(
                    "tagged",
                    Verdict::Differed {
                        file: "tagged.out".into(),
                        reason: "first change: -step a: SELECT '<b>' & 1;".into(),
                        diff: "--- tagged.out\n+++ actual\n@@ -1,1 +1,1 @@\n-step a: SELECT '<b>' & 1;\n+step a: SELECT '<i>' & 2;\n".into(),
                    },
                ),
                result(
                    "newer",
                    Verdict::NeedsNewerServer {
                        error: "ERROR:  syntax error at or near \"BY\" (SQLSTATE 42601)".into(),
                        diff: String::new(),
                    },
                ),
                result(
                    "broken",
                    Verdict::NotParsed { error: "broken.spec:1:2: syntax error".into() },
                ),
            ],
            elapsed: Duration::from_secs(3),
            server_version: "15.18".into(),
        }
    }

    #[test]
    fn the_html_report_has_the_counts_and_each_escaped_diff() {
        let html = report().html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<tr><th>differed</th><td>1</td></tr>"));
        assert!(html.contains("<tr><th>runnable matched</th><td>1 of 2 (50.0%)</td></tr>"));
        assert!(html.contains(
            "<span class=\"del\">-step a: SELECT &#39;&lt;b&gt;&#39; &amp; 1;</span>\n\
             <span class=\"add\">+step a: SELECT &#39;&lt;i&gt;&#39; &amp; 2;</span>"
        ));
        assert!(html.contains("syntax error at or near &quot;BY&quot;"));
        assert!(html.contains("<li>broken: <code>broken.spec:1:2: syntax error</code></li>"));
        assert!(html.contains("<li>plain <small>(plain.out, 0.12 s)</small></li>"));
        // Self-contained: no script, nothing fetched, nothing unescaped from the inputs.
        for forbidden in ["<script", "src=", "href=", "<b>", "<i>", "@import"] {
            assert!(!html.contains(forbidden), "{forbidden} in the page");
        }
    }

    #[test]
    fn a_report_without_differences_says_so() {
        let mut report = report();
        report.results.truncate(1);
        let html = report.html();
        assert!(html.contains("<h2>Differed (0)</h2>"));
        assert!(html.contains("<tr><th>runnable matched</th><td>1 of 1 (100.0%)</td></tr>"));
    }
}
