// `at` where an effect's roles need `@`: one error, and the enum and the function
// still exist for the code that uses them.
use stormchor_choreography::Program;
use stormchor_macros::{ExtensionEffect, choreography};

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

#[derive(Clone, Debug, ExtensionEffect)]
pub struct RunWorkload { pub seconds: u32 }

choreography! {
    pub enum Role { Coordinator, Worker(u16) }

    pub fn scenario(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[n];
        Coordinator -> Worker: Msg::Start;
        ext RunWorkload { seconds: 1 } at Worker;
    }
}

fn main() {
    let program: Program<Role, Msg> = scenario(3);
    let _ = (program, Role::Coordinator, Role::Worker(0));
}
