use stormchor_choreography::{Extension, Participation};
use stormchor_macros::ExtensionEffect;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    A,
    B,
}

#[derive(Clone, Debug, ExtensionEffect)]
struct One {
    #[participant]
    role: Role,
}

#[derive(Clone, Debug, ExtensionEffect)]
struct Many(#[participants] Vec<Role>, u8);

#[derive(Clone, Debug, ExtensionEffect)]
struct Global;

fn main() {
    assert_eq!(Extension::new(One { role: Role::B }).participation::<Role>(), Participation::Roles(vec![Role::B]));
    assert_eq!(Extension::new(Many(vec![Role::A], 1)).participation::<Role>(), Participation::Roles(vec![Role::A]));
    assert_eq!(Extension::new(Global).participation::<Role>(), Participation::Everyone);
}
