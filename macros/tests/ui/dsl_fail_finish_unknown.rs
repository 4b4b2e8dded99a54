use stormchor_choreography::Program;
use stormchor_macros::{choreography, ExtensionEffect};

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

#[derive(Clone, Debug, ExtensionEffect)]
pub struct RunWorkload { pub seconds: u32 }

choreography! {
    pub enum Role { Coordinator, Backup }

    pub fn scenario() -> Program<Role, Msg> {
        roles Coordinator, Backup;
        Coordinator -> Backup: Msg::Start;
        ext finish load @ Backup;
    }
}

fn main() {}
