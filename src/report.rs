//! Reports: the typed report of a workload run ([`WorkloadReport`]; a scenario's is
//! [`ScenarioReport`]), whose `Serialize` is the JSON report (schema
//! `stormchor-report/1`, see `docs/cli.md`), and the self-contained HTML pages drawn
//! from the same typed reports, with throughput and latency plots over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::Serialize;
use stormchor_kit::{ScenarioReport, VersionedReport};
use stormchor_workloads::LoadReport;

/// Latency percentiles of one operation, in milliseconds (`latency_ms` in the JSON
/// report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The 99.9th percentile.
    pub p99_9: f64,
    /// The slowest.
    pub max: f64,
}

impl LatencySummary {
    /// The percentiles of `latency` (microseconds in, milliseconds out).
    ///
    /// # Example
    /// ```
    /// use stormchor::report::LatencySummary;
    ///
    /// let mut latency = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    /// latency.record(1_500).expect("recorded");
    /// assert_eq!(LatencySummary::of(&latency).max, 1.5);
    /// ```
    pub fn of(latency: &Histogram<u64>) -> LatencySummary {
        let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1e3;
        LatencySummary {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p99_9: ms(0.999),
            max: latency.max() as f64 / 1e3,
        }
    }
}

/// Failures by SQLSTATE code and by class (its first two characters); other keys
/// (`connection`, `no target`) are their own class.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// By SQLSTATE (or `connection`, `no target`).
    pub by_code: BTreeMap<String, u64>,
    /// By SQLSTATE class.
    pub by_class: BTreeMap<String, u64>,
}

impl ErrorCounts {
    /// The counts of `errors` (by code), with their classes.
    ///
    /// # Example
    /// ```
    /// use std::collections::BTreeMap;
    /// use stormchor::report::ErrorCounts;
    ///
    /// let errors = BTreeMap::from([("40001".to_owned(), 2), ("40P01".to_owned(), 1)]);
    /// assert_eq!(ErrorCounts::of(&errors).by_class["40"], 3);
    /// ```
    pub fn of(errors: &BTreeMap<String, u64>) -> ErrorCounts {
        let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
        for (code, n) in errors {
            let class = if code.len() == 5 {
                code[..2].to_owned()
            } else {
                code.clone()
            };
            *by_class.entry(class).or_insert(0) += n;
        }
        ErrorCounts {
            by_code: errors.clone(),
            by_class,
        }
    }
}

/// One operation of a workload run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationReport {
    /// Successful runs.
    pub count: u64,
    /// Failed runs.
    pub errors: ErrorCounts,
    /// The latency of the successful runs.
    pub latency_ms: LatencySummary,
}

/// The latency of one second of a run, all operations together, in milliseconds (0
/// when none was recorded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SecondLatency {
    /// The median.
    pub p50: f64,
    /// The 99th percentile.
    pub p99: f64,
}

/// The report of a workload run. Its `Serialize` is the JSON report's body (kind
/// `workload`; [`versioned`](WorkloadReport::versioned) adds the header); the HTML
/// page ([`render_html`]) is drawn from it too.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor::report::WorkloadReport;
/// use stormchor_workloads::LoadReport;
///
/// let run = LoadReport {
///     workload: "tpcb".into(),
///     elapsed: Duration::from_secs(2),
///     operations: Default::default(),
///     per_second: vec![10, 12],
///     per_second_latency: Vec::new(),
///     per_client: vec![22],
///     missed: 0,
///     reconnects: 0,
/// };
/// let report = WorkloadReport::of(&run, 1, 1, None);
/// let json = serde_json::to_value(report.versioned()).expect("serialized");
/// assert_eq!(json["schema"], "stormchor-report/1");
/// assert_eq!(json["revision"], 3);
/// assert_eq!(json["per_second"][1], 12);
/// assert!(json.get("custom").is_none() && json.get("interrupted").is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadReport {
    /// The workload.
    pub name: String,
    /// The seed it ran with.
    pub seed: u64,
    /// Its clients.
    pub clients: u16,
    /// The open loop's rate, operations per second (`None`: a closed loop).
    pub rate: Option<f64>,
    /// How long it ran, in seconds.
    pub elapsed_s: f64,
    /// Successful operations per second.
    pub throughput: f64,
    /// Successful operations in all.
    pub successes: u64,
    /// Failed operations in all.
    pub failures: u64,
    /// Per operation.
    pub operations: BTreeMap<String, OperationReport>,
    /// Successful operations in each second of the run.
    pub per_second: Vec<u64>,
    /// The latency of each second of the run.
    pub per_second_latency_ms: Vec<SecondLatency>,
    /// Successful operations of each client.
    pub per_client: Vec<u64>,
    /// An open loop: the operations due before the end that could not start in time.
    pub missed: u64,
    /// The workload's own figures, by name (absent from the JSON report when it has
    /// none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, f64>,
    /// The signal that cut the run short, by name (`SIGINT`), if one did; absent from
    /// the JSON report otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

