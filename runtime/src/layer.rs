//! Layers: how middleware is put around a role's endpoint, the same way for every
//! runner (in memory: [`run_all_layered`](crate::run_all_layered); over TCP:
//! [`run_all_over_tcp_layered`](crate::tcp::run_all_over_tcp_layered) and
//! [`run_role_wrapped`](crate::tcp::run_role_wrapped)).
//!
//! A [`Layer`] makes one [`Handler`](crate::Handler) out of another, for one role,
//! wrapping the side it changes (the transport, the effects, or both); [`Layers`]
//! stacks them, the first added outermost (it sees every operation first), as a tower
//! `ServiceBuilder` does. The middleware of this crate has a layer each:
//! [`TraceLayer`](crate::TraceLayer) and [`MetricsLayer`](crate::MetricsLayer) (both
//! sides), [`RetryLayer`](crate::RetryLayer) (effects),
//! [`FaultLayer`](crate::FaultLayer) (both sides).

/// Wraps a role's handler `H` in another handler (middleware), for role `R`.
///
/// # Example
/// ```
/// use stormchor_runtime::{memory_mesh, Handler, Layer, Traced, Transport};
///
/// /// Traces the transport side only: a layer of one's own.
/// struct TraceFrames;
/// impl<R, T, E> Layer<R, Handler<T, E>> for TraceFrames {
///     type Handler = Handler<Traced<T>, E>;
///     fn layer(&self, _role: R, inner: Handler<T, E>) -> Self::Handler {
///         inner.map_transport(Traced::new)
///     }
/// }
///
/// let (mut handlers, _) = memory_mesh::<&str, u8>(&["a", "b"]);
/// let traced = TraceFrames.layer("a", handlers.remove(0));
/// assert_eq!(traced.transport.role(), "a");
/// ```
pub trait Layer<R, H> {
    /// The handler it makes.
    type Handler;

    /// Wraps `inner`, the handler of `role`.
    fn layer(&self, role: R, inner: H) -> Self::Handler;
}

/// The layer that adds nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl<R, H> Layer<R, H> for Identity {
    type Handler = H;

    fn layer(&self, _role: R, inner: H) -> H {
        inner
    }
}

/// Two layers, `inner` put on first, then `outer` around it.
#[derive(Clone, Debug)]
pub struct Stack<Inner, Outer> {
    inner: Inner,
    outer: Outer,
}

impl<R: Copy, H, Inner: Layer<R, H>, Outer: Layer<R, Inner::Handler>> Layer<R, H>
    for Stack<Inner, Outer>
{
    type Handler = Outer::Handler;

    fn layer(&self, role: R, inner: H) -> Self::Handler {
        self.outer.layer(role, self.inner.layer(role, inner))
    }
}

/// A stack of layers, built one at a time: the first added is the outermost.
///
/// # Example
/// ```
/// use stormchor_choreography::Program;
/// use stormchor_runtime::{run_all_layered, Layers, MetricsLayer, Metrics, RoleSetup, RunConfig, TraceLayer};
///
/// let program: Program<&str, u64> = Program::new().send("a", "b", 1).send("b", "a", 2);
/// let metrics = Metrics::new();
/// // Traced(Metered(endpoint)) for every role.
/// let layers = Layers::new().with(TraceLayer).with(MetricsLayer::new(metrics.clone()));
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
/// let report = rt
///     .block_on(run_all_layered(&program, |_| RoleSetup::new(()), RunConfig::default(), &layers))
///     .expect("sound program");
/// assert!(report.is_success());
/// assert_eq!(metrics.snapshot()["recv"].count, 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Layers<L = Identity>(L);

impl Layers {
    /// No layers yet.
    pub fn new() -> Self {
        Layers(Identity)
    }
}

impl<L> Layers<L> {
    /// These layers with `layer` inside them (closer to the endpoint).
    pub fn with<N>(self, layer: N) -> Layers<Stack<N, L>> {
        Layers(Stack {
            inner: layer,
            outer: self.0,
        })
    }
}

impl<R, H, L: Layer<R, H>> Layer<R, H> for Layers<L> {
    type Handler = L::Handler;

    fn layer(&self, role: R, inner: H) -> Self::Handler {
        self.0.layer(role, inner)
    }
}
