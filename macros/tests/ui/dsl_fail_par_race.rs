use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Backup, Worker(u16) }

    pub fn scenario(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Backup, Worker[n];
        par {
            Coordinator -> Backup: Msg::Start;
        } and {
            Coordinator -> Worker: Msg::Start;
        } and {
            Coordinator -> Backup: Msg::Stop;
        }
    }
}

fn main() {}
