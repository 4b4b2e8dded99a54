use stormchor_choreography::Program;
use stormchor_macros::choreography;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg { Start, Stop }

choreography! {
    pub enum Role { Coordinator, Backup, Worker(u16) }

    pub fn scenario(n: u16) -> Vec<Role> {
        roles Coordinator, Worker[n];
        Coordinator -> Worker: Msg::Start;
    }
}

fn main() {
    let _: Vec<Role> = scenario(2);
}
