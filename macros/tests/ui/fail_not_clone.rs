use stormchor_macros::ExtensionEffect;

#[derive(Debug, ExtensionEffect)]
struct NotClone {
    seconds: u32,
}

fn main() {}
