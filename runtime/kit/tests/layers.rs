//! A kit program's roles run with the same middleware ([`kit_layers`]) in one process
//! and each in a process of its own over TCP: a `tracing` subscriber sees the same
//! spans from both. One test in its own binary: the subscriber is the process's.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stormchor_kit::effects::Phase;
use stormchor_kit::process::{Peers, Placement, run_role};
use stormchor_kit::{Kit, KitRole, Program, ScenarioOptions, run_program};
use stormchor_runtime::tcp::Liveness;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Primary,
}
impl KitRole for Role {}

/// Counts the spans opened, by name.
#[derive(Default)]
struct Spans {
    by_name: Mutex<BTreeMap<&'static str, u64>>,
    next: AtomicU64,
}

static SPANS: std::sync::LazyLock<&'static Spans> =
    std::sync::LazyLock::new(|| Box::leak(Box::default()));

struct Counting(&'static Spans);

impl Subscriber for Counting {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        *self
            .0
            .by_name
            .lock()
            .expect("counts")
            .entry(span.metadata().name())
            .or_default() += 1;
        Id::from_u64(self.0.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn ext_spans() -> u64 {
    SPANS
        .by_name
        .lock()
        .expect("counts")
        .get("ext")
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_runners_give_every_role_the_kit_layers() {
    tracing::subscriber::set_global_default(Counting(*SPANS)).expect("the only subscriber");
    let program: Program<Role, _> = Program::new()
        .role(Role::Primary)
        .ext(Phase("one"))
        .ext(Phase("two"))
        .ext(Phase("three"));
    let options = ScenarioOptions::short();

    let before = ext_spans();
    let report = run_program(
        "three phases",
        &program,
        &options,
        Kit::new().expect("the kit"),
    )
    .await
    .expect("runs");
    assert!(report.success, "{}", report.render());
    let in_process = ext_spans() - before;
    assert_eq!(in_process, 3, "one span per effect");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("its address");
    let placement = Placement {
        listener,
        peers: Peers::new([("Primary".to_owned(), address)].into()),
        connect_timeout: Duration::from_secs(10),
        liveness: Liveness::default(),
    };
    let before = ext_spans();
    let result = run_role(
        "three phases",
        &program,
        &options,
        Kit::new().expect("the kit"),
        "Primary",
        placement,
    )
    .await
    .expect("runs");
    assert!(result.completed, "{:?}", result.failure);
    assert_eq!(ext_spans() - before, in_process);
}