impl WorkloadReport {
    /// The report of `run`, made with `seed`, `clients` and the open loop's `rate`.
    pub fn of(run: &LoadReport, seed: u64, clients: u16, rate: Option<f64>) -> WorkloadReport {
        let operations = run
            .operations
            .iter()
            .map(|(op, m)| {
                let report = OperationReport {
                    count: m.count,
                    errors: ErrorCounts::of(&m.errors),
                    latency_ms: LatencySummary::of(&m.latency),
                };
                (op.clone(), report)
            })
            .collect();
        let per_second_latency_ms = run
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
                SecondLatency {
                    p50: ms(0.5),
                    p99: ms(0.99),
                }
            })
            .collect();
        WorkloadReport {
            name: run.workload.clone(),
            seed,
            clients,
            rate,
            elapsed_s: run.elapsed.as_secs_f64(),
            throughput: run.throughput(),
            successes: run.successes(),
            failures: run.failures(),
            operations,
            per_second: run.per_second.clone(),
            per_second_latency_ms,
            per_client: run.per_client.clone(),
            missed: run.missed,
            custom: BTreeMap::new(),
            interrupted: None,
        }
    }

    /// The report as its JSON file holds it (schema `stormchor-report/1` at its
    /// revision, kind `workload`): serialize this.
    pub fn versioned(&self) -> VersionedReport<'_, WorkloadReport> {
        VersionedReport::new("workload", self)
    }
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

/// A self-contained HTML page for a workload report: throughput and latency
/// percentiles over time as inline SVG, and the per-operation table.
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use stormchor::report::{ErrorCounts, LatencySummary, OperationReport, SecondLatency, WorkloadReport, render_html};
///
/// let tpcb = OperationReport {
///     count: 200,
///     errors: ErrorCounts::default(),
///     latency_ms: LatencySummary { p50: 1.0, p90: 1.5, p99: 2.0, p99_9: 3.0, max: 4.0 },
/// };
/// let report = WorkloadReport {
///     name: "tpcb".into(), seed: 1, clients: 1, rate: None, elapsed_s: 2.0, throughput: 100.0,
///     successes: 200, failures: 0, operations: BTreeMap::from([("tpcb".to_owned(), tpcb)]),
///     per_second: vec![100, 100],
///     per_second_latency_ms: vec![SecondLatency { p50: 1.0, p99: 2.0 }, SecondLatency { p50: 1.1, p99: 2.5 }],
///     per_client: vec![200], missed: 0, custom: BTreeMap::new(), interrupted: None,
/// };
/// let html = render_html(&report).expect("rendered");
/// assert!(html.starts_with("<!doctype html>"));
/// assert_eq!(html.matches("<svg").count(), 2);
/// ```
pub fn render_html(report: &WorkloadReport) -> Result<String, String> {
    // The last second of a run is usually cut short; plotting it would show a false drop.
    let full_seconds = (report.elapsed_s.floor() as usize).max(1);
    let per_second: Vec<f64> = report
        .per_second
        .iter()
        .take(full_seconds)
        .map(|n| *n as f64)
        .collect();
    let percentile = |q: fn(&SecondLatency) -> f64| -> Vec<f64> {
        report
            .per_second_latency_ms
            .iter()
            .take(full_seconds)
            .map(q)
            .collect()
    };
    let throughput = chart(
        "Throughput",
        "operations / s",
        &[("operations per second", BLUE, per_second)],
    )?;
    let latency = chart(
        "Latency",
        "ms",
        &[
            ("p50", GREEN, percentile(|p| p.p50)),
            ("p99", RED, percentile(|p| p.p99)),
        ],
    )?;
    let name = escape(&report.name);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>stormchor: {name}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}} \
         td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}} th{{background:#f0f0f0}} td:first-child{{text-align:left}}\
         </style></head><body>\n<h1>stormchor: {name}</h1>\n<p>{:.0} operations per second over {:.1} s with {} clients; {} succeeded, {} failed.</p>\n",
        report.throughput, report.elapsed_s, report.clients, report.successes, report.failures,
    );
    let _ = write!(
        html,
        "<div>{throughput}</div>\n<div>{latency}</div>\n<h2>Operations</h2>\n<table><tr><th>operation</th><th>ok</th><th>failed</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>\n"
    );
    for (op, m) in &report.operations {
        let failed: Vec<String> = m
            .errors
            .by_code
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let l = &m.latency_ms;
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            escape(op),
            m.count,
            escape(&if failed.is_empty() {
                "0".to_owned()
            } else {
                failed.join(", ")
            }),
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.max,
        );
    }
    html.push_str("</table>\n</body></html>\n");
    Ok(html)
}

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

