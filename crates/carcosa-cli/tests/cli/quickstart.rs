//! The README's quick start, run as written against a real `carcosa serve`.

use std::process::Command;

use crate::support::Server;

/// The shell block between the quickstart markers of README.md.
fn quickstart_script() -> String {
    let readme = include_str!("../../../../README.md");
    let start = readme.find("<!-- quickstart:start -->").expect("start marker");
    let end = readme.find("<!-- quickstart:end -->").expect("end marker");
    let block = &readme[start..end];
    let body_start = block.find("```sh\n").expect("sh block") + "```sh\n".len();
    let body_end = block.rfind("```").expect("block end");
    block[body_start..body_end].to_owned()
}

#[test]
fn the_readme_quick_start_works_as_written() {
    let script = quickstart_script();
    // Two substitutions only: the built binary instead of `cargo run`, and the test's port.
    let cargo_run = "cargo run -q --release --";
    assert!(script.contains(cargo_run), "the quick start runs the CLI through cargo");
    assert!(Command::new("curl").arg("--version").output().is_ok(), "the quick start needs curl");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let script =
        script.replace(cargo_run, env!("CARGO_BIN_EXE_carcosa")).replace("127.0.0.1:8700", &server.address);
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env_remove("CARCOSA_DATABASE_URL")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Each step printed what the README says it does.
    assert!(stdout.contains("\"slug\":\"acme-corp\""), "{stdout}");
    assert!(stdout.contains("\"plan\":\"pro\""), "{stdout}");
    assert!(stdout.contains("\"seats\":25"), "{stdout}");
    assert!(
        stdout.contains("\"type\":\"tenant.created\"") && stdout.contains("\"type\":\"tenant.updated\""),
        "{stdout}"
    );
    assert!(!stdout.contains("\"code\":"), "no step failed: {stdout}");
    drop(server);
}
