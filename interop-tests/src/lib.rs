//! Interoperability tests of smux-rs, and the `smux-echo` command-line peer that other
//! tools (and the tests against Go's xtaci/smux) drive.
//!
//! The library part holds what the binary and the tests share: the seeded data that
//! `smux-echo` sends and checks.

/// The README's examples, compiled and run as doctests: this crate depends on every
/// adapter, so each runtime's quick start is checked against its own crate.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The seeded bytes that `smux-echo` writes on a stream: a splitmix64 sequence from
/// `seed` and the stream's index, so both ends can check an echo without keeping a copy.
pub fn seeded(seed: u64, stream: u64, len: usize) -> Vec<u8> {
    test_rng::Rng::for_stream(seed, stream).bytes(len)
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeded_data_depends_on_seed_and_stream() {
        assert_eq!(super::seeded(1, 2, 100), super::seeded(1, 2, 100));
        assert_ne!(super::seeded(1, 2, 100), super::seeded(1, 3, 100));
        assert_ne!(super::seeded(1, 2, 100), super::seeded(2, 2, 100));
        assert_eq!(super::seeded(1, 2, 13).len(), 13);
    }
}

/// Running peers as child processes, for the tests that drive `smux-echo` and the Go peer.
pub mod process {
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Child, ChildStdout, Command, Output, Stdio};
    use std::time::{Duration, Instant};

    /// A running server (`smux-echo server` or `go-peer server`), killed on drop. Both print
    /// `listening on ADDR` as their first line.
    #[derive(Debug)]
    pub struct Server {
        child: Child,
        /// The rest of its stdout, kept open (a server that prints more must not meet a
        /// closed pipe).
        stdout: BufReader<ChildStdout>,
        /// The address it listens on.
        pub addr: String,
    }

    impl Server {
        /// Starts `program` with `args` and waits for its address.
        pub fn start(program: &Path, args: &[&str]) -> Self {
            let mut child = Command::new(program)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
            let mut line = String::new();
            let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
            stdout
                .read_line(&mut line)
                .expect("read the server's first line");
            let addr = line
                .trim()
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
                .to_string();
            Self {
                child,
                stdout,
                addr,
            }
        }

        /// The next line the server prints on stdout (blocking), `None` at its end.
        pub fn read_line(&mut self) -> Option<String> {
            let mut line = String::new();
            match self.stdout.read_line(&mut line) {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(line.trim_end().to_string()),
            }
        }

        /// Waits until the server prints a whole line starting with `prefix` on stderr (or
        /// ends, or 20 s pass), then stops it; returns what it printed on stderr up to that
        /// line. For a result the server reports only after the client has gone: stopping
        /// it at once could cut that line short, or before it is printed.
        pub fn stop_after(mut self, prefix: &str) -> String {
            let mut err = String::new();
            if let Some(stderr) = self.child.stderr.take() {
                let (tx, rx) = std::sync::mpsc::channel();
                // A thread of its own, so a server that never prints the line is still
                // stopped at the deadline instead of hanging the test.
                std::thread::spawn(move || {
                    for line in BufReader::new(stderr).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
                let deadline = Instant::now() + Duration::from_secs(20);
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    let Ok(line) = rx.recv_timeout(left) else {
                        break;
                    };
                    err.push_str(&line);
                    err.push('\n');
                    if line.starts_with(prefix) {
                        break;
                    }
                }
            }
            let _ = self.child.kill();
            err
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Runs `program` with `args` to completion.
    pub fn run(program: &Path, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
    }

    /// Asserts that a run succeeded; returns its stdout.
    pub fn ok(out: &Output, what: &str) -> String {
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{what} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}
pub mod toxiproxy;
