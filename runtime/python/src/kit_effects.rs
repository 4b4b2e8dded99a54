//! Every kit effect, built with typed Python arguments (`stormchor.kit.*`).
//!
//! Each function builds the kit's own Rust effect (nothing is reimplemented): its
//! arguments are the effect's fields, slots where the effect reads a value (of the
//! kind the field's type is, else a `SlotError` when the effect is built), seconds
//! as numbers, and `into=`, a slot of the kind of the effect's output, for effects
//! that give one back. The docstrings are the kit's rustdoc, shortened.

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use stormchor_kit::effects::schema::SqlSource;
use stormchor_kit::effects::{
    Amcheck, AmcheckAfterCrash, BackgroundBackup, Case, CheckValue, CompareChecksums, ConnectsTo,
    Crash, CreateLedger, Discover, Expect, FaultPoint, Finish, FinishBackup, Follow, Goal,
    GoalKind, KillServer, Level, Phase, PollUntil, PrepareReplica, Promote, Query, RecordGoal,
    RecordPoint, RecoveryGoal, Refuses, RemoveRestored, ResetXidEpoch, RestartAsStandby,
    RestartServer, Restore, RestoreTo, RunSql, RunWorkload, ServerAddress, ServerInfo, SessionPid,
    Sql, StartBackup, StartPrepared, StartReplica, StartServer, StopServer, StressLoad, SwitchWal,
    TableChecksums, TakeBackup, ValidateCatalog, Verdict, VerifyBackup, VerifyLedger,
    WaitForReplay, Wanted, WriteLedger,
};
use stormchor_kit::{DbEffect, Fault, Slot};
use stormchor_postgres::StopMode;

use crate::effect::PyEffectObj;
use crate::errors::SlotError;
use crate::role::type_name;
use crate::rt::intern;
use crate::slot::{Kind, PySlot};

/// The effect, its output going into `into` (a slot of kind `output`) when given.
fn kit_effect<E: DbEffect>(
    effect: E,
    into: Option<PySlot>,
    output: Option<Kind>,
) -> PyResult<PyEffectObj> {
    let name = effect.type_name().to_owned();
    let Some(into) = into else {
        return Ok(PyEffectObj::of(name, effect));
    };
    let Some(kind) = output else {
        return Err(SlotError::new_err(format!(
            "{name} gives back no value to put into slot `{}`",
            into.0.name
        )));
    };
    let slot = into
        .0
        .typed::<E::Output>(kind, &format!("{name}'s into="))?;
    Ok(PyEffectObj::of(name, effect.into_slot(slot)))
}

fn server(slot: &PySlot, what: &str) -> PyResult<Slot<ServerInfo>> {
    slot.0.typed(Kind::Server, what)
}

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a number of seconds >= 0, not {value}"
        ))
    })
}

/// One of `names` (`what` says which argument).
fn one_of<T: Copy>(value: &str, names: &[(&str, T)], what: &str) -> PyResult<T> {
    names
        .iter()
        .find(|(n, _)| *n == value)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let all: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            PyValueError::new_err(format!(
                "{what} is one of {}, not `{value}`",
                all.join(", ")
            ))
        })
}

/// What a statement must do: at most one of `value`, `fails`, `rows`.
fn expect(value: Option<i64>, fails: Option<&str>, rows: Option<usize>) -> PyResult<Expect> {
    match (value, fails, rows) {
        (None, None, None) => Ok(Expect::Ok),
        (Some(v), None, None) => Ok(Expect::Value(v)),
        (None, Some(sqlstate), None) => {
            if sqlstate.len() != 5 || !sqlstate.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PyValueError::new_err(format!(
                    "fails= takes a SQLSTATE (five letters or digits, as 40001), not `{sqlstate}`"
                )));
            }
            Ok(Expect::Error(intern(sqlstate)))
        }
        (None, None, Some(n)) => Ok(Expect::Rows(n)),
        _ => Err(PyValueError::new_err(
            "give at most one of value=, fails= and rows=",
        )),
    }
}

// --- phase ---

/// `Phase(name)`: the role enters a phase of the report (unordered bookkeeping).
#[pyfunction(name = "Phase")]
fn phase(name: &str) -> PyResult<PyEffectObj> {
    kit_effect(Phase(intern(name)), None, None)
}

// --- servers ---

