//! Starts the real `herald serve` binary on free loopback ports with a temporary data
//! directory, and reads what it wrote to its event log. Shared by the end-to-end tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod receiver;

use herald_events::Event;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    dir: Option<tempfile::TempDir>,
    pub data: PathBuf,
    pub config: PathBuf,
    pub addrs: HashMap<String, SocketAddr>,
    child: Child,
}

pub fn herald() -> Command {
    Command::new(env!("CARGO_BIN_EXE_herald"))
}

impl Server {
    /// Starts `herald serve` with POP3 and LMTP on ephemeral ports plus `extra` TOML.
    pub fn start(extra: &str) -> Server {
        Server::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// Starts with LMTP on `lmtp` and a configuration that brings its own `[pop3]` section.
    pub fn start_with(lmtp: &str, sections: &str) -> Server {
        Server::launch(
            tempfile::tempdir().unwrap(),
            &format!("[lmtp]\nlisten = [\"{lmtp}\"]\n{sections}"),
        )
    }

    /// Starts (or restarts) the server on the data directory inside `dir`.
    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> Server {
        Server::launch(
            dir,
            &format!(
                "[pop3]\nlisten = [\"127.0.0.1:0\"]\n[lmtp]\nlisten = [\"127.0.0.1:0\"]\n{extra}"
            ),
        )
    }

    /// Starts like [`Server::start`] with `HERALD_LOG=info` and standard error kept in a file
    /// ([`Server::log`]), with `--log-format FORMAT` (none when `format` is empty).
    pub fn start_logged(extra: &str, format: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let sections = format!(
            "[pop3]\nlisten = [\"127.0.0.1:0\"]\n[lmtp]\nlisten = [\"127.0.0.1:0\"]\n{extra}"
        );
        Server::launch_with(dir, &sections, Some(format))
    }

    /// What the server wrote on standard error (for [`Server::start_logged`]).
    pub fn log(&self) -> String {
        let path = self.config.with_file_name("stderr.log");
        std::fs::read_to_string(path).unwrap()
    }

    /// Starts a node of a cluster: the store in PostgreSQL at `url` in `schema`, the data
    /// directory inside `dir` for this node's own files, POP3 and LMTP on ephemeral ports.
    /// `server` holds keys of the `[server]` section (`lease_secs = 2`), or is empty.
    pub fn start_postgres(
        dir: tempfile::TempDir,
        url: &str,
        schema: &str,
        server: &str,
        extra: &str,
    ) -> Server {
        Server::launch_full(
            dir,
            &format!(
                "[pop3]\nlisten = [\"127.0.0.1:0\"]\n[lmtp]\nlisten = [\"127.0.0.1:0\"]\n{extra}"
            ),
            None,
            &format!("backend = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"\n"),
            server,
        )
    }

    fn launch(dir: tempfile::TempDir, sections: &str) -> Server {
        Server::launch_with(dir, sections, None)
    }

    fn launch_with(dir: tempfile::TempDir, sections: &str, log: Option<&str>) -> Server {
        Server::launch_full(dir, sections, log, "", "")
    }

    fn launch_full(
        dir: tempfile::TempDir,
        sections: &str,
        log: Option<&str>,
        store: &str,
        server: &str,
    ) -> Server {
        // Never the default IMAP port: tests run in parallel.
        let imap = if sections.contains("[imap]") {
            ""
        } else {
            "[imap]\nlisten = [\"127.0.0.1:0\"]\n"
        };
        let http = if sections.contains("[http]") {
            ""
        } else {
            "[http]\nlisten = [\"127.0.0.1:0\"]\n"
        };
        let sections = &format!("{sections}{imap}{http}");
        let data = dir.path().join("data");
        let config = dir.path().join("herald.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nhostname = \"mail.example.org\"\n{server}\n[store]\npath = \"{}\"\n{store}{sections}",
                data.display()
            ),
        )
        .unwrap();
        let mut command = herald();
        command.args(["serve", "--config"]).arg(&config);
        match log {
            None => command.env("HERALD_LOG", "warn").stderr(Stdio::inherit()),
            Some(format) => command
                .args(if format.is_empty() {
                    vec![]
                } else {
                    vec!["--log-format", format]
                })
                .env("HERALD_LOG", "info")
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap()),
        };
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addrs = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("herald serve did not report its listeners");
            if let Some(rest) = line.strip_prefix("listening: ") {
                let (proto, addr) = rest.split_once(' ').unwrap();
                let addr = addr.split_whitespace().next().unwrap();
                addrs.insert(proto.to_owned(), addr.parse().unwrap());
            }
            if line.starts_with("event log:") {
                break;
            }
        }
        Server {
            dir: Some(dir),
            data,
            config,
            addrs,
            child,
        }
    }

    pub fn port(&self, proto: &str) -> u16 {
        self.addrs[proto].port()
    }

    /// Runs `herald ARGS --config CONFIG` (admin commands on the live data directory).
    pub fn admin(&self, args: &[&str]) -> String {
        let out = herald()
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "herald {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn add_user(&self, name: &str, password: &str) {
        self.admin(&["user", "add", name, "--password", password]);
    }

    /// Every event in the log so far.
    pub fn events(&self) -> Vec<Event> {
        read_log(&self.data.join("events.jsonl"))
    }

    /// The length of the log once it holds every event committed so far: a mark after which
    /// only what comes next appears. The log is written from the outbox asynchronously, so the
    /// last events of a client that has exited (its Logout, say) can reach the log just after
    /// it; a mark taken from `events().len()` alone would count them as the next step's.
    pub fn settled(&self) -> usize {
        let stored = self.admin(&["events", "tail"]);
        let Some(last) = stored.lines().last() else {
            return 0;
        };
        let id = Event::from_json(last).unwrap().herald_id();
        let all = self.wait_for(0, |e| e.iter().any(|e| e.herald_id() == id));
        all.iter().position(|e| e.herald_id() == id).unwrap() + 1
    }

    /// Waits until the log holds an event matching `pred` after position `from`; returns the
    /// events after `from`.
    pub fn wait_for(&self, from: usize, pred: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all = self.events();
            let new = all.get(from..).unwrap_or_default().to_vec();
            if pred(&new) {
                return new;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting; events so far: {new:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a Python script from `tests/python/` with arguments; returns its stdout.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(script);
        let out = Command::new("python3")
            .arg(path)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the server a signal (`HUP`, `TERM`, …) without waiting for anything.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Stops the server with SIGTERM and waits for it; hands back its directory.
    pub fn stop(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        let status = self.terminate();
        (status, self.dir.take().unwrap())
    }

    /// Kills the server with SIGKILL (no cleanup at all); hands back its directory and data path.
    pub fn kill(mut self) -> (tempfile::TempDir, PathBuf) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.dir.take().unwrap(), self.data.clone())
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

pub fn read_log(path: &Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| Event::from_json(l).unwrap())
        .collect()
}

/// What a client program did: its exit status (`None` if it was killed at the time limit) and
/// its output.
pub struct Ran {
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => writeln!(f, "{s}")?,
            None => writeln!(f, "killed at its time limit")?,
        }
        write!(f, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs a client program to the end, or kills it after `limit`: a client that hangs on a
/// server bug fails its test instead of stalling the suite.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Ran {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ran {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Whether the loopback service at `addr` answers (shared/SERVICES.md). Outside CI a missing
/// service skips the test with a printed reason (see [`skip`]); with `CI=true` it fails, because
/// CI must exercise the real services.
pub fn service(name: &str, addr: &str) -> bool {
    let up = addr
        .parse()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    if !up {
        skip(&format!("{name} is not reachable at {addr}"));
    }
    up
}

/// Says that the calling test skips its work and why, where a user running `cargo test` sees
/// it: written straight to standard error, which the test harness does not capture (it captures
/// only `print!`/`eprintln!`, and shows those for failing tests alone), so the line appears
/// among the `test … ok` lines. Under `CI=true` it fails the test instead: CI must run
/// everything.
pub fn skip(why: &str) {
    use std::io::Write as _;
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why} (CI=true: this test must run; .ci/install installs what the tests need)"
    );
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// A name no other test or run uses (topics, exchanges, queues).
pub fn unique(kind: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("herald_test_{kind}_{}_{nanos}", std::process::id())
}
