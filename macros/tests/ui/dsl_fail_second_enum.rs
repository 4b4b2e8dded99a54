// A second role enum: one error, at its name; the first enum and the choreography
// stay.
use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Worker(u16) }

    pub enum Other { Coordinator }

    pub fn scenario(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[n];
        Coordinator -> Worker: Msg::Start;
    }
}

fn main() {
    let _ = (scenario(2), Role::Coordinator);
}
