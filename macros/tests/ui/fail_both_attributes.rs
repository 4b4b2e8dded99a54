use stormchor_macros::ExtensionEffect;

#[derive(Clone, Debug, ExtensionEffect)]
struct Confused {
    #[participant]
    #[participants]
    roles: Vec<u8>,
}

fn main() {}
