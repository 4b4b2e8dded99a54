use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Backup, Worker(u16) }

    pub fn scenario(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[n];
        timeout std::time::Duration::from_secs(0) at Coordinator {
            Coordinator -> Worker: Msg::Start;
        }
    }
}

fn main() {}
