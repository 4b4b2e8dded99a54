//! Signals during a run: SIGINT, SIGTERM and SIGHUP stop it the same way (the load
//! stops after the operations in flight, server programs and waits end at once, the
//! report is still written, marked interrupted); a second signal removes the servers
//! at once and exits 128 + its number.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use stormchor::postgres::{first_signal, interrupt, remove_all_clusters_now};

/// The number of the signal that stopped the run; 0 while none did.
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

/// The signal that stopped the run, if one did.
pub fn signalled() -> Option<i32> {
    match SIGNALLED.load(Ordering::SeqCst) {
        0 => None,
        number => Some(number),
    }
}

/// A signal's name (`SIGTERM`).
pub fn signal_name(number: i32) -> String {
    match number {
        1 => "SIGHUP".to_owned(),
        2 => "SIGINT".to_owned(),
        15 => "SIGTERM".to_owned(),
        other => format!("signal {other}"),
    }
}

/// The name of the signal that cut the run short, for its report's `interrupted`,
/// when one did (and says so on standard output).
pub fn interruption() -> Option<String> {
    let name = signal_name(signalled()?);
    println!("\nINTERRUPTED by {name}: the report covers what ran until then.");
    Some(name)
}

/// Watches for the signals on `runtime`; the first sets `stop` and interrupts the
/// servers' programs and waits, a second removes the servers and exits.
pub fn watch(runtime: &tokio::runtime::Runtime, stop: Arc<AtomicBool>) {
    runtime.spawn(async move {
        let number = first_signal().await;
        SIGNALLED.store(number, Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        interrupt();
        stormchor::kit::interrupt::request();
        eprintln!(
            "\nStopping on {} (send it again to stop at once) ...",
            signal_name(number)
        );
        let again = first_signal().await;
        remove_all_clusters_now();
        std::process::exit(128 + again);
    });
}
