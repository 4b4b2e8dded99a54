// A missing `;` after the last statement: the error covers that statement, the
// enum and the function still exist.
use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Worker(u16) }

    pub fn scenario(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[n];
        Coordinator -> Worker: Msg::Start
    }
}

fn main() {
    let _: Program<Role, Msg> = scenario(2);
    let _ = Role::Coordinator;
}