/// `StartServer(*, into=None, archive=False, target=False, own_schema=True,
/// synchronous=False, data_checksums=False)`: this role's server, a throwaway
/// cluster; with `target=True` the run's target when it has one (in a schema of the
/// run's own unless `own_schema=False`). `archive`: archive WAL; `synchronous`: every
/// commit waits for a synchronous standby; `data_checksums`: `initdb
/// --data-checksums`. Output: the server (kind `server`).
#[pyfunction(name = "StartServer")]
#[pyo3(signature = (*, into = None, archive = false, target = false, own_schema = true, synchronous = false, data_checksums = false))]
fn start_server(
    into: Option<PySlot>,
    archive: bool,
    target: bool,
    own_schema: bool,
    synchronous: bool,
    data_checksums: bool,
) -> PyResult<PyEffectObj> {
    let mut effect = match (target, own_schema) {
        (false, _) => StartServer::throwaway(),
        (true, true) => StartServer::target_in_own_schema_or_throwaway(),
        (true, false) => StartServer::target_or_throwaway(),
    };
    effect.archive = archive;
    effect.synchronous = synchronous;
    effect.data_checksums = data_checksums;
    kit_effect(effect, into, Some(Kind::Server))
}

/// `StopServer(mode="fast")`: stops this role's server; `mode` is `smart`, `fast`
/// or `immediate` (the next start runs crash recovery).
#[pyfunction(name = "StopServer")]
#[pyo3(signature = (mode = "fast"))]
fn stop_server(mode: &str) -> PyResult<PyEffectObj> {
    let mode = one_of(
        mode,
        &[
            ("smart", StopMode::Smart),
            ("fast", StopMode::Fast),
            ("immediate", StopMode::Immediate),
        ],
        "StopServer's mode",
    )?;
    kit_effect(StopServer(mode), None, None)
}

/// `KillServer()`: SIGKILLs this role's server (an event in the report).
#[pyfunction(name = "KillServer")]
fn kill_server() -> PyResult<PyEffectObj> {
    kit_effect(KillServer, None, None)
}

/// `RestartServer()`: starts this role's server again.
#[pyfunction(name = "RestartServer")]
fn restart_server() -> PyResult<PyEffectObj> {
    kit_effect(RestartServer, None, None)
}

/// `Crash(within, *, restart=True)`: SIGKILLs this role's server at a moment within
/// `within` seconds picked from the run's seed, then (with `restart`) starts it
/// again.
#[pyfunction(name = "Crash")]
#[pyo3(signature = (within, *, restart = true))]
fn crash(within: f64, restart: bool) -> PyResult<PyEffectObj> {
    let within = seconds(within, "Crash's within")?;
    kit_effect(Crash { within, restart }, None, None)
}

/// `ServerAddress(*, into=None)`: where this role's server is now (kind `server`).
#[pyfunction(name = "ServerAddress")]
#[pyo3(signature = (*, into = None))]
fn server_address(into: Option<PySlot>) -> PyResult<PyEffectObj> {
    kit_effect(ServerAddress, into, Some(Kind::Server))
}

/// `ResetXidEpoch(epoch)`: stops this role's server, sets its transaction id epoch
/// with `pg_resetwal --epoch`, starts it again.
#[pyfunction(name = "ResetXidEpoch")]
fn reset_xid_epoch(epoch: u32) -> PyResult<PyEffectObj> {
    kit_effect(ResetXidEpoch(epoch), None, None)
}

// --- backups ---

/// `TakeBackup(of)`: a base backup (`pg_basebackup`) of the server in `of`, kept by
/// this role.
#[pyfunction(name = "TakeBackup")]
fn take_backup(of: PySlot) -> PyResult<PyEffectObj> {
    let of = server(&of, "TakeBackup's of=")?;
    kit_effect(TakeBackup { of }, None, None)
}

/// `VerifyBackup(*, tolerate=False, into=None)`: checks this role's base backup with
/// `pg_verifybackup`, as a check; a failed one fails the effect unless `tolerate`.
/// Output: whether it held (kind `bool`).
#[pyfunction(name = "VerifyBackup")]
#[pyo3(signature = (*, tolerate = false, into = None))]
fn verify_backup(tolerate: bool, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    kit_effect(VerifyBackup { tolerate }, into, Some(Kind::Bool))
}

