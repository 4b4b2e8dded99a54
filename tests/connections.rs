//! Bounded waits and clear connection errors: a target that accepts TCP but does not
//! speak PostgreSQL fails in bounded time, every error says what happened (refused,
//! timed out, no such database, authentication failed) and never shows a password.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use stormchor::postgres::{ClusterOptions, PgCluster};

fn stormchor(args: &[&str]) -> (i32, String, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_stormchor"))
        .args(args)
        .env_remove("STORMCHOR_TARGET")
        .output()
        .expect("runs");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        started.elapsed(),
    )
}

/// A loopback port held by a socket that is bound but does not listen: connections to
/// it are refused, and no other process can take it meanwhile.
fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let port = socket.local_addr().expect("address").port();
    (socket, port)
}

#[test]
fn a_silent_listener_fails_in_bounded_time() {
    // Accepts (the kernel completes the handshake) and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let target = format!("host=127.0.0.1 port={port} user=postgres connect_timeout=2");
    let (code, output, took) = stormchor(&["run", "tpcb", "--target", &target, "--duration", "1"]);
    assert_eq!(code, 1, "{output}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(output.contains("no answer within 2s"), "{output}");
    drop(listener);
}

#[test]
fn a_server_that_is_not_postgres_is_named_as_such() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    // An HTTP server: reads a little, answers with HTTP, closes.
    let server = std::thread::spawn(move || {
        for _ in 0..3 {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buffer = [0u8; 256];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let target = format!("host=127.0.0.1 port={port} user=postgres");
    let (code, output, took) = stormchor(&["run", "tpcb", "--target", &target, "--duration", "1"]);
    assert_eq!(code, 1, "{output}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        output.contains("cannot connect to `host=127.0.0.1 port="),
        "{output}"
    );
    assert!(
        output.contains("does not speak the PostgreSQL protocol")
            || output.contains("closed the connection during the startup"),
        "{output}"
    );
    drop(server);
}

#[test]
fn refused_connections_say_so_and_passwords_are_never_shown() {
    let (_socket, port) = refusing_port();
    let target = format!("host=127.0.0.1 port={port} user=postgres password=hunter2");
    let (code, output, _) = stormchor(&["run", "tpcb", "--target", &target, "--duration", "1"]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("connection refused"), "{output}");
    assert!(output.contains("password=***"), "{output}");
    assert!(!output.contains("hunter2"), "{output}");
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/postgres");
    for args in [
        vec!["run", "tpcb", "--target", &url, "--duration", "1"],
        vec!["run", "--target", &target, "--show-config"],
        vec!["run", "--target", &url, "--show-config"],
    ] {
        let (_, output, _) = stormchor(&args);
        assert!(!output.contains("hunter2"), "{output}");
        assert!(output.contains("***"), "{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_database_or_role_is_named_with_its_sqlstate() {
    let cluster = PgCluster::start(ClusterOptions::default())
        .await
        .expect("start");
    let port = cluster.port();
    for (target, expected) in [
        (
            format!("host=127.0.0.1 port={port} user=postgres dbname=nosuchdb"),
            "no such database: database \"nosuchdb\" does not exist (SQLSTATE 3D000)",
        ),
        (
            format!("host=127.0.0.1 port={port} user=nosuchrole"),
            "authentication failed: role \"nosuchrole\" does not exist (SQLSTATE 28000)",
        ),
    ] {
        let (code, output, _) = tokio::task::spawn_blocking(move || {
            stormchor(&["run", "tpcb", "--target", &target, "--duration", "1"])
        })
        .await
        .expect("joined");
        assert_eq!(code, 1, "{output}");
        assert!(output.contains(expected), "{output}");
    }
}
