//! What the runtime tests share: role data with its logic, extension effects and
//! their handlers, and the scenarios that run over every transport.
#![allow(dead_code, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use super::common::*;
use stormchor_choreography::{Family, Program};
use stormchor_macros::ExtensionEffect;
use stormchor_runtime::{EffectFailure, ExtensionRegistry, Labels, RoleLogic, RoleState};
use tokio::sync::Notify;

pub type P = Program<Role, Msg>;

/// Role data used by these tests: a counter, a choice and a rendezvous.
#[derive(Debug, Default)]
pub struct Data {
    pub counter: AtomicU64,
    pub rounds: u64,
    pub pick: &'static str,
    pub signal: Notify,
}

impl RoleLogic<Role, Msg> for Data {
    fn message(state: &RoleState<Role, Msg, Self>, _to: Role, template: &Msg) -> Msg {
        match template {
            // Answer with one more than the last count received, or with our counter.
            Msg::Rows(_) => {
                let last = [Coordinator, Backup]
                    .iter()
                    .chain([Worker(0)].iter())
                    .filter_map(|peer| match state.latest_from(peer) {
                        Some(Msg::Rows(n)) => Some(n),
                        _ => None,
                    })
                    .max();
                Msg::Rows(last.map_or(state.data().counter.load(Ordering::Relaxed), |n| n + 1))
            }
            // Report the result of the last RunWorkload effect.
            Msg::Lsn(_) => Msg::Lsn(state.result::<RunWorkload, u64>().map_or(0, |v| *v)),
            Msg::Verdict(_) => Msg::Verdict(matches!(state.role(), Worker(i) if i % 2 == 0)),
            other => other.clone(),
        }
    }

    fn choose(state: &RoleState<Role, Msg, Self>, labels: Labels<'_, Role, Msg>) -> usize {
        labels.position(state.data().pick).unwrap_or(0)
    }

    fn keep_looping(state: &RoleState<Role, Msg, Self>, round: u64) -> bool {
        round < state.data().rounds
    }
}