/// Where a restore goes: `"backup_end"`, `"immediate"`, a `point` slot (that
/// recorded point; with `next_point`, the next one of the slot's in turn), a `goal`
/// slot, or a fixed goal `{"lsn": n}`, `{"time": t}`, `{"name": n}`, `{"xid": x}`.
fn restore_to(to: &Bound<'_, PyAny>, next_point: bool) -> PyResult<RestoreTo> {
    let what = "Restore's to=";
    if let Ok(slot) = to.extract::<PySlot>() {
        return Ok(RestoreTo::Goal(match slot.0.kind {
            Kind::Point if next_point => Goal::AtNextPoint(slot.0.typed(Kind::Point, what)?),
            Kind::Point => Goal::AtPoint(slot.0.typed(Kind::Point, what)?),
            _ if next_point => {
                return Err(SlotError::new_err(
                    "Restore's next_point=True takes a slot of kind point as to=",
                ));
            }
            _ => Goal::In(slot.0.typed(Kind::Goal, what)?),
        }));
    }
    if let Ok(text) = to.extract::<String>() {
        return match text.as_str() {
            "backup_end" => Ok(RestoreTo::BackupEnd),
            "immediate" => Ok(RestoreTo::Goal(Goal::Fixed(RecoveryGoal::Immediate))),
            _ => Err(PyValueError::new_err(format!(
                "{what} is \"backup_end\", \"immediate\", a point or goal slot, or a dict, not `{text}`"
            ))),
        };
    }
    if let Ok(dict) = to.downcast::<pyo3::types::PyDict>() {
        if dict.len() == 1 {
            if let Some((key, value)) = dict.iter().next() {
                let key: String = key.extract()?;
                let goal = match key.as_str() {
                    "lsn" => RecoveryGoal::Lsn(value.extract()?),
                    "time" => RecoveryGoal::Time(value.extract()?),
                    "name" => RecoveryGoal::Name(value.extract()?),
                    "xid" => RecoveryGoal::Xid(value.extract()?),
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "{what}'s dict takes one of lsn, time, name, xid, not `{other}`"
                        )));
                    }
                };
                return Ok(RestoreTo::Goal(Goal::Fixed(goal)));
            }
        }
        return Err(PyValueError::new_err(format!(
            "{what}'s dict holds one goal: {{\"lsn\": n}}, {{\"time\": t}}, {{\"name\": n}} or {{\"xid\": x}}"
        )));
    }
    Err(PyTypeError::new_err(format!(
        "{what} is \"backup_end\", \"immediate\", a point or goal slot, or a dict, not {}",
        type_name(to)
    )))
}

/// `Restore(from_, to, *, name="restored", next_point=False, into=None)`: restores
/// this role's base backup of the server in `from_` into a new cluster `name`,
/// recovering to `to`: `"backup_end"`, `"immediate"`, a `point` slot (the recorded
/// point; `next_point=True`: the slot's next point in turn), a `goal` slot, or a fixed
/// goal `{"lsn": n}` / `{"time": t}` / `{"name": n}` / `{"xid": x}`. Output: the
/// restored server (kind `server`).
#[pyfunction(name = "Restore")]
#[pyo3(signature = (from_, to, *, name = "restored", next_point = false, into = None))]
fn restore(
    from_: PySlot,
    to: &Bound<'_, PyAny>,
    name: &str,
    next_point: bool,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let effect = Restore {
        from: server(&from_, "Restore's from_=")?,
        to: restore_to(to, next_point)?,
        name: intern(name),
    };
    kit_effect(effect, into, Some(Kind::Server))
}

/// `RemoveRestored(name)`: stops and removes the cluster this role restored as
/// `name`.
#[pyfunction(name = "RemoveRestored")]
fn remove_restored(name: &str) -> PyResult<PyEffectObj> {
    kit_effect(RemoveRestored { name: intern(name) }, None, None)
}

/// `StartBackup(of, *, max_rate_kb=None)`: begins a base backup of the server in
/// `of` and returns once it streams; `FinishBackup` waits for it.
#[pyfunction(name = "StartBackup")]
#[pyo3(signature = (of, *, max_rate_kb = None))]
fn start_backup(of: PySlot, max_rate_kb: Option<u32>) -> PyResult<PyEffectObj> {
    let of = server(&of, "StartBackup's of=")?;
    kit_effect(StartBackup { of, max_rate_kb }, None, None)
}

/// `FinishBackup(within, *, into=None)`: waits at most `within` seconds for the
/// backup `StartBackup` began. Output: how it ended (kind `backup_outcome`:
/// `completed`, `error`, `path`).
#[pyfunction(name = "FinishBackup")]
#[pyo3(signature = (within, *, into = None))]
fn finish_backup(within: f64, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let within = seconds(within, "FinishBackup's within")?;
    kit_effect(FinishBackup { within }, into, Some(Kind::BackupOutcome))
}

/// `BackgroundBackup(of, *, within, max_rate_kb=None, into=None)`: a base backup of
/// the server in `of` meant for `ext_start` (started once it streams; the finish
/// waits at most `within` seconds). Output: how it ended (kind `backup_outcome`).
#[pyfunction(name = "BackgroundBackup")]
#[pyo3(signature = (of, *, within, max_rate_kb = None, into = None))]
fn background_backup(
    of: PySlot,
    within: f64,
    max_rate_kb: Option<u32>,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let effect = BackgroundBackup {
        of: server(&of, "BackgroundBackup's of=")?,
        max_rate_kb,
        within: seconds(within, "BackgroundBackup's within")?,
    };
    kit_effect(effect, into, Some(Kind::BackupOutcome))
}

// --- WAL ---

