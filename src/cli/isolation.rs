//! `stormchor isolation-suite`: PostgreSQL's isolation specs run on a server and
//! compared with their expected files.

use std::time::Duration;

use stormchor::isolation_suite::{SuiteOptions, run_suite};

use super::args::IsolationSuiteArgs;
use super::exit::{CliError, Verdict};

/// The longest `--step-timeout`: a day.
pub const MAX_STEP_TIMEOUT_S: u64 = 86_400;

/// Runs the suite, prints the summary, writes the JSON; fails when a test this server
/// can run differed.
pub fn isolation_suite(args: IsolationSuiteArgs) -> Result<Verdict, CliError> {
    let IsolationSuiteArgs {
        dir,
        names,
        target,
        json,
        step_timeout,
    } = args;
    if !(1..=MAX_STEP_TIMEOUT_S).contains(&step_timeout) {
        return Err(CliError::usage(format!(
            "--step-timeout {step_timeout}: give a number of seconds from 1 to {MAX_STEP_TIMEOUT_S}"
        )));
    }
    let mut options = SuiteOptions::new(dir);
    options.names = names;
    options.target = target;
    options.step_timeout = Duration::from_secs(step_timeout);
    options.progress = true;
    options.tests().map_err(CliError::Usage)?;
    super::output::check_output_path("--json", json.as_deref()).map_err(CliError::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::run(format!("cannot start the async runtime: {e}")))?;
    let report = runtime
        .block_on(async {
            stormchor::postgres::remove_clusters_on_ctrl_c();
            run_suite(&options).await
        })
        .map_err(CliError::Run)?;
    print!("{}", report.summary());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report.json())
            .map_err(|e| CliError::run(format!("cannot encode the report: {e}")))?;
        std::fs::write(&path, text)
            .map_err(|e| CliError::run(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(Verdict::from(!report.failed()))
}
