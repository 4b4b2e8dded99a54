"""Every kit effect from Python (`stormchor.kit`): each built with typed arguments
(checked when it is built), and scenarios on throwaway clusters using many of them:
replication with a ledger (and an injected fault it must catch), backup and
point-in-time restore, and SQL steps with a lock wait."""

import pytest

import stormchor as sc

PRIMARY, REPLICA, RESTORED = sc.slots.PRIMARY, sc.slots.REPLICA, sc.slots.RESTORED
LEDGER, GOAL, POINT, CHECKSUMS = sc.slots.LEDGER, sc.slots.GOAL, sc.slots.POINT, sc.slots.CHECKSUMS
MISSED = sc.slots.MISSED
TEXT = sc.Slot("text", kind="str")
PID = sc.Slot("pid", kind="pid")
OK = sc.Slot("ok", kind="bool")

# Every kit effect (runtime/kit/src/effects/mod.rs), built once with valid arguments,
# with the Rust effect's name.
BUILT = {
    "Phase": lambda k: k.Phase("setup"),
    "StartServer": lambda k: k.StartServer(into=PRIMARY, archive=True, synchronous=True, data_checksums=True),
    "StopServer": lambda k: k.StopServer("immediate"),
    "KillServer": lambda k: k.KillServer(),
    "RestartServer": lambda k: k.RestartServer(),
    "Crash": lambda k: k.Crash(2.0, restart=False),
    "ServerAddress": lambda k: k.ServerAddress(into=PRIMARY),
    "ResetXidEpoch": lambda k: k.ResetXidEpoch(3),
    "TakeBackup": lambda k: k.TakeBackup(PRIMARY),
    "VerifyBackup": lambda k: k.VerifyBackup(tolerate=True, into=OK),
    "Restore": lambda k: k.Restore(PRIMARY, POINT, name="r", next_point=True, into=RESTORED),
    "RemoveRestored": lambda k: k.RemoveRestored("r"),
    "StartBackup": lambda k: k.StartBackup(PRIMARY, max_rate_kb=1024),
    "FinishBackup": lambda k: k.FinishBackup(30.0, into=sc.Slot("outcome", kind="backup_outcome")),
    "BackgroundBackup": lambda k: k.BackgroundBackup(PRIMARY, within=30.0, into=sc.Slot("o", kind="backup_outcome")),
    "RecordPoint": lambda k: k.RecordPoint(PRIMARY, into=POINT),
    "RecordGoal": lambda k: k.RecordGoal(PRIMARY, "xid_of", sql="INSERT INTO t VALUES (1)", into=GOAL),
    "SwitchWal": lambda k: k.SwitchWal(PRIMARY, bound=10.0, into=TEXT),
    "StartReplica": lambda k: k.StartReplica(PRIMARY, into=REPLICA),
    "PrepareReplica": lambda k: k.PrepareReplica(PRIMARY),
    "StartPrepared": lambda k: k.StartPrepared(into=REPLICA),
    "Promote": lambda k: k.Promote(into=PRIMARY),
    "RestartAsStandby": lambda k: k.RestartAsStandby(),
    "Follow": lambda k: k.Follow(PRIMARY, timeline="current", into=REPLICA),
    "WaitForReplay": lambda k: k.WaitForReplay(PRIMARY, bound=5.0),
    "Query": lambda k: k.Query(PRIMARY, "SELECT $1", [TEXT], into=TEXT),
    "PollUntil": lambda k: k.PollUntil(REPLICA, "SELECT true", bound=5.0, into=sc.Slot("ms", kind="int")),
    "Refuses": lambda k: k.Refuses("read only", REPLICA, "CREATE TABLE x ()", "25006", into=TEXT),
    "CheckValue": lambda k: k.CheckValue("same", TEXT, "1"),
    "ConnectsTo": lambda k: k.ConnectsTo("rw", [REPLICA, PRIMARY], "read-write", expected=PRIMARY,
                                         into=sc.Slot("port", kind="optional_str")),
    "TableChecksums": lambda k: k.TableChecksums(PRIMARY, into=CHECKSUMS),
    "CompareChecksums": lambda k: k.CompareChecksums(POINT, CHECKSUMS, in_order=True, into=OK),
    "VerifyLedger": lambda k: k.VerifyLedger(PRIMARY, LEDGER, into=sc.Slot("s", kind="ledger_summary")),
    "Amcheck": lambda k: k.Amcheck(PRIMARY, into=OK),
    "AmcheckAfterCrash": lambda k: k.AmcheckAfterCrash(PRIMARY, into=OK),
    "ValidateCatalog": lambda k: k.ValidateCatalog(PRIMARY, into=sc.Slot("n", kind="count")),
    "StressLoad": lambda k: k.StressLoad(PRIMARY, 1.0, into=sc.slots.ACTIONS),
    "WriteLedger": lambda k: k.WriteLedger(PRIMARY, 1.0, into=LEDGER),
    "RunWorkload": lambda k: k.RunWorkload(PRIMARY, "tpcb", seconds=1.0, clients=2,
                                           into=sc.Slot("w", kind="workload_summary")),
    "Discover": lambda k: k.Discover(PRIMARY, into=sc.Slot("tables", kind="int")),
    "CreateLedger": lambda k: k.CreateLedger(PRIMARY),
    "RunSql": lambda k: k.RunSql(PRIMARY, or_schema_option="CREATE TABLE t (v int)"),
    "Sql": lambda k: k.Sql(PRIMARY, "UPDATE t SET v = 1", waits=True, blocked_by=PID),
    "SessionPid": lambda k: k.SessionPid(PRIMARY, into=PID),
    "Finish": lambda k: k.Finish(fails="40001"),
    "Case": lambda k: k.Case("lost update", "repeatable read", "the second update fails"),
    "Verdict": lambda k: k.Verdict(into=OK),
    "FaultPoint": lambda k: k.FaultPoint("delete-acknowledged-row", PRIMARY, LEDGER),
}