/// `RecordPoint(on, *, into=None)`: with the load stopped, the server's WAL position
/// and every table's checksum (kind `point`).
#[pyfunction(name = "RecordPoint")]
#[pyo3(signature = (on, *, into = None))]
fn record_point(on: PySlot, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let on = server(&on, "RecordPoint's on=")?;
    kit_effect(RecordPoint { on }, into, Some(Kind::Point))
}

/// `RecordGoal(on, kind, *, name=None, sql=None, into=None)`: records a recovery
/// goal on the server: `kind` is `lsn` (the WAL position), `time` (its `now()`),
/// `restore_point` (`pg_create_restore_point(name)`) or `xid_of` (the transaction id
/// of running `sql` in a transaction of its own). Output: the goal (kind `goal`).
#[pyfunction(name = "RecordGoal")]
#[pyo3(signature = (on, kind, *, name = None, sql = None, into = None))]
fn record_goal(
    on: PySlot,
    kind: &str,
    name: Option<&str>,
    sql: Option<&str>,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let goal = match (kind, name, sql) {
        ("lsn", None, None) => GoalKind::Lsn,
        ("time", None, None) => GoalKind::Time,
        ("restore_point", Some(name), None) => GoalKind::RestorePoint(intern(name)),
        ("xid_of", None, Some(sql)) => GoalKind::XidOf(intern(sql)),
        ("restore_point", _, _) => {
            return Err(PyValueError::new_err(
                "RecordGoal(kind=\"restore_point\") takes name= (and no sql=)",
            ));
        }
        ("xid_of", _, _) => {
            return Err(PyValueError::new_err(
                "RecordGoal(kind=\"xid_of\") takes sql= (and no name=)",
            ));
        }
        ("lsn" | "time", _, _) => {
            return Err(PyValueError::new_err(format!(
                "RecordGoal(kind=\"{kind}\") takes neither name= nor sql="
            )));
        }
        (other, _, _) => {
            return Err(PyValueError::new_err(format!(
                "RecordGoal's kind is one of lsn, time, restore_point, xid_of, not `{other}`"
            )));
        }
    };
    let on = server(&on, "RecordGoal's on=")?;
    kit_effect(RecordGoal { on, kind: goal }, into, Some(Kind::Goal))
}

/// `SwitchWal(on, *, bound=60.0, into=None)`: switches the server to a new WAL
/// segment and waits (at most `bound` seconds) until the archiver has archived the
/// old one. Output: that segment's name (kind `str`).
#[pyfunction(name = "SwitchWal")]
#[pyo3(signature = (on, *, bound = 60.0, into = None))]
fn switch_wal(on: PySlot, bound: f64, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let effect = SwitchWal {
        on: server(&on, "SwitchWal's on=")?,
        bound: seconds(bound, "SwitchWal's bound")?,
    };
    kit_effect(effect, into, Some(Kind::Str))
}

// --- replication ---

/// `StartReplica(of, *, into=None)`: this role's server, a streaming standby of the
/// server in `of` (a primary, or a standby: cascading). Output: kind `server`.
#[pyfunction(name = "StartReplica")]
#[pyo3(signature = (of, *, into = None))]
fn start_replica(of: PySlot, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let of = server(&of, "StartReplica's of=")?;
    kit_effect(StartReplica { of }, into, Some(Kind::Server))
}

/// `PrepareReplica(of)`: takes the base backup a standby of `of` starts from, without
/// starting it (`StartPrepared` does).
#[pyfunction(name = "PrepareReplica")]
fn prepare_replica(of: PySlot) -> PyResult<PyEffectObj> {
    let of = server(&of, "PrepareReplica's of=")?;
    kit_effect(PrepareReplica { of }, None, None)
}

/// `StartPrepared(*, into=None)`: starts the standby `PrepareReplica` prepared.
/// Output: kind `server`.
#[pyfunction(name = "StartPrepared")]
#[pyo3(signature = (*, into = None))]
fn start_prepared(into: Option<PySlot>) -> PyResult<PyEffectObj> {
    kit_effect(StartPrepared, into, Some(Kind::Server))
}

/// `Promote(*, into=None)`: promotes this role's standby; it accepts writes.
/// Output: kind `server`.
#[pyfunction(name = "Promote")]
#[pyo3(signature = (*, into = None))]
fn promote(into: Option<PySlot>) -> PyResult<PyEffectObj> {
    kit_effect(Promote, into, Some(Kind::Server))
}

/// `RestartAsStandby()`: stops this role's server and starts it again as a standby
/// (`standby.signal`).
#[pyfunction(name = "RestartAsStandby")]
fn restart_as_standby() -> PyResult<PyEffectObj> {
    kit_effect(RestartAsStandby, None, None)
}

