//! `stormchor isolation-suite`: PostgreSQL's isolation specs run on a server and
//! compared with their expected files; `stormchor describe FILE.spec`: a spec's
//! permutation as the choreography it runs as.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stormchor::isolation_suite::{SuiteOptions, run_suite_until};
use stormchor_isolation::choreo;
use stormchor_isolation::corpus::Corpus;
use stormchor_isolation::permutations;
use stormchor_isolation::spec::Spec;

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
        html,
        step_timeout,
    } = args;
    if !(1..=MAX_STEP_TIMEOUT_S).contains(&step_timeout) {
        return Err(CliError::usage(format!(
            "--step-timeout {step_timeout}: give a number of seconds from 1 to {MAX_STEP_TIMEOUT_S}"
        )));
    }
    let mut options = SuiteOptions::new(dir);
    options.names = names;
    // `STORMCHOR_TARGET` aims the suite like every other command (the flag wins).
    options.target = target.or_else(|| {
        std::env::var("STORMCHOR_TARGET")
            .ok()
            .filter(|value| !value.trim().is_empty())
    });
    options.step_timeout = Duration::from_secs(step_timeout);
    options.progress = true;
    options.tests().map_err(CliError::Usage)?;
    super::output::check_output_path("--json", json.as_deref()).map_err(CliError::Usage)?;
    super::output::check_output_path("--html", html.as_deref()).map_err(CliError::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::run(format!("cannot start the async runtime: {e}")))?;
    // A signal stops the tests; the run's database and cluster are removed as after a
    // whole run, and the exit status is 128 + its number (a second signal: at once).
    let stop = Arc::new(AtomicBool::new(false));
    super::signals::watch(&runtime, Arc::clone(&stop));
    let stopped = async move {
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let report = runtime
        .block_on(run_suite_until(&options, stopped))
        .map_err(CliError::Run)?;
    print!("{}", report.summary());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report.json())
            .map_err(|e| CliError::run(format!("cannot encode the report: {e}")))?;
        std::fs::write(&path, text)
            .map_err(|e| CliError::run(format!("cannot write {}: {e}", path.display())))?;
    }
    if let Some(path) = html {
        std::fs::write(&path, report.html())
            .map_err(|e| CliError::run(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(Verdict::from(!report.failed()))
}

/// Whether `describe` was given a spec file (`NAME.spec`).
pub fn is_spec_file(name: &str) -> bool {
    name.ends_with(".spec")
}

/// `stormchor describe FILE.spec [--permutation N] [--svg FILE]`: the choreography of
/// one permutation of a spec (the first by default) as a mermaid diagram, its control
/// frames and every role's program.
pub fn describe_spec(
    file: &str,
    permutation: Option<usize>,
    svg: Option<&Path>,
) -> Result<(), String> {
    let path = Path::new(file);
    let spec = Spec::from_file(path).map_err(|e| e.to_string())?;
    let total = permutations::count(&spec);
    let number = permutation.unwrap_or(1);
    let in_range = number >= 1 && total.is_none_or(|n| number as u128 <= n);
    let chosen = in_range
        .then(|| permutations::permutations(&spec).nth(number - 1))
        .flatten();
    let Some(chosen) = chosen else {
        let count = total.map_or_else(|| "more than 2^128".to_string(), |n| n.to_string());
        return Err(format!(
            "--permutation {number}: {file} has {count} permutation(s), numbered from 1"
        ));
    };
    // A spec of a corpus (`DIR/specs/NAME.spec`) whose expected files show the tester
    // before 9.6 runs with its rollbacks.
    let rollbacks = corpus_of(path).is_some_and(|(corpus, name)| {
        corpus.expected(&name).is_ok_and(|files| {
            files
                .iter()
                .any(|f| f.dialect().abandons_invalid_permutations)
        })
    });
    let program = choreo::permutation_program(&spec, number - 1, &chosen, rollbacks)
        .map_err(|e| format!("{file}: {e}"))?;
    if let Some(out) = svg {
        std::fs::write(out, stormchor::choreography::to_svg(&program))
            .map_err(|e| format!("--svg {}: cannot write it: {e}", out.display()))?;
    }
    let steps: Vec<&str> = chosen.steps.iter().map(|s| s.name.as_str()).collect();
    println!(
        "{file}: {} sessions, permutation {number} of {}: {}\n",
        spec.sessions.len(),
        total.map_or_else(|| "more than 2^128".to_string(), |n| n.to_string()),
        steps.join(" ")
    );
    println!(
        "```mermaid\n{}```\n",
        stormchor::choreography::to_mermaid(&program)
    );
    let frames = stormchor::choreography::order_frames(&program).map_err(|e| e.to_string())?;
    println!(
        "control frames: {} (effect order, in all projections)\n",
        frames.total()
    );
    let locals = stormchor::choreography::project_all(&program).map_err(|e| e.to_string())?;
    for local in locals.values() {
        println!("{local}");
    }
    Ok(())
}

/// The corpus and test name of `DIR/specs/NAME.spec`.
fn corpus_of(path: &Path) -> Option<(Corpus, String)> {
    let name = path.file_stem()?.to_str()?.to_string();
    let specs = path.parent()?;
    if specs.file_name()? != "specs" {
        return None;
    }
    let root = specs.parent()?;
    Some((Corpus::new(root), name))
}