def test_every_kit_effect_is_exposed_with_a_docstring():
    exposed = sorted(name for name in dir(sc.kit) if name[0].isupper())
    assert exposed == sorted(BUILT), set(exposed) ^ set(BUILT)
    assert len(exposed) == 48
    for name in exposed:
        doc = getattr(sc.kit, name).__doc__ or ""
        assert doc.startswith(f"`{name}("), (name, doc)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_every_kit_effect_builds_into_a_program(name):
    effect = BUILT[name](sc.kit)
    assert effect.name == name
    role = sc.Role("R")
    program = sc.Program().role(role).ext(effect, at=role)
    assert program.counts()["extensions"] == 1
    assert name in repr(effect)


def test_wrong_arguments_are_refused_when_the_effect_is_built():
    k = sc.kit
    cases = [
        (sc.SlotError, "TakeBackup's of= takes a slot of kind server", lambda: k.TakeBackup(TEXT)),
        (sc.SlotError, "VerifyBackup's into= takes a slot of kind bool", lambda: k.VerifyBackup(into=TEXT)),
        (sc.SlotError, "CompareChecksums's found= takes a slot of kind checksums", lambda: k.CompareChecksums(POINT, POINT)),
        (sc.SlotError, "Sql's blocked_by= takes a slot of kind pid", lambda: k.Sql(PRIMARY, "x", blocked_by=TEXT)),
        (sc.SlotError, "VerifyLedger's ledgers= takes a slot of kind ledger", lambda: k.VerifyLedger(PRIMARY, TEXT)),
        (ValueError, "StopServer's mode is one of smart, fast, immediate, not `slow`", lambda: k.StopServer("slow")),
        (ValueError, "Case's level is one of read uncommitted", lambda: k.Case("c", "snapshot", "x")),
        (ValueError, "ConnectsTo's mode is one of any, read-write", lambda: k.ConnectsTo("c", [PRIMARY], "rw")),
        (ValueError, "give at most one of value=, fails= and rows=", lambda: k.Sql(PRIMARY, "x", value=1, rows=2)),
        (ValueError, "fails= takes a SQLSTATE", lambda: k.Finish(fails="oops")),
        (ValueError, "Crash's within must be a number of seconds >= 0, not -1", lambda: k.Crash(-1.0)),
        (ValueError, "RecordGoal(kind=\"restore_point\") takes name=", lambda: k.RecordGoal(PRIMARY, "restore_point")),
        (ValueError, "RecordGoal's kind is one of lsn, time, restore_point, xid_of", lambda: k.RecordGoal(PRIMARY, "when")),
        (ValueError, "Restore's to= is \"backup_end\"", lambda: k.Restore(PRIMARY, "yesterday")),
        (ValueError, "Restore's to='s dict takes one of lsn, time, name, xid, not `at`", lambda: k.Restore(PRIMARY, {"at": 1})),
        (sc.SlotError, "next_point=True takes a slot of kind point", lambda: k.Restore(PRIMARY, GOAL, next_point=True)),
        (ValueError, "RunSql takes exactly one of sql, file= and or_schema_option=", lambda: k.RunSql(PRIMARY)),
        (ValueError, "RunWorkload's clients must be >= 1", lambda: k.RunWorkload(PRIMARY, "tpcb", seconds=1, clients=0)),
        (ValueError, "unknown fault", lambda: k.FaultPoint("melt-the-disk", PRIMARY, LEDGER)),
        (TypeError, "CheckValue's expected= is a str or a str slot", lambda: k.CheckValue("c", TEXT, 3)),
    ]
    for error, text, build in cases:
        with pytest.raises(error) as caught:
            build()
        assert text in str(caught.value), (text, str(caught.value))


