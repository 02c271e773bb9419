//! Running the `carcosa` binary in a scratch directory.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A `carcosa` command run in `dir`, with no `CARCOSA_*` variables from the outside.
pub fn carcosa(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_carcosa"));
    command.current_dir(dir).env("NO_COLOR", "1");
    for (var, _) in std::env::vars() {
        if var.starts_with("CARCOSA_") {
            command.env_remove(var);
        }
    }
    command
}

/// Runs a command to completion.
pub fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run carcosa")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `carcosa serve` process on a port the OS picked, stopped with SIGTERM when dropped.
pub struct Server {
    child: Child,
    pub address: String,
    log: Option<std::thread::JoinHandle<String>>,
}

/// What a stopped server left behind.
pub struct Stopped {
    pub status: std::process::ExitStatus,
    pub log: String,
}

impl Server {
    /// Starts `carcosa serve` in `dir` on port 0 and waits for the banner that names the port.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, "127.0.0.1:0", &[])
    }

    /// Starts `carcosa serve` in `dir` on `listen`, with extra environment variables.
    pub fn start_with(dir: &Path, listen: &str, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut child = carcosa(dir)
            .arg("serve")
            .env("CARCOSA_LISTEN", listen)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start carcosa serve");
        let stderr = child.stderr.take().expect("stderr");
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let log = std::thread::spawn(move || {
            let mut log = String::new();
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) =
                    line.trim().strip_prefix("Carcosa ").and_then(|l| l.split("http://").nth(1))
                {
                    let _ = address_tx.send(address.trim().to_owned());
                }
                log.push_str(&line);
                log.push('\n');
            }
            log
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("carcosa serve did not report its address");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "carcosa serve is not accepting connections");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, address, log: Some(log) }
    }

    /// Kills the process with SIGKILL: no chance to finish anything.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(mut self) -> Stopped {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let status = self.child.wait().expect("wait for carcosa serve");
        let log = self.log.take().expect("log reader").join().expect("log reader");
        Stopped { status, log }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
