//! What the tests of roles in processes of their own share: finding processes in
//! `/proc`, polling with a bound, asking a server found that way, and what a role's
//! processes leave on disk. Each test crate uses some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes of a child's output, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A free TCP port on loopback (free now; another process may take it later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a port")
}

/// The fields after the command name of `/proc/PID/stat` (`comm` may hold blanks, so
/// they are split after its `)`), and the command name.
fn stat(pid: u32) -> Option<(String, Vec<String>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    Some((
        stat[open + 1..close].to_owned(),
        stat[close + 1..]
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    ))
}

/// The processes whose parent is `parent`, with their command names.
pub fn children_of(parent: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some((name, fields)) = stat(pid) else {
            continue;
        };
        // `state ppid ...`
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            found.push((pid, name));
        }
    }
    found
}

/// The postmasters `parent` runs (its children named `postgres`).
pub fn servers_of(parent: u32) -> Vec<u32> {
    children_of(parent)
        .into_iter()
        .filter(|(_, name)| name == "postgres")
        .map(|(pid, _)| pid)
        .collect()
}

/// Whether `pid` runs: a zombie is dead (only its entry is left until its parent
/// reaps it).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, fields)| fields.first().is_some_and(|s| s != "Z"))
}

/// The arguments of process `pid` (empty once it is gone).
pub fn arguments(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `condition` every 50 ms for at most `within`.
pub fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `psql` from the PATH or the PostgreSQL 15 packages.
pub fn psql() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/lib/postgresql/15/bin")])
        .map(|dir| dir.join("psql"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| "psql".into())
}

/// Where the server `postmaster` (a pid) keeps its data and its Unix socket, and its
/// port: its data directory is its working directory, whose `postmaster.pid` says
/// the port and the socket directory. `None` once it is gone.
pub fn server_place(postmaster: u32) -> Option<(PathBuf, PathBuf, u16)> {
    let data = std::fs::read_link(format!("/proc/{postmaster}/cwd")).ok()?;
    let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = pid_file.lines().collect();
    let port = lines.get(3)?.trim().parse().ok()?;
    let sockets = PathBuf::from(lines.get(4)?.trim());
    Some((data, sockets, port))
}

/// How many rows the ledger of the server `postmaster` holds, asked over its Unix
/// socket (reachable from any network namespace). `None` while it cannot be asked
/// (starting, no table).
pub fn ledger_rows(postmaster: u32) -> Option<u64> {
    let (_, sockets, port) = server_place(postmaster)?;
    let output = Command::new(psql())
        .args(["-X", "-At", "-h"])
        .arg(&sockets)
        .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
        .args(["-c", "SELECT count(*) FROM stormchor_ledger"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    text(&output.stdout).trim().parse().ok()
}

/// How many clients are connected to the server `postmaster` over TCP now (its
/// backends' titles, `postgres: USER DB HOST(PORT) STATE`; replication senders left
/// out).
pub fn tcp_clients(postmaster: u32) -> usize {
    children_of(postmaster)
        .iter()
        .map(|(pid, _)| arguments(*pid).join(" "))
        .filter(|title| {
            !title.contains("walsender")
                && title
                    .split_whitespace()
                    .any(|word| word.ends_with(')') && word.contains('.') && word.contains('('))
        })
        .count()
}

/// The stormchor directories (clusters, WAL archives, backups: `stormchor-*` in the
/// temporary directory) whose owner file names process `pid`.
pub fn directories_of(pid: u32) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("stormchor-"))
        })
        .filter(|path| {
            std::fs::read_to_string(path.join("stormchor.owner")).is_ok_and(|owner| {
                owner.split_whitespace().next() == Some(pid.to_string().as_str())
            })
        })
        .collect()
}

/// Whatever of `paths` still exists.
pub fn still_there(paths: &[PathBuf]) -> Vec<&Path> {
    paths
        .iter()
        .map(PathBuf::as_path)
        .filter(|p| p.exists())
        .collect()
}