def test_an_effect_without_output_takes_no_into():
    for build in (lambda: sc.kit.Phase("x", into=TEXT), lambda: sc.kit.CreateLedger(PRIMARY, into=TEXT)):
        with pytest.raises(TypeError, match="unexpected keyword argument 'into'"):
            build()


SUMMARY = sc.Slot("summary", kind="ledger_summary")
PORT = sc.Slot("port", kind="optional_str")
RECOVERING = sc.Slot("recovering", kind="str")
REFUSAL = sc.Slot("refusal", kind="str")
WAITED = sc.Slot("waited", kind="int")


def replication_program():
    """A primary, a streaming standby, a ledger writer and a coordinator: the standby
    refuses writes and replays the ledger; libpq's read-write mode finds the
    primary; every acknowledged commit is on the primary; the standby, promoted,
    leaves recovery."""
    coordinator, primary, replica = (sc.Role(n) for n in ("Coordinator", "Primary", "Replica"))
    writers = sc.Family("Writer", 2)  # ledger writers are members of a family
    k = sc.kit
    return (
        sc.Program()
        .roles([coordinator, primary, replica]).family(writers)
        .ext(k.Phase("setup"))
        .ext(k.StartServer(into=PRIMARY, data_checksums=True), at=primary)
        .send(primary, replica, PRIMARY)
        .ext(k.StartReplica(PRIMARY, into=REPLICA), at=replica)
        .ext(k.CreateLedger(PRIMARY), at=primary)
        .broadcast(primary, writers, PRIMARY)
        .ext(k.WriteLedger(PRIMARY, 1.0, into=LEDGER), at=writers)
        .gather(writers, coordinator, LEDGER)
        .ext(k.WaitForReplay(PRIMARY, bound=60.0), at=replica)
        .ext(k.PollUntil(REPLICA, "SELECT pg_is_in_recovery()", bound=30.0, into=WAITED), at=replica)
        .ext(k.Refuses("the standby refuses writes", REPLICA, "CREATE TABLE nope (v int)", "25006", into=REFUSAL), at=replica)
        .send(replica, coordinator, REPLICA)
        .send(primary, coordinator, PRIMARY)
        .ext(k.ConnectsTo("read-write reaches the primary", [REPLICA, PRIMARY], "read-write",
                          expected=PRIMARY, into=PORT), at=coordinator)
        .ext(k.FaultPoint("delete-acknowledged-row", PRIMARY, LEDGER), at=coordinator)
        .ext(k.VerifyLedger(PRIMARY, LEDGER, into=SUMMARY), at=coordinator)
        .ext(k.Amcheck(PRIMARY, into=OK), at=coordinator)
        .ext(sc.effect("look", reads=[SUMMARY, PORT, PRIMARY]), at=coordinator)
        .send(coordinator, replica, "promote")
        .ext(k.Promote(into=REPLICA), at=replica)
        .ext(k.Query(REPLICA, "SELECT pg_is_in_recovery()", into=RECOVERING), at=replica)
        .ext(k.CheckValue("the promoted standby left recovery", RECOVERING, "f"), at=replica)
    )


def looker():
    kit = sc.Kit()

    @kit.handler("look")
    def look(ctx):
        summary = ctx[SUMMARY]
        ctx.figure("ledger", summary)
        port = ctx[PORT]
        ctx.check("libpq landed on the primary's port",
                  port is not None and f"port={port}" in ctx[PRIMARY]["connection"], str(port))

    return kit


def test_replication_and_the_ledger_on_throwaway_clusters():
    report = replication_program().run(looker(), name="py-replication")
    assert report.success, report.text
    checks = {c["name"]: c["passed"] for c in report.json["checks"]}
    for name in ("the standby refuses writes", "read-write reaches the primary",
                 "the promoted standby left recovery", "libpq landed on the primary's port"):
        assert checks.get(name) is True, (name, checks)
    ledger = report.json["figures"]["ledger"]
    assert ledger["passed"] and ledger["acknowledged"] > 0 and ledger["missing"] == 0, ledger


def test_the_ledger_verifier_catches_the_injected_fault():
    # The same program with the fault FaultPoint injects: an acknowledged row deleted
    # behind the writer's back must fail VerifyLedger.
    report = replication_program().run(looker(), name="py-replication", inject="delete-acknowledged-row")
    assert not report.success
    failed = [c for c in report.json["checks"] if not c["passed"]]
    assert [c["role"] for c in failed] == ["Coordinator"], report.json["checks"]
    ledger = report.json["figures"]["ledger"]
    assert not ledger["passed"] and ledger["missing"] == 1, ledger
    with pytest.raises(ValueError, match="inject=: unknown fault"):
        replication_program().run(looker(), inject="no-such-fault")


