//! Three of PostgreSQL's own recovery TAP tests (`src/test/recovery/t/` in
//! PostgreSQL's source) as kit choreographies, with their steps and their checks, on
//! throwaway clusters: one role per node, a checker role, every value (where a server
//! is, a recovery goal, a WAL position, a row count) passed in a message.
//!
//! - `001_stream_rep.pl`: a primary, a standby, a standby cascading from it; data
//!   and a sequence replicate to both; both standbys refuse writes;
//! - `003_recovery_targets.pl`: one base backup restored to `immediate`, a
//!   transaction id, a time, a named restore point and an LSN, each with the row
//!   count upstream expects;
//! - `004_timeline_switch.pl`: the first standby is promoted; the second, re-pointed
//!   at it, follows the new timeline and sees new data; and a primary restarted as a
//!   standby and promoted is followed by a standby made from a backup taken before.
//!
//! Each has a negative counterpart that makes one of its checks fail. The steps left
//! out (features PostgreSQL 15 lacks, or that test libpq or the server's
//! configuration parser rather than recovery) are listed in `docs/pg-recovery.md`.

use std::time::{Duration, Instant};

use stormchor::kit::effects::ServerInfo;
use stormchor::kit::effects::wal::GoalKind;
use stormchor::kit::effects::wal::RecoveryGoal;
use stormchor::kit::effects::{
    CheckValue, ConnectsTo, Follow, Goal, PollUntil, PrepareReplica, Promote, Query, RecordGoal,
    Refuses, RemoveRestored, ResetXidEpoch, RestartAsStandby, RestartServer, Restore, RestoreTo,
    StartPrepared, StartReplica, StartServer, StopServer, SwitchWal, TakeBackup, VerifyBackup,
    WaitForReplay, Wanted,
};
use stormchor::kit::{
    Carry, DbEffect, Kit, KitRole, Program, ScenarioOptions, ScenarioReport, Slot, run_program,
};
use stormchor::macros::choreography;
use stormchor::postgres::StopMode;

/// How long any replay, archive or poll may take: generous, for a loaded machine.
const BOUND: Duration = Duration::from_secs(120);

async fn run(name: &str, program: &Program<Role, Carry>) -> ScenarioReport {
    let began = Instant::now();
    let kit = Kit::<Role>::new().expect("the kit registers");
    let report = run_program(name, program, &ScenarioOptions::short(), kit)
        .await
        .expect("the program projects and runs");
    println!("{}", report.render());
    println!("{name}: wall time {:.1} s", began.elapsed().as_secs_f64());
    report
}

/// The check called `name`; the test fails listing the checks there are without it.
fn check<'a>(report: &'a ScenarioReport, name: &str) -> &'a stormchor::kit::CheckRecord {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {:#?}", report.checks))
}

/// Why `role` failed.
fn failure<'a>(report: &'a ScenarioReport, role: &str) -> &'a str {
    report
        .roles
        .iter()
        .find(|r| r.role == role)
        .and_then(|r| r.failure.as_deref())
        .unwrap_or_else(|| panic!("{role} did not fail: {:#?}", report.roles))
}

fn assert_passed(report: &ScenarioReport, checks: &[&str]) {
    assert!(report.success, "{}", report.render());
    for name in checks {
        let check = check(report, name);
        assert!(check.passed, "{check:?}");
    }
}

// ---------------------------------------------------------------------------------
// 001_stream_rep
// ---------------------------------------------------------------------------------

const STANDBY_1: Slot<ServerInfo> = Slot::new("standby 1");
const STANDBY_2: Slot<ServerInfo> = Slot::new("standby 2");
const PRIMARY: Slot<ServerInfo> = stormchor::kit::slots::PRIMARY;
const ROWS_1: Slot<String> = Slot::new("rows on standby 1");
const ROWS_2: Slot<String> = Slot::new("rows on standby 2");
const SEQ_1: Slot<String> = Slot::new("seq1 on standby 1");
const SEQ_2: Slot<String> = Slot::new("seq1 on standby 2");