/// `Follow(upstream, *, extra="", timeline="latest", into=None)`: this role's
/// standby streams from the server in `upstream` now (`extra`: more connection
/// parameters; `timeline`: `latest`, `current` or an id). Output: kind `server`.
#[pyfunction(name = "Follow")]
#[pyo3(signature = (upstream, *, extra = "", timeline = "latest", into = None))]
fn follow(
    upstream: PySlot,
    extra: &str,
    timeline: &str,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let effect = Follow {
        upstream: server(&upstream, "Follow's upstream=")?,
        extra: intern(extra),
        timeline: intern(timeline),
    };
    kit_effect(effect, into, Some(Kind::Server))
}

/// `WaitForReplay(upstream, *, bound=60.0)`: waits (at most `bound` seconds) until
/// this role's standby has replayed everything `upstream` had written when it began.
#[pyfunction(name = "WaitForReplay")]
#[pyo3(signature = (upstream, *, bound = 60.0))]
fn wait_for_replay(upstream: PySlot, bound: f64) -> PyResult<PyEffectObj> {
    let effect = WaitForReplay {
        upstream: server(&upstream, "WaitForReplay's upstream=")?,
        bound: seconds(bound, "WaitForReplay's bound")?,
    };
    kit_effect(effect, None, None)
}

// --- queries ---

fn query_of(on: &PySlot, sql: &str, args: &[PySlot], what: &str) -> PyResult<Query> {
    let args = args
        .iter()
        .map(|a| a.0.typed(Kind::Str, &format!("{what}'s args=")))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Query {
        on: server(on, &format!("{what}'s on="))?,
        sql: intern(sql),
        args,
    })
}

/// `Query(on, sql, args=[], *, into=None)`: runs `sql` on the server in `on`
/// (`$1`.. bound to the `str` slots of `args`). Output: the rows as `psql -At`
/// prints them (kind `str`).
#[pyfunction(name = "Query")]
#[pyo3(signature = (on, sql, args = Vec::new(), *, into = None))]
fn query(on: PySlot, sql: &str, args: Vec<PySlot>, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    kit_effect(query_of(&on, sql, &args, "Query")?, into, Some(Kind::Str))
}

/// `PollUntil(on, sql, args=[], *, bound=60.0, into=None)`: asks `sql` every 50 ms
/// until it returns `t` (at most `bound` seconds; a restarting server is "not
/// yet"). Output: how long it took in milliseconds (kind `int`).
#[pyfunction(name = "PollUntil")]
#[pyo3(signature = (on, sql, args = Vec::new(), *, bound = 60.0, into = None))]
fn poll_until(
    on: PySlot,
    sql: &str,
    args: Vec<PySlot>,
    bound: f64,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let effect = PollUntil {
        query: query_of(&on, sql, &args, "PollUntil")?,
        bound: seconds(bound, "PollUntil's bound")?,
    };
    kit_effect(effect, into, Some(Kind::Int))
}

/// `Refuses(name, on, sql, sqlstate, *, into=None)`: `sql` must fail on the server
/// with `sqlstate` (`25006`: a standby refuses writes), a check named `name`.
/// Output: the server's message (kind `str`).
#[pyfunction(name = "Refuses")]
#[pyo3(signature = (name, on, sql, sqlstate, *, into = None))]
fn refuses(
    name: &str,
    on: PySlot,
    sql: &str,
    sqlstate: &str,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let Expect::Error(sqlstate) = expect(None, Some(sqlstate), None)? else {
        return Err(PyValueError::new_err("Refuses takes a SQLSTATE"));
    };
    let effect = Refuses {
        name: intern(name),
        on: server(&on, "Refuses's on=")?,
        sql: intern(sql),
        sqlstate,
    };
    kit_effect(effect, into, Some(Kind::Str))
}

/// `CheckValue(name, found, expected, *, into=None)`: the role's value in `found` (a
/// `str` slot) must equal `expected` (a text, or a `str` slot), a check named
/// `name`; a different value fails the effect. Output: the value (kind `str`).
#[pyfunction(name = "CheckValue")]
#[pyo3(signature = (name, found, expected, *, into = None))]
fn check_value(
    name: &str,
    found: PySlot,
    expected: &Bound<'_, PyAny>,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let expected = if let Ok(slot) = expected.extract::<PySlot>() {
        Wanted::In(slot.0.typed(Kind::Str, "CheckValue's expected=")?)
    } else if let Ok(text) = expected.extract::<String>() {
        Wanted::Text(intern(&text))
    } else {
        return Err(PyTypeError::new_err(format!(
            "CheckValue's expected= is a str or a str slot, not {}",
            type_name(expected)
        )));
    };
    let effect = CheckValue {
        name: intern(name),
        found: found.0.typed(Kind::Str, "CheckValue's found=")?,
        expected,
    };
    kit_effect(effect, into, Some(Kind::Str))
}

