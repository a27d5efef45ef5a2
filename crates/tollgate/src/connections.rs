//! Accepting connections within caps, and closing idle and stalled ones.
//!
//! A socket costs a file descriptor for as long as it is open, whether or not it ever sends a
//! request; without limits, a thousand sockets that send half a request line exhaust the
//! usual open-file limit and the server stops accepting anyone. So:
//! - a request's headers must arrive within HEADER_READ_TIMEOUT (from the accept, or from the
//!   first byte of a later request on a kept-alive connection);
//! - a kept-alive connection idle for KEEPALIVE_TIMEOUT after a response is closed;
//! - at MAX_CONNECTIONS open, accepting pauses (waiting clients stay in the kernel's listen
//!   queue, costing no descriptor here) until one closes;
//! - past MAX_CONNECTIONS_PER_ADDRESS from one client address, a new connection is closed at
//!   once, so one client cannot take every place.
//!
//! The timeouts cost a request a few uncontended atomic operations and one clock read, no
//! allocation and no timer: each connection has one timer, which looks at what the
//! connection is doing only when it fires, at most once per the shorter timeout.
//!
//! HTTP/1.1 only (TLS and HTTP/2, when wanted, end at a proxy in front).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tollgate_core::Settings;

use crate::client::counted_network;

/// The connection limits of the settings, read once.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    header_read_timeout: Duration,
    keepalive_timeout: Duration,
    max_connections: usize,
    max_per_address: usize,
    trusted_proxies: Vec<ipnet::IpNet>,
}

impl Limits {
    pub(crate) fn of(settings: &Settings) -> Limits {
        Limits {
            header_read_timeout: settings.header_read_timeout,
            keepalive_timeout: settings.keepalive_timeout,
            max_connections: settings.max_connections.max(1),
            max_per_address: settings.max_connections_per_address,
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then stops
/// accepting, lets requests in flight finish and closes idle connections.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let addresses = Arc::new(AddressCounts::default());
    let limits = Arc::new(limits);
    // Connections watch `stopping` to start their graceful close; the server waits for every
    // `running` receiver to be dropped.
    let (stopping, stop_seen) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_seen);
    });
    let (running, running_rx) = watch::channel(());
    loop {
        let place = tokio::select! {
            place = Arc::clone(&places).acquire_owned() => match place {
                Ok(place) => place,
                Err(_) => break,
            },
            () = stopping.closed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = stopping.closed() => break,
        };
        let Some(slot) = addresses.claim(peer.ip(), &limits) else {
            tracing::debug!(%peer, "connection refused: MAX_CONNECTIONS_PER_ADDRESS reached");
            continue;
        };
        let hold = Hold {
            _place: place,
            _slot: slot,
        };
        tokio::spawn(connection(
            stream,
            peer,
            hold,
            router.clone(),
            Arc::clone(&limits),
            stopping.clone(),
            running_rx.clone(),
        ));
    }
    drop(running_rx);
    drop(listener);
    running.closed().await;
    Ok(())
}

/// Errors of `accept` that concern one connection only are skipped; others (out of file
/// descriptors, mostly) are logged and waited out, rather than retried in a busy loop.
async fn accept_failed(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(cause = %err, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection, closing it when its headers or its next request are overdue.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    hold: Hold,
    router: Router,
    limits: Arc<Limits>,
    stopping: watch::Sender<()>,
    running: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
        _hold: hold,
    });
    let service = ConnectionService {
        router,
        peer: ConnectInfo(peer),
        activity: Arc::clone(&activity),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's own header timeout needs a timer and costs a timer per request; the watch below
    // does the same job per connection.
    builder.header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    // Looking once per the shorter timeout is often enough to close on time (see `Activity`).
    let period = limits.header_read_timeout.min(limits.keepalive_timeout);
    let mut check = pin!(tokio::time::sleep_until(activity.started + period));
    let mut stop_signal = pin!(stopping.closed());
    let mut stopped = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!(%peer, cause = %err, "connection ended with an error");
                }
                break;
            }
            () = check.as_mut() => {
                let now = Instant::now();
                match activity.deadline(&limits) {
                    Some((deadline, timeout)) if deadline <= now => {
                        tracing::debug!(%peer, timeout, "closing a stalled or idle connection");
                        break;
                    }
                    Some((deadline, _)) => check.as_mut().reset(deadline.min(now + period)),
                    None => check.as_mut().reset(now + period),
                }
            }
            () = stop_signal.as_mut(), if !stopped => {
                stopped = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(running);
}

/// A connection's place under MAX_CONNECTIONS and under its address's cap, given back when
/// the socket closes: it travels with the socket, into a WebSocket too.
struct Hold {
    _place: OwnedSemaphorePermit,
    _slot: Option<AddressSlot>,
}

/// Open connections per client address.
#[derive(Default)]
struct AddressCounts {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl AddressCounts {
    /// A place for one more connection from `peer`: `Some(None)` when its address is not
    /// counted (no cap, or a trusted proxy), `None` when the address is at its cap.
    fn claim(self: &Arc<Self>, peer: IpAddr, limits: &Limits) -> Option<Option<AddressSlot>> {
        if limits.max_per_address == 0
            || crate::client::is_trusted_proxy(peer, &limits.trusted_proxies)
        {
            return Some(None);
        }
        let key = counted_network(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= limits.max_per_address {
            return None;
        }
        *count += 1;
        Some(Some(AddressSlot {
            counts: Arc::clone(self),
            key,
        }))
    }
}

/// One connection counted against its address.
struct AddressSlot {
    counts: Arc<AddressCounts>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .counts
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What a connection is doing, kept by the connection itself (its socket and its service)
/// and read by its timer. Relaxed atomics suffice: all of it happens on the connection's task.
struct Activity {
    started: Instant,
    phase: AtomicU8,
    /// When the phase began, in milliseconds from `started`.
    since: AtomicU64,
}

/// Waiting for a request's headers (from the accept, or from the first byte of a later
/// request).
const HEADERS: u8 = 0;
/// A request is being handled: no timeout of ours applies.
const HANDLING: u8 = 1;
/// A response was given; waiting for the next request.
const IDLE: u8 = 2;

impl Activity {
    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            phase: AtomicU8::new(HEADERS),
            since: AtomicU64::new(0),
        }
    }