choreography! {
    /// The nodes of the recovery tests and the role that checks what they report.
    enum Role { Primary, Standby1, Standby2, Checker, Backup, Primary2, Standby3 }

    /// `001_stream_rep.pl`: a primary, a standby streaming from it, a standby
    /// cascading from that one. `rows` is the row count the checker expects on both
    /// standbys; `read_only_1` is the server that must refuse writes as standby 1
    /// (the negative counterpart names the primary).
    fn stream_rep(rows: &'static str, read_only_1: Slot<ServerInfo>) -> Program<Role, Carry> {
        roles Primary, Standby1, Standby2, Checker;
        ext StartServer::throwaway().into_slot(PRIMARY) @ Primary;
        Primary -> Standby1: PRIMARY.carry();
        Primary -> Checker: PRIMARY.carry();
        ext StartReplica { of: PRIMARY }.into_slot(STANDBY_1) @ Standby1;
        // A base backup of standby 1 (pg_basebackup works on a standby) ...
        ext TakeBackup { of: STANDBY_1 } @ Standby1;
        ext VerifyBackup { tolerate: false } @ Standby1;
        // ... and a second one while the primary is down.
        Standby1 -> Primary: Carry::signal("backed up");
        ext StopServer(StopMode::Fast) @ Primary;
        Primary -> Standby1: Carry::signal("primary stopped");
        ext TakeBackup { of: STANDBY_1 } @ Standby1;
        ext VerifyBackup { tolerate: false } @ Standby1;
        Standby1 -> Primary: Carry::signal("backed up with the primary down");
        ext RestartServer @ Primary;
        // Standby 2 streams from standby 1.
        Standby1 -> Standby2: STANDBY_1.carry();
        ext StartReplica { of: STANDBY_1 }.into_slot(STANDBY_2) @ Standby2;
        Standby2 -> Primary: Carry::signal("cascade streaming");
        ext Query::new(PRIMARY, "CREATE TABLE tab_int AS SELECT generate_series(1, 1002) AS a") @ Primary;
        Primary -> Standby1: PRIMARY.carry();
        Primary -> Standby2: PRIMARY.carry();
        ext WaitForReplay { upstream: PRIMARY, bound: BOUND } @ Standby1, Standby2;
        ext Query::new(STANDBY_1, "SELECT count(*) FROM tab_int").into_slot(ROWS_1) @ Standby1;
        ext Query::new(STANDBY_2, "SELECT count(*) FROM tab_int").into_slot(ROWS_2) @ Standby2;
        Standby1 -> Checker: ROWS_1.carry();
        Standby2 -> Checker: ROWS_2.carry();
        ext CheckValue { name: "streamed content on standby 1", found: ROWS_1, expected: Wanted::Text(rows) } @ Checker;
        ext CheckValue { name: "streamed content on standby 2", found: ROWS_2, expected: Wanted::Text(rows) } @ Checker;
        // Likewise for a sequence: a standby sees the value WAL-logged ahead (32 more).
        Checker -> Primary: Carry::signal("tables checked");
        ext Query::new(PRIMARY, "CREATE SEQUENCE seq1; SELECT nextval('seq1')") @ Primary;
        Primary -> Standby1: Carry::signal("sequence created");
        Primary -> Standby2: Carry::signal("sequence created");
        ext WaitForReplay { upstream: PRIMARY, bound: BOUND } @ Standby1, Standby2;
        ext Query::new(STANDBY_1, "SELECT * FROM seq1").into_slot(SEQ_1) @ Standby1;
        ext Query::new(STANDBY_2, "SELECT * FROM seq1").into_slot(SEQ_2) @ Standby2;
        Standby1 -> Checker: SEQ_1.carry();
        Standby2 -> Checker: SEQ_2.carry();
        ext CheckValue { name: "streamed sequence content on standby 1", found: SEQ_1, expected: Wanted::Text("33|0|t") } @ Checker;
        ext CheckValue { name: "streamed sequence content on standby 2", found: SEQ_2, expected: Wanted::Text("33|0|t") } @ Checker;
        // Only read-only queries run on standbys.
        Standby1 -> Checker: STANDBY_1.carry();
        Standby2 -> Checker: STANDBY_2.carry();
        ext Refuses { name: "read-only queries on standby 1", on: read_only_1, sql: "INSERT INTO tab_int VALUES (1)", sqlstate: "25006" } @ Checker;
        ext Refuses { name: "read-only queries on standby 2", on: STANDBY_2, sql: "INSERT INTO tab_int VALUES (1)", sqlstate: "25006" } @ Checker;
        // libpq's target_session_attrs picks the server that qualifies, or none.
        ext ConnectsTo { name: "connect to node primary with mode \"read-write\" and primary,standby_1 listed", servers: vec![PRIMARY, STANDBY_1], mode: "read-write", expected: Some(PRIMARY) } @ Checker;
        ext ConnectsTo { name: "connect to node primary with mode \"read-write\" and standby_1,primary listed", servers: vec![STANDBY_1, PRIMARY], mode: "read-write", expected: Some(PRIMARY) } @ Checker;
        ext ConnectsTo { name: "connect to node primary with mode \"any\" and primary,standby_1 listed", servers: vec![PRIMARY, STANDBY_1], mode: "any", expected: Some(PRIMARY) } @ Checker;
        ext ConnectsTo { name: "connect to node standby_1 with mode \"any\" and standby_1,primary listed", servers: vec![STANDBY_1, PRIMARY], mode: "any", expected: Some(STANDBY_1) } @ Checker;
        ext ConnectsTo { name: "connect to node primary with mode \"primary\" and primary,standby_1 listed", servers: vec![PRIMARY, STANDBY_1], mode: "primary", expected: Some(PRIMARY) } @ Checker;
        ext ConnectsTo { name: "connect to node primary with mode \"primary\" and standby_1,primary listed", servers: vec![STANDBY_1, PRIMARY], mode: "primary", expected: Some(PRIMARY) } @ Checker;
        ext ConnectsTo { name: "connect to node standby_1 with mode \"read-only\" and primary,standby_1 listed", servers: vec![PRIMARY, STANDBY_1], mode: "read-only", expected: Some(STANDBY_1) } @ Checker;
        ext ConnectsTo { name: "connect to node standby_1 with mode \"read-only\" and standby_1,primary listed", servers: vec![STANDBY_1, PRIMARY], mode: "read-only", expected: Some(STANDBY_1) } @ Checker;
        ext ConnectsTo { name: "connect to node primary with mode \"prefer-standby\" and primary,primary listed", servers: vec![PRIMARY, PRIMARY], mode: "prefer-standby", expected: Some(PRIMARY) } @ Checker;
        ext ConnectsTo { name: "connect to node standby_1 with mode \"prefer-standby\" and primary,standby_1 listed", servers: vec![PRIMARY, STANDBY_1], mode: "prefer-standby", expected: Some(STANDBY_1) } @ Checker;
        ext ConnectsTo { name: "connect to node standby_1 with mode \"prefer-standby\" and standby_1,primary listed", servers: vec![STANDBY_1, PRIMARY], mode: "prefer-standby", expected: Some(STANDBY_1) } @ Checker;
        ext ConnectsTo { name: "connect to node standby_1 with mode \"standby\" and primary,standby_1 listed", servers: vec![PRIMARY, STANDBY_1], mode: "standby", expected: Some(STANDBY_1) } @ Checker;
        ext ConnectsTo { name: "connect to node standby_1 with mode \"standby\" and standby_1,primary listed", servers: vec![STANDBY_1, PRIMARY], mode: "standby", expected: Some(STANDBY_1) } @ Checker;
        ext ConnectsTo { name: "fail to connect with mode \"read-write\" and standby_1,standby_2 listed", servers: vec![STANDBY_1, STANDBY_2], mode: "read-write", expected: None } @ Checker;
        ext ConnectsTo { name: "fail to connect with mode \"primary\" and standby_1,standby_2 listed", servers: vec![STANDBY_1, STANDBY_2], mode: "primary", expected: None } @ Checker;
        ext ConnectsTo { name: "fail to connect with mode \"read-only\" and primary,primary listed", servers: vec![PRIMARY, PRIMARY], mode: "read-only", expected: None } @ Checker;
        ext ConnectsTo { name: "fail to connect with mode \"standby\" and primary,primary listed", servers: vec![PRIMARY, PRIMARY], mode: "standby", expected: None } @ Checker;
        Checker -> Primary: Carry::signal("done");
        Checker -> Standby1: Carry::signal("done");
        Checker -> Standby2: Carry::signal("done");
    }
}

