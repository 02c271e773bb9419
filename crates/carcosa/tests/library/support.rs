//! A Carcosa server for the tests: port 0, SQLite in a temporary directory, one project.

use carcosa_server::Config;
use carcosa_server::config::DatabaseUrl;
use carcosa_server::store::Store;

pub struct Server {
    pub url: String,
    pub key: String,
    pub store: Store,
    config: Config,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn server() -> Server {
    server_with(|_| {}).await
}

pub async fn server_with(adjust: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        database_url: DatabaseUrl(format!("sqlite://{}", dir.path().join("c.db").display())),
        // The tests write thousands of tenants with one key; rate limits are the server's tests'.
        rate_limit_per_second: 0,
        ..Config::default()
    };
    adjust(&mut config);
    let store = carcosa_server::open_store(&config).await.unwrap();
    let (_, _, key) = store
        .create_project("Client tests", &carcosa_server::audit::AuditContext::cli("test"))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut server = Server { url, key: key.expose(), store, config, _dir: dir, stop: None, task: None };
    server.serve_on(listener);
    server
}

impl Server {
    fn serve_on(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(carcosa_server::serve(self.config.clone(), listener, async move {
            let _ = stopped.await;
        })));
    }

    /// Stops serving (the data stays).
    pub async fn go_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// Serves again on the same address.
    pub async fn come_back(&mut self) {
        let address = self.url.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
        self.serve_on(listener);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
