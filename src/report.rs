//! Reports: the JSON form of a run (schema `stormchor-report/1`, see `docs/cli.md`) and a
//! self-contained HTML page with throughput and latency plots over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde_json::{Value, json};
use stormchor_runtime::workload::LoadReport;

/// The JSON form of a latency histogram (microseconds in, milliseconds out).
pub fn latency_json(latency: &Histogram<u64>) -> Value {
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1e3;
    json!({ "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p99_9": ms(0.999), "max": latency.max() as f64 / 1e3 })
}

/// Failures by SQLSTATE code and by class (its first two characters).
pub fn errors_json(errors: &BTreeMap<String, u64>) -> Value {
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    for (code, n) in errors {
        let class = if code.len() == 5 {
            code[..2].to_owned()
        } else {
            code.clone()
        };
        *classes.entry(class).or_insert(0) += n;
    }
    json!({ "by_code": errors, "by_class": classes })
}

/// The JSON report of a workload run.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor::report::workload_json;
/// use stormchor_runtime::workload::LoadReport;
///
/// let report = LoadReport {
///     workload: "tpcb".into(),
///     elapsed: Duration::from_secs(2),
///     operations: Default::default(),
///     per_second: vec![10, 12],
///     per_second_latency: Vec::new(),
///     per_client: vec![22],
///     missed: 0,
/// };
/// let json = workload_json(&report, 1, 1, None);
/// assert_eq!(json["schema"], "stormchor-report/1");
/// assert_eq!(json["per_second"][1], 12);
/// ```
pub fn workload_json(report: &LoadReport, seed: u64, clients: u16, rate: Option<f64>) -> Value {
    let operations: serde_json::Map<String, Value> = report
        .operations
        .iter()
        .map(|(op, m)| (op.clone(), json!({ "count": m.count, "errors": errors_json(&m.errors), "latency_ms": latency_json(&m.latency) })))
        .collect();
    let per_second_latency: Vec<Value> = report
        .per_second_latency
        .iter()
        .map(|h| {
            let ms = |q: f64| {
                if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(q) as f64 / 1e3
                }
            };
            json!({ "p50": ms(0.5), "p99": ms(0.99) })
        })
        .collect();
    json!({
        "schema": "stormchor-report/1", "kind": "workload", "name": report.workload, "seed": seed,
        "clients": clients, "rate": rate, "elapsed_s": report.elapsed.as_secs_f64(),
        "throughput": report.throughput(), "successes": report.successes(), "failures": report.failures(),
        "operations": operations, "per_second": report.per_second, "per_second_latency_ms": per_second_latency,
        "per_client": report.per_client, "missed": report.missed,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of `series` (name, color, points) as an SVG string.
fn chart(
    title: &str,
    y_label: &str,
    series: &[(&str, RGBColor, Vec<f64>)],
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 280)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let seconds = series
            .iter()
            .map(|(_, _, p)| p.len())
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let top = series
            .iter()
            .flat_map(|(_, _, p)| p.iter().copied())
            .fold(0.0, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..seconds, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("second")
            .y_desc(y_label)
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, color, points) in series {
            chart
                .draw_series(LineSeries::new(
                    points.iter().enumerate().map(|(i, v)| (i as f64 + 0.5, *v)),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A self-contained HTML page for a workload report (as made by [`workload_json`]):
/// throughput and latency percentiles over time as inline SVG, and the per-operation table.
///
/// # Example
/// ```
/// use stormchor::report::render_html;
///
/// let report = serde_json::json!({
///     "name": "tpcb", "throughput": 100.0, "elapsed_s": 2.0, "clients": 1, "successes": 200, "failures": 0,
///     "per_second": [100, 100],
///     "per_second_latency_ms": [{ "p50": 1.0, "p99": 2.0 }, { "p50": 1.1, "p99": 2.5 }],
///     "operations": { "tpcb": { "count": 200, "errors": { "by_code": {} },
///         "latency_ms": { "p50": 1.0, "p90": 1.5, "p99": 2.0, "p99_9": 3.0, "max": 4.0 } } },
/// });
/// let html = render_html(&report).expect("rendered");
/// assert!(html.starts_with("<!doctype html>"));
/// assert_eq!(html.matches("<svg").count(), 2);
/// ```
pub fn render_html(report: &Value) -> Result<String, String> {
    // The last second of a run is usually cut short; plotting it would show a false drop.
    let full_seconds = (report["elapsed_s"].as_f64().unwrap_or(0.0).floor() as usize).max(1);
    let numbers = |key: &str| -> Vec<f64> {
        report[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .take(full_seconds)
                    .filter_map(Value::as_f64)
                    .collect()
            })
            .unwrap_or_default()
    };
    let percentile = |q: &str| -> Vec<f64> {
        report["per_second_latency_ms"]
            .as_array()
            .map(|a| {
                a.iter()
                    .take(full_seconds)
                    .map(|p| p[q].as_f64().unwrap_or(0.0))
                    .collect()
            })
            .unwrap_or_default()
    };
    let throughput = chart(
        "Throughput",
        "operations / s",
        &[("operations per second", BLUE, numbers("per_second"))],
    )?;
    let latency = chart(
        "Latency",
        "ms",
        &[
            ("p50", GREEN, percentile("p50")),
            ("p99", RED, percentile("p99")),
        ],
    )?;
    let name = escape(report["name"].as_str().unwrap_or("run"));
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>stormchor: {name}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}} \
         td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}} th{{background:#f0f0f0}} td:first-child{{text-align:left}}\
         </style></head><body>\n<h1>stormchor: {name}</h1>\n<p>{:.0} operations per second over {:.1} s with {} clients; {} succeeded, {} failed.</p>\n",
        report["throughput"].as_f64().unwrap_or(0.0),
        report["elapsed_s"].as_f64().unwrap_or(0.0),
        report["clients"],
        report["successes"],
        report["failures"],
    );
    let _ = write!(
        html,
        "<div>{throughput}</div>\n<div>{latency}</div>\n<h2>Operations</h2>\n<table><tr><th>operation</th><th>ok</th><th>failed</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>\n"
    );
    if let Some(operations) = report["operations"].as_object() {
        for (op, m) in operations {
            let failed: Vec<String> = m["errors"]["by_code"]
                .as_object()
                .map(|codes| codes.iter().map(|(c, n)| format!("{c}: {n}")).collect())
                .unwrap_or_default();
            let l = &m["latency_ms"];
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                escape(op),
                m["count"],
                escape(&if failed.is_empty() {
                    "0".to_owned()
                } else {
                    failed.join(", ")
                }),
                l["p50"].as_f64().unwrap_or(0.0),
                l["p90"].as_f64().unwrap_or(0.0),
                l["p99"].as_f64().unwrap_or(0.0),
                l["p99_9"].as_f64().unwrap_or(0.0),
                l["max"].as_f64().unwrap_or(0.0),
            );
        }
    }
    html.push_str("</table>\n</body></html>\n");
    Ok(html)
}