impl KitRole for Role {}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tap_001_stream_rep() {
    let report = run("tap_001_stream_rep", &stream_rep("1002", STANDBY_1)).await;
    assert_passed(
        &report,
        &[
            "pg_verifybackup",
            "streamed content on standby 1",
            "streamed content on standby 2",
            "streamed sequence content on standby 1",
            "streamed sequence content on standby 2",
            "read-only queries on standby 1",
            "read-only queries on standby 2",
        ],
    );
    let attrs: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.name.contains("with mode"))
        .collect();
    assert_eq!(attrs.len(), 17, "{attrs:?}");
    assert!(attrs.iter().all(|c| c.passed), "{attrs:?}");
    assert!(
        check(&report, "read-only queries on standby 2")
            .summary
            .contains("read-only transaction")
    );
}

/// The negative counterpart: the checker expects the primary to refuse writes as a
/// standby does, and a count one short; the first check fails with what it found.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tap_001_stream_rep_fails_when_a_check_does_not_hold() {
    let report = run("tap_001_negative_rows", &stream_rep("1001", STANDBY_1)).await;
    assert!(!report.success);
    let rows = check(&report, "streamed content on standby 1");
    assert!(!rows.passed);
    assert_eq!(
        rows.evidence,
        vec!["found `1002`, expected `1001`".to_owned()]
    );
    assert!(failure(&report, "Checker").contains("streamed content on standby 1"));

    let report = run("tap_001_negative_writes", &stream_rep("1002", PRIMARY)).await;
    assert!(!report.success);
    let writes = check(&report, "read-only queries on standby 1");
    assert!(!writes.passed);
    assert_eq!(writes.evidence, vec!["it succeeded".to_owned()]);
}

