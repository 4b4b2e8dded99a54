use stormchor_macros::ExtensionEffect;

#[derive(Clone, Debug, ExtensionEffect)]
enum Crash {
    Now,
    Later,
}

fn main() {}
