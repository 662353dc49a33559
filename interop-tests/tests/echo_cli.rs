//! `smux-echo client` against `smux-echo server`, as other tools drive them.

use interop_tests::process::{self, Server};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_smux-echo");

fn start(args: &[&str]) -> Server {
    let mut all = vec!["server", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Server::start(Path::new(BIN), &all)
}

fn client(server: &Server, args: &[&str]) -> Output {
    let mut all = vec!["client", "--connect", &server.addr];
    all.extend_from_slice(args);
    process::run(Path::new(BIN), &all)
}

fn assert_ok(out: &Output) -> String {
    process::ok(out, "client")
}

#[test]
fn thousand_streams_v1_and_v2() {
    for version in ["1", "2"] {
        let server = start(&["--version", version]);
        let out = client(
            &server,
            &[
                "--version",
                version,
                "--streams",
                "1000",
                "--bytes",
                "20000",
                "--seed",
                "7",
            ],
        );
        let summary = assert_ok(&out);
        assert!(summary.contains("streams=1000 bytes=20000000"), "{summary}");
    }
}

#[test]
fn half_close_and_non_default_config() {
    let server = start(&[
        "--version",
        "2",
        "--max-frame-size",
        "65535",
        "--max-stream-buffer",
        "16384",
    ]);
    let out = client(
        &server,
        &[
            "--version",
            "2",
            "--streams",
            "8",
            "--bytes",
            "1000000",
            "--half-close",
            "--max-frame-size",
            "1000",
            "--max-receive-buffer",
            "300000",
        ],
    );
    assert_ok(&out);
}

#[test]
fn server_opened_streams_are_echoed_by_the_client() {
    let server = start(&["--open", "20"]);
    // The client echoes what the server opens while its own, much longer, transfer runs.
    let out = client(&server, &["--streams", "4", "--bytes", "4000000"]);
    assert_ok(&out);
    let stderr = server.stop_after("open-streams:");
    assert!(stderr.contains("open-streams: 20 ok"), "{stderr}");
}

#[test]
fn version_mismatch_fails_with_a_clear_message() {
    let server = start(&["--version", "2"]);
    let out = client(&server, &["--version", "1", "--bytes", "10"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("smux-echo: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn bad_arguments_are_refused() {
    let out = Command::new(BIN)
        .args(["client", "--connect", "127.0.0.1:1", "--version", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("version = 3"));
}

#[test]
fn every_runtime_serves_and_drives_every_other() {
    for server_rt in ["tokio", "smol", "async-std"] {
        let server = start(&["--runtime", server_rt, "--version", "2"]);
        for client_rt in ["tokio", "smol", "async-std"] {
            let out = client(
                &server,
                &[
                    "--runtime",
                    client_rt,
                    "--version",
                    "2",
                    "--streams",
                    "50",
                    "--bytes",
                    "100000",
                    "--half-close",
                ],
            );
            let summary = assert_ok(&out);
            assert!(
                summary.contains("streams=50"),
                "{server_rt} <- {client_rt}: {summary}"
            );
        }
    }
}

/// `server --sink` drains every stream and prints one line per stream; `client --send-only`
/// writes, half-closes, waits for the sink's FIN and prints the usual summary.
#[test]
fn a_sink_server_and_a_send_only_client() {
    for version in ["1", "2"] {
        let mut server = start(&["--sink", "--version", version]);
        let out = client(
            &server,
            &[
                "--send-only",
                "--streams",
                "3",
                "--bytes",
                "700000",
                "--version",
                version,
            ],
        );
        let summary = assert_ok(&out);
        assert!(summary.starts_with("streams=3 bytes=2100000 "), "{summary}");
        assert!(summary.contains("MB/s="), "{summary}");
        let mut sids = Vec::new();
        for _ in 0..3 {
            let line = server.read_line().expect("a sink line");
            assert!(line.starts_with("sink sid="), "{line}");
            assert!(
                line.contains(" bytes=700000 ") && line.contains("MB/s="),
                "{line}"
            );
            sids.push(line.split_whitespace().nth(1).unwrap().to_string());
        }
        sids.sort();
        sids.dedup();
        assert_eq!(sids.len(), 3, "one line per stream");
    }
}
