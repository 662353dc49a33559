//! `smux-echo client` against `smux-echo server`, as other tools drive them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_smux-echo");

/// A running `smux-echo server`, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start smux-echo server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Self { child, addr }
    }

    fn client(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["client", "--connect", &self.addr])
            .args(args)
            .output()
            .expect("run smux-echo client")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "client failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn thousand_streams_v1_and_v2() {
    for version in ["1", "2"] {
        let server = Server::start(&["--version", version]);
        let out = server.client(&[
            "--version",
            version,
            "--streams",
            "1000",
            "--bytes",
            "20000",
            "--seed",
            "7",
        ]);
        let summary = assert_ok(&out);
        assert!(summary.contains("streams=1000 bytes=20000000"), "{summary}");
    }
}

#[test]
fn half_close_and_non_default_config() {
    let server = Server::start(&[
        "--version",
        "2",
        "--max-frame-size",
        "65535",
        "--max-stream-buffer",
        "16384",
    ]);
    let out = server.client(&[
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
    ]);
    assert_ok(&out);
}

#[test]
fn server_opened_streams_are_echoed_by_the_client() {
    let mut server = Server::start(&["--open", "20"]);
    // The client echoes what the server opens while its own, much longer, transfer runs.
    let out = server.client(&["--streams", "4", "--bytes", "4000000"]);
    assert_ok(&out);
    server.child.kill().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(server.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("open-streams: 20 ok"), "{stderr}");
}

#[test]
fn version_mismatch_fails_with_a_clear_message() {
    let server = Server::start(&["--version", "2"]);
    let out = server.client(&["--version", "1", "--bytes", "10"]);
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
        let server = Server::start(&["--runtime", server_rt, "--version", "2"]);
        for client_rt in ["tokio", "smol", "async-std"] {
            let out = server.client(&[
                "--runtime",
                client_rt,
                "--version",
                "2",
                "--streams",
                "50",
                "--bytes",
                "100000",
                "--half-close",
            ]);
            let summary = assert_ok(&out);
            assert!(
                summary.contains("streams=50"),
                "{server_rt} <- {client_rt}: {summary}"
            );
        }
    }
}
