//! The JSON report's shape (schema `stormchor-report/1`, revision 3, docs/cli.md) pinned
//! on real runs: every object's set of keys and every value's JSON type, for a
//! scenario with kills and an injected fault, a scenario whose workers run the stress
//! mix, and a workload in an open loop. A field added, gone, renamed or of another
//! type fails here; such a change bumps `REPORT_REVISION` (or the schema) and this
//! pin with it.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::{Value, json};

/// Runs the command with `args` plus `--json FILE` and returns the report.
fn report_of(args: &[&str], expected_exit: i32) -> Value {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args(args)
        .arg("--json")
        .arg(&path)
        .env_remove("STORMCHOR_TARGET")
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(expected_exit),
        "{args:?}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("report written");
    serde_json::from_str(&text).expect("the report is JSON")
}

/// Checks `value` against `spec` at `path`, collecting mismatches in `errors` and the
/// paths of the arrays and maps that held at least one element in `seen`.
///
/// A spec is a leaf (`"string"`, `"integer"`, `"float"`, `"bool"`, `"null"`, or
/// several joined by `|`), an array of one spec (every element matches it), an object
/// `{"*": spec}` (any keys, every value matches), or an object whose keys are exactly
/// the spec's (a key written `?name` may be absent).
fn check(
    path: &str,
    value: &Value,
    spec: &Value,
    errors: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) {
    match spec {
        Value::String(types) => {
            let actual = match value {
                Value::String(_) => "string",
                Value::Number(n) if n.is_f64() => "float",
                Value::Number(_) => "integer",
                Value::Bool(_) => "bool",
                Value::Null => "null",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            if !types.split('|').any(|t| t == actual) {
                errors.push(format!("{path}: {actual} ({value}), expected {types}"));
            }
        }
        Value::Array(element) => {
            let Some(items) = value.as_array() else {
                errors.push(format!("{path}: {value}, expected an array"));
                return;
            };
            if !items.is_empty() {
                seen.insert(path.to_owned());
            }
            for (i, item) in items.iter().enumerate() {
                check(&format!("{path}[{i}]"), item, &element[0], errors, seen);
            }
        }
        Value::Object(fields) => {
            let Some(object) = value.as_object() else {
                errors.push(format!("{path}: {value}, expected an object"));
                return;
            };
            if let Some(each) = fields.get("*") {
                if !object.is_empty() {
                    seen.insert(path.to_owned());
                }
                for (key, item) in object {
                    check(&format!("{path}.{key}"), item, each, errors, seen);
                }
                return;
            }
            let expected: BTreeSet<&str> =
                fields.keys().map(|k| k.trim_start_matches('?')).collect();
            let required: BTreeSet<&str> = fields
                .keys()
                .filter(|k| !k.starts_with('?'))
                .map(String::as_str)
                .collect();
            let actual: BTreeSet<&str> = object.keys().map(String::as_str).collect();
            let extra: Vec<&&str> = actual.difference(&expected).collect();
            let missing: Vec<&&str> = required.difference(&actual).collect();
            if !extra.is_empty() || !missing.is_empty() {
                errors.push(format!(
                    "{path}: keys not in the schema {extra:?}, keys missing {missing:?}"
                ));
            }
            for (key, field) in fields {
                let key = key.trim_start_matches('?');
                if let Some(item) = object.get(key) {
                    check(&format!("{path}.{key}"), item, field, errors, seen);
                }
            }
        }
        _ => errors.push(format!("{path}: a bad spec {spec}")),
    }
}

/// The paths (indices dropped) of the arrays and maps of `spec`, as `check` names them.
fn containers(path: &str, spec: &Value, out: &mut BTreeSet<String>) {
    match spec {
        Value::Array(element) => {
            out.insert(path.to_owned());
            containers(&format!("{path}[]"), &element[0], out);
        }
        Value::Object(fields) => match fields.get("*") {
            Some(each) => {
                out.insert(path.to_owned());
                containers(&format!("{path}.*"), each, out);
            }
            None => {
                for (key, field) in fields {
                    containers(
                        &format!("{path}.{}", key.trim_start_matches('?')),
                        field,
                        out,
                    );
                }
            }
        },
        _ => {}
    }
}

/// `check`'s path with the indices and map keys of the report replaced as
/// `containers` writes them.
fn generalised(path: &str, spec: &Value) -> String {
    let mut out = String::new();
    let mut spec = spec;
    for part in path.split('.') {
        let (name, indices) = match part.find('[') {
            Some(at) => (&part[..at], part[at..].matches('[').count()),
            None => (part, 0),
        };
        if !out.is_empty() || name != "$" {
            match spec.get("*") {
                Some(each) => {
                    out.push_str(".*");
                    spec = each;
                }
                None => {
                    out.push('.');
                    out.push_str(name);
                    spec = spec
                        .get(name)
                        .or_else(|| spec.get(format!("?{name}")))
                        .unwrap_or(&Value::Null);
                }
            }
        } else {
            out.push('$');
        }
        for _ in 0..indices {
            out.push_str("[]");
            spec = spec.get(0).unwrap_or(&Value::Null);
        }
    }
    out
}

/// Checks every report against `spec` and that every array and map of the spec held
/// an element in at least one of them (but those in `may_be_empty`), so that no part
/// of the pin goes unchecked.
fn assert_shape(reports: &[&Value], spec: &Value, may_be_empty: &[&str]) {
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for report in reports {
        check("$", report, spec, &mut errors, &mut seen);
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let seen: BTreeSet<String> = seen.iter().map(|p| generalised(p, spec)).collect();
    let mut all = BTreeSet::new();
    containers("$", spec, &mut all);
    let unchecked: Vec<&String> = all
        .iter()
        .filter(|p| !seen.contains(*p) && !may_be_empty.contains(&p.as_str()))
        .collect();
    assert!(
        unchecked.is_empty(),
        "no run had an element in {unchecked:?}: that part of the shape went unchecked"
    );
}

fn scenario_shape() -> Value {
    json!({
        "schema": "string", "revision": "integer", "kind": "string", "name": "string",
        "seed": "integer", "fault": "string|null", "success": "bool", "elapsed_s": "float",
        "?interrupted": "string",
        "phases": [{ "role": "string", "phase": "string", "at_s": "float" }],
        "checks": [{
            "name": "string", "role": "string", "passed": "bool", "summary": "string",
            "evidence": ["string"], "interrupted": "bool",
        }],
        "roles": [{
            "role": "string", "completed": "bool", "elapsed_s": "float",
            "phase": "string|null", "failure": "string|null", "sql_log": ["string"],
            "peer_down": "string|null",
        }],
        "figures": { "*": "integer|float|string|bool" },
        "actions": { "*": {
            "runs": "integer", "ok": "integer", "errors": { "*": "integer" },
            "p50_us": "integer", "p99_us": "integer",
        } },
        "stress": [{
            "role": "string", "load": "string", "seed": "integer", "elapsed_s": "float",
            "reconnects": "integer",
            "actions": { "*": {
                "runs": "integer", "ok": "integer", "errors": { "*": "integer" },
                "p50_us": "integer", "p99_us": "integer",
            } },
        }],
        "events": [{ "role": "string", "kind": "string", "detail": "string", "at_s": "float" }],
        "load": { "*": [{
            "second": "integer", "ok": "integer", "errors": "integer",
            "p50_us": "integer", "p99_us": "integer",
        }] },
        "recoveries": [{
            "role": "string", "kill_at_s": "float", "restarted_at_s": "float|null",
            "resumed_at_s": "float|null", "resumed_by": "string|null", "recovery_s": "float|null",
        }],
        "diagram": "string", "diagram_svg": "string",
    })
}

fn workload_shape() -> Value {
    let latency = json!({
        "p50": "float", "p90": "float", "p99": "float", "p99_9": "float", "max": "float",
    });
    json!({
        "schema": "string", "revision": "integer", "kind": "string", "name": "string",
        "seed": "integer", "clients": "integer", "rate": "float|null", "elapsed_s": "float",
        "throughput": "float", "successes": "integer", "failures": "integer",
        "?interrupted": "string", "?custom": { "*": "float|null" },
        "operations": { "*": {
            "count": "integer",
            "errors": { "by_code": { "*": "integer" }, "by_class": { "*": "integer" } },
            "latency_ms": latency,
        } },
        "per_second": ["integer"],
        "per_second_latency_ms": [{ "p50": "float", "p99": "float" }],
        "per_client": ["integer"],
        "missed": "integer",
    })
}

#[test]
fn scenario_reports_keep_the_revision_3_shape() {
    // Kills, restarts, recoveries, load, an injected fault and its evidence.
    let crash = report_of(
        &[
            "run",
            "crash-recovery",
            "--rounds",
            "1",
            "--duration",
            "2",
            "--seed",
            "5",
            "--inject",
            "delete-acknowledged-row",
        ],
        1,
    );
    // The stress mix's actions.
    let stress = report_of(
        &[
            "run",
            "stress-check",
            "--workers",
            "2",
            "--duration",
            "2",
            "--seed",
            "3",
        ],
        0,
    );
    for report in [&crash, &stress] {
        assert_eq!(report["schema"], "stormchor-report/1");
        assert_eq!(report["revision"], 3);
        assert_eq!(report["kind"], "scenario");
    }
    assert_eq!(crash["fault"], "delete-acknowledged-row");
    assert_eq!(stress["fault"], Value::Null);
    // A failed worker's SQL log is the only list these runs leave empty.
    assert_shape(
        &[&crash, &stress],
        &scenario_shape(),
        &["$.roles[].sql_log"],
    );
}

#[test]
fn workload_reports_keep_the_revision_3_shape() {
    // An open loop (a rate), the stress workload (its custom metric, and failures by
    // design: errors by code and class).
    let stress = report_of(
        &[
            "run",
            "stress",
            "--workers",
            "2",
            "--duration",
            "2",
            "--rate",
            "200",
            "--seed",
            "1",
        ],
        0,
    );
    assert_eq!(stress["schema"], "stormchor-report/1");
    assert_eq!(stress["revision"], 3);
    assert_eq!(stress["kind"], "workload");
    assert_eq!(stress["rate"], 200.0);
    assert!(stress["custom"]["catalog_tables"].is_number(), "{stress}");
    assert_shape(&[&stress], &workload_shape(), &[]);
}

#[test]
fn the_shape_check_catches_a_key_too_many_a_key_gone_and_a_changed_type() {
    let spec = json!({ "a": "integer", "b": ["float"], "m": { "*": "string" }, "?o": "bool" });
    let good = json!({ "a": 1, "b": [1.5], "m": { "x": "y" } });
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    check("$", &good, &spec, &mut errors, &mut seen);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        seen.iter()
            .map(|p| generalised(p, &spec))
            .collect::<Vec<_>>(),
        ["$.b", "$.m"]
    );
    for (bad, says) in [
        (
            json!({ "a": 1, "b": [1.5], "m": {}, "c": 0 }),
            "keys not in the schema [\"c\"]",
        ),
        (json!({ "b": [1.5], "m": {} }), "keys missing [\"a\"]"),
        (json!({ "a": 1.0, "b": [1.5], "m": {} }), "$.a: float"),
        (json!({ "a": 1, "b": [2], "m": {} }), "$.b[0]: integer"),
        (
            json!({ "a": 1, "b": [], "m": { "x": 3 } }),
            "$.m.x: integer",
        ),
        (
            json!({ "a": 1, "b": [], "m": {}, "o": "no" }),
            "$.o: string",
        ),
    ] {
        let mut errors = Vec::new();
        check("$", &bad, &spec, &mut errors, &mut BTreeSet::new());
        assert!(errors.iter().any(|e| e.contains(says)), "{bad}: {errors:?}");
    }
    // A part no report exercised is named.
    let unexercised = std::panic::catch_unwind(|| {
        assert_shape(&[&json!({ "a": 1, "b": [], "m": {} })], &spec, &[])
    });
    assert!(unexercised.is_err());
}
