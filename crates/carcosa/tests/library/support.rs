//! A Carcosa server for the tests: port 0, SQLite in a temporary directory, one project.

use carcosa_server::Config;
use carcosa_server::config::DatabaseUrl;
use carcosa_server::store::Store;

pub struct Server {
    pub url: String,
    pub key: String,
    pub store: Store,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub async fn server() -> Server {
    server_with(|_| {}).await
}

pub async fn server_with(adjust: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        database_url: DatabaseUrl(format!("sqlite://{}", dir.path().join("c.db").display())),
        ..Config::default()
    };
    adjust(&mut config);
    let store = carcosa_server::open_store(&config).await.unwrap();
    let (_, _, key) = store.create_project("Client tests").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(carcosa_server::serve(config, listener, async move {
        let _ = stopped.await;
    }));
    Server { url, key: key.expose(), store, _dir: dir, stop: Some(stop) }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
