// A missing `;` between two statements: one error, and the enum and the function
// still exist for the code that uses them.
use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Worker(u16) }

    pub fn scenario(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[n];
        Coordinator -> Worker: Msg::Start
        Worker -> Coordinator: Msg::Stop;
    }
}

fn main() {
    let program: Program<Role, Msg> = scenario(3);
    let _ = (program, Role::Coordinator, Role::Worker(0));
}
