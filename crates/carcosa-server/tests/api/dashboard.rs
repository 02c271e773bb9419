//! The dashboard's sign-in, sessions, CSRF, throttling and escaping, through a real server with a
//! cookie-keeping client that does not follow redirects.

use std::collections::HashMap;

use carcosa_core::operator::Password;
use carcosa_core::{Email, ProjectId, Role};
use carcosa_server::operators::{OperatorIn, create_operator, ensure_first_admin};
use carcosa_server::store::{Operator, ProjectRole};

use crate::helpers::{Backend, TestApp, spawn, spawn_with};
use crate::on_both_backends;

pub(crate) const PASSWORD: &str = "correct horse battery";
const WRONG_LOGIN: &str = "Wrong email or password.";

/// A browser without JavaScript: keeps cookies, shows redirects instead of following them.
pub(crate) struct Browser {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
    pub(crate) cookies: HashMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
}

impl Page {
    pub(crate) fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    /// The CSRF token of the page's first form.
    pub(crate) fn csrf(&self) -> String {
        let start = self
            .text
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no csrf field: {}", self.text));
        let rest = &self.text[start + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: app.address.clone(), cookies: HashMap::new() }
    }

    pub(crate) async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let request = if cookie.is_empty() { request } else { request.header("cookie", cookie) };
        let response = request.send().await.expect("request");
        let page = Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        };
        for set in page.set_cookies() {
            let (pair, attributes) = set.split_once(';').unwrap_or((&set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        page
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Opens the login form and posts it.
    pub(crate) async fn login(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/ui/login").await;
        assert_eq!(form.status, 200, "{}", form.text);
        let csrf = form.csrf();
        self.post("/ui/login", &[("email", email), ("password", password), ("csrf", &csrf)]).await
    }

    pub(crate) fn session(&self) -> Option<String> {
        self.cookies.get("carcosa_session").cloned()
    }
}

pub(crate) async fn operator(
    app: &TestApp,
    email: &str,
    name: &str,
    global: Option<Role>,
    project: Option<(ProjectId, Role)>,
) -> Operator {
    create_operator(
        &app.store,
        OperatorIn {
            email: Email::parse(email).unwrap(),
            name: Some(name.to_owned()),
            password: Password::parse(PASSWORD).unwrap(),
            global_role: global,
            project_role: project.map(|(project, role)| ProjectRole { project, role }),
        },
        &crate::helpers::test_actor(),
    )
    .await
    .unwrap()
}

async fn a_login_sets_a_fresh_session_cookie_each_time(backend: Backend) {
    let app = spawn(backend).await;
    operator(&app, "ada@example.com", "Ada", Some(Role::Owner), None).await;
    let mut browser = Browser::new(&app);

    let away = browser.get("/ui/").await;
    assert_eq!((away.status, away.location()), (303, Some("/ui/login")));
    let form = browser.get("/ui/login").await;
    assert!(form.text.contains(r#"<label for="email">"#) && form.text.contains(r#"<label for="password">"#));
    assert!(form.text.contains(r#"name="viewport""#));

    let signed_in = browser.login("ADA@example.com", PASSWORD).await;
    assert_eq!((signed_in.status, signed_in.location()), (303, Some("/ui/")), "{}", signed_in.text);
    let cookie = signed_in.set_cookies().into_iter().find(|c| c.starts_with("carcosa_session=")).unwrap();
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Lax") && cookie.contains("; Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP without an https public URL: {cookie}");
    let first = browser.session().unwrap();
    let home = browser.get("/ui/").await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.text.contains("Signed in as <strong>Ada</strong>"), "{}", home.text);
    assert!(home.text.contains("Test project") && home.text.contains("owner"));

    // A session cookie planted before login (fixation) is replaced, and dies.
    let mut other = Browser::new(&app);
    other.cookies.insert("carcosa_session".into(), first.clone());
    let form = other.get("/ui/login").await;
    assert_eq!((form.status, form.location()), (303, Some("/ui/")), "signed in: the form redirects");
    let mut fresh = Browser::new(&app);
    let csrf = fresh.get("/ui/login").await.csrf();
    fresh.cookies.insert("carcosa_session".into(), first.clone());
    let again = fresh
        .post("/ui/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 303);
    let second = fresh.session().unwrap();
    assert_ne!(first, second, "every login gets a new session id");
    assert_eq!(browser.get("/ui/").await.status, 303, "the replaced session is gone");
    assert_eq!(fresh.get("/ui/").await.status, 200);
    app.finish().await;
}

async fn wrong_passwords_and_unknown_emails_get_one_generic_answer(backend: Backend) {
    let app = spawn(backend).await;
    operator(&app, "ada@example.com", "Ada", Some(Role::Owner), None).await;
    let mut browser = Browser::new(&app);
    let wrong = browser.login("ada@example.com", "not the password").await;
    let unknown = browser.login("nobody@example.com", "not the password").await;
    let malformed = browser.login("nobody", "x").await;
    for page in [&wrong, &unknown, &malformed] {
        assert_eq!(page.status, 401, "{}", page.text);
        assert!(page.text.contains(WRONG_LOGIN), "{}", page.text);
        assert!(browser.session().is_none());
    }
    let strip = |p: &Page, email: &str| p.text.replace(email, "").replace(&p.csrf(), "");
    assert_eq!(
        strip(&wrong, "ada@example.com"),
        strip(&unknown, "nobody@example.com"),
        "no account enumeration"
    );
    app.finish().await;
}

async fn repeated_failures_are_throttled_per_account_and_per_address(backend: Backend) {
    // The failed-login throttle on its own, without the rate limit on attempts.
    let app = spawn_with(backend, |config| config.login_rate_limit_per_minute = 0).await;
    operator(&app, "ada@example.com", "Ada", Some(Role::Owner), None).await;
    operator(&app, "bob@example.com", "Bob", Some(Role::Viewer), None).await;
    let mut browser = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(browser.login("ada@example.com", "not the password").await.status, 401);
    }
    let throttled = browser.login("ada@example.com", PASSWORD).await;
    assert_eq!(throttled.status, 429, "even the right password waits: {}", throttled.text);
    let retry: i64 = throttled.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    assert!(browser.session().is_none());
    // The address has failed five times too: another account from it waits as well.
    let other = browser.login("bob@example.com", PASSWORD).await;
    assert_eq!(other.status, 429, "{}", other.text);
    app.finish().await;
}

async fn login_attempts_are_rate_limited_per_address(backend: Backend) {
    let app = spawn_with(backend, |config| {
        config.login_rate_limit_per_minute = 1;
        config.login_rate_limit_burst = 2;
        config.login_max_failures = 100;
    })
    .await;
    operator(&app, "ada@example.com", "Ada", Some(Role::Owner), None).await;
    let mut browser = Browser::new(&app);
    let header = |page: &Page, name: &str| page.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    for remaining in ["1", "0"] {
        let refused = browser.login("ada@example.com", "not the password").await;
        assert_eq!(refused.status, 401, "{}", refused.text);
        assert_eq!(header(&refused, "ratelimit-limit").as_deref(), Some("2"));
        assert_eq!(header(&refused, "ratelimit-remaining").as_deref(), Some(remaining));
    }
    let limited = browser.login("ada@example.com", PASSWORD).await;
    assert_eq!(limited.status, 429, "even the right password waits: {}", limited.text);
    assert!(limited.text.contains("Too many sign-in attempts from this address"), "{}", limited.text);
    let retry: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(header(&limited, "ratelimit-remaining").as_deref(), Some("0"));
    assert!(browser.session().is_none());
    app.finish().await;
}

async fn logout_ends_the_session(backend: Backend) {
    let app = spawn(backend).await;
    operator(&app, "ada@example.com", "Ada", Some(Role::Admin), None).await;
    let mut browser = Browser::new(&app);
    browser.login("ada@example.com", PASSWORD).await;
    let old = browser.session().unwrap();
    let home = browser.get("/ui/").await;
    let out = browser.post("/ui/logout", &[("csrf", &home.csrf())]).await;
    assert_eq!((out.status, out.location()), (303, Some("/ui/login")));
    assert!(browser.session().is_none(), "the cookie is removed");
    browser.cookies.insert("carcosa_session".into(), old);
    let after = browser.get("/ui/").await;
    assert_eq!((after.status, after.location()), (303, Some("/ui/login")), "the old cookie is worthless");
    app.finish().await;
}

async fn posts_without_the_csrf_token_are_refused(backend: Backend) {
    let app = spawn(backend).await;
    operator(&app, "ada@example.com", "Ada", Some(Role::Admin), None).await;
    let mut browser = Browser::new(&app);
    browser.login("ada@example.com", PASSWORD).await;
    for form in [&[][..], &[("csrf", "forged")][..]] {
        let refused = browser.post("/ui/logout", form).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        assert!(refused.text.contains("csrf_failed"), "{}", refused.text);
    }
    assert_eq!(browser.get("/ui/").await.status, 200, "the session survives a refused post");
    // The login form is protected too (its token rides in a cookie).
    let mut stranger = Browser::new(&app);
    let login = stranger.post("/ui/login", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(login.status, 403);
    assert!(login.text.contains("csrf_failed"));
    // Signed out, a post is sent to the login page.
    let signed_out = Browser::new(&app).post("/ui/logout", &[("csrf", "x")]).await;
    assert_eq!((signed_out.status, signed_out.location()), (303, Some("/ui/login")));
    app.finish().await;
}

async fn names_render_as_text_and_operators_see_only_their_projects(backend: Backend) {
    let app = spawn(backend).await;
    let (hidden, _, _) =
        app.store.create_project("Hidden <i>project</i>", &crate::helpers::test_actor()).await.unwrap();
    let (shown, _, _) =
        app.store.create_project("<b>Bold</b> & co", &crate::helpers::test_actor()).await.unwrap();
    operator(&app, "eve@example.com", "<script>alert(1)</script>", None, Some((shown.id, Role::Viewer)))
        .await;
    let mut browser = Browser::new(&app);
    browser.login("eve@example.com", PASSWORD).await;
    let home = browser.get("/ui/").await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", home.text);
    assert!(!home.text.contains("<script>"), "{}", home.text);
    assert!(home.text.contains("&lt;b&gt;Bold&lt;/b&gt; &amp; co"), "{}", home.text);
    assert!(home.text.contains("viewer"));
    assert!(!home.text.contains(&hidden.id.to_string()) && !home.text.contains("Hidden"));
    assert!(!home.text.contains(&app.project.to_string()), "no role in the test project");
    let csp = home.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    let missing = browser.get("/ui/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert_eq!(Browser::new(&app).get("/ui/no-such-page").await.status, 303, "signed out: to the login page");
    app.finish().await;
}

async fn the_first_admin_is_created_once_and_can_sign_in(backend: Backend) {
    let app = spawn(backend).await;
    let admin =
        ensure_first_admin(&app.store, Some("Root@Example.com"), Some(PASSWORD)).await.unwrap().unwrap();
    assert_eq!(admin.operator.email.as_str(), "root@example.com");
    assert_eq!(admin.operator.global_role, Some(Role::Owner));
    assert!(admin.generated_password.is_none());
    assert!(ensure_first_admin(&app.store, None, None).await.unwrap().is_none(), "only on first start");
    assert!(ensure_first_admin(&app.store, Some("x@example.com"), Some("short")).await.unwrap().is_none());
    let mut browser = Browser::new(&app);
    assert_eq!(browser.login("root@example.com", PASSWORD).await.status, 303);
    app.finish().await;

    let app = spawn(backend).await;
    let generated = ensure_first_admin(&app.store, None, None).await.unwrap().unwrap();
    assert_eq!(generated.operator.email.as_str(), "admin@localhost");
    let password = generated.generated_password.unwrap();
    let mut browser = Browser::new(&app);
    assert_eq!(browser.login("admin@localhost", password.expose()).await.status, 303);
    app.finish().await;
}

/// Moves every session's `column` back by `by`, as if time had passed.
async fn age_sessions(app: &TestApp, column: &str, by: chrono::TimeDelta) {
    let url = app.config.database_url.expose();
    let sql = format!("UPDATE operator_sessions SET {column} = $1");
    let at = chrono::Utc::now() - by;
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(&sql).bind(at).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(&sql).bind(at).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

async fn sessions_end_when_idle_or_old(backend: Backend) {
    let app = spawn(backend).await;
    operator(&app, "ada@example.com", "Ada", Some(Role::Owner), None).await;
    let mut browser = Browser::new(&app);
    browser.login("ada@example.com", PASSWORD).await;
    age_sessions(&app, "last_seen_at", chrono::TimeDelta::hours(11)).await;
    assert_eq!(browser.get("/ui/").await.status, 200, "11 h idle is within the default 12 h");
    age_sessions(&app, "last_seen_at", chrono::TimeDelta::hours(13)).await;
    let idle = browser.get("/ui/").await;
    assert_eq!((idle.status, idle.location()), (303, Some("/ui/login")), "idle too long");

    browser.login("ada@example.com", PASSWORD).await;
    assert_eq!(browser.get("/ui/").await.status, 200);
    age_sessions(&app, "created_at", chrono::TimeDelta::days(8)).await;
    let old = browser.get("/ui/").await;
    assert_eq!((old.status, old.location()), (303, Some("/ui/login")), "past the 7-day absolute limit");
    app.finish().await;
}

async fn cookies_are_secure_behind_https(backend: Backend) {
    let app = spawn_with(backend, |c| c.public_url = "https://carcosa.example.com".into()).await;
    operator(&app, "ada@example.com", "Ada", Some(Role::Owner), None).await;
    let mut browser = Browser::new(&app);
    let signed_in = browser.login("ada@example.com", PASSWORD).await;
    let cookie = signed_in.set_cookies().into_iter().find(|c| c.starts_with("carcosa_session=")).unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    app.finish().await;

    let app = spawn(backend).await;
    let mut browser = Browser::new(&app);
    let request =
        browser.client.get(format!("{}/ui/login", app.address)).header("x-forwarded-proto", "https");
    let form = browser.send(request).await;
    assert!(form.set_cookies().iter().all(|c| c.ends_with("; Secure")), "{:?}", form.set_cookies());
    app.finish().await;
}

on_both_backends!(
    sessions_end_when_idle_or_old,
    cookies_are_secure_behind_https,
    a_login_sets_a_fresh_session_cookie_each_time,
    wrong_passwords_and_unknown_emails_get_one_generic_answer,
    repeated_failures_are_throttled_per_account_and_per_address,
    login_attempts_are_rate_limited_per_address,
    logout_ends_the_session,
    posts_without_the_csrf_token_are_refused,
    names_render_as_text_and_operators_see_only_their_projects,
    the_first_admin_is_created_once_and_can_sign_in,
);