ACCOUNTS = "CREATE TABLE acct (id int PRIMARY KEY, v int NOT NULL); INSERT INTO acct VALUES (1, 10), (2, 20)"
VALUE = sc.Slot("value", kind="str")
TABLES = sc.Slot("tables", kind="int")
VALID = sc.Slot("valid", kind="count")
OUTCOME = sc.Slot("outcome", kind="backup_outcome")


def test_backup_restore_to_a_restore_point_and_sql_steps_with_a_lock_wait():
    node, backup, judge, t1, t2 = (sc.Role(n) for n in ("Node", "Backup", "Judge", "T1", "T2"))
    k = sc.kit
    program = (
        sc.Program()
        .roles([node, backup, judge, t1, t2])
        .ext(k.StartServer(into=PRIMARY, archive=True), at=node)
        .ext(k.RunSql(PRIMARY, ACCOUNTS), at=node)
        .ext(k.Discover(PRIMARY, into=TABLES), at=node)
        .ext(k.ValidateCatalog(PRIMARY, into=VALID), at=node)
        .send(node, backup, PRIMARY)
        # A base backup in the background while the node goes on writing.
        .ext_start(k.BackgroundBackup(PRIMARY, within=120.0, into=OUTCOME), "backup", at=backup)
        .send(backup, node, "streaming")
        .ext(k.RunSql(PRIMARY, "INSERT INTO acct VALUES (3, 30)"), at=node)
        .send(node, backup, "inserted")
        .ext_finish("backup")
        .ext(k.VerifyBackup(into=OK), at=backup)
        .send(backup, node, "backed up")
        # A restore point, then a change after it: the restore must stop before it.
        .ext(k.RecordGoal(PRIMARY, "restore_point", name="before_update", into=GOAL), at=node)
        .ext(k.RunSql(PRIMARY, "UPDATE acct SET v = 99 WHERE id = 1"), at=node)
        .ext(k.SwitchWal(PRIMARY, bound=60.0, into=TEXT), at=node)
        .send(node, backup, GOAL)
        .ext(k.Restore(PRIMARY, GOAL, name="before", into=RESTORED), at=backup)
        .ext(k.Query(RESTORED, "SELECT string_agg(v::text, ',' ORDER BY id) FROM acct", into=VALUE), at=backup)
        .ext(k.CheckValue("the restore stopped before the update", VALUE, "10,20,30"), at=backup)
        .ext(k.RemoveRestored("before"), at=backup)
        # SQL steps: T2's update waits for T1's lock, and goes on once T1 commits.
        .send(node, judge, PRIMARY).send(node, t1, PRIMARY).send(node, t2, PRIMARY)
        .ext(k.Case("dirty write", "read committed", "the second writer waits"), at=[judge, t1, t2])
        .ext(k.Sql(PRIMARY, "BEGIN"), at=t1)
        .ext(k.Sql(PRIMARY, "UPDATE acct SET v = v + 1 WHERE id = 2"), at=t1)
        .ext(k.SessionPid(PRIMARY, into=PID), at=t1)
        .send(t1, t2, PID)
        .ext(k.Sql(PRIMARY, "BEGIN"), at=t2)
        .ext_start(k.Sql(PRIMARY, "UPDATE acct SET v = v * 2 WHERE id = 2", blocked_by=PID), "update", at=t2)
        .ext(k.Sql(PRIMARY, "COMMIT"), at=t1)
        .ext_finish("update")
        .ext(k.Sql(PRIMARY, "COMMIT"), at=t2)
        .ext(k.Sql(PRIMARY, "SELECT v FROM acct WHERE id = 2", value=42), at=judge)
        .send(t1, judge, MISSED).send(t2, judge, MISSED)
        .ext(k.Verdict(into=OK), at=judge)
        .send(node, backup, TABLES).send(node, backup, VALID).send(node, backup, TEXT)
        .ext(sc.effect("look", reads=[OUTCOME, TABLES, VALID, TEXT]), at=backup)
    )
    kit = sc.Kit()
    looked = {}

    @kit.handler("look")
    def look(ctx):
        looked.update(outcome=ctx[OUTCOME], tables=ctx[TABLES], valid=ctx[VALID], segment=ctx[TEXT])

    report = program.run(kit, name="py-backup")
    assert report.success, report.text
    checks = {c["name"]: c["passed"] for c in report.json["checks"]}
    assert checks.get("the restore stopped before the update") is True, checks
    assert checks.get("dirty write at read committed") is True, checks
    assert looked["outcome"]["completed"] is True, looked
    assert looked["tables"] == 1 and looked["valid"] == 0, looked  # acct found, no difference
    assert checks.get("Node's catalog matches the schema") is True, checks
    assert len(looked["segment"]) == 24, looked  # a WAL segment's file name