// ---------------------------------------------------------------------------------
// 003_recovery_targets
// ---------------------------------------------------------------------------------

const LSN_1: Slot<String> = Slot::new("lsn 1");
const LSN_2: Slot<String> = Slot::new("lsn 2");
const LSN_3: Slot<String> = Slot::new("lsn 3");
const LSN_4: Slot<String> = Slot::new("lsn 4");
const LSN_5: Slot<String> = Slot::new("lsn 5");
const XID: Slot<RecoveryGoal> = Slot::new("recovery xid");
const TIME: Slot<RecoveryGoal> = Slot::new("recovery time");
const NAME: Slot<RecoveryGoal> = Slot::new("recovery name");
const LSN: Slot<RecoveryGoal> = Slot::new("recovery lsn");
const RESTORED: Slot<ServerInfo> = stormchor::kit::slots::RESTORED;
const ROWS: Slot<String> = Slot::new("rows restored");
const EPOCH: Slot<String> = Slot::new("xid epoch");

choreography! {
    /// One restore of `003_recovery_targets.pl`'s `test_recovery_standby`: the backup
    /// node restores its backup to `goal`, waits until the restored cluster replayed
    /// up to `reached` (a position past the commit that makes the count, not past the
    /// goal), counts the rows and sends the count; the checker expects `rows`.
    fn restore_and_count(label: &'static str, goal: Goal, reached: Slot<String>, rows: &'static str) -> Program<Role, Carry> {
        roles Backup, Checker;
        ext Restore { from: PRIMARY, to: RestoreTo::Goal(goal), name: label }.into_slot(RESTORED) @ Backup;
        ext PollUntil { query: Query::new(RESTORED, "SELECT $1::pg_lsn <= pg_last_wal_replay_lsn()").with(reached), bound: BOUND } @ Backup;
        ext Query::new(RESTORED, "SELECT count(*) FROM tab_int").into_slot(ROWS) @ Backup;
        ext RemoveRestored { name: label } @ Backup;
        Backup -> Checker: ROWS.carry();
        ext CheckValue { name: label, found: ROWS, expected: Wanted::Text(rows) } @ Checker;
        Checker -> Backup: Carry::signal("checked");
    }

    /// `003_recovery_targets.pl`: a primary whose transaction ids carry an epoch
    /// writes 6000 rows in six steps, recording a WAL position and a recovery goal
    /// between them; one base backup, taken after the first step, is restored to
    /// each goal. `xid_goal` is the goal the transaction-id restore uses (the negative
    /// counterpart gives the time goal).
    fn recovery_targets(xid_goal: Slot<RecoveryGoal>) -> Program<Role, Carry> {
        roles Primary, Backup, Checker;
        ext StartServer::throwaway().archiving().into_slot(PRIMARY) @ Primary;
        ext ResetXidEpoch(1) @ Primary;
        ext Query::new(PRIMARY, "SELECT pg_current_xact_id()::text::bigint >> 32").into_slot(EPOCH) @ Primary;
        Primary -> Checker: EPOCH.carry();
        ext CheckValue { name: "transaction ids carry epoch 1", found: EPOCH, expected: Wanted::Text("1") } @ Checker;
        ext Query::new(PRIMARY, "CREATE TABLE tab_int AS SELECT generate_series(1, 1000) AS a") @ Primary;
        ext Query::new(PRIMARY, "SELECT pg_current_wal_lsn()").into_slot(LSN_1) @ Primary;
        Primary -> Backup: PRIMARY.carry();
        ext TakeBackup { of: PRIMARY } @ Backup;
        Backup -> Primary: Carry::signal("backed up");
        // A transaction id ...
        ext Query::new(PRIMARY, "INSERT INTO tab_int VALUES (generate_series(1001, 2000))") @ Primary;
        ext Query::new(PRIMARY, "SELECT pg_current_wal_lsn()").into_slot(LSN_2) @ Primary;
        ext RecordGoal { on: PRIMARY, kind: GoalKind::XidOf("SELECT pg_current_wal_lsn()") }.into_slot(XID) @ Primary;
        // ... a time ...
        ext Query::new(PRIMARY, "INSERT INTO tab_int VALUES (generate_series(2001, 3000))") @ Primary;
        ext Query::new(PRIMARY, "SELECT pg_current_wal_lsn()").into_slot(LSN_3) @ Primary;
        ext RecordGoal { on: PRIMARY, kind: GoalKind::Time }.into_slot(TIME) @ Primary;
        // ... a named restore point ...
        ext Query::new(PRIMARY, "INSERT INTO tab_int VALUES (generate_series(3001, 4000))") @ Primary;
        ext Query::new(PRIMARY, "SELECT pg_current_wal_lsn()").into_slot(LSN_4) @ Primary;
        ext RecordGoal { on: PRIMARY, kind: GoalKind::RestorePoint("my_target") }.into_slot(NAME) @ Primary;
        // ... an LSN.
        ext Query::new(PRIMARY, "INSERT INTO tab_int VALUES (generate_series(4001, 5000))") @ Primary;
        ext Query::new(PRIMARY, "SELECT pg_current_wal_lsn()").into_slot(LSN_5) @ Primary;
        ext RecordGoal { on: PRIMARY, kind: GoalKind::Lsn }.into_slot(LSN) @ Primary;
        ext Query::new(PRIMARY, "INSERT INTO tab_int VALUES (generate_series(5001, 6000))") @ Primary;
        ext SwitchWal { on: PRIMARY, bound: BOUND } @ Primary;
        Primary -> Backup: LSN_1.carry();
        Primary -> Backup: LSN_2.carry();
        Primary -> Backup: LSN_3.carry();
        Primary -> Backup: LSN_4.carry();
        Primary -> Backup: LSN_5.carry();
        Primary -> Backup: XID.carry();
        Primary -> Backup: TIME.carry();
        Primary -> Backup: NAME.carry();
        Primary -> Backup: LSN.carry();
        call restore_and_count("standby content for immediate target", Goal::Fixed(RecoveryGoal::Immediate), LSN_1, "1000");
        call restore_and_count("standby content for XID", Goal::In(xid_goal), LSN_2, "2000");
        call restore_and_count("standby content for time", Goal::In(TIME), LSN_3, "3000");
        call restore_and_count("standby content for name", Goal::In(NAME), LSN_4, "4000");
        call restore_and_count("standby content for LSN", Goal::In(LSN), LSN_5, "5000");
        Checker -> Primary: Carry::signal("done");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tap_003_recovery_targets() {
    let report = run("tap_003_recovery_targets", &recovery_targets(XID)).await;
    assert_passed(
        &report,
        &[
            "transaction ids carry epoch 1",
            "standby content for immediate target",
            "standby content for XID",
            "standby content for time",
            "standby content for name",
            "standby content for LSN",
        ],
    );
}

/// The negative counterpart: the transaction-id restore goes to the time goal
/// instead, which holds a thousand rows more than the transaction's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tap_003_recovery_targets_fails_on_the_wrong_goal() {
    let report = run("tap_003_negative", &recovery_targets(TIME)).await;
    assert!(!report.success);
    assert!(check(&report, "standby content for immediate target").passed);
    let xid = check(&report, "standby content for XID");
    assert!(!xid.passed);
    assert_eq!(
        xid.evidence,
        vec!["found `3000`, expected `2000`".to_owned()]
    );
}

// ---------------------------------------------------------------------------------
// 004_timeline_switch
// ---------------------------------------------------------------------------------

const NEW_PRIMARY: Slot<ServerInfo> = Slot::new("promoted standby 1");
const PRIMARY_2: Slot<ServerInfo> = Slot::new("primary 2");
const STANDBY_3: Slot<ServerInfo> = Slot::new("standby 3");
const RECEIVER_BEFORE: Slot<String> = Slot::new("wal receiver pid before the switch");
const RECEIVER_AFTER: Slot<String> = Slot::new("wal receiver pid after the switch");
const LOG_AT: Slot<String> = Slot::new("standby 2 log length at its restart");
const RECEIVER_STOPS: Slot<String> = Slot::new("wal receiver stopped since the restart");
const TIMELINE_2: Slot<String> = Slot::new("timeline standby 2 receives");
const ROWS_3: Slot<String> = Slot::new("rows on standby 3");

/// Whether standby 2's server log (read by the server: a superuser may read any
/// file) says, after its first `$1` characters, that its WAL receiver was stopped.
const RECEIVER_STOPPED: &str = "SELECT strpos(substr(pg_read_file(current_setting('data_directory') || '/../server.log'), $1::int + 1), 'terminating walreceiver process due to administrator command') > 0";

choreography! {
    /// `004_timeline_switch.pl`. First: a primary and two standbys; the primary
    /// stops cleanly, standby 1 is promoted (a new timeline), standby 2 is re-pointed
    /// at it with `recovery_target_timeline = timeline` and must replay (within
    /// `catch_up`) what standby 1 writes next, its WAL receiver alive across the
    /// timeline jump. Then: a primary that archives is restarted as a standby and
    /// promoted; a standby made from a backup taken before follows it.
    fn timeline_switch(timeline: &'static str, catch_up: Duration) -> Program<Role, Carry> {
        roles Primary, Standby1, Standby2, Checker, Primary2, Standby3;
        ext StartServer::throwaway().into_slot(PRIMARY) @ Primary;
        Primary -> Standby1: PRIMARY.carry();
        Primary -> Standby2: PRIMARY.carry();
        ext StartReplica { of: PRIMARY }.into_slot(STANDBY_1) @ Standby1;
        // One base backup at a time: a second one's checkpoint may recycle a WAL
        // segment the first one still streams.
        Standby1 -> Standby2: Carry::signal("standby 1 backed up");
        ext StartReplica { of: PRIMARY }.into_slot(STANDBY_2) @ Standby2;
        Standby1 -> Primary: Carry::signal("standby 1 streaming");
        Standby2 -> Primary: Carry::signal("standby 2 streaming");
        ext Query::new(PRIMARY, "CREATE TABLE tab_int AS SELECT generate_series(1, 1000) AS a") @ Primary;
        // A clean stop: both standbys receive and flush everything the primary wrote.
        ext StopServer(StopMode::Fast) @ Primary;
        Primary -> Standby1: Carry::signal("primary stopped");
        ext Promote.into_slot(NEW_PRIMARY) @ Standby1;
        Standby1 -> Standby2: NEW_PRIMARY.carry();
        ext Follow { upstream: NEW_PRIMARY, extra: "password=dont_show_me", timeline } @ Standby2;
        ext Query::new(STANDBY_2, "SELECT length(pg_read_file(current_setting('data_directory') || '/../server.log'))").into_slot(LOG_AT) @ Standby2;
        ext PollUntil { query: Query::new(STANDBY_2, "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver)"), bound: BOUND } @ Standby2;
        ext Query::new(STANDBY_2, "SELECT pid FROM pg_stat_wal_receiver").into_slot(RECEIVER_BEFORE) @ Standby2;
        Standby2 -> Standby1: Carry::signal("following");
        ext Query::new(NEW_PRIMARY, "INSERT INTO tab_int VALUES (generate_series(1001, 2000))") @ Standby1;
        Standby1 -> Standby2: Carry::signal("written");
        ext WaitForReplay { upstream: NEW_PRIMARY, bound: catch_up } @ Standby2;
        ext Query::new(STANDBY_2, "SELECT count(*) FROM tab_int").into_slot(ROWS_2) @ Standby2;
        ext Query::new(STANDBY_2, RECEIVER_STOPPED).with(LOG_AT).into_slot(RECEIVER_STOPS) @ Standby2;
        ext Query::new(STANDBY_2, "SELECT pid FROM pg_stat_wal_receiver").into_slot(RECEIVER_AFTER) @ Standby2;
        ext Query::new(STANDBY_2, "SELECT received_tli FROM pg_stat_wal_receiver").into_slot(TIMELINE_2) @ Standby2;
        Standby2 -> Checker: ROWS_2.carry();
        Standby2 -> Checker: RECEIVER_STOPS.carry();
        Standby2 -> Checker: RECEIVER_BEFORE.carry();
        Standby2 -> Checker: RECEIVER_AFTER.carry();
        Standby2 -> Checker: TIMELINE_2.carry();
        ext CheckValue { name: "check content of standby 2", found: ROWS_2, expected: Wanted::Text("2000") } @ Checker;
        ext CheckValue { name: "standby 2 receives the new timeline", found: TIMELINE_2, expected: Wanted::Text("2") } @ Checker;
        ext CheckValue { name: "WAL receiver should not be stopped across timeline jumps", found: RECEIVER_STOPS, expected: Wanted::Text("f") } @ Checker;
        ext CheckValue { name: "WAL receiver PID matches across timeline jumps", found: RECEIVER_AFTER, expected: Wanted::In(RECEIVER_BEFORE) } @ Checker;
        Checker -> Standby1: Carry::signal("first part checked");
        Checker -> Standby2: Carry::signal("first part checked");
        Checker -> Primary: Carry::signal("first part checked");
        // A standby follows a primary on a newer timeline when WAL archiving is on.
        Checker -> Primary2: Carry::signal("second part");
        ext StartServer::throwaway().archiving().into_slot(PRIMARY_2) @ Primary2;
        ext Query::new(PRIMARY_2, "ALTER SYSTEM SET wal_keep_size = '512MB'") @ Primary2;
        ext Query::new(PRIMARY_2, "SELECT pg_reload_conf()") @ Primary2;
        Primary2 -> Standby3: PRIMARY_2.carry();
        ext PrepareReplica { of: PRIMARY_2 } @ Standby3;
        Standby3 -> Primary2: Carry::signal("standby 3 backed up");
        ext RestartAsStandby @ Primary2;
        ext Promote.into_slot(PRIMARY_2) @ Primary2;
        Primary2 -> Standby3: Carry::signal("primary 2 promoted");
        ext StartPrepared.into_slot(STANDBY_3) @ Standby3;
        Standby3 -> Primary2: Carry::signal("standby 3 started");
        ext Query::new(PRIMARY_2, "CREATE TABLE tab_int AS SELECT 1 AS a") @ Primary2;
        Primary2 -> Standby3: Carry::signal("written");
        ext WaitForReplay { upstream: PRIMARY_2, bound: BOUND } @ Standby3;
        ext Query::new(STANDBY_3, "SELECT count(*) FROM tab_int").into_slot(ROWS_3) @ Standby3;
        Standby3 -> Checker: ROWS_3.carry();
        ext CheckValue { name: "check content of standby 3", found: ROWS_3, expected: Wanted::Text("1") } @ Checker;
        Checker -> Primary2: Carry::signal("done");
        Checker -> Standby3: Carry::signal("done");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tap_004_timeline_switch() {
    let report = run("tap_004_timeline_switch", &timeline_switch("latest", BOUND)).await;
    assert_passed(
        &report,
        &[
            "check content of standby 2",
            "standby 2 receives the new timeline",
            "WAL receiver should not be stopped across timeline jumps",
            "WAL receiver PID matches across timeline jumps",
            "check content of standby 3",
        ],
    );
}

/// The negative counterpart: standby 2 is re-pointed at the promoted standby but
/// told to stay on its own timeline; it never replays what was written after the
/// promotion, and the wait for it fails within its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tap_004_timeline_switch_fails_when_the_cascade_stays_on_its_timeline() {
    let report = run(
        "tap_004_negative",
        &timeline_switch("current", Duration::from_secs(15)),
    )
    .await;
    assert!(!report.success);
    let why = failure(&report, "Standby2");
    assert!(why.contains("did not replay up to"), "{why}");
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.name != "check content of standby 2"),
        "{:?}",
        report.checks
    );
}