/// Waits until the role's signal is raised.
#[derive(Clone, Debug, ExtensionEffect)]
pub struct WaitForSignal(#[participant] pub Role);
/// Raises the role's signal.
#[derive(Clone, Debug, ExtensionEffect)]
pub struct RaiseSignal(#[participant] pub Role);

pub type Registry = ExtensionRegistry<RoleState<Role, Msg, Data>>;

pub fn registry() -> Arc<Registry> {
    let mut registry = Registry::new();
    registry
        .register::<RunWorkload, u64, _>(|state, effect| {
            Box::pin(async move {
                if effect.seconds >= 1_000 {
                    tokio::time::sleep(Duration::from_secs(u64::from(effect.seconds))).await;
                }
                if effect.seconds == 999 {
                    return Err(EffectFailure::permanent(
                        "the server refused the connection",
                    ));
                }
                if effect.seconds == 666 {
                    panic!("handler bug");
                }
                if effect.seconds == 555 {
                    // Fails twice with a transient error, then succeeds.
                    let calls = state.data().counter.fetch_add(1, Ordering::SeqCst) + 1;
                    return if calls < 3 {
                        Err(EffectFailure::transient("serialization failure"))
                    } else {
                        Ok(calls)
                    };
                }
                if effect.seconds == 777 {
                    // A crash: the process ends without a goodbye.
                    std::process::exit(3);
                }
                Ok(state
                    .data()
                    .counter
                    .fetch_add(u64::from(effect.seconds), Ordering::SeqCst)
                    + u64::from(effect.seconds))
            })
        })
        .expect("register")
        .register::<WaitForSignal, (), _>(|state, _| {
            Box::pin(async move {
                state.data().signal.notified().await;
                Ok(())
            })
        })
        .expect("register")
        .register::<RaiseSignal, (), _>(|state, _| {
            Box::pin(async move {
                state.data().signal.notify_one();
                Ok(())
            })
        })
        .expect("register");
    Arc::new(registry)
}

/// The scenarios that every transport runs, by name, with the data each role starts with.
pub fn scenario(name: &str) -> (P, fn(Role) -> Data) {
    fn plain(_: Role) -> Data {
        Data::default()
    }
    fn abort(_: Role) -> Data {
        Data {
            pick: "abort",
            ..Data::default()
        }
    }
    fn five_rounds(_: Role) -> Data {
        Data {
            rounds: 5,
            ..Data::default()
        }
    }
    match name {
        "ping-pong" => (
            P::new().loop_n(
                10,
                P::new().send(Coordinator, Worker(0), Msg::Rows(0)).send(
                    Worker(0),
                    Coordinator,
                    Msg::Rows(0),
                ),
            ),
            plain,
        ),
        "choice" => {
            let family = Family::indexed("Worker", 3, Worker);
            (
                P::new().choice(
                    Coordinator,
                    [
                        (
                            "commit",
                            P::new().broadcast(Coordinator, &family, Msg::Start).gather(
                                &family,
                                Coordinator,
                                Msg::Verdict(true),
                            ),
                        ),
                        (
                            "abort",
                            P::new().broadcast(Coordinator, &family, Msg::Stop).gather(
                                &family,
                                Coordinator,
                                Msg::Verdict(true),
                            ),
                        ),
                    ],
                ),
                abort,
            )
        }
        "loop-until" => {
            let family = Family::indexed("Worker", 2, Worker);
            (
                P::new().loop_until(
                    Coordinator,
                    P::new()
                        .broadcast(Coordinator, &family, Msg::Rows(0))
                        .ext(RunWorkload {
                            on: Worker(1),
                            seconds: 2,
                        })
                        .gather(&family, Coordinator, Msg::Rows(0)),
                ),
                five_rounds,
            )
        }
        "par" => (
            P::new().par([
                P::new()
                    .ext(WaitForSignal(Backup))
                    .send(Backup, Coordinator, Msg::Lsn(0)),
                P::new()
                    .send(Coordinator, Backup, Msg::Start)
                    .ext(RaiseSignal(Backup)),
            ]),
            plain,
        ),
        "timeout" => (
            P::new().send(Coordinator, Worker(0), Msg::Start).timeout(
                Worker(0),
                Duration::from_millis(100),
                P::new()
                    .ext(RunWorkload {
                        on: Worker(0),
                        seconds: 3_600,
                    })
                    .send(Worker(0), Coordinator, Msg::Stop),
            ),
            plain,
        ),
        "crash-in-effect" => {
            // Worker(0) is inside a long effect (an hour) when Backup's process ends
            // without a goodbye: it must learn of it there, not at its next receive.
            (
                P::new()
                    .send(Coordinator, Worker(0), Msg::Start)
                    // Backup ends only once Worker(0) is past its last receive.
                    .send(Worker(0), Backup, Msg::Start)
                    .par([
                        P::new()
                            .ext(RunWorkload {
                                on: Backup,
                                seconds: 777,
                            })
                            .send(Backup, Coordinator, Msg::Stop),
                        P::new()
                            .ext(RunWorkload {
                                on: Worker(0),
                                seconds: 3_600,
                            })
                            .send(Worker(0), Coordinator, Msg::Stop),
                    ]),
                plain,
            )
        }
        "panic-in-effect" => {
            // The same with Backup's handler panicking (roles in tasks of one process).
            (
                P::new()
                    .send(Coordinator, Worker(0), Msg::Start)
                    // Backup ends only once Worker(0) is past its last receive.
                    .send(Worker(0), Backup, Msg::Start)
                    .par([
                        P::new()
                            .ext(RunWorkload {
                                on: Backup,
                                seconds: 666,
                            })
                            .send(Backup, Coordinator, Msg::Stop),
                        P::new()
                            .ext(RunWorkload {
                                on: Worker(0),
                                seconds: 3_600,
                            })
                            .send(Worker(0), Coordinator, Msg::Stop),
                    ]),
                plain,
            )
        }
        "crash" => {
            let all = Family::new("all", [Backup, Worker(0), Worker(1)]);
            (
                P::new()
                    .broadcast(Coordinator, &all, Msg::Start)
                    .ext(RunWorkload {
                        on: Backup,
                        seconds: 777,
                    })
                    .gather(&all, Coordinator, Msg::Stop)
                    .broadcast(Coordinator, &all, Msg::Stop),
                plain,
            )
        }
        family => {
            let n: u16 = family.trim_start_matches("family-").parse().unwrap_or(1);
            let workers = Family::indexed("Worker", n, Worker);
            (
                P::new()
                    .role(Coordinator)
                    .family(&workers)
                    .broadcast(Coordinator, &workers, Msg::Start)
                    .ext(RunWorkload {
                        on: Coordinator,
                        seconds: 5,
                    })
                    .loop_n(
                        3,
                        P::new().gather(&workers, Coordinator, Msg::Verdict(false)),
                    )
                    .broadcast(Coordinator, &workers, Msg::Lsn(0)),
                plain,
            )
        }
    }
}

/// What a role ended with, in a form that is the same over every transport: the latest
/// message from each role and its counter.
pub fn summary(state: &RoleState<Role, Msg, Data>, roles: &[Role]) -> String {
    let latest: Vec<String> = roles
        .iter()
        .map(|r| format!("{r:?}={:?}", state.latest_from(r)))
        .collect();
    format!(
        "{} counter={}",
        latest.join(" "),
        state.data().counter.load(Ordering::SeqCst)
    )
}
