//! Reports: the JSON form of a run (schema `stormchor-report/1`, see `docs/cli.md`) and a
//! self-contained HTML page with throughput and latency plots over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde_json::{Value, json};
use stormchor_workloads::LoadReport;

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
/// use stormchor_workloads::LoadReport;
///
/// let report = LoadReport {
///     workload: "tpcb".into(),
///     elapsed: Duration::from_secs(2),
///     operations: Default::default(),
///     per_second: vec![10, 12],
///     per_second_latency: Vec::new(),
///     per_client: vec![22],
///     missed: 0,
///     reconnects: 0,
/// };
/// let json = workload_json(&report, 1, 1, None);
/// assert_eq!(json["schema"], "stormchor-report/1");
/// assert_eq!(json["revision"], 3);
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
        "schema": stormchor_kit::REPORT_SCHEMA, "revision": stormchor_kit::REPORT_REVISION, "kind": "workload", "name": report.workload, "seed": seed,
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

/// The colour of an event kind's marker.
/// Seconds between two marks of a time scale `elapsed` long: a round step that gives
/// at most about ten marks.
fn time_step(elapsed: f64) -> f64 {
    [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|step| elapsed / step <= 10.0)
    .unwrap_or((elapsed / 10.0).ceil().max(1.0))
}

fn event_color(kind: &str) -> &'static str {
    match kind {
        "kill" => "#cf222e",
        "restart" => "#1a7f37",
        "backup-start" => "#0969da",
        "backup-end" => "#54aeff",
        "restore" => "#8250df",
        "promote" => "#bf8700",
        "point" => "#57606a",
        "fault" => "#ff6d00",
        "resumed" => "#4ac26b",
        _ => "#999999",
    }
}