/// The strings of a JSON array, escaped for HTML.
fn escaped_strings(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(escape)
        .collect()
}

/// A self-contained HTML page for a scenario report (as made by
/// [`ScenarioReport::to_json`](crate::scenarios::ScenarioReport::to_json)): the verdict,
/// each role's phases on a timeline, the checks with their evidence, how each role
/// ended (with the SQL log of a failed worker), the figures and the diagram's source.
///
/// # Example
/// ```
/// use stormchor::report::render_scenario_html;
///
/// let report = serde_json::json!({
///     "name": "crash-recovery", "success": false, "seed": 7, "elapsed_s": 3.0,
///     "phases": [{ "role": "Coordinator", "phase": "verify", "at_s": 2.5 }],
///     "checks": [{ "name": "nothing lost", "role": "Coordinator", "passed": false,
///                  "summary": "1 missing", "evidence": ["worker 0 transaction 3"] }],
///     "roles": [], "figures": { "kills": 2 }, "diagram": "sequenceDiagram",
/// });
/// let html = render_scenario_html(&report);
/// assert!(html.contains("FAILED") && html.contains("worker 0 transaction 3"));
/// ```
pub fn render_scenario_html(report: &Value) -> String {
    let name = escape(report["name"].as_str().unwrap_or("scenario"));
    let passed = report["success"].as_bool().unwrap_or(false);
    let elapsed = report["elapsed_s"].as_f64().unwrap_or(0.0).max(0.001);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>stormchor: {name}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}} \
         td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}} th{{background:#f0f0f0}} \
         .ok{{color:#1a7f37}} .bad{{color:#cf222e;font-weight:bold}} pre{{background:#f6f8fa;padding:1em;overflow:auto}}\
         </style></head><body>\n<h1>stormchor: {name} <span class=\"{}\">{}</span></h1>\n<p>{:.1} s, seed {}.</p>\n",
        if passed { "ok" } else { "bad" },
        if passed { "PASSED" } else { "FAILED" },
        elapsed,
        report["seed"],
    );
    // The timeline: one row per role, one bar per phase, from its start to the next.
    let phases = report["phases"].as_array().cloned().unwrap_or_default();
    let mut roles: Vec<String> = Vec::new();
    for phase in &phases {
        let role = phase["role"].as_str().unwrap_or("?").to_owned();
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    let (width, row, left) = (900.0, 26.0, 140.0);
    let _ = write!(
        html,
        "<h2>Phases</h2>\n<svg width=\"{}\" height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">\n",
        width + left,
        row * roles.len() as f64 + 10.0
    );
    let colors = [
        "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860",
    ];
    for (index, role) in roles.iter().enumerate() {
        let y = index as f64 * row + 5.0;
        let _ = writeln!(
            html,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + 16.0,
            escape(role)
        );
        let own: Vec<&Value> = phases
            .iter()
            .filter(|p| p["role"] == role.as_str())
            .collect();
        // A role's last phase ends when the role does.
        let finished = report["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["role"] == role.as_str())
            .and_then(|r| r["elapsed_s"].as_f64())
            .unwrap_or(elapsed);
        for (k, phase) in own.iter().enumerate() {
            let start = phase["at_s"].as_f64().unwrap_or(0.0);
            let end = own
                .get(k + 1)
                .and_then(|next| next["at_s"].as_f64())
                .unwrap_or(finished);
            let x = left + start / elapsed * width;
            let w = ((end - start) / elapsed * width).max(2.0);
            let label = escape(phase["phase"].as_str().unwrap_or("?"));
            let _ = writeln!(
                html,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"><title>{label} from {start:.2} s</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"white\">{label}</text>",
                row - 6.0,
                colors[k % colors.len()],
                x + 3.0,
                y + 15.0
            );
        }
    }
    html.push_str("</svg>\n<h2>Checks</h2>\n<table><tr><th>check</th><th>role</th><th>result</th><th>summary</th><th>evidence</th></tr>\n");
    for check in report["checks"].as_array().into_iter().flatten() {
        let ok = check["passed"].as_bool().unwrap_or(false);
        let evidence = escaped_strings(&check["evidence"]);
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(check["name"].as_str().unwrap_or("")),
            escape(check["role"].as_str().unwrap_or("")),
            if ok { "ok" } else { "bad" },
            if ok { "ok" } else { "FAILED" },
            escape(check["summary"].as_str().unwrap_or("")),
            evidence.join("<br>")
        );
    }
    html.push_str("</table>\n<h2>Roles</h2>\n<table><tr><th>role</th><th>ended</th><th>last phase</th><th>failure</th></tr>\n");
    for role in report["roles"].as_array().into_iter().flatten() {
        let log = escaped_strings(&role["sql_log"]);
        let failure = role["failure"].as_str().map(escape).unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{failure}{}</td></tr>",
            escape(role["role"].as_str().unwrap_or("")),
            if role["completed"].as_bool().unwrap_or(false) {
                "completed"
            } else {
                "FAILED"
            },
            escape(role["phase"].as_str().unwrap_or("-")),
            if log.is_empty() {
                String::new()
            } else {
                format!("<pre>{}</pre>", log.join("\n"))
            }
        );
    }
    html.push_str("</table>\n<h2>Figures</h2>\n<table>\n");
    for (figure, value) in report["figures"].as_object().into_iter().flatten() {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(figure),
            escape(&value.to_string())
        );
    }
    let _ = write!(
        html,
        "</table>\n<h2>Choreography</h2>\n<pre>{}</pre>\n</body></html>\n",
        escape(report["diagram"].as_str().unwrap_or(""))
    );
    html
}
