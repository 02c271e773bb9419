//! The dashboard in a real browser: headless Chromium, driven over WebDriver by `chromedriver`
//! (Debian's `chromium` and `chromium-driver`, which `.ci/run` installs). An operator logs in,
//! creates a tenant, edits its metadata, suspends it, creates an API key, finds both in the audit
//! log, and logs out. Screenshots of the main pages are saved under `target/screenshots/` on
//! every run (the tenants page as `tenants.png`).
//!
//! The WebDriver client is the few commands this test needs, over `reqwest`; it is not worth a
//! dependency. Set `CARCOSA_CHROMEDRIVER` / `CARCOSA_CHROMIUM` to use other binaries.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use carcosa_core::Role;
use serde_json::{Value, json};

use crate::dashboard::{PASSWORD, operator};
use crate::helpers::{Backend, spawn_with};

/// A chromedriver process, killed on drop.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let binary = std::env::var("CARCOSA_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} (apt-get install chromium chromium-driver): {e}")
            });
        let driver = Self { child, base: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{}/status", driver.base)).send().await
                && r.status().is_success()
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready");
    }
}

/// One browser session.
struct Session {
    client: reqwest::Client,
    url: String,
    _profile: tempfile::TempDir,
}

impl Session {
    async fn new(driver: &Driver) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let chromium = std::env::var("CARCOSA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let client = reqwest::Client::new();
        let created: Value = client
            .post(format!("{}/session", driver.base))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Self { client, url: format!("{}/session/{id}", driver.base), _profile: profile }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(answer["value"].get("error").is_none(), "{path}: {answer}");
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn find(&self, css: &str) -> String {
        // Pages render on the server: the element is there once the page has loaded.
        for _ in 0..50 {
            let answer: Value = self
                .client
                .post(format!("{}/element", self.url))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(obj) = answer["value"].as_object()
                && let Some(id) = obj.values().next().and_then(Value::as_str)
                && !obj.contains_key("error")
            {
                return id.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css} on {}", self.current_url().await);
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
    }

    async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/clear"), Some(json!({}))).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({"text": text})))
            .await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.command(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn property(&self, css: &str, name: &str) -> String {
        let id = self.find(css).await;
        let value = self.command(reqwest::Method::GET, &format!("/element/{id}/property/{name}"), None).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Saves a PNG of the page under `target/screenshots/`.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = target_dir().join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn close(self) {
        let _ = self.client.delete(&self.url).send().await;
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: apt-get install chromium chromium-driver"]
async fn an_operator_manages_tenants_and_keys_in_a_real_browser() {
    let app = spawn_with(Backend::Sqlite, |c| c.webhook_allow_private = true).await;
    operator(&app, "ada@example.com", "Ada Lovelace", None, Some((app.project, Role::Owner))).await;
    // Something for the overview and webhook pages to show.
    for name in ["Acme Corp", "Globex", "Initech", "Umbrella"] {
        app.create_named(name).await;
    }
    app.post(
        "/v1/webhook-endpoints",
        &json!({"url": "http://localhost:3000/carcosa/webhooks", "enabled": false}),
    )
    .await
    .expect(201);
    let driver = Driver::start().await;
    let browser = Session::new(&driver).await;
    let base = &app.address;
    let project = format!("{base}/ui/p/{}", app.project);

    // Log in.
    browser.go(&format!("{base}/ui/login")).await;
    browser.screenshot("login").await;
    browser.fill("#email", "ada@example.com").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    assert!(browser.text("header.top").await.contains("Ada Lovelace"));

    // Create a tenant.
    browser.go(&format!("{project}/tenants/new")).await;
    browser.fill("#name", "Wayne Enterprises").await;
    browser.fill("#slug", "wayne").await;
    browser.click("#tenant-form button[type=submit]").await;
    assert!(browser.text("main").await.contains("Tenant created."), "{}", browser.text("main").await);
    let tenant_page = browser.current_url().await;

    // Edit its metadata: a mistake is shown inline, then the fix is saved.
    browser.fill("#metadata", "{\"tier\": \"gold\",}").await;
    browser.click("#tenant-form button[type=submit]").await;
    assert!(browser.text("#metadata-error").await.contains("Not valid JSON"));
    browser.fill("#metadata", "{\"tier\": \"gold\", \"region\": \"eu\"}").await;
    browser.click("#tenant-form button[type=submit]").await;
    assert!(browser.text("main").await.contains("Tenant saved."));
    assert!(browser.text("pre").await.contains("\"region\": \"eu\""));

    // Suspend it.
    browser.click("form[action$='/status'] button").await;
    assert!(browser.text("main").await.contains("Tenant suspended."));
    browser.screenshot("tenant").await;

    // The tenants page lists it as suspended.
    browser.go(&format!("{project}/tenants")).await;
    let list = browser.text("table").await;
    assert!(list.contains("Wayne Enterprises") && list.contains("suspended"), "{list}");
    let shot = browser.screenshot("tenants").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);

    // Create an API key; it is shown once.
    browser.go(&format!("{project}/keys")).await;
    browser.fill("#key-label", "billing").await;
    browser.click("#scope-tenants-read").await;
    browser.click("section.card form button[type=submit]").await;
    let key = browser.property("#new-key", "value").await;
    assert!(key.starts_with("ck_"), "{key}");
    browser.screenshot("keys").await;
    let api = app.client.get(format!("{base}/v1/tenants")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(api.status(), 200, "the new key works");

    // Both changes are in the audit log, by this operator.
    browser.go(&format!("{project}/audit")).await;
    let log = browser.text("table").await;
    for action in ["tenant.create", "tenant.update", "key.create"] {
        assert!(log.contains(action), "{action} in {log}");
    }
    assert!(log.contains("Ada Lovelace"), "operators are shown by name: {log}");
    browser.screenshot("audit").await;

    // The other main pages, for the docs.
    browser.go(&project).await;
    browser.screenshot("overview").await;
    browser.go(&format!("{project}/webhooks")).await;
    browser.screenshot("webhooks").await;
    let _ = tenant_page;

    // Log out: back to the login page, and the dashboard is closed.
    browser.click("header.top form button").await;
    assert!(browser.current_url().await.ends_with("/ui/login"));
    browser.go(&format!("{base}/ui/")).await;
    assert!(browser.current_url().await.ends_with("/ui/login"), "signed out");
    browser.close().await;
    app.finish().await;
}