    fn enter(&self, phase: u8) {
        let since = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since.store(since, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// When the current phase times out, and its name; `None` while a request is handled.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        let (timeout, name) = match self.phase.load(Ordering::Relaxed) {
            HEADERS => (limits.header_read_timeout, "HEADER_READ_TIMEOUT"),
            IDLE => (limits.keepalive_timeout, "KEEPALIVE_TIMEOUT"),
            _ => return None,
        };
        let since = Duration::from_millis(self.since.load(Ordering::Relaxed));
        Some((self.started + since + timeout, name))
    }
}

/// The socket, noting when the first byte of a request arrives on an idle connection, and
/// holding the connection's places until it closes.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    _hold: Hold,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before && this.activity.phase.load(Ordering::Relaxed) == IDLE {
            this.activity.enter(HEADERS);
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The application for one connection: gives handlers the peer address
/// (`ConnectInfo<SocketAddr>`, read by `client::ClientAddr`) and marks the connection busy
/// from a request's headers to its response.
struct ConnectionService {
    router: Router,
    peer: ConnectInfo<SocketAddr>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Handling;

    fn call(&self, mut request: Request<Incoming>) -> Handling {
        self.activity.phase.store(HANDLING, Ordering::Relaxed);
        request.extensions_mut().insert(self.peer);
        Handling {
            response: tower::Service::call(&mut self.router.clone(), request),
            activity: Arc::clone(&self.activity),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being handled; its response starts the idle time.
    struct Handling {
        #[pin]
        response: axum::routing::future::RouteFuture<Infallible>,
        activity: Arc<Activity>,
    }
}

impl Future for Handling {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = this.response.poll(cx);
        if response.is_ready() {
            this.activity.enter(IDLE);
        }
        response
    }
}

/// Raises the soft open-file limit to the hard one (each connection is a file descriptor),
/// logs both, and warns when MAX_CONNECTIONS cannot fit under it.
pub(crate) fn raise_file_limit(settings: &Settings) {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        let mut soft = limit.current;
        // `None` is unlimited: nothing to raise, or no finite value to raise to.
        if let (Some(current), Some(hard)) = (limit.current, limit.maximum) {
            if current < hard {
                let raised = Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                };
                match setrlimit(Resource::Nofile, raised) {
                    Ok(()) => soft = Some(hard),
                    Err(err) => tracing::warn!(
                        cause = %err,
                        "cannot raise the open-file limit to its hard limit"
                    ),
                }
            }
        }
        let shown = |value: Option<u64>| value.map_or("unlimited".to_owned(), |v| v.to_string());
        tracing::info!(
            soft = %shown(soft),
            hard = %shown(limit.maximum),
            "open-file limit"
        );
        // Beside the connections: the listener, database connections (three files each on
        // SQLite: the database, its -wal and its -shm), Redis, logs and the runtime's own.
        let reserve = 64 + 3 * u64::from(settings.database_max_connections);
        let needed = u64::try_from(settings.max_connections)
            .unwrap_or(u64::MAX)
            .saturating_add(reserve);
        if let Some(soft) = soft.filter(|soft| *soft < needed) {
            tracing::warn!(
                max_connections = settings.max_connections,
                open_file_limit = soft,
                needed,
                "MAX_CONNECTIONS does not fit under the open-file limit: raise the limit \
                 (LimitNOFILE= in systemd) or lower MAX_CONNECTIONS, or accepting will fail \
                 when the descriptors run out"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = settings;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("address");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        assert_eq!(counted_network(a), counted_network(b));
        assert_ne!(counted_network(a), counted_network(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("address");
        assert_eq!(
            counted_network(mapped),
            "192.0.2.7".parse::<IpAddr>().expect("v4")
        );
    }

    #[test]
    fn an_address_holds_at_most_its_cap_and_gets_places_back() {
        let limits = Limits {
            max_per_address: 2,
            ..Limits::of(&Settings::default())
        };
        let counts = Arc::new(AddressCounts::default());
        let peer: IpAddr = "203.0.113.5".parse().expect("address");
        let first = counts.claim(peer, &limits).expect("first fits");
        let _second = counts.claim(peer, &limits).expect("second fits");
        assert!(counts.claim(peer, &limits).is_none(), "third is refused");
        assert!(counts
            .claim("203.0.113.6".parse().expect("address"), &limits)
            .is_some());
        drop(first);
        assert!(counts.claim(peer, &limits).is_some(), "a place came back");
    }

    #[test]
    fn trusted_proxies_are_not_held_to_the_address_cap() {
        let limits = Limits {
            max_per_address: 1,
            trusted_proxies: vec!["10.0.0.0/8".parse().expect("a network")],
            ..Limits::of(&Settings::default())
        };
        let counts = Arc::new(AddressCounts::default());
        let proxy: IpAddr = "10.1.2.3".parse().expect("address");
        let held: Vec<_> = (0..5)
            .map(|_| counts.claim(proxy, &limits).expect("never refused"))
            .collect();
        assert!(held.iter().all(Option::is_none));
    }
}
