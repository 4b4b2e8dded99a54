// Tokens between two choreographies that are no item: one error, at them; both
// choreographies are still generated.
use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Worker(u16) }

    pub fn first(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[n];
        Coordinator -> Worker: Msg::Start;
    };

    pub fn second(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[n];
        Worker -> Coordinator: Msg::Stop;
    }
}

fn main() {
    let _ = (first(2), second(2), Role::Worker(0));
}
