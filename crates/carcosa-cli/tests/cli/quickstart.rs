//! The README's quick start and webhook walkthrough, run as written against a real
//! `carcosa serve`.

use std::process::Command;

use crate::support::Server;

/// The shell block between the `name` markers of README.md.
fn readme_block(name: &str) -> String {
    let readme = include_str!("../../../../README.md");
    let start = readme.find(&format!("<!-- {name}:start -->")).expect("start marker");
    let end = readme.find(&format!("<!-- {name}:end -->")).expect("end marker");
    let block = &readme[start..end];
    let body_start = block.find("```sh\n").expect("sh block") + "```sh\n".len();
    let body_end = block.rfind("```").expect("block end");
    block[body_start..body_end].to_owned()
}

#[test]
fn the_readme_quick_start_works_as_written() {
    let script =
        format!("{}\n{}\n{}", readme_block("quickstart"), readme_block("webhooks"), readme_block("sync"));
    // Three substitutions only: the built binary instead of `cargo run`, and the test's ports.
    let cargo_run = "cargo run -q --release --";
    assert!(script.contains(cargo_run), "the quick start runs the CLI through cargo");
    assert!(Command::new("curl").arg("--version").output().is_ok(), "the quick start needs curl");
    let dir = tempfile::tempdir().unwrap();
    // As the README's webhook section says: allow calls to this machine.
    let server = Server::start_with(dir.path(), "127.0.0.1:0", &[("CARCOSA_WEBHOOK_ALLOW_PRIVATE", "true")]);
    let listener_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = script
        .replace(cargo_run, env!("CARGO_BIN_EXE_carcosa"))
        .replace("127.0.0.1:8700", &server.address)
        .replace("127.0.0.1:9000", &format!("127.0.0.1:{listener_port}"));
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
    // The listener printed both webhooks, each with a verified signature.
    let created = stdout.lines().any(|l| l.contains("tenant.created ten_") && l.contains(" globex "));
    let deleted = stdout.lines().any(|l| l.contains("tenant.deleted ten_") && l.contains(" globex "));
    assert!(created && deleted, "{stdout}");
    // The sidecar synced the live tenants into the app's table (Globex was deleted).
    assert!(stdout.contains("\"created\":1"), "{stdout}");
    assert!(dir.path().join("app.db").exists());
    drop(server);
}