/// The writers' load second by second (acknowledged commits stacked per role,
/// failures below the axis, the slowest role's p99 latency as a line) on the
/// timeline's time axis, every event as a vertical line, a time scale, and
/// the recovery time after each kill; then a table of the recoveries. Empty when the
/// report has no load.
fn load_around_events(report: &Value, elapsed: f64, width: f64, left: f64) -> String {
    let Some(load) = report["load"].as_object().filter(|l| !l.is_empty()) else {
        return String::new();
    };
    let second = |v: &Value, key: &str| v[key].as_u64().unwrap_or(0);
    let mut per_second: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    for seconds in load.values() {
        for s in seconds.as_array().into_iter().flatten() {
            let entry = per_second.entry(second(s, "second")).or_default();
            entry.0 += second(s, "ok");
            entry.1 += second(s, "errors");
            entry.2 = entry.2.max(second(s, "p99_us"));
        }
    }
    let top_ok = per_second.values().map(|v| v.0).max().unwrap_or(1).max(1) as f64;
    let top_err = per_second.values().map(|v| v.1).max().unwrap_or(0) as f64;
    let top_p99 = per_second.values().map(|v| v.2).max().unwrap_or(1).max(1) as f64;
    let (plot, below) = (180.0, if top_err > 0.0 { 50.0 } else { 0.0 });
    let axis = 20.0 + plot;
    let height = axis + below + 30.0;
    let bar = (width / elapsed).max(1.0);
    let x_of = |at: f64| left + at / elapsed * width;
    // A second's bar, cut at the end of the run (the last second is often partial).
    let bar_width = |at: f64| (bar - 1.0).min(left + width - x_of(at)).max(1.0);
    let colors = [
        "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860",
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<h2>Load around the events</h2>\n<svg class=\"load\" width=\"{}\" height=\"{height:.0}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">\n\
         <text x=\"0\" y=\"14\">acknowledged per second (max {top_ok:.0})</text>\
         <line x1=\"{left}\" y1=\"{axis}\" x2=\"{}\" y2=\"{axis}\" stroke=\"#444\"/>",
        width + left + 60.0,
        left + width
    );
    if top_err > 0.0 {
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{:.1}\" fill=\"#cf222e\">failed (max {top_err:.0})</text>",
            axis + below - 2.0
        );
    }
    // The time scale, in seconds from the start of the run.
    let step = time_step(elapsed);
    let mut tick = 0.0;
    while tick <= elapsed {
        let x = x_of(tick);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#444\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick:.0} s</text>",
            axis + below,
            axis + below + 4.0,
            axis + below + 16.0
        );
        tick += step;
    }
    // Stacked bars: each role's acknowledged commits in each second.
    let mut stacked: BTreeMap<u64, f64> = BTreeMap::new();
    for (k, (role, seconds)) in load.iter().enumerate() {
        for s in seconds.as_array().into_iter().flatten() {
            let at = second(s, "second");
            let ok = second(s, "ok") as f64;
            let base = stacked.entry(at).or_default();
            let h = ok / top_ok * plot;
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} second {at}: {ok} acknowledged, {} failed, p99 {:.1} ms</title></rect>",
                x_of(at as f64),
                axis - *base - h,
                bar_width(at as f64),
                colors[k % colors.len()],
                escape(role),
                second(s, "errors"),
                second(s, "p99_us") as f64 / 1e3,
            );
            *base += h;
        }
    }
    for (at, (_, errors, _)) in &per_second {
        if *errors > 0 {
            let h = *errors as f64 / top_err.max(1.0) * below;
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{axis:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#cf222e\"><title>second {at}: {errors} failed or in doubt</title></rect>",
                x_of(*at as f64),
                bar_width(*at as f64),
            );
        }
    }
    // The slowest role's p99 latency, each second, scaled to the plot's height.
    let points: Vec<String> = per_second
        .iter()
        .map(|(at, (_, _, p99))| {
            format!(
                "{:.1},{:.1}",
                x_of(*at as f64 + 0.5),
                axis - *p99 as f64 / top_p99 * plot
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#111\" stroke-dasharray=\"3 2\"><title>p99 commit latency (max {:.1} ms)</title></polyline>\
         <text x=\"{:.1}\" y=\"14\">p99 ms (dashed, max {:.1})</text>",
        points.join(" "),
        top_p99 / 1e3,
        left + width - 160.0,
        top_p99 / 1e3
    );
    for event in report["events"].as_array().into_iter().flatten() {
        let kind = event["kind"].as_str().unwrap_or("?");
        let x = x_of(event["at_s"].as_f64().unwrap_or(0.0));
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"20\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"><title>{}: {}</title></line>",
            axis + below,
            event_color(kind),
            escape(kind),
            escape(event["detail"].as_str().unwrap_or(""))
        );
    }
    let recoveries = report["recoveries"].as_array().cloned().unwrap_or_default();
    for r in &recoveries {
        let (Some(kill), Some(back)) = (r["kill_at_s"].as_f64(), r["resumed_at_s"].as_f64()) else {
            continue;
        };
        let (x1, x2) = (x_of(kill), x_of(back));
        let _ = writeln!(
            out,
            "<line x1=\"{x1:.1}\" y1=\"30\" x2=\"{:.1}\" y2=\"30\" stroke=\"#cf222e\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"44\" fill=\"#cf222e\">{:.2} s</text>",
            x2.max(x1 + 2.0),
            x1 + 2.0,
            back - kill
        );
    }
    out.push_str("</svg>\n<p>");
    for (k, role) in load.keys().enumerate() {
        let _ = write!(
            out,
            "<span style=\"color:{}\">&#9632;</span> {} &nbsp; ",
            colors[k % colors.len()],
            escape(role)
        );
    }
    if top_err > 0.0 {
        out.push_str("<span style=\"color:#cf222e\">&#9632;</span> failed or in doubt (below the axis) &nbsp; ");
    }
    out.push_str("(hover a bar for its second)</p>\n");
    if !recoveries.is_empty() {
        out.push_str("<table><tr><th>kill</th><th>server of</th><th>at s</th><th>accepting connections after s</th><th>commits again after s</th><th>first by</th></tr>\n");
        for (i, r) in recoveries.iter().enumerate() {
            let _ = writeln!(
                out,
                "<tr><td>{i}</td><td>{}</td><td>{:.2}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(r["role"].as_str().unwrap_or("")),
                r["kill_at_s"].as_f64().unwrap_or(0.0),
                match (r["restarted_at_s"].as_f64(), r["kill_at_s"].as_f64()) {
                    (Some(back), Some(kill)) => format!("{:.2}", back - kill),
                    _ => "-".to_owned(),
                },
                if r["recovery_s"].is_number() {
                    "ok"
                } else {
                    "bad"
                },
                r["recovery_s"]
                    .as_f64()
                    .map_or("never".to_owned(), |t| format!("{t:.2}")),
                escape(r["resumed_by"].as_str().unwrap_or("-")),
            );
        }
        out.push_str("</table>\n");
    }
    out
}