/// `ConnectsTo(name, servers, mode, *, expected=None, into=None)`: connects with
/// libpq to `servers` in order with `target_session_attrs=mode` and checks (a check
/// named `name`) that it lands on `expected`, or, with None, that none qualifies.
/// Output: the port reached, if any (kind `optional_str`).
#[pyfunction(name = "ConnectsTo")]
#[pyo3(signature = (name, servers, mode, *, expected = None, into = None))]
fn connects_to(
    name: &str,
    servers: Vec<PySlot>,
    mode: &str,
    expected: Option<PySlot>,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let mode = one_of(
        mode,
        &[
            ("any", "any"),
            ("read-write", "read-write"),
            ("read-only", "read-only"),
            ("primary", "primary"),
            ("standby", "standby"),
            ("prefer-standby", "prefer-standby"),
        ],
        "ConnectsTo's mode",
    )?;
    let effect = ConnectsTo {
        name: intern(name),
        servers: servers
            .iter()
            .map(|s| server(s, "ConnectsTo's servers="))
            .collect::<PyResult<_>>()?,
        mode,
        expected: expected
            .map(|s| server(&s, "ConnectsTo's expected="))
            .transpose()?,
    };
    kit_effect(effect, into, Some(Kind::OptionalStr))
}

// --- verification ---

/// `TableChecksums(of, *, into=None)`: every table's checksum on the server in `of`
/// (kind `checksums`).
#[pyfunction(name = "TableChecksums")]
#[pyo3(signature = (of, *, into = None))]
fn table_checksums(of: PySlot, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let of = server(&of, "TableChecksums's of=")?;
    kit_effect(TableChecksums { of }, into, Some(Kind::Checksums))
}

/// `CompareChecksums(expected, found, *, in_order=False, into=None)`: the checksums
/// in `found` must equal those of the point in `expected`, a check with every
/// differing table as evidence (`in_order`: the next of each, in turn). Output:
/// kind `bool`.
#[pyfunction(name = "CompareChecksums")]
#[pyo3(signature = (expected, found, *, in_order = false, into = None))]
fn compare_checksums(
    expected: PySlot,
    found: PySlot,
    in_order: bool,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let effect = CompareChecksums {
        expected: expected
            .0
            .typed(Kind::Point, "CompareChecksums's expected=")?,
        found: found
            .0
            .typed(Kind::Checksums, "CompareChecksums's found=")?,
        in_order,
    };
    kit_effect(effect, into, Some(Kind::Bool))
}

/// `VerifyLedger(on, ledgers, *, into=None)`: every acknowledged commit of the
/// writers' ledgers (a `ledger` slot, from each writer) must be on the server.
/// Output: kind `ledger_summary` (`passed`, `acknowledged`, `found`, `missing`).
#[pyfunction(name = "VerifyLedger")]
#[pyo3(signature = (on, ledgers, *, into = None))]
fn verify_ledger(on: PySlot, ledgers: PySlot, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let effect = VerifyLedger {
        on: server(&on, "VerifyLedger's on=")?,
        ledgers: ledgers.0.typed(Kind::Ledger, "VerifyLedger's ledgers=")?,
    };
    kit_effect(effect, into, Some(Kind::LedgerSummary))
}

/// `Amcheck(on, *, into=None)`: `pg_amcheck` on the server's database, a check.
/// Output: kind `bool`.
#[pyfunction(name = "Amcheck")]
#[pyo3(signature = (on, *, into = None))]
fn amcheck(on: PySlot, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let on = server(&on, "Amcheck's on=")?;
    kit_effect(Amcheck { on }, into, Some(Kind::Bool))
}

/// `AmcheckAfterCrash(on, *, into=None)`: `pg_amcheck` after this role's latest
/// crash, the check named after it. Output: kind `bool`.
#[pyfunction(name = "AmcheckAfterCrash")]
#[pyo3(signature = (on, *, into = None))]
fn amcheck_after_crash(on: PySlot, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let on = server(&on, "AmcheckAfterCrash's on=")?;
    kit_effect(AmcheckAfterCrash { on }, into, Some(Kind::Bool))
}

/// `ValidateCatalog(on, *, into=None)`: the role's catalog (its share) must match
/// the server's schema, a check. Output: the differences found (kind `count`).
#[pyfunction(name = "ValidateCatalog")]
#[pyo3(signature = (on, *, into = None))]
fn validate_catalog(on: PySlot, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let on = server(&on, "ValidateCatalog's on=")?;
    kit_effect(ValidateCatalog { on }, into, Some(Kind::Count))
}

// --- load ---

