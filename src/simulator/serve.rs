//! The accept loop and per-connection serving: hand-written so that one connection can be closed without any response (the `Drop` fault).

use super::*;

/// Handed to the handler of each request: cancelling it closes the connection.
#[derive(Clone)]
pub(super) struct ConnCtl(pub(super) CancellationToken);

pub(super) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(stream, router.clone(), shutdown.child_token()));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "simulator: accept failed");
                    // Out of file descriptors and the like: back off a little
                    // instead of spinning.
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                }
            }
        }
    }
    drop(listener);
    // Every connection's token is a child of `shutdown`: they are all ending.
    while conns.join_next().await.is_some() {}
}

pub(super) async fn serve_connection(stream: TcpStream, router: Router, token: CancellationToken) {
    let ctl = ConnCtl(token.clone());
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ctl.clone());
        router.clone().oneshot(req)
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        // Shutdown, or a `Drop` fault: dropping the connection closes the
        // socket without writing anything more.
        _ = token.cancelled() => {}
    }
}
