//! `carcosa user …` and the admin `carcosa serve` creates on first start.

use serde_json::Value;

use crate::support::{Server, carcosa, run, stderr, stdout};

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn first_start_creates_an_admin_from_the_environment_once() {
    let dir = tempfile::tempdir().unwrap();
    let env =
        [("CARCOSA_ADMIN_EMAIL", "Root@Example.com"), ("CARCOSA_ADMIN_PASSWORD", "correct horse battery")];
    let stopped = Server::start_with(dir.path(), "127.0.0.1:0", &env).stop();
    assert!(stopped.log.contains("created the dashboard admin root@example.com"), "{}", stopped.log);
    assert!(!stopped.log.contains("correct horse battery"), "a given password is never echoed");
    let listed = run(carcosa(dir.path()).args(["user", "list"]));
    let users = json_lines(&stdout(&listed));
    assert_eq!(users.len(), 1, "{}", stdout(&listed));
    assert_eq!(users[0]["email"], "root@example.com");
    assert_eq!(users[0]["global_role"], "owner");
    assert!(users[0]["id"].as_str().unwrap().starts_with("op_"));
    assert!(!stdout(&listed).contains("argon2"), "hashes are never listed");
    let again = Server::start_with(dir.path(), "127.0.0.1:0", &env).stop();
    assert!(!again.log.contains("First start"), "{}", again.log);
}

#[test]
fn first_start_without_a_password_prints_a_generated_one_on_stderr_only() {
    let dir = tempfile::tempdir().unwrap();
    let stopped = Server::start(dir.path()).stop();
    let line = stopped
        .log
        .lines()
        .find(|l| l.contains("with the password"))
        .unwrap_or_else(|| panic!("{}", stopped.log));
    let password = line.split_whitespace().last().unwrap();
    assert_eq!(password.len(), 20);
    assert_eq!(stopped.log.matches(password).count(), 1, "printed once, never logged: {}", stopped.log);
    assert!(stopped.log.contains("admin@localhost"));
}

#[test]
fn users_are_created_listed_and_get_new_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let project = run(carcosa(dir.path()).args(["project", "create", "--name", "Ops"]));
    let project: Value = serde_json::from_str(&stdout(&project)).unwrap();
    let project_id = project["project"]["id"].as_str().unwrap();

    let given = run(carcosa(dir.path())
        .args(["user", "create", "--email", "Ada@Example.com", "--role", "viewer", "--project", project_id])
        .env("CARCOSA_USER_PASSWORD", "correct horse battery"));
    assert!(given.status.success(), "{}", stderr(&given));
    let given: Value = serde_json::from_str(&stdout(&given)).unwrap();
    assert_eq!(given["operator"]["email"], "ada@example.com");
    assert_eq!(given["operator"]["roles"][0]["role"], "viewer");
    assert_eq!(given["operator"]["roles"][0]["project"], project_id);
    assert!(given.get("password").is_none(), "a given password is not printed");

    let generated =
        run(carcosa(dir.path()).args(["user", "create", "--email", "bob@example.com", "--role", "owner"]));
    assert!(generated.status.success(), "{}", stderr(&generated));
    let generated: Value = serde_json::from_str(&stdout(&generated)).unwrap();
    assert_eq!(generated["operator"]["global_role"], "owner");
    assert_eq!(generated["password"].as_str().unwrap().len(), 20);

    let duplicate = run(carcosa(dir.path())
        .args(["user", "create", "--email", "ADA@example.com", "--role", "admin"])
        .env("CARCOSA_USER_PASSWORD", "correct horse battery"));
    assert!(!duplicate.status.success());
    assert!(stderr(&duplicate).contains("exists"), "{}", stderr(&duplicate));
    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (&["user", "create", "--email", "c@example.com", "--role", "root"], None, "not a role"),
        (&["user", "create", "--email", "nobody", "--role", "admin"], None, "email"),
        (&["user", "create", "--email", "c@example.com", "--role", "admin"], Some("short"), "12"),
        (
            &["user", "set-password", "--email", "nobody@example.com"],
            Some("correct horse battery"),
            "no operator",
        ),
    ];
    for (args, password, expected) in cases {
        let mut command = carcosa(dir.path());
        command.args(args);
        if let Some(password) = password {
            command.env("CARCOSA_USER_PASSWORD", password);
        }
        let output = run(&mut command);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr(&output).contains(expected), "{args:?}: {}", stderr(&output));
    }

    let set = run(carcosa(dir.path())
        .args(["user", "set-password", "--email", "ada@example.com"])
        .env("CARCOSA_USER_PASSWORD", "another long password"));
    assert!(set.status.success(), "{}", stderr(&set));
    let listed = json_lines(&stdout(&run(carcosa(dir.path()).args(["user", "list"]))));
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["email"], "ada@example.com");
    assert!(listed[0]["updated_at"] != listed[0]["created_at"], "the new password is recorded");
}
