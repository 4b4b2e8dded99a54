use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Backup, Worker(u16) }

    pub fn scenario(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[n];
        choice at Coordinator {
            first => {
                Coordinator -> Worker[0]: Msg::Start;
                Worker[1] -> Coordinator: Msg::Stop;
            }
            second => {
                Coordinator -> Worker[0]: Msg::Stop;
            }
        }
    }
}

fn main() {}
