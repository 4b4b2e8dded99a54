use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Backup, Worker(u16) }

    pub fn scenario(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Backup, Worker[n];
        choice at Coordinator {
            backup => {
                Coordinator -> Worker: Msg::Start;
                Backup -> Coordinator: Msg::Start;
            }
            skip => {
                Coordinator -> Worker: Msg::Stop;
            }
        }
    }
}

fn main() {}
