//! A load client's connection driven on the client's own task.
//!
//! tokio-postgres splits a connection into a `Client` (which queues requests) and a
//! `Connection` future (which writes them and routes the replies); the usual way spawns
//! the future as a task of its own, so every statement costs two task switches (the
//! request wakes the connection's task, the reply wakes the client's) and the
//! scheduler's work around them. [`Driver::drive`] instead polls the connection together
//! with the operation, in one task: a request goes out in the same poll that made it,
//! and a reply reaches the operation in the same poll that read it. The wake-ups the two
//! give each other while being polled only ask for another pass of the loop (they do
//! not go through the runtime's scheduler); the socket's wake-ups reach the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::task::AtomicWaker;

/// A client's connection to the server, as tokio-postgres makes it.
pub(crate) type Connection =
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>;

/// Passes of the operation and the connection in one poll before yielding to the
/// runtime (which also renews tokio's cooperative budget).
const PASSES: usize = 8;

/// The waker the operation and the connection see.
struct Wakes {
    /// Set while [`Driver::drive`] polls: a wake-up then asks for another pass only.
    polling: AtomicBool,
    /// A wake-up came while polling.
    again: AtomicBool,
    /// The task's own waker, for wake-ups from outside the poll (the socket's).
    task: AtomicWaker,
}

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.again.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.task.wake();
        }
    }
}

/// Drives one connection on the task of the operations that use it.
pub(crate) struct Driver {
    /// `None` once it has ended (the operations' requests then fail as connection lost).
    connection: Option<Connection>,
    wakes: Arc<Wakes>,
    waker: Waker,
}

impl Driver {
    pub(crate) fn new(connection: Connection) -> Self {
        let wakes = Arc::new(Wakes {
            polling: AtomicBool::new(false),
            again: AtomicBool::new(false),
            task: AtomicWaker::new(),
        });
        Driver {
            connection: Some(connection),
            waker: Waker::from(wakes.clone()),
            wakes,
        }
    }

    /// Runs `operation` (which uses this connection's client) to its end while driving
    /// the connection.
    pub(crate) async fn drive<F: Future>(&mut self, operation: F) -> F::Output {
        let mut operation = std::pin::pin!(operation);
        std::future::poll_fn(|cx| self.poll_with(operation.as_mut(), cx)).await
    }

    fn poll_with<F: Future>(
        &mut self,
        mut operation: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        self.wakes.task.register(cx.waker());
        let mut inner = Context::from_waker(&self.waker);
        for _ in 0..PASSES {
            self.wakes.again.store(false, Ordering::SeqCst);
            self.wakes.polling.store(true, Ordering::SeqCst);
            // The operation sends its request or takes its reply; the connection writes
            // the requests queued and reads the replies there are.
            let output = operation.as_mut().poll(&mut inner);
            if output.is_pending() {
                let ended = match &mut self.connection {
                    Some(connection) => Pin::new(connection).poll(&mut inner).is_ready(),
                    None => false,
                };
                if ended {
                    // The server went away: the requests fail now.
                    self.connection = None;
                }
            }
            self.wakes.polling.store(false, Ordering::SeqCst);
            if output.is_ready() {
                return output;
            }
            // Cleared after `polling`: a wake-up from elsewhere in between either woke
            // the task or shows here.
            if !self.wakes.again.swap(false, Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        // Still busy: let the runtime run (and renew the budget), then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Whether the connection has ended (the server went away or closed it).
    pub(crate) fn is_closed(&self) -> bool {
        self.connection.is_none()
    }

    /// Lets the connection finish (its client is gone: it says goodbye to the server
    /// and ends), within a bound.
    pub(crate) async fn close(self) {
        if let Some(connection) = self.connection {
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        }
    }
}