// ---------------------------------------------------------------------------------
// The query effects' own checks, each made to fail
// ---------------------------------------------------------------------------------

choreography! {
    /// A primary and a checker that runs `step` against it.
    fn against_a_primary(step: Program<Role, Carry>) -> Program<Role, Carry> {
        roles Primary, Checker;
        ext StartServer::throwaway().into_slot(PRIMARY) @ Primary;
        Primary -> Checker: PRIMARY.carry();
        call step;
        Checker -> Primary: Carry::signal("done");
    }
}

fn at_checker<E: stormchor::choreography::ExtensionEffect + Clone>(
    effect: E,
) -> Program<Role, Carry> {
    Program::new()
        .with_roles([Role::Checker])
        .ext(stormchor::choreography::At::new(effect, [Role::Checker]))
}

/// A check that does not hold fails its effect and the report, with what it found.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_query_checks_fail_when_their_condition_does_not_hold() {
    // libpq lands on the primary, not on "no server".
    let report = run(
        "connects_to_negative",
        &against_a_primary(at_checker(ConnectsTo {
            name: "no standby among primaries",
            servers: vec![PRIMARY, PRIMARY],
            mode: "any",
            expected: None,
        })),
    )
    .await;
    let connects = check(&report, "no standby among primaries");
    assert!(!report.success && !connects.passed);
    assert!(connects.summary.contains("reached port"), "{connects:?}");
    assert!(
        connects.summary.ends_with("no server expected"),
        "{connects:?}"
    );

    // A division by zero is refused, but not as a read-only transaction.
    let report = run(
        "refuses_negative",
        &against_a_primary(at_checker(Refuses {
            name: "refused as read-only",
            on: PRIMARY,
            sql: "SELECT 1 / 0",
            sqlstate: "25006",
        })),
    )
    .await;
    let refused = check(&report, "refused as read-only");
    assert!(!report.success && !refused.passed);
    assert!(
        refused.evidence[0].contains("SQLSTATE 22012"),
        "{refused:?}"
    );

    // A condition that never holds ends the wait at its bound.
    let report = run(
        "poll_negative",
        &against_a_primary(at_checker(PollUntil {
            query: Query::new(PRIMARY, "SELECT 1 = 2"),
            bound: Duration::from_secs(2),
        })),
    )
    .await;
    assert!(!report.success);
    let why = failure(&report, "Checker");
    assert!(
        why.contains("did not return `t` within 2s (last answer: `f`)"),
        "{why}"
    );
}
