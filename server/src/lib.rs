//! Kura's PostgreSQL wire-protocol server (pgwire): psql, drivers and BI tools connect to it as
//! to PostgreSQL.
//!
//! The server owns connections: TLS, login (SCRAM-SHA-256 against the catalog's verifiers, with
//! per-address backoff), the simple and extended query protocols, cancel requests, statement
//! timeouts, and the session settings drivers set and show.
//!
//! It must not interpret data or privileges: every statement runs in the logged-in user's
//! [`kura_engine::Session`], which alone decides what the user may see and do.

mod auth;
mod conn;
mod rows;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use kura_engine::Engine;
use kura_engine::scram::ScramVerifier;
use parking_lot::Mutex;
use pgwire::api::auth::ServerParameterProvider;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{ClientInfo, ErrorHandler, PgWireServerHandlers};
use pgwire::error::PgWireError;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio::net::TcpListener;

use crate::conn::Conn;

/// What the server reports as its PostgreSQL version (clients switch features on it).
pub const SERVER_VERSION: &str = "16.6";

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain and private key; with them, clients may (or must) use TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Refuse connections without TLS except from loopback.
    pub require_tls: bool,
}

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The TLS certificate or key could not be loaded.
    #[error("cannot load TLS {what} from {path}: {reason}")]
    Tls {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// `require_tls` without a certificate.
    #[error("--require-tls needs --tls-cert and --tls-key")]
    TlsRequiredWithoutCertificate,
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// State shared by all connections.
pub(crate) struct Shared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: ServerConfig,
    pub(crate) backoff: auth::Backoff,
    /// Random per process; keys mock SCRAM salts of unknown users.
    pub(crate) secret: [u8; 32],
    cancels: Mutex<HashMap<(i32, Bytes), Weak<Conn>>>,
    /// One pg_catalog per user, shared by the user's connections (stable OIDs).
    pg_catalogs: Mutex<HashMap<String, Arc<dyn datafusion::catalog::SchemaProvider>>>,
}

impl Shared {
    /// The SCRAM verifier of a user that may log in, if any.
    pub(crate) async fn verifier_for(&self, user: &str) -> Option<ScramVerifier> {
        let snapshot = match self.engine.catalog().refresh().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the catalog to log a user in");
                return None;
            }
        };
        let role = snapshot.state.roles.get(user)?;
        if !role.login {
            return None;
        }
        role.password.as_deref().and_then(ScramVerifier::parse)
    }

    /// The user's shared pg_catalog.
    pub(crate) fn pg_catalog_for(&self, user: &str) -> kura_engine::Result<Arc<dyn datafusion::catalog::SchemaProvider>> {
        if let Some(p) = self.pg_catalogs.lock().get(user) {
            return Ok(p.clone());
        }
        let provider = self.engine.pg_catalog_for(user, true)?;
        Ok(self.pg_catalogs.lock().entry(user.to_string()).or_insert(provider).clone())
    }

    /// Makes a connection reachable by cancel requests carrying `(pid, key)`.
    pub(crate) fn register_cancel(&self, pid: i32, key: &SecretKey, conn: Weak<Conn>) {
        self.cancels.lock().insert((pid, key_bytes(key)), conn);
    }
}

fn key_bytes(key: &SecretKey) -> Bytes {
    key.to_bytes()
}

/// The handlers of one connection.
struct Handlers {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.conn.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.conn.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.conn.clone()
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.conn.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(Canceller { shared: self.shared.clone() })
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }
}

struct Canceller {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, key_bytes(&request.secret_key));
        let conn = self.shared.cancels.lock().get(&key).and_then(Weak::upgrade);
        match conn {
            Some(conn) => {
                tracing::info!(pid = request.pid, "cancel request");
                conn.cancel();
            }
            None => tracing::debug!(pid = request.pid, "cancel request for an unknown connection"),
        }
    }
}

struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        match error {
            PgWireError::UserError(info) => {
                tracing::debug!(addr = %client.socket_addr(), code = %info.code, message = %info.message, "statement error")
            }
            PgWireError::IoError(e) => tracing::debug!(addr = %client.socket_addr(), error = %e, "connection I/O error"),
            other => tracing::info!(addr = %client.socket_addr(), error = %other, "protocol error"),
        }
    }
}

/// ParameterStatus values sent after login.
pub(crate) struct Parameters {
    pub(crate) user: String,
}

impl ServerParameterProvider for Parameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let app = client.metadata().get(pgwire::api::METADATA_APPLICATION_NAME).cloned().unwrap_or_default();
        Some(
            [
                ("server_version", SERVER_VERSION.to_string()),
                ("server_encoding", "UTF8".into()),
                ("client_encoding", "UTF8".into()),
                ("DateStyle", "ISO, MDY".into()),
                ("TimeZone", "UTC".into()),
                ("IntervalStyle", "postgres".into()),
                ("integer_datetimes", "on".into()),
                ("standard_conforming_strings", "on".into()),
                ("is_superuser", "off".into()),
                ("session_authorization", self.user.clone()),
                ("application_name", app),
                ("default_transaction_read_only", "off".into()),
                ("in_hot_standby", "off".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        )
    }
}

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
}

impl Server {
    /// Loads TLS material and binds the address; errors here mean the server must not start.
    pub async fn bind(engine: Arc<Engine>, config: ServerConfig) -> Result<Self, ServeError> {
        let tls = match &config.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None if config.require_tls => return Err(ServeError::TlsRequiredWithoutCertificate),
            None => None,
        };
        let listener =
            TcpListener::bind(config.listen).await.map_err(|source| ServeError::Bind { addr: config.listen, source })?;
        let shared = Arc::new(Shared {
            engine,
            config,
            backoff: auth::Backoff::default(),
            secret: rand::random(),
            cancels: Mutex::new(HashMap::new()),
            pg_catalogs: Mutex::new(HashMap::new()),
        });
        Ok(Self { listener, shared, tls })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; then stops accepting and returns (open connections
    /// are dropped when the runtime ends).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        tracing::info!(addr = %self.local_addr().map(|a| a.to_string()).unwrap_or_default(), tls = self.tls.is_some(), "serving");
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = self.listener.accept() => a,
            };
            let (socket, addr) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let shared = self.shared.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let conn = Arc::new_cyclic(|me| Conn::new(shared.clone(), me.clone()));
                let me = Arc::downgrade(&conn);
                let handlers = Handlers { conn, shared: shared.clone() };
                if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                    tracing::debug!(%addr, error = %e, "connection ended with an error");
                }
                shared.cancels.lock().retain(|_, c| !Weak::ptr_eq(c, &me));
            });
        }
        tracing::info!("stopped accepting connections");
    }
}
