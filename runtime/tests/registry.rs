//! The extension registry: registration, merging, dispatch and its errors.

#[path = "../../choreography/tests/common/mod.rs"]
mod common;

use std::any::{Any, TypeId};
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use stormchor_choreography::{Extension, ExtensionEffect};
use stormchor_runtime::{EffectFailure, ExtensionError, ExtensionRegistry, RegistryError};

type Registry = ExtensionRegistry<AtomicU64>;

fn workload_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<RunWorkload, u64, _>(|total, effect| {
            Box::pin(async move {
                Ok(total.fetch_add(u64::from(effect.seconds), Ordering::SeqCst)
                    + u64::from(effect.seconds))
            })
        })
        .expect("first registration");
    registry
}

fn checksum_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Checksum, (), _>(|_, effect| {
            Box::pin(async move {
                if effect.on.is_empty() {
                    Err(EffectFailure::transient("no node to checksum yet"))
                } else {
                    Ok(())
                }
            })
        })
        .expect("first registration");
    registry
}

/// An effect that claims to be a `RunWorkload` but is not one.
#[derive(Clone, Debug)]
struct Impostor;

impl ExtensionEffect for Impostor {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<RunWorkload>()
    }
    fn type_name(&self) -> &'static str {
        "Impostor"
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        Vec::new()
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

#[tokio::test]
async fn handlers_dispatch_by_type_and_return_values() {
    let registry = workload_registry();
    let total = AtomicU64::new(0);
    let value = registry
        .handle(
            &total,
            &Extension::new(RunWorkload {
                on: Worker(0),
                seconds: 30,
            }),
            &Worker(0),
        )
        .await
        .expect("handled")
        .and_then(|v| v.downcast::<u64>().ok());
    assert_eq!(value.map(|v| *v), Some(30));
    assert_eq!(total.load(Ordering::SeqCst), 30);
    assert!(registry.handles::<RunWorkload>());
    assert!(!registry.handles::<Checksum>());
}

#[test]
fn a_second_handler_for_a_type_is_refused() {
    let mut registry = workload_registry();
    let error = registry
        .register::<RunWorkload, (), _>(|_, _| Box::pin(async { Ok(()) }))
        .expect_err("duplicate");
    assert_eq!(
        error,
        RegistryError::Duplicate {
            effect: "RunWorkload"
        }
    );
    assert_eq!(registry.len(), 1);
}

#[tokio::test]
async fn registries_from_several_crates_merge() {
    let mut registry = workload_registry();
    registry.merge(checksum_registry()).expect("no conflict");
    assert_eq!(registry.len(), 2);
    let total = AtomicU64::new(0);
    let unit = registry
        .handle(
            &total,
            &Extension::new(Checksum { on: vec![Backup] }),
            &Backup,
        )
        .await
        .expect("handled");
    assert!(unit.is_none(), "() results are not kept");

    let conflict = registry.merge(workload_registry()).expect_err("conflict");
    assert_eq!(
        conflict,
        RegistryError::MergeConflict {
            effect: "RunWorkload"
        }
    );
    assert_eq!(registry.len(), 2, "a failed merge moves nothing");
}

#[tokio::test]
async fn unknown_types_mismatches_and_failures_are_errors() {
    let registry = workload_registry();
    let total = AtomicU64::new(0);
    let unknown = registry
        .handle(&total, &Extension::new(LogPhase("x")), &Coordinator)
        .await
        .expect_err("not registered");
    assert!(
        matches!(unknown, ExtensionError::HandlerNotRegistered { effect: "LogPhase", ref role } if role == "Coordinator")
    );

    let mismatch = registry
        .handle(&total, &Extension::new(Impostor), &Coordinator)
        .await
        .expect_err("mismatch");
    assert!(
        matches!(
            mismatch,
            ExtensionError::TypeMismatch {
                expected: "RunWorkload",
                actual: "Impostor"
            }
        ),
        "{mismatch}"
    );

    let checksums = checksum_registry();
    let failed = checksums
        .handle(&total, &Extension::new(Checksum { on: vec![] }), &Backup)
        .await
        .expect_err("failed");
    assert!(failed.is_transient());
    assert_eq!(
        failed.to_string(),
        "extension effect Checksum failed on role Backup: no node to checksum yet"
    );
}

#[tokio::test]
async fn unit_handlers_dispatch_and_check_types_too() {
    let mut registry = Registry::new();
    registry
        .register_unit::<RunWorkload, _>(|total, effect| {
            Box::pin(async move {
                total.fetch_add(u64::from(effect.seconds), Ordering::SeqCst);
                Ok(())
            })
        })
        .expect("registered");
    let total = AtomicU64::new(0);
    let kept = registry
        .handle(
            &total,
            &Extension::new(RunWorkload {
                on: Worker(0),
                seconds: 4,
            }),
            &Worker(0),
        )
        .await
        .expect("handled");
    assert!(kept.is_none());
    assert_eq!(total.load(Ordering::SeqCst), 4);
    let mismatch = registry
        .handle(&total, &Extension::new(Impostor), &Coordinator)
        .await
        .expect_err("mismatch");
    assert!(
        matches!(
            mismatch,
            ExtensionError::TypeMismatch {
                expected: "RunWorkload",
                actual: "Impostor"
            }
        ),
        "{mismatch}"
    );
    let duplicate = registry
        .register::<RunWorkload, (), _>(|_, _| Box::pin(async { Ok(()) }))
        .expect_err("taken");
    assert_eq!(
        duplicate,
        RegistryError::Duplicate {
            effect: "RunWorkload"
        }
    );
}
