// A syntax error in the second of two choreographies: one error, at it; the first
// choreography, the second's signature and the enum are all there for their callers.
use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Backup, Worker(u16) }

    pub fn first(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Worker[n];
        Coordinator -> Worker: Msg::Start;
    }

    pub fn second(n: u16) -> Program<Role, Msg> {
        roles Coordinator, Backup, Worker[n];
        choice at Coordinator {
            go => { Coordinator -> Backup Msg::Start; }
            stop => { Coordinator -> Backup: Msg::Stop; }
        }
    }
}

fn main() {
    let program: Program<Role, Msg> = first(3);
    let other: Program<Role, Msg> = second(3);
    let _ = (program, other, Role::Coordinator, Role::Backup, Role::Worker(0));
}
