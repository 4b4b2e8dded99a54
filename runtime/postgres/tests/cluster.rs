//! Throwaway clusters against a real PostgreSQL: start, stop, crash, restart, backups,
//! point-in-time recovery, replicas, external servers, and cleanup.

use std::path::PathBuf;
use std::time::Duration;

use stormchor_postgres::{
    BaseBackup, ClusterOptions, PgBinaries, PgCluster, PgError, PgTarget, RecoveryTarget, StopMode,
    WalArchive,
};

async fn count(cluster: &PgCluster, table: &str) -> i64 {
    let client = cluster.connect().await.expect("connect");
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

/// Processes whose command line mentions `dir`.
fn processes_using(dir: &std::path::Path) -> usize {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_starts_stops_crashes_and_recovers() {
    let mut cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    assert!(cluster.is_running());
    let client = cluster.connect().await.expect("connect");
    client
        .batch_execute("CREATE TABLE acked (id int PRIMARY KEY); INSERT INTO acked SELECT generate_series(1, 1000)")
        .await
        .expect("write");
    drop(client);

    // A crash loses nothing that was committed.
    let pid = cluster.pid().expect("pid");
    cluster.kill().await.expect("kill");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the postmaster is gone"
    );
    assert!(cluster.kill().await.is_err(), "nothing left to kill");
    cluster.restart().await.expect("crash recovery");
    assert_eq!(count(&cluster, "acked").await, 1000);

    for mode in [StopMode::Smart, StopMode::Fast, StopMode::Immediate] {
        cluster.stop(mode).await.expect("stop");
        assert!(!cluster.is_running());
        cluster.restart().await.expect("restart");
        assert_eq!(count(&cluster, "acked").await, 1000, "{mode:?}");
    }
    let restart_twice = cluster.restart().await.expect_err("already running");
    assert!(matches!(
        restart_twice,
        PgError::State {
            state: "running",
            ..
        }
    ));
}

/// `shutdown` ends the server and removes the directory while the runtime goes on
/// running other tasks; dropping does the same but holds the thread. A single-threaded
/// runtime tells them apart: a task that counts every time it is polled advances only
/// while the main task waits.
#[tokio::test(flavor = "current_thread")]
async fn shutdown_leaves_nothing_and_never_blocks_the_runtime() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let polls = Arc::new(AtomicU64::new(0));
    let counter = tokio::spawn({
        let polls = polls.clone();
        async move {
            loop {
                polls.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    let start = |polls: &AtomicU64| polls.load(Ordering::Relaxed);

    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let data: PathBuf = cluster.data_dir().to_path_buf();
    assert!(processes_using(&data) >= 1);
    let before = start(&polls);
    cluster.shutdown().await.expect("shut down");
    let during_shutdown = start(&polls) - before;
    assert_eq!(processes_using(&data), 0, "no postgres process is left");
    assert!(!data.exists(), "the directory is removed");
    assert!(
        during_shutdown > 0,
        "the runtime ran nothing else while the cluster shut down"
    );

    // The fault `shutdown` avoids, seen by the same measure: a drop holds the thread.
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let data: PathBuf = cluster.data_dir().to_path_buf();
    let before = start(&polls);
    drop(cluster);
    assert_eq!(
        start(&polls) - before,
        0,
        "a drop cannot let other tasks run"
    );
    assert!(!data.exists(), "the directory is removed");
    counter.abort();
}

/// A task that counts how often the runtime polls it: a blocking call in the test's
/// task (on a current-thread runtime) lets it run not once.
fn poll_counter() -> (
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    tokio::task::JoinHandle<()>,
) {
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = tokio::spawn({
        let polls = polls.clone();
        async move {
            loop {
                polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    (polls, counter)
}

#[tokio::test(flavor = "current_thread")]
async fn backups_and_archives_are_removed_without_blocking_the_runtime() {
    use std::sync::atomic::Ordering;
    let (polls, counter) = poll_counter();
    let now = || polls.load(Ordering::Relaxed);

    let archive = WalArchive::create().await.expect("archive");
    let archive_dir = archive.path().to_path_buf();
    let primary = PgCluster::start(ClusterOptions {
        archive: Some(archive.clone()),
        ..ClusterOptions::default()
    })
    .await
    .expect("start");
    // The backup holds the archive too.
    let backup = primary.base_backup().await.expect("backup");
    let root = backup.path().parent().expect("its directory").to_path_buf();
    assert!(root.join(stormchor_postgres::OWNER_FILE).is_file());
    let before = now();
    backup.remove().await.expect("removed");
    assert!(
        now() > before,
        "the runtime ran nothing else while the backup went"
    );
    assert!(!root.exists(), "the backup's directory is removed");
    assert!(
        archive_dir.is_dir(),
        "the primary and this test hold the archive"
    );
    primary.shutdown().await.expect("shut down");
    assert!(archive_dir.is_dir(), "this test holds the archive");
    let before = now();
    archive.release().await.expect("released");
    assert!(
        now() > before,
        "the runtime ran nothing else while the archive went"
    );
    assert!(!archive_dir.exists(), "the last holder removes the archive");

    // A backup in progress (throttled: it runs for minutes): pg_basebackup and the WAL
    // streamer it forked are killed, and what they wrote is removed.
    let primary = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let running = BaseBackup::begin(&primary.connection_string(), Some(32), None)
        .await
        .expect("begun");
    let root = running
        .path()
        .parent()
        .expect("its directory")
        .to_path_buf();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while processes_using(&root) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(processes_using(&root) >= 1, "pg_basebackup runs");
    running.remove().await.expect("removed");
    assert_eq!(processes_using(&root), 0, "no pg_basebackup is left");
    assert!(!root.exists(), "what it wrote is removed");

    // The fault `remove` avoids, seen by the same measure: a drop holds the thread.
    let backup = primary.base_backup().await.expect("backup");
    let root = backup.path().parent().expect("its directory").to_path_buf();
    let before = now();
    drop(backup);
    assert_eq!(now(), before, "a drop cannot let other tasks run");
    assert!(!root.exists(), "the directory is removed");
    primary.shutdown().await.expect("shut down");
    counter.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_cluster_leaves_no_process_and_no_file() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let data: PathBuf = cluster.data_dir().to_path_buf();
    let client = cluster.connect().await.expect("connect");
    client.batch_execute("SELECT 1").await.expect("query");
    assert!(processes_using(&data) >= 1);
    drop(cluster);
    assert_eq!(processes_using(&data), 0, "no postgres process is left");
    assert!(!data.exists(), "the directory is removed");

    // Also when the owner panics.
    let handle = tokio::spawn(async {
        let cluster = PgCluster::start(ClusterOptions::default())
            .await
            .expect("start");
        let data = cluster.data_dir().to_path_buf();
        std::fs::write(
            std::env::temp_dir().join("stormchor-panic-test-dir"),
            data.display().to_string(),
        )
        .expect("note");
        panic!("a test failed while the cluster ran");
    });
    assert!(handle.await.is_err());
    let noted = std::fs::read_to_string(std::env::temp_dir().join("stormchor-panic-test-dir"))
        .expect("noted");
    let data = PathBuf::from(noted);
    assert_eq!(processes_using(&data), 0);
    assert!(!data.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_backup_verifies_and_starts_on_another_port() {
    let primary = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let client = primary.connect().await.expect("connect");
    client
        .batch_execute("CREATE TABLE t AS SELECT generate_series(1, 5000) AS id")
        .await
        .expect("write");
    let backup = primary.base_backup().await.expect("backup");
    let report = backup.verify().await.expect("verifies");
    assert!(report.contains("successfully verified"), "{report}");
    // Writes after the backup are not in it.
    client
        .batch_execute("INSERT INTO t VALUES (0)")
        .await
        .expect("write");
    let restored = backup
        .start(ClusterOptions::default())
        .await
        .expect("restored");
    assert_ne!(restored.port(), primary.port());
    assert_eq!(count(&restored, "t").await, 5000);
    assert_eq!(count(&primary, "t").await, 5001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_backup_fails_verification() {
    let primary = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let backup = primary.base_backup().await.expect("backup");
    let victim = backup.path().join("global").join("pg_control");
    let mut bytes = std::fs::read(&victim).expect("read");
    bytes[0] ^= 0xff;
    std::fs::write(&victim, bytes).expect("corrupt");
    let error = backup.verify().await.expect_err("corruption found");
    assert!(error.to_string().contains("pg_control"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_recovery_stops_at_the_recorded_lsn_or_time() {
    let archive = WalArchive::new().expect("archive");
    let options = ClusterOptions {
        archive: Some(archive.clone()),
        ..ClusterOptions::default()
    };
    let primary = PgCluster::start(options).await.expect("start");
    let client = primary.connect().await.expect("connect");
    client
        .batch_execute("CREATE TABLE points (id int)")
        .await
        .expect("create");
    let backups = [
        primary.base_backup().await.expect("backup"),
        primary.base_backup().await.expect("backup"),
    ];
    client
        .batch_execute("INSERT INTO points VALUES (1)")
        .await
        .expect("before the point");
    let point = primary.current_lsn().await.expect("lsn");
    let time: String = client
        .query_one("SELECT now()::text", &[])
        .await
        .expect("time")
        .get(0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    client
        .batch_execute("INSERT INTO points VALUES (2)")
        .await
        .expect("after the point");
    // The segment holding both inserts is archived.
    primary
        .archive_current_wal(Duration::from_secs(60))
        .await
        .expect("archived");
    let [by_lsn, by_time] = backups;
    for (backup, target) in [
        (by_lsn, RecoveryTarget::Lsn(point)),
        (by_time, RecoveryTarget::Time(time)),
    ] {
        let restored = backup
            .restore_to(target.clone(), archive.path(), ClusterOptions::default())
            .await
            .expect("pitr");
        let ids: Vec<i32> = restored
            .connect()
            .await
            .expect("connect")
            .query("SELECT id FROM points ORDER BY id", &[])
            .await
            .expect("read")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(ids, vec![1], "{target:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_replica_replays_and_is_promoted() {
    let primary = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let client = primary.connect().await.expect("connect");
    client
        .batch_execute("CREATE TABLE r (id int)")
        .await
        .expect("create");
    let replica = primary
        .replica_backup()
        .await
        .expect("backup")
        .start(ClusterOptions::default())
        .await
        .expect("replica");
    client
        .batch_execute("INSERT INTO r SELECT generate_series(1, 100)")
        .await
        .expect("write");
    let lsn = primary.current_lsn().await.expect("lsn");
    replica
        .wait_for_replay(lsn, Duration::from_secs(30))
        .await
        .expect("replayed");
    assert_eq!(count(&replica, "r").await, 100);
    let read_only = replica
        .connect()
        .await
        .expect("connect")
        .batch_execute("INSERT INTO r VALUES (0)")
        .await;
    assert!(read_only.is_err(), "a replica refuses writes");
    replica.promote().await.expect("promoted");
    replica
        .connect()
        .await
        .expect("connect")
        .batch_execute("INSERT INTO r VALUES (0)")
        .await
        .expect("writable");
    assert_eq!(count(&replica, "r").await, 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_the_current_wal_waits_for_that_segment_and_says_why_it_fails() {
    let archive = WalArchive::new().expect("archive");
    let cluster = PgCluster::start(ClusterOptions {
        archive: Some(archive.clone()),
        ..ClusterOptions::default()
    })
    .await
    .expect("start");
    let client = cluster.connect().await.expect("connect");
    client
        .batch_execute("CREATE TABLE a (id int); INSERT INTO a VALUES (1)")
        .await
        .expect("write");
    let segment = |client: tokio_postgres::Client| async move {
        client
            .query_one("SELECT pg_walfile_name(pg_current_wal_lsn())", &[])
            .await
            .expect("segment")
            .get::<_, String>(0)
    };
    let holding_the_insert = segment(cluster.connect().await.expect("connect")).await;
    cluster
        .archive_current_wal(Duration::from_secs(60))
        .await
        .expect("archived");
    assert!(
        archive.path().join(&holding_the_insert).is_file(),
        "{holding_the_insert} is not in the archive"
    );
    // Nothing written since the last switch: a plain switch would be a no-op, and
    // waiting for the archived count to grow would time out. It must not.
    for _ in 0..2 {
        cluster
            .archive_current_wal(Duration::from_secs(60))
            .await
            .expect("archived again");
    }
    // The archive goes away: every archiving attempt fails, and the timeout says so.
    std::fs::remove_dir_all(archive.path()).expect("remove the archive");
    let error = cluster
        .archive_current_wal(Duration::from_secs(3))
        .await
        .expect_err("the archiver cannot archive")
        .to_string();
    assert!(
        error.contains("the archiver archiving WAL segment 0000"),
        "{error}"
    );
    assert!(error.contains("failed "), "{error}");
    assert!(!error.contains("failed 0 times"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_port_is_taken_starts_on_another_and_never_mistakes_a_server_for_its_own() {
    // A plain listener holds the port: the server cannot bind it.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = squatter.local_addr().expect("address").port();
    let cluster = PgCluster::start(ClusterOptions {
        port: Some(taken),
        ..ClusterOptions::default()
    })
    .await
    .expect("starts on another port");
    assert_ne!(cluster.port(), taken);
    // Another PostgreSQL server holds the port and answers on it: the new cluster must
    // not take it for its own.
    let other = PgCluster::start(ClusterOptions {
        port: Some(cluster.port()),
        ..ClusterOptions::default()
    })
    .await
    .expect("starts on another port");
    assert_ne!(other.port(), cluster.port());
    for server in [&cluster, &other] {
        let reported: String = server
            .connect()
            .await
            .expect("connect")
            .query_one("SHOW data_directory", &[])
            .await
            .expect("data directory")
            .get(0);
        assert_eq!(PathBuf::from(reported), server.data_dir());
    }
    drop(squatter);
}

#[tokio::test]
async fn an_external_server_has_no_process_control_and_bad_targets_say_why() {
    // Bound but not listening: connections are refused, and nothing else can take
    // the port while the test runs.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let mut target = PgTarget::External(format!("host=127.0.0.1 port={port} user=postgres"));
    let error = target.connect().await.expect_err("nothing listens there");
    assert!(
        error.to_string().contains(&format!(
            "cannot connect to `host=127.0.0.1 port={port} user=postgres`"
        )),
        "{error}"
    );
    let error = target
        .cluster("kill the server")
        .expect_err("no process control");
    assert_eq!(
        error.to_string(),
        format!(
            "kill the server needs control of the server process, which stormchor does not have for an external server (host=127.0.0.1 port={port} user=postgres)"
        )
    );
}

#[test]
fn missing_binaries_name_the_program_and_the_fix() {
    let error = PgBinaries::at("/nonexistent/bin").expect_err("no binaries");
    let text = error.to_string();
    assert!(
        text.contains("`initdb` not found (looked in /nonexistent/bin)"),
        "{text}"
    );
    assert!(text.contains("apt-get install -y postgresql"), "{text}");
    let found = PgBinaries::locate().expect("the machine has PostgreSQL");
    assert!(found.program("pg_basebackup").is_ok());
    assert!(found.program("no_such_tool").is_err());
}

const CTRL_C_CHILD: &str = "STORMCHOR_CTRL_C_CHILD";

/// Child process of the Ctrl-C test: starts a cluster, prints its directory and waits.
#[test]
#[ignore = "a child process of ctrl_c_removes_the_cluster"]
fn ctrl_c_child() {
    if std::env::var_os(CTRL_C_CHILD).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        stormchor_postgres::remove_clusters_on_ctrl_c();
        let cluster = PgCluster::start(ClusterOptions::default())
            .await
            .expect("start");
        println!("\nDATA {}", cluster.data_dir().display());
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(cluster);
    });
}

#[test]
fn ctrl_c_removes_the_cluster() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "ctrl_c_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CTRL_C_CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("child");
    let stdout = child.stdout.take().expect("stdout");
    let data = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("DATA ").map(PathBuf::from));
    let Some(data) = data else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the child printed no data directory");
    };
    assert!(data.exists());
    assert!(processes_using(&data) >= 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not exit on Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(processes_using(&data), 0, "no postgres process is left");
    assert!(!data.exists(), "the directory is removed");
}

/// Overwrites 64 bytes of the first page of `file` (past its header).
fn damage_first_page(file: &std::path::Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open the relation file");
    f.seek(SeekFrom::Start(24)).expect("seek");
    f.write_all(&[0xA5; 64]).expect("write");
    f.sync_all().expect("sync");
}

/// `SHOW data_checksums`, and what a full read of table `t` says after its first page
/// was damaged while the server was down.
async fn damaged_read(data_checksums: bool) -> (String, Result<i64, String>) {
    let mut cluster = PgCluster::start(ClusterOptions {
        data_checksums,
        ..ClusterOptions::default()
    })
    .await
    .expect("start");
    let client = cluster.connect().await.expect("connect");
    let shown: String = client
        .query_one("SHOW data_checksums", &[])
        .await
        .expect("show")
        .get(0);
    client
        .batch_execute("CREATE TABLE t AS SELECT g AS id, repeat('x', 50) AS pad FROM generate_series(1, 1000) g")
        .await
        .expect("create");
    let file: String = client
        .query_one("SELECT pg_relation_filepath('t')", &[])
        .await
        .expect("path")
        .get(0);
    drop(client);
    cluster.stop(StopMode::Fast).await.expect("stop");
    damage_first_page(&cluster.data_dir().join(file));
    cluster.restart().await.expect("restart");
    let client = cluster.connect().await.expect("connect");
    let read = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .map(|row| row.get::<_, i64>(0))
        .map_err(|e| {
            e.as_db_error()
                .map_or(e.to_string(), |db| db.message().to_owned())
        });
    (shown, read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_checksums_make_a_damaged_page_fail_its_read() {
    let (shown, read) = damaged_read(true).await;
    assert_eq!(shown, "on");
    let error = read.expect_err("a page with a wrong checksum is not read");
    assert!(error.contains("invalid page in block 0"), "{error}");
    // Without checksums the same damage is read without a word.
    let (shown, read) = damaged_read(false).await;
    assert_eq!(shown, "off");
    assert!(read.is_ok(), "{read:?}");
}

/// The System V shared memory id of the running server of `cluster`.
fn shared_memory_id(cluster: &PgCluster) -> u64 {
    let pid = std::fs::read_to_string(cluster.data_dir().join("postmaster.pid")).expect("pid file");
    pid.lines()
        .nth(6)
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .expect("a shared memory id on the seventh line")
}

/// Whether the kernel still has System V shared memory segment `id`.
fn segment_exists(id: u64) -> bool {
    std::fs::read_to_string("/proc/sysvipc/shm")
        .expect("the kernel's list")
        .lines()
        .skip(1)
        .any(|line| line.split_whitespace().nth(1) == Some(id.to_string().as_str()))
}

/// A server ended with SIGKILL leaves its shared memory segment behind; the kernel's
/// table of them fills (4,096) and then no PostgreSQL starts. Ending a cluster, by
/// `shutdown` or by drop, removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_cluster_removes_its_shared_memory_segment() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let id = shared_memory_id(&cluster);
    assert!(segment_exists(id), "the running server's segment {id}");
    cluster.shutdown().await.expect("shut down");
    assert!(!segment_exists(id), "segment {id} left behind by shutdown");

    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let id = shared_memory_id(&cluster);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .expect("dropped");
    assert!(!segment_exists(id), "segment {id} left behind by drop");
}
