//! Preflight: before the timeline starts, each core sends `GET /version` through the same
//! target, TLS, credentials and protocol the replay uses, so that a wrong CA, rejected
//! credentials or an unreachable server stop the run with one clear sentence instead of a
//! report full of errors.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::{future, AsyncWriteExt};
use glommio::timer::sleep;
use http::Method;
use preprocess::profile::BodyKind;

use super::conn::{self, Conn, ConnectError, H2Pool};
use super::failure::Failure;
use super::h2_request;
use super::Shared;
use crate::http1::{RequestTemplate, ResponseReader};
use crate::transport::Http2Connection;

/// Why the preflight stopped the run (the message says what to check).
#[derive(Debug, Clone, thiserror::Error)]
#[error("preflight: {0}")]
pub struct PreflightError(pub String);

/// Checks the target with `GET /version` within `limit`. Returns the connection it used,
/// still open (an HTTP/1.1 stream or a slot on an HTTP/2 connection now in `pool`), so the
/// core's pool starts with it; `None` when the server closed it.
pub async fn check(
    shared: &Shared,
    pool: &Rc<H2Pool>,
    limit: Duration,
) -> Result<Option<Conn>, PreflightError> {
    let url = format!("{}/version", shared.target.base_url);
    let attempt = async {
        let (mut answer, mut conn) = once(shared, pool, &url).await?;
        if answer == 401 {
            // Exec plugins and token files may hold a stale token: refresh once, as client-go does.
            if let Some(auth) = shared.target.auth.as_ref() {
                auth.on_unauthorized();
                (answer, conn) = once(shared, pool, &url).await?;
            }
        }
        Ok::<_, PreflightError>((answer, conn))
    };
    let timed_out = async {
        sleep(limit).await;
        Err(PreflightError(format!(
            "GET {url} got no answer within {limit:?}: check the server address, or raise --timeout if the server is slow"
        )))
    };
    let (status, conn) = future::or(attempt, timed_out).await?;
    match status {
        401 => Err(PreflightError(format!(
            "GET {url} answered 401 Unauthorized: check the kubeconfig user's credentials"
        ))),
        403 => Err(PreflightError(format!(
            "GET {url} answered 403 Forbidden: the kubeconfig user may not read /version; check its RBAC permissions"
        ))),
        s if !(200..300).contains(&s) => {
            // Connected and authenticated: the replay measures whatever else the server does.
            tracing::warn!("preflight: GET {url} answered {s}; replaying anyway");
            Ok(conn)
        }
        _ => Ok(conn),
    }
}

/// One `GET /version`: the status and the connection, if still usable.
async fn once(
    shared: &Shared,
    pool: &Rc<H2Pool>,
    url: &str,
) -> Result<(u16, Option<Conn>), PreflightError> {
    let authorization = match shared.target.auth.as_ref() {
        Some(a) => a
            .authorization()
            .map_err(|e| PreflightError(format!("cannot get credentials for {url}: {e}")))?
            .map(h2_request::Authorization::new),
        None => None,
    };
    let mut conn = match conn::lease_h2(pool) {
        Some(c) => c,
        None => conn::connect(&shared.target, pool)
            .await
            .map_err(|e| connect_failed(e, shared, url))?,
    };
    let failed = |what: String| PreflightError(format!("GET {url} failed: {what}"));
    let status = match &mut conn {
        Conn::Http1(stream) => {
            let mut request = Vec::with_capacity(512);
            shared.template.encode(
                &mut request,
                preprocess::profile::Method::Get,
                b"/version",
                BodyKind::None,
                b"",
                authorization.as_ref().map(|a| a.text()),
            );
            stream
                .write_all(&request)
                .await
                .map_err(|e| failed(e.to_string()))?;
            stream.flush().await.map_err(|e| failed(e.to_string()))?;
            let mut reader = ResponseReader::default();
            let head = reader
                .read_head(stream)
                .await
                .map_err(|e| failed(e.to_string()))?;
            reader
                .read_body(stream, head.framing, |_| {})
                .await
                .map_err(|e| failed(e.to_string()))?;
            if !head.keep_alive {
                return Ok((head.status, None));
            }
            head.status
        }
        Conn::Http2(lease) => h2_version(lease.conn(), &shared.template, authorization.as_ref())
            .await
            .map_err(failed)?,
    };
    Ok((status, Some(conn)))
}

/// `GET /version` as an HTTP/2 stream; the status, with the body drained.
async fn h2_version(
    h2: &Http2Connection,
    template: &RequestTemplate,
    authorization: Option<&h2_request::Authorization>,
) -> Result<u16, String> {
    let headers = h2_request::headers(
        template,
        &template.user_agent,
        BodyKind::None,
        authorization,
    )
    .map_err(|e| match e {
        Failure::Corrupt(m) => m,
        other => format!("{other:?}"),
    })?;
    let path = format!("{}/version", template.base_path);
    let mut response = h2
        .send(Method::GET, &path, &headers, b"")
        .await
        .map_err(|e| e.to_string())?;
    response.body.drain().await.map_err(|e| e.to_string())?;
    Ok(response.status.as_u16())
}

fn connect_failed(e: ConnectError, shared: &Shared, url: &str) -> PreflightError {
    match e {
        ConnectError::Io(e) => PreflightError(format!(
            "cannot connect to {} for GET {url}: {e}: is the server running, and is the server address right?",
            shared.target.addr()
        )),
        ConnectError::Transport(e) => PreflightError(format!("GET {url} failed: {e}")),
    }
}
