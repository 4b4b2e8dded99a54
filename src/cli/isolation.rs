//! `stormchor isolation-suite`: PostgreSQL's isolation specs run on a server and
//! compared with their expected files.

use std::process::ExitCode;
use std::time::Duration;

use stormchor::isolation_suite::{SuiteOptions, run_suite};

use super::args::IsolationSuiteArgs;

/// Runs the suite, prints the summary, writes the JSON; fails when a test this server
/// can run differed.
pub fn isolation_suite(args: IsolationSuiteArgs) -> ExitCode {
    let IsolationSuiteArgs {
        dir,
        names,
        target,
        json,
        step_timeout,
    } = args;
    let mut options = SuiteOptions::new(dir);
    options.names = names;
    options.target = target;
    options.step_timeout = Duration::from_secs(step_timeout.max(1));
    options.progress = true;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(async {
        stormchor::runtime::postgres::remove_clusters_on_ctrl_c();
        run_suite(&options).await
    });
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.summary());
    if let Some(path) = json {
        let text = match serde_json::to_string_pretty(&report.json()) {
            Ok(text) => text,
            Err(error) => {
                eprintln!("error: cannot encode the report: {error}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(error) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
