//! Every construct of the DSL in one choreography, over a role enum declared
//! elsewhere (not in the invocation).
use std::time::Duration;

use stormchor_choreography::{Program, primitives, project_all};
use stormchor_macros::{ExtensionEffect, choreography};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Coordinator,
    Backup,
    Worker(u16),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    Start,
    Rows(u64),
    Verdict(bool),
}

#[derive(Clone, Debug, ExtensionEffect)]
pub struct RunWorkload {
    pub seconds: u32,
}

choreography! {
    /// All of it.
    pub fn everything(workers: u16, rounds: u64) -> Program<Role, Msg> {
        roles Coordinator, Backup, Worker[workers];
        let seconds = 3;
        Coordinator -> Worker: Msg::Start;
        ext RunWorkload { seconds } @ Worker;
        Worker -> Coordinator: Msg::Rows(0);
        choice at Coordinator {
            backup => {
                Coordinator -> Backup: Msg::Verdict(true);
                timeout Duration::from_secs(30) at Backup {
                    Backup -> Coordinator: Msg::Rows(1);
                }
            }
            skip => { Coordinator -> Backup: Msg::Verdict(false); }
        }
        loop rounds {
            par { Coordinator -> Worker[0]: Msg::Start; } and { Backup -> Coordinator: Msg::Start; }
        }
        loop until Coordinator {
            for w in Worker { w -> Coordinator: Msg::Rows(2); }
        }
        call primitives::barrier(Coordinator, Worker, Msg::Start, Msg::Start);
    }
}

fn main() {
    let program = everything(3, 2);
    assert!(project_all(&program).is_ok());
}
