//! Report output: the workload table on standard output, and the JSON and HTML report
//! files.

use std::path::Path;

use serde::Serialize;
use stormchor::workloads::LoadReport;

use super::config::Settings;

/// Writes `report` (a typed report, under its `VersionedReport` header) as JSON to the
/// `--json` path, if one is set.
pub async fn write_json(settings: &Settings, report: &impl Serialize) -> Result<(), String> {
    if let Some(path) = &settings.json.value {
        let text = serde_json::to_string_pretty(report)
            .map_err(|e| format!("cannot write the report as JSON: {e}"))?;
        tokio::fs::write(path, text + "\n")
            .await
            .map_err(|e| format!("cannot write the JSON report to {}: {e}", path.display()))?;
        println!("Wrote the JSON report to {}.", path.display());
    }
    Ok(())
}

/// Writes an HTML page to `path`.
pub async fn write_html(path: &Path, page: &str) -> Result<(), String> {
    tokio::fs::write(path, page)
        .await
        .map_err(|e| format!("cannot write the HTML report to {}: {e}", path.display()))?;
    println!("Wrote the HTML report to {}.", path.display());
    Ok(())
}

/// Prints a workload run's per-operation table and its throughput.
pub fn print_workload_table(report: &LoadReport) {
    println!(
        "\n| operation | ok | failed | per second | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (operation, metrics) in &report.operations {
        let ms = |q: f64| metrics.latency.value_at_quantile(q) as f64 / 1e3;
        let failed: Vec<String> = metrics
            .errors
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        println!(
            "| {operation} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            metrics.count,
            if failed.is_empty() {
                "0".to_owned()
            } else {
                failed.join(", ")
            },
            metrics.count as f64 / report.elapsed.as_secs_f64(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            metrics.latency.max() as f64 / 1e3
        );
    }
    println!(
        "\n{:.0} transactions per second over {:.1} s",
        report.throughput(),
        report.elapsed.as_secs_f64()
    );
}

/// Checks, before a run, that a report can be written to `path` (given by `flag`): its
/// directory exists and the file can be opened for writing. A file that did not exist
/// is not left behind.
pub fn check_output_path(flag: &str, path: Option<&Path>) -> Result<(), String> {
    let Some(path) = path else {
        return Ok(());
    };
    if path.is_dir() {
        return Err(format!(
            "{flag} {}: is a directory; give a file name",
            path.display()
        ));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_fifo() || kind.is_socket() {
            // Opening a pipe for writing waits for a reader: the run would hang here.
            return Err(format!(
                "{flag} {}: is a pipe or socket; give a file name",
                path.display()
            ));
        }
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("{flag} {}: cannot write there: {e}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
