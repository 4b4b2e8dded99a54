//! Recovery times: from each kill to the first acknowledged commit after it, and to
//! the restart of the killed server, each before the next kill.

use std::time::Duration;

use stormchor_kit::{EventKind, EventRecord, Recovery};

fn event(role: &str, kind: EventKind, ms: u64) -> EventRecord {
    EventRecord {
        role: role.to_owned(),
        kind,
        detail: String::new(),
        at: Duration::from_millis(ms),
    }
}

#[test]
fn each_kill_recovers_at_the_first_resumption_after_it_and_before_the_next_kill() {
    let events = vec![
        event("Worker(0)", EventKind::Resumed, 100),
        event("Primary", EventKind::Kill, 1_000),
        event("Primary", EventKind::Restart, 1_250),
        event("Worker(1)", EventKind::Resumed, 1_300),
        event("Worker(0)", EventKind::Resumed, 1_320),
        event("Primary", EventKind::Kill, 2_000),
        // No commit came back before the next kill.
        event("Replica", EventKind::Restart, 2_100),
        event("Primary", EventKind::Kill, 3_000),
        event("Worker(0)", EventKind::Resumed, 3_500),
    ];
    let recoveries = Recovery::of(&events);
    assert_eq!(recoveries.len(), 3);
    assert_eq!(recoveries[0].time(), Some(Duration::from_millis(300)));
    assert_eq!(recoveries[0].resumed_by.as_deref(), Some("Worker(1)"));
    assert_eq!(
        recoveries[0].restarted_at,
        Some(Duration::from_millis(1_250))
    );
    assert_eq!(recoveries[1].time(), None, "{:?}", recoveries[1]);
    // Another role's restart is not this server's.
    assert_eq!(recoveries[1].restarted_at, None);
    assert_eq!(recoveries[2].time(), Some(Duration::from_millis(500)));
    assert!(
        Recovery::of(&events[..1]).is_empty(),
        "no kill, no recovery"
    );
}
