//! The live progress line of a workload run (indicatif).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use stormchor::workloads::Live;

/// A live line on the terminal (elapsed, throughput, p99, errors) while a load runs;
/// nothing when standard error is not a terminal.
pub fn show_progress(live: Arc<Live>, duration: Duration) -> Option<tokio::task::JoinHandle<()>> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(duration.as_secs().max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut last = 0u64;
        let mut p99 = 0.0;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let done = live.successes.load(Ordering::Relaxed);
            let recent = live.take_recent();
            if !recent.is_empty() {
                p99 = recent.value_at_quantile(0.99) as f64 / 1e3;
            }
            bar.set_position(started.elapsed().as_secs());
            bar.set_message(format!(
                "{done} ops, {} ops/s, p99 {p99:.2} ms, {} errors",
                done - last,
                live.failures.load(Ordering::Relaxed)
            ));
            last = done;
            if started.elapsed() >= duration {
                bar.finish_and_clear();
                return;
            }
        }
    }))
}
