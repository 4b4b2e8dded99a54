//! Shared test vocabulary: roles, messages and extension effects.
#![allow(dead_code, missing_docs, unused_imports)]

use std::any::{Any, TypeId};

use stormchor_choreography::ExtensionEffect;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Coordinator,
    Backup,
    Worker(u16),
}

pub use Role::{Backup, Coordinator, Worker};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Msg {
    Start,
    Stop,
    Rows(u64),
    Lsn(u64),
    Verdict(bool),
}

/// Implements `ExtensionEffect` for a `Clone + Debug` struct, taking its participants
/// from an expression over `self`.
macro_rules! extension {
    ($ty:ty, |$this:ident| $roles:expr) => {
        impl ExtensionEffect for $ty {
            fn effect_type_id(&self) -> TypeId {
                TypeId::of::<Self>()
            }
            fn type_name(&self) -> &'static str {
                stringify!($ty)
            }
            fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
                let $this = self;
                $roles
            }
            fn as_any(&self) -> &dyn Any {
                self
            }
            fn as_any_mut(&mut self) -> &mut dyn Any {
                self
            }
            fn clone_box(&self) -> Box<dyn ExtensionEffect> {
                Box::new(self.clone())
            }
        }
    };
}

/// Runs on one role.
#[derive(Clone, Debug)]
pub struct RunWorkload {
    pub on: Role,
    pub seconds: u32,
}
extension!(RunWorkload, |e| vec![Box::new(e.on)]);

/// Runs on every role.
#[derive(Clone, Debug)]
pub struct LogPhase(pub &'static str);
extension!(LogPhase, |_e| Vec::new());

/// Runs on several roles.
#[derive(Clone, Debug)]
pub struct Checksum {
    pub on: Vec<Role>,
}
extension!(Checksum, |e| e
    .on
    .iter()
    .map(|r| Box::new(*r) as Box<dyn Any>)
    .collect());

/// Names roles of another choreography's role type.
#[derive(Clone, Debug)]
pub struct Foreign {
    pub on: &'static str,
}
extension!(Foreign, |e| vec![Box::new(e.on)]);