/// A self-contained HTML page for a scenario report (as made by
/// [`ScenarioReport::to_json`](crate::scenarios::ScenarioReport::to_json)): the verdict,
/// each role's phases on a timeline, the checks with their evidence, how each role
/// ended (with the SQL log of a failed worker), the figures, and the choreography drawn
/// (the report's `diagram_svg`, inline) with its mermaid source folded beneath it.
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
    let interrupted = report["interrupted"].as_str().map(str::to_owned);
    let elapsed = report["elapsed_s"].as_f64().unwrap_or(0.0).max(0.001);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>stormchor: {name}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}} \
         td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}} th{{background:#f0f0f0}} \
         .ok{{color:#1a7f37}} .bad{{color:#cf222e;font-weight:bold}} pre{{background:#f6f8fa;padding:1em;overflow:auto}}\
         </style></head><body>\n<h1>stormchor: {name} <span class=\"{}\">{}</span></h1>\n<p>{:.1} s, seed {}.</p>\n",
        if passed && interrupted.is_none() {
            "ok"
        } else {
            "bad"
        },
        match (&interrupted, passed) {
            (Some(signal), _) => format!("INTERRUPTED ({})", escape(signal)),
            (None, true) => "PASSED".to_owned(),
            (None, false) => "FAILED".to_owned(),
        },
        elapsed,
        report["seed"],
    );
    if let Some(fault) = report["fault"].as_str() {
        let _ = writeln!(
            html,
            "<p class=\"bad\">Fault injected: {} (the checks are expected to catch it).</p>",
            escape(fault)
        );
    }
    // The timeline: one row per role, one bar per phase, from its start to the next.
    let phases = report["phases"].as_array().cloned().unwrap_or_default();
    let events = report["events"].as_array().cloned().unwrap_or_default();
    let mut roles: Vec<String> = Vec::new();
    for phase in phases.iter().chain(&events) {
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
    for event in &events {
        let Some(index) = roles.iter().position(|r| event["role"] == r.as_str()) else {
            continue;
        };
        let y = index as f64 * row + 5.0;
        let at = event["at_s"].as_f64().unwrap_or(0.0);
        let x = left + at / elapsed * width;
        let kind = event["kind"].as_str().unwrap_or("?");
        let _ = writeln!(
            html,
            "<g class=\"event\"><title>{} at {at:.2} s: {}</title><line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#111\" stroke-width=\"2\"/><circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"{}\" stroke=\"#111\"/></g>",
            escape(kind),
            escape(event["detail"].as_str().unwrap_or("")),
            y - 1.0,
            y + row - 5.0,
            y + row / 2.0 - 3.0,
            event_color(kind),
        );
    }
    html.push_str("</svg>\n");
    if !events.is_empty() {
        html.push_str("<p>");
        let mut kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            let _ = write!(
                html,
                "<span style=\"color:{}\">&#9679;</span> {} &nbsp; ",
                event_color(kind),
                escape(kind)
            );
        }
        html.push_str("(hover a marker for its time and detail)</p>\n");
    }
    html.push_str(&load_around_events(report, elapsed, width, left));
    html.push_str("<h2>Checks</h2>\n<table><tr><th>check</th><th>role</th><th>result</th><th>summary</th><th>evidence</th></tr>\n");
    for check in report["checks"].as_array().into_iter().flatten() {
        let ok = check["passed"].as_bool().unwrap_or(false);
        let cut = check["interrupted"].as_bool().unwrap_or(false);
        let evidence = escaped_strings(&check["evidence"]);
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(check["name"].as_str().unwrap_or("")),
            escape(check["role"].as_str().unwrap_or("")),
            if ok { "ok" } else { "bad" },
            match (ok, cut) {
                (true, _) => "ok",
                (false, true) => "INTERRUPTED",
                (false, false) => "FAILED",
            },
            escape(check["summary"].as_str().unwrap_or("")),
            evidence.join("<br>")
        );
    }
    html.push_str("</table>\n<h2>Roles</h2>\n<table><tr><th>role</th><th>ended</th><th>last phase</th><th>failure</th></tr>\n");
    for role in report["roles"].as_array().into_iter().flatten() {
        let log = escaped_strings(&role["sql_log"]);
        let failure = match (role["failure"].as_str(), role["peer_down"].as_str()) {
            (Some(failure), _) => escape(failure),
            (None, Some(down)) => format!("then peer {}", escape(down)),
            (None, None) => String::new(),
        };
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
    html.push_str("</table>\n");
    html.push_str(&stress_loads_html(report));
    html.push_str("<h2>Figures</h2>\n<table>\n");
    for (figure, value) in report["figures"].as_object().into_iter().flatten() {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(figure),
            escape(&value.to_string())
        );
    }
    // The diagram drawn (stormchor's own SVG, inline: no scripts, no network), its
    // mermaid source folded away beneath it.
    let _ = write!(
        html,
        "</table>\n<h2>Choreography</h2>\n<div class=\"diagram\">{}</div>\n\
         <details><summary>mermaid source</summary><pre>{}</pre></details>\n</body></html>\n",
        report["diagram_svg"]
            .as_str()
            .filter(|svg| svg.starts_with("<svg "))
            .unwrap_or(""),
        escape(report["diagram"].as_str().unwrap_or(""))
    );
    html
}

/// Each stress load's figures per action (the report's `stress`), a table per load;
/// nothing when the run had no stress load.
fn stress_loads_html(report: &Value) -> String {
    let Some(loads) = report["stress"].as_array().filter(|l| !l.is_empty()) else {
        return String::new();
    };
    let mut html = String::from("<h2>Stress loads</h2>\n");
    for load in loads {
        let _ = writeln!(
            html,
            "<h3>{} <small>(seed {}, {:.1} s, {} reconnects)</small></h3>\n<table><tr><th>action</th><th>runs</th><th>ok</th><th>failed (by SQLSTATE)</th><th>p50 ms</th><th>p99 ms</th></tr>",
            escape(load["load"].as_str().unwrap_or("?")),
            load["seed"],
            load["elapsed_s"].as_f64().unwrap_or(0.0),
            load["reconnects"]
        );
        for (action, a) in load["actions"].as_object().into_iter().flatten() {
            let failed: Vec<String> = a["errors"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(code, n)| format!("{}: {n}", escape(code)))
                .collect();
            let ms = |key: &str| a[key].as_u64().unwrap_or(0) as f64 / 1e3;
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                escape(action),
                a["runs"],
                a["ok"],
                failed.join(", "),
                ms("p50_us"),
                ms("p99_us")
            );
        }
        html.push_str("</table>\n");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: Value) -> Value {
        let mut report = json!({
            "name": "backup-restore", "seed": 1, "success": true, "elapsed_s": 3.0,
            "phases": [], "checks": [
                { "name": "pg_verifybackup", "role": "Backup", "passed": false,
                  "summary": "not finished: the run was interrupted (the backup does not match its manifest)",
                  "evidence": [], "interrupted": true }
            ],
            "roles": [], "figures": {}, "events": [], "load": {}, "recoveries": [],
            "diagram": "", "diagram_svg": ""
        });
        if let (Some(report), Some(extra)) = (report.as_object_mut(), extra.as_object()) {
            report.extend(extra.clone());
        }
        report
    }

    #[test]
    fn an_interrupted_run_says_so_in_its_heading_and_its_unfinished_checks() {
        let page = render_scenario_html(&scenario(json!({ "interrupted": "SIGTERM" })));
        assert!(page.contains("INTERRUPTED (SIGTERM)</span></h1>"), "{page}");
        assert!(!page.contains(">PASSED<"), "{page}");
        assert!(
            page.contains("<td class=\"bad\">INTERRUPTED</td>"),
            "{page}"
        );
        // Not interrupted: the verdict is the run's.
        let page = render_scenario_html(&scenario(json!({})));
        assert!(page.contains(">PASSED</span></h1>"), "{page}");
    }

    #[test]
    fn the_time_scale_has_round_steps_and_about_ten_marks() {
        assert_eq!(time_step(3.0), 1.0);
        assert_eq!(time_step(10.0), 1.0);
        assert_eq!(time_step(11.0), 2.0);
        assert_eq!(time_step(95.0), 10.0);
        assert_eq!(time_step(5_400.0), 600.0);
        assert!(86_400.0 / time_step(86_400.0) <= 10.0);
    }

    #[test]
    fn every_event_is_a_line_on_the_load_chart_with_a_time_scale() {
        let report = scenario(json!({
            "elapsed_s": 4.0,
            "load": { "Worker(0)": [ { "second": 1, "ok": 10, "errors": 2, "p50_us": 900, "p99_us": 2000 } ] },
            "events": [
                { "role": "Coordinator", "kind": "point", "detail": "point 0", "at_s": 1.5 },
                { "role": "Backup", "kind": "restore", "detail": "restored", "at_s": 2.5 },
                { "role": "Worker(0)", "kind": "resumed", "detail": "back", "at_s": 3.0 }
            ]
        }));
        let page = render_scenario_html(&report);
        for kind in ["point", "restore", "resumed"] {
            assert!(
                page.contains(&format!("stroke-dasharray=\"5 3\"><title>{kind}: ")),
                "{kind}: {page}"
            );
        }
        assert!(page.contains(">failed (max 2)</text>"), "{page}");
        assert!(page.contains(">4 s</text>"), "{page}");
    }

    #[test]
    fn an_injected_fault_is_named_at_the_top() {
        let page = render_scenario_html(&scenario(json!({ "fault": "skip-wal-replay" })));
        assert!(page.contains("Fault injected: skip-wal-replay"), "{page}");
        let page = render_scenario_html(&scenario(json!({ "fault": null })));
        assert!(!page.contains("Fault injected"), "{page}");
    }

    #[test]
    fn every_stress_load_has_a_table_of_its_actions() {
        let html = render_scenario_html(&scenario(json!({
            "stress": [{
                "role": "Worker(0)", "load": "Worker(0)#0", "seed": 9, "elapsed_s": 2.0,
                "reconnects": 1,
                "actions": { "<create>": { "runs": 5, "ok": 3, "errors": { "40P01": 2 },
                                           "p50_us": 1500, "p99_us": 4000 } },
            }],
        })));
        assert!(html.contains("<h2>Stress loads</h2>"), "{html}");
        assert!(
            html.contains("Worker(0)#0 <small>(seed 9, 2.0 s, 1 reconnects)</small>"),
            "{html}"
        );
        assert!(
            html.contains("<tr><td>&lt;create&gt;</td><td>5</td><td>3</td><td>40P01: 2</td><td>1.50</td><td>4.00</td></tr>"),
            "{html}"
        );
        let without = render_scenario_html(&scenario(json!({})));
        assert!(!without.contains("Stress loads"), "{without}");
    }
}
