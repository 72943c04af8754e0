//! A small blocking client of the Kubernetes REST API for `engine job`: the same cluster access as
//! `engine run` (kubeconfig or in-cluster, with its TLS settings and credentials), hyper over
//! rustls on a current-thread tokio runtime. Control path only; the replay never uses it.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::kubeconfig::{ClusterAccess, Credentials};

/// A failed API call. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status (its `Status` message, when it sent one).
    #[error("{method} {path}: the API server answered {status}: {message}")]
    Status {
        /// The method.
        method: String,
        /// The request path.
        path: String,
        /// The HTTP status.
        status: StatusCode,
        /// The `Status` object's message, or the body's start.
        message: String,
    },
    /// The request did not get an answer.
    #[error("{method} {path}: {message}")]
    Transport {
        /// The method.
        method: String,
        /// The request path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("{path}: unexpected answer: {message}")]
    Decode {
        /// The request path.
        path: String,
        /// The decoder's message.
        message: String,
    },
    /// A local file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ApiError {
    /// The HTTP status of a `Status` error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A Kubernetes API client bound to one cluster.
pub struct KubeClient {
    runtime: tokio::runtime::Runtime,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    credentials: Credentials,
    timeout: Duration,
}

impl KubeClient {
    /// A client for the cluster `access` describes.
    pub fn new(access: &ClusterAccess) -> Result<KubeClient, ApiError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ApiError::Transport {
                method: "-".into(),
                path: "-".into(),
                message: format!("cannot start the I/O runtime: {e}"),
            })?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(15)));
        let connector = match access.tls_config(true) {
            Some(tls) => {
                // The builder sets ALPN itself (`enable_http1`).
                let mut tls = (*tls).clone();
                tls.alpn_protocols.clear();
                let builder = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls)
                    .https_or_http();
                match access.server_name().cloned() {
                    Some(name) => builder
                        .with_server_name_resolver(FixedName(name))
                        .enable_http1()
                        .wrap_connector(http),
                    None => builder.enable_http1().wrap_connector(http),
                }
            }
            None => {
                let tls = plain_tls_config().map_err(|e| ApiError::Transport {
                    method: "-".into(),
                    path: "-".into(),
                    message: format!("TLS setup: {e}"),
                })?;
                HttpsConnector::from((http, std::sync::Arc::new(tls)))
            }
        };
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(KubeClient {
            runtime,
            client,
            base: access.server.trim_end_matches('/').to_string(),
            credentials: access.credentials.clone(),
            timeout: Duration::from_secs(60),
        })
    }

    /// The server URL requests are made against.
    pub fn server(&self) -> &str {
        &self.base
    }

    fn build(
        &self,
        method: &Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Request<Full<Bytes>>, ApiError> {
        let transport = |message: String| transport_error(method, path, message);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .header(
                "user-agent",
                concat!("kreplay-job/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(auth) = self
            .credentials
            .authorization_header()
            .map_err(|e| transport(format!("credentials: {e}")))?
        {
            req = req.header("authorization", auth);
        }
        let body = match body {
            Some((bytes, content_type)) => {
                req = req.header("content-type", content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        req.body(body).map_err(|e| transport(e.to_string()))
    }

    /// Sends a request and hands its response to `read`, all within `limit`.
    fn exchange<T, F, Fut>(
        &self,
        method: &Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
        limit: Duration,
        read: F,
    ) -> Result<T, ApiError>
    where
        F: FnOnce(hyper::Response<hyper::body::Incoming>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let req = self.build(method, path, body)?;
        self.runtime.block_on(async {
            let call = async {
                let response = self
                    .client
                    .request(req)
                    .await
                    .map_err(|e| transport_error(method, path, error_chain(&e)))?;
                read(response).await
            };
            tokio::time::timeout(limit, call).await.map_err(|_| {
                transport_error(method, path, format!("no complete answer within {limit:?}"))
            })?
        })
    }

    /// Sends a request and returns the status and the whole body.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<(StatusCode, Bytes), ApiError> {
        self.exchange(&method, path, body, self.timeout, |response| async {
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| transport_error(&method, path, e.to_string()))?
                .to_bytes();
            Ok((status, body))
        })
    }

    /// Like [`send`](Self::send), but an answer outside 2xx is an error.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Bytes, ApiError> {
        let (status, bytes) = self.send(method.clone(), path, body)?;
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(status_error(&method, path, status, &bytes))
        }
    }

    /// `GET path` decoded as `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let bytes = self.call(Method::GET, path, None)?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// `POST collection_path` of `object` (JSON).
    pub fn create<T: Serialize>(&self, collection_path: &str, object: &T) -> Result<(), ApiError> {
        let body = serde_json::to_vec(object).map_err(|e| ApiError::Decode {
            path: collection_path.to_string(),
            message: e.to_string(),
        })?;
        self.call(
            Method::POST,
            collection_path,
            Some((body, "application/json")),
        )
        .map(|_| ())
    }

    /// `DELETE path` with background propagation (dependents such as a Job's pods go too).
    /// A missing object is not an error.
    pub fn delete(&self, path: &str) -> Result<(), ApiError> {
        let body =
            br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#;
        match self.call(
            Method::DELETE,
            path,
            Some((body.to_vec(), "application/json")),
        ) {
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `GET path` streamed into `dest` (the body is never held whole); returns the response's
    /// `header` value, if any, and the bytes written. An answer outside 2xx is an error.
    pub fn download(
        &self,
        path: &str,
        header: &str,
        dest: &Path,
        timeout: Duration,
    ) -> Result<(Option<String>, u64), ApiError> {
        let method = Method::GET;
        let write_error = |source| ApiError::Write {
            path: dest.display().to_string(),
            source,
        };
        self.exchange(&method, path, None, timeout, |response| async {
            let status = response.status();
            let value = response
                .headers()
                .get(header)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = response.into_body();
            if !status.is_success() {
                let bytes = body
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                return Err(status_error(&method, path, status, &bytes));
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(dest)
                .map_err(write_error)?;
            let mut written = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| transport_error(&method, path, e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    file.write_all(&data).map_err(write_error)?;
                    written += data.len() as u64;
                }
            }
            file.sync_all().map_err(write_error)?;
            Ok((value, written))
        })
    }
}

/// The kubeconfig's `tls-server-name` (or the server's host) for every connection.
struct FixedName(rustls_pki_types::ServerName<'static>);

impl hyper_rustls::ResolveServerName for FixedName {
    fn resolve(
        &self,
        _: &hyper::Uri,
    ) -> Result<rustls_pki_types::ServerName<'static>, Box<dyn std::error::Error + Sync + Send>>
    {
        Ok(self.0.clone())
    }
}

/// A TLS config for the plain-`http` case, where the connector never starts TLS.
fn plain_tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth(),
    )
}

fn transport_error(method: &Method, path: &str, message: String) -> ApiError {
    ApiError::Transport {
        method: method.to_string(),
        path: path.to_string(),
        message,
    }
}

fn status_error(method: &Method, path: &str, status: StatusCode, body: &[u8]) -> ApiError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    ApiError::Status {
        method: method.to_string(),
        path: path.to_string(),
        status,
        message,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