/// The colour of an event kind's marker.
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
fn load_around_events(report: &ScenarioReport, elapsed: f64, width: f64, left: f64) -> String {
    let load = &report.load;
    if load.is_empty() {
        return String::new();
    }
    let mut per_second: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    for seconds in load.values() {
        for s in seconds {
            let entry = per_second.entry(u64::from(s.second)).or_default();
            entry.0 += s.ok;
            entry.1 += s.errors;
            entry.2 = entry.2.max(s.p99_us);
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
        for s in seconds {
            let at = u64::from(s.second);
            let ok = s.ok as f64;
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
                s.errors,
                s.p99_us as f64 / 1e3,
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
    for event in &report.events {
        let kind = event.kind.name();
        let x = x_of(event.at.as_secs_f64());
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"20\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"><title>{}: {}</title></line>",
            axis + below,
            event_color(kind),
            escape(kind),
            escape(&event.detail)
        );
    }
    let recoveries = &report.recoveries;
    for r in recoveries {
        let Some(back) = r.resumed_at else {
            continue;
        };
        let (kill, back) = (r.kill_at.as_secs_f64(), back.as_secs_f64());
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
            let kill = r.kill_at.as_secs_f64();
            let recovery = r.time().map(|t| t.as_secs_f64());
            let _ = writeln!(
                out,
                "<tr><td>{i}</td><td>{}</td><td>{:.2}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(&r.role),
                kill,
                r.restarted_at.map_or("-".to_owned(), |back| format!(
                    "{:.2}",
                    back.as_secs_f64() - kill
                )),
                if recovery.is_some() { "ok" } else { "bad" },
                recovery.map_or("never".to_owned(), |t| format!("{t:.2}")),
                escape(r.resumed_by.as_deref().unwrap_or("-")),
            );
        }
        out.push_str("</table>\n");
    }
    out
}

/// A self-contained HTML page for a scenario report: the verdict, each role's phases
/// on a timeline, the checks with their evidence, how each role ended (with the SQL
/// log of a failed worker), the figures, and the choreography drawn (the report's
/// `diagram_svg`, inline) with its mermaid source folded beneath it.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor::kit::{CheckRecord, Entries, PhaseRecord, RoleResult, ScenarioReport};
/// use stormchor::report::render_scenario_html;
///
/// let coordinator = RoleResult {
///     role: "Coordinator".into(), completed: true, elapsed: Duration::from_secs(3),
///     failure: None, sql_log: Vec::new(), peer_down: None,
///     entries: Entries {
///         phases: vec![PhaseRecord { role: "Coordinator".into(), phase: "verify".into(), at: Duration::from_millis(2500) }],
///         checks: vec![CheckRecord { name: "nothing lost".into(), role: "Coordinator".into(), passed: false,
///             summary: "1 missing".into(), evidence: vec!["worker 0 transaction 3".into()], interrupted: false }],
///         ..Entries::default()
///     },
/// };
/// let report = ScenarioReport::from_roles("crash-recovery", 7, Duration::from_secs(3), vec![coordinator], "sequenceDiagram".into());
/// let html = render_scenario_html(&report);
/// assert!(html.contains("FAILED") && html.contains("worker 0 transaction 3"));
/// ```
pub fn render_scenario_html(report: &ScenarioReport) -> String {
    let name = escape(&report.name);
    let passed = report.success;
    let interrupted = report.interrupted.as_deref();
    let elapsed = report.elapsed.as_secs_f64().max(0.001);
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
        match (interrupted, passed) {
            (Some(signal), _) => format!("INTERRUPTED ({})", escape(signal)),
            (None, true) => "PASSED".to_owned(),
            (None, false) => "FAILED".to_owned(),
        },
        elapsed,
        report.seed,
    );
    if let Some(fault) = &report.fault {
        let _ = writeln!(
            html,
            "<p class=\"bad\">Fault injected: {} (the checks are expected to catch it).</p>",
            escape(fault)
        );
    }
    // The timeline: one row per role, one bar per phase, from its start to the next.
    let phases = &report.phases;
    let events = &report.events;
    let mut roles: Vec<&str> = Vec::new();
    for role in phases
        .iter()
        .map(|p| p.role.as_str())
        .chain(events.iter().map(|e| e.role.as_str()))
    {
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
        let own: Vec<_> = phases.iter().filter(|p| p.role == *role).collect();
        // A role's last phase ends when the role does.
        let finished = report
            .roles
            .iter()
            .find(|r| r.role == *role)
            .map_or(elapsed, |r| r.elapsed.as_secs_f64());
        for (k, phase) in own.iter().enumerate() {
            let start = phase.at.as_secs_f64();
            let end = own
                .get(k + 1)
                .map_or(finished, |next| next.at.as_secs_f64());
            let x = left + start / elapsed * width;
            let w = ((end - start) / elapsed * width).max(2.0);
            let label = escape(&phase.phase);
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
    for event in events {
        let Some(index) = roles.iter().position(|r| event.role == *r) else {
            continue;
        };
        let y = index as f64 * row + 5.0;
        let at = event.at.as_secs_f64();
        let x = left + at / elapsed * width;
        let kind = event.kind.name();
        let _ = writeln!(
            html,
            "<g class=\"event\"><title>{} at {at:.2} s: {}</title><line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#111\" stroke-width=\"2\"/><circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"{}\" stroke=\"#111\"/></g>",
            escape(kind),
            escape(&event.detail),
            y - 1.0,
            y + row - 5.0,
            y + row / 2.0 - 3.0,
            event_color(kind),
        );
    }
    html.push_str("</svg>\n");
    if !events.is_empty() {
        html.push_str("<p>");
        let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
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
    for check in &report.checks {
        let ok = check.passed;
        let evidence: Vec<String> = check.evidence.iter().map(|e| escape(e)).collect();
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&check.name),
            escape(&check.role),
            if ok { "ok" } else { "bad" },
            match (ok, check.interrupted) {
                (true, _) => "ok",
                (false, true) => "INTERRUPTED",
                (false, false) => "FAILED",
            },
            escape(&check.summary),
            evidence.join("<br>")
        );
    }
    html.push_str("</table>\n<h2>Roles</h2>\n<table><tr><th>role</th><th>ended</th><th>last phase</th><th>failure</th></tr>\n");
    for role in &report.roles {
        let log: Vec<String> = role.sql_log.iter().map(|l| escape(l)).collect();
        let failure = match (role.failure.as_deref(), role.peer_down.as_deref()) {
            (Some(failure), _) => escape(failure),
            (None, Some(down)) => format!("then peer {}", escape(down)),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{failure}{}</td></tr>",
            escape(&role.role),
            if role.completed {
                "completed"
            } else {
                "FAILED"
            },
            escape(role.phase.as_deref().unwrap_or("-")),
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
    for (figure, value) in &report.figures {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(figure),
            escape(&value.to_string())
        );
    }
    // The diagram drawn (stormchor's own SVG, inline: no scripts, no network), its
    // mermaid source folded away beneath it.
    let svg = Some(report.diagram_svg.as_str()).filter(|svg| svg.starts_with("<svg "));
    let _ = write!(
        html,
        "</table>\n<h2>Choreography</h2>\n<div class=\"diagram\">{}</div>\n\
         <details><summary>mermaid source</summary><pre>{}</pre></details>\n</body></html>\n",
        svg.unwrap_or(""),
        escape(&report.diagram)
    );
    html
}

/// Each stress load's figures per action (the report's `stress`), a table per load;
/// nothing when the run had no stress load.
fn stress_loads_html(report: &ScenarioReport) -> String {
    if report.stress.is_empty() {
        return String::new();
    }
    let mut html = String::from("<h2>Stress loads</h2>\n");
    for load in &report.stress {
        let _ = writeln!(
            html,
            "<h3>{} <small>(seed {}, {:.1} s, {} reconnects)</small></h3>\n<table><tr><th>action</th><th>runs</th><th>ok</th><th>failed (by SQLSTATE)</th><th>p50 ms</th><th>p99 ms</th></tr>",
            escape(&load.load),
            load.seed,
            load.elapsed_s,
            load.reconnects
        );
        for (action, a) in &load.actions {
            let failed: Vec<String> = a
                .errors
                .iter()
                .map(|(code, n)| format!("{}: {n}", escape(code)))
                .collect();
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                escape(action),
                a.runs,
                a.ok,
                failed.join(", "),
                a.p50_us as f64 / 1e3,
                a.p99_us as f64 / 1e3
            );
        }
        html.push_str("</table>\n");
    }
    html
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stormchor_kit::{CheckRecord, EventKind, EventRecord, LoadSecond};

    use super::*;

    /// A backup-restore report whose one check was cut short by a signal.
    fn scenario() -> ScenarioReport {
        ScenarioReport {
            name: "backup-restore".into(),
            seed: 1,
            fault: None,
            success: true,
            elapsed: Duration::from_secs(3),
            phases: Vec::new(),
            checks: vec![CheckRecord {
                name: "pg_verifybackup".into(),
                role: "Backup".into(),
                passed: false,
                summary:
                    "not finished: the run was interrupted (the backup does not match its manifest)"
                        .into(),
                evidence: Vec::new(),
                interrupted: true,
            }],
            roles: Vec::new(),
            figures: BTreeMap::new(),
            actions: BTreeMap::new(),
            events: Vec::new(),
            load: BTreeMap::new(),
            recoveries: Vec::new(),
            diagram: String::new(),
            diagram_svg: String::new(),
            interrupted: None,
            stress: Vec::new(),
        }
    }

    #[test]
    fn an_interrupted_run_says_so_in_its_heading_and_its_unfinished_checks() {
        let page = render_scenario_html(&ScenarioReport {
            interrupted: Some("SIGTERM".into()),
            ..scenario()
        });
        assert!(page.contains("INTERRUPTED (SIGTERM)</span></h1>"), "{page}");
        assert!(!page.contains(">PASSED<"), "{page}");
        assert!(
            page.contains("<td class=\"bad\">INTERRUPTED</td>"),
            "{page}"
        );
        // Not interrupted: the verdict is the run's.
        let page = render_scenario_html(&scenario());
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
        let event = |role: &str, kind: EventKind, detail: &str, ms: u64| EventRecord {
            role: role.into(),
            kind,
            detail: detail.into(),
            at: Duration::from_millis(ms),
        };
        let second = LoadSecond {
            second: 1,
            ok: 10,
            errors: 2,
            p50_us: 900,
            p99_us: 2000,
        };
        let report = ScenarioReport {
            elapsed: Duration::from_secs(4),
            load: BTreeMap::from([("Worker(0)".to_owned(), vec![second])]),
            events: vec![
                event("Coordinator", EventKind::Point, "point 0", 1500),
                event("Backup", EventKind::Restore, "restored", 2500),
                event("Worker(0)", EventKind::Resumed, "back", 3000),
            ],
            ..scenario()
        };
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
        let page = render_scenario_html(&ScenarioReport {
            fault: Some("skip-wal-replay".into()),
            ..scenario()
        });
        assert!(page.contains("Fault injected: skip-wal-replay"), "{page}");
        let page = render_scenario_html(&scenario());
        assert!(!page.contains("Fault injected"), "{page}");
    }

    #[test]
    fn every_stress_load_has_a_table_of_its_actions() {
        let html = render_scenario_html(&ScenarioReport {
            stress: vec![stormchor_kit::StressRecord {
                role: "Worker(0)".into(),
                load: "Worker(0)#0".into(),
                seed: 9,
                elapsed_s: 2.0,
                reconnects: 1,
                actions: BTreeMap::from([(
                    "<create>".to_owned(),
                    stormchor_kit::ActionRecord {
                        runs: 5,
                        ok: 3,
                        errors: BTreeMap::from([("40P01".to_owned(), 2)]),
                        p50_us: 1500,
                        p99_us: 4000,
                    },
                )]),
            }],
            ..scenario()
        });
        assert!(html.contains("<h2>Stress loads</h2>"), "{html}");
        assert!(
            html.contains("Worker(0)#0 <small>(seed 9, 2.0 s, 1 reconnects)</small>"),
            "{html}"
        );
        assert!(
            html.contains("<tr><td>&lt;create&gt;</td><td>5</td><td>3</td><td>40P01: 2</td><td>1.50</td><td>4.00</td></tr>"),
            "{html}"
        );
        let without = render_scenario_html(&scenario());
        assert!(!without.contains("Stress loads"), "{without}");
    }

    #[test]
    fn a_workload_report_serializes_to_the_documented_json() {
        let mut latency = Histogram::<u64>::new(3).expect("histogram");
        latency.record(280).expect("recorded");
        let run = LoadReport {
            workload: "tpcb".into(),
            elapsed: Duration::from_secs(2),
            operations: BTreeMap::from([(
                "tpcb".to_owned(),
                stormchor_workloads::OperationMetrics {
                    count: 1,
                    errors: BTreeMap::from([("40001".to_owned(), 3), ("connection".to_owned(), 1)]),
                    latency: latency.clone(),
                },
            )]),
            per_second: vec![1, 0],
            per_second_latency: vec![latency, Histogram::new(3).expect("histogram")],
            per_client: vec![1],
            missed: 4,
            reconnects: 0,
        };
        let mut report = WorkloadReport::of(&run, 9, 2, Some(50.0));
        report.custom.insert("catalog_tables".into(), 5.0);
        report.interrupted = Some("SIGINT".into());
        let json = serde_json::to_value(report.versioned()).expect("serialized");
        assert_eq!(
            json,
            serde_json::json!({
                "schema": "stormchor-report/1", "revision": 3, "kind": "workload", "name": "tpcb",
                "seed": 9, "clients": 2, "rate": 50.0, "elapsed_s": 2.0, "throughput": 0.5,
                "successes": 1, "failures": 4,
                "operations": { "tpcb": {
                    "count": 1,
                    "errors": { "by_code": { "40001": 3, "connection": 1 },
                                "by_class": { "40": 3, "connection": 1 } },
                    "latency_ms": { "p50": 0.28, "p90": 0.28, "p99": 0.28, "p99_9": 0.28, "max": 0.28 },
                } },
                "per_second": [1, 0],
                "per_second_latency_ms": [{ "p50": 0.28, "p99": 0.28 }, { "p50": 0.0, "p99": 0.0 }],
                "per_client": [1], "missed": 4,
                "custom": { "catalog_tables": 5.0 }, "interrupted": "SIGINT",
            })
        );
    }
}