/// `StressLoad(on, seconds, *, into=None, registry=None)`: the stress mix on the
/// server for `seconds` (the node's default actions, or those of `registry`, an
/// ActionRegistry copied now). Output: actions run (kind `int`).
#[pyfunction(name = "StressLoad")]
#[pyo3(signature = (on, seconds, *, into = None, registry = None))]
fn stress_load(
    on: PySlot,
    seconds: f64,
    into: Option<PySlot>,
    registry: Option<PyRef<'_, crate::actions::PyActionRegistry>>,
) -> PyResult<PyEffectObj> {
    let on = server(&on, "StressLoad's on=")?;
    let duration = self::seconds(seconds, "StressLoad's seconds")?;
    match registry {
        None => kit_effect(StressLoad { on, duration }, into, Some(Kind::Int)),
        Some(registry) => kit_effect(
            crate::stress::StressWith {
                on,
                duration,
                registry: registry.inner.clone(),
            },
            into,
            Some(Kind::Int),
        ),
    }
}

/// `WriteLedger(on, seconds, *, into=None)`: commits ledger rows on the server for
/// `seconds`, remembering each acknowledged one. Output: this call's round (kind
/// `ledger`), for `VerifyLedger` after a `gather`.
#[pyfunction(name = "WriteLedger")]
#[pyo3(signature = (on, seconds, *, into = None))]
fn write_ledger(on: PySlot, seconds: f64, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let effect = WriteLedger {
        on: server(&on, "WriteLedger's on=")?,
        duration: self::seconds(seconds, "WriteLedger's seconds")?,
    };
    kit_effect(effect, into, Some(Kind::Ledger))
}

/// `RunWorkload(on, workload, *, seconds, clients=1, setup=True, into=None)`: a
/// registered workload (`tpcb`, `read-only`, `ecommerce`, `stress`) with `clients`
/// clients for `seconds`, set up first with `setup`. Output: kind
/// `workload_summary` (`workload`, `operations`, `errors`, `per_second`).
#[pyfunction(name = "RunWorkload")]
#[pyo3(signature = (on, workload, *, seconds, clients = 1, setup = true, into = None))]
fn run_workload(
    on: PySlot,
    workload: &str,
    seconds: f64,
    clients: usize,
    setup: bool,
    into: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    if clients == 0 {
        return Err(PyValueError::new_err("RunWorkload's clients must be >= 1"));
    }
    let effect = RunWorkload {
        on: server(&on, "RunWorkload's on=")?,
        workload: intern(workload),
        clients,
        duration: self::seconds(seconds, "RunWorkload's seconds")?,
        setup,
    };
    kit_effect(effect, into, Some(Kind::WorkloadSummary))
}

// --- schema ---

/// `Discover(on, *, into=None)`: the server's schema (the role's share) into the
/// role's catalog. Output: tables found (kind `int`).
#[pyfunction(name = "Discover")]
#[pyo3(signature = (on, *, into = None))]
fn discover(on: PySlot, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let on = server(&on, "Discover's on=")?;
    kit_effect(Discover { on }, into, Some(Kind::Int))
}

/// `CreateLedger(on)`: creates the ledger table the writers commit to.
#[pyfunction(name = "CreateLedger")]
fn create_ledger(on: PySlot) -> PyResult<PyEffectObj> {
    let on = server(&on, "CreateLedger's on=")?;
    kit_effect(CreateLedger { on }, None, None)
}

/// `RunSql(on, sql=None, *, file=None, or_schema_option=None)`: runs SQL (one or
/// more statements) on the server: the text `sql`, the file `file`, or the run's
/// `--schema` file if it has one, else `or_schema_option`. Give exactly one.
#[pyfunction(name = "RunSql")]
#[pyo3(signature = (on, sql = None, *, file = None, or_schema_option = None))]
fn run_sql(
    on: PySlot,
    sql: Option<&str>,
    file: Option<std::path::PathBuf>,
    or_schema_option: Option<&str>,
) -> PyResult<PyEffectObj> {
    let source = match (sql, file, or_schema_option) {
        (Some(text), None, None) => SqlSource::Text(intern(text)),
        (None, Some(path), None) => SqlSource::File(path),
        (None, None, Some(text)) => SqlSource::SchemaOption(intern(text)),
        _ => {
            return Err(PyValueError::new_err(
                "RunSql takes exactly one of sql, file= and or_schema_option=",
            ));
        }
    };
    let on = server(&on, "RunSql's on=")?;
    kit_effect(RunSql { on, sql: source }, None, None)
}

// --- SQL steps ---

/// `Sql(on, sql, *, value=None, fails=None, rows=None, waits=False,
/// blocked_by=None)`: a step of this role's SQL session on the server: `sql` must
/// succeed (returning `value` in its first row and column, or `rows` rows) or fail
/// with SQLSTATE `fails`. `waits=True`: it is expected to wait for a lock (start it
/// with `ext_start`; `Finish` takes its outcome); `blocked_by`: the `pid` slot of
/// the session it waits for.
#[pyfunction(name = "Sql")]
#[pyo3(signature = (on, sql, *, value = None, fails = None, rows = None, waits = false, blocked_by = None))]
fn sql(
    on: PySlot,
    sql: &str,
    value: Option<i64>,
    fails: Option<&str>,
    rows: Option<usize>,
    waits: bool,
    blocked_by: Option<PySlot>,
) -> PyResult<PyEffectObj> {
    let on = server(&on, "Sql's on=")?;
    let mut effect = match blocked_by {
        Some(holder) => Sql::waits_for(on, sql, holder.0.typed(Kind::Pid, "Sql's blocked_by=")?),
        None if waits => Sql::waits(on, sql),
        None => Sql::ok(on, sql),
    };
    effect.expect = expect(value, fails, rows)?;
    kit_effect(effect, None, None)
}

/// `SessionPid(on, *, into=None)`: the backend pid of this role's SQL session
/// (kind `pid`), for another role's `Sql(..., blocked_by=)`.
#[pyfunction(name = "SessionPid")]
#[pyo3(signature = (on, *, into = None))]
fn session_pid(on: PySlot, into: Option<PySlot>) -> PyResult<PyEffectObj> {
    let on = server(&on, "SessionPid's on=")?;
    kit_effect(SessionPid { on }, into, Some(Kind::Pid))
}

/// `Finish(*, value=None, fails=None, rows=None)`: the outcome of the statement
/// this role left waiting, with the expectation as `Sql`'s.
#[pyfunction(name = "Finish")]
#[pyo3(signature = (*, value = None, fails = None, rows = None))]
fn finish(value: Option<i64>, fails: Option<&str>, rows: Option<usize>) -> PyResult<PyEffectObj> {
    kit_effect(
        Finish {
            expect: expect(value, fails, rows)?,
        },
        None,
        None,
    )
}

/// `Case(name, level, claim)`: an isolation case begins (at `level`: `read
/// uncommitted`, `read committed`, `repeatable read`, `serializable`); `claim` is
/// what the documentation says. Unordered bookkeeping.
#[pyfunction(name = "Case")]
fn case(name: &str, level: &str, claim: &str) -> PyResult<PyEffectObj> {
    let level = one_of(
        level,
        &[
            ("read uncommitted", Level::ReadUncommitted),
            ("read committed", Level::ReadCommitted),
            ("repeatable read", Level::RepeatableRead),
            ("serializable", Level::Serializable),
        ],
        "Case's level",
    )?;
    let effect = Case {
        name: intern(name),
        level,
        claim: intern(claim),
    };
    kit_effect(effect, None, None)
}

/// `Verdict(*, into=None)`: at the judging role, whether every step of the case
/// did as expected, a check. Output: kind `bool`.
#[pyfunction(name = "Verdict")]
#[pyo3(signature = (*, into = None))]
fn verdict(into: Option<PySlot>) -> PyResult<PyEffectObj> {
    kit_effect(Verdict, into, Some(Kind::Bool))
}

// --- faults ---

/// `FaultPoint(fault, on, ledgers)`: where fault `fault` (a name as `--inject`
/// takes: `delete-acknowledged-row`, `corrupt-ledger-index`, ...) strikes when the
/// run injects it (`program.run(..., inject=fault)`); otherwise nothing.
#[pyfunction(name = "FaultPoint")]
fn fault_point(fault: &str, on: PySlot, ledgers: PySlot) -> PyResult<PyEffectObj> {
    let fault = fault
        .parse::<Fault>()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let effect = FaultPoint {
        fault,
        on: server(&on, "FaultPoint's on=")?,
        ledgers: ledgers.0.typed(Kind::Ledger, "FaultPoint's ledgers=")?,
    };
    kit_effect(effect, None, None)
}

pub(crate) fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let kit = PyModule::new(py, "kit")?;
    macro_rules! add {
        ($($f:ident),* $(,)?) => {
            $(kit.add_function(wrap_pyfunction!($f, &kit)?)?;)*
        };
    }
    add!(
        phase,
        start_server,
        stop_server,
        kill_server,
        restart_server,
        crash,
        server_address,
        reset_xid_epoch,
        take_backup,
        verify_backup,
        restore,
        remove_restored,
        start_backup,
        finish_backup,
        background_backup,
        record_point,
        record_goal,
        switch_wal,
        start_replica,
        prepare_replica,
        start_prepared,
        promote,
        restart_as_standby,
        follow,
        wait_for_replay,
        query,
        poll_until,
        refuses,
        check_value,
        connects_to,
        table_checksums,
        compare_checksums,
        verify_ledger,
        amcheck,
        amcheck_after_crash,
        validate_catalog,
        stress_load,
        write_ledger,
        run_workload,
        discover,
        create_ledger,
        run_sql,
        sql,
        session_pid,
        finish,
        case,
        verdict,
        fault_point,
    );
    m.add_submodule(&kit)?;
    Ok(())
}
