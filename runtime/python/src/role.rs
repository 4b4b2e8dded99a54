//! Roles and families from Python.
//!
//! A Rust role is a small `Copy` value: here a name (interned) and, for a member of
//! a family, its index. `Role("Coordinator")` and `Family("Worker", 3)[1]` (shown
//! `Worker[1]`) are roles of the same type, so one program mixes them freely.

use std::fmt;

use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use stormchor_choreography::Family;
use stormchor_kit::KitRole;

use crate::rt::intern;

/// A role of a Python program.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Role {
    name: &'static str,
    member: Option<u16>,
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.member {
            None => f.write_str(self.name),
            Some(k) => write!(f, "{}[{k}]", self.name),
        }
    }
}

impl KitRole for Role {
    fn member(&self) -> Option<u16> {
        self.member
    }
}

fn check_name(name: &str) -> PyResult<&'static str> {
    if name.is_empty() || name.contains(['[', ']']) || name.chars().any(char::is_whitespace) {
        return Err(PyValueError::new_err(format!(
            "`{name}` is not a role name: a role name is a non-empty word without brackets or spaces"
        )));
    }
    Ok(intern(name))
}

/// `Role(name)`: one party of a choreography.
#[pyclass(name = "Role", module = "stormchor", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PyRole(pub(crate) Role);

#[pymethods]
impl PyRole {
    #[new]
    fn new(name: &str) -> PyResult<Self> {
        Ok(PyRole(Role {
            name: check_name(name)?,
            member: None,
        }))
    }

    /// The role's name (a family member's is its family's).
    #[getter]
    fn name(&self) -> &'static str {
        self.0.name
    }

    /// The member's index in its family, or None.
    #[getter]
    fn index(&self) -> Option<u16> {
        self.0.member
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.0)
    }

    fn __str__(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// `Family(name, size)`: the roles `name[0]` .. `name[size - 1]`.
#[pyclass(name = "Family", module = "stormchor", frozen)]
#[derive(Clone)]
pub(crate) struct PyFamily(pub(crate) Family<Role>);

#[pymethods]
impl PyFamily {
    #[new]
    fn new(name: &str, size: u16) -> PyResult<Self> {
        let name = check_name(name)?;
        Ok(PyFamily(Family::new(
            name,
            (0..size).map(|k| Role {
                name,
                member: Some(k),
            }),
        )))
    }

    /// The family's name.
    #[getter]
    fn name(&self) -> String {
        self.0.name().to_owned()
    }

    /// The members, in order.
    #[getter]
    fn members(&self) -> Vec<PyRole> {
        self.0.members().iter().copied().map(PyRole).collect()
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __getitem__(&self, index: isize) -> PyResult<PyRole> {
        let len = self.0.len() as isize;
        let at = if index < 0 { index + len } else { index };
        self.0
            .members()
            .get(usize::try_from(at).unwrap_or(usize::MAX))
            .copied()
            .map(PyRole)
            .ok_or_else(|| {
                PyIndexError::new_err(format!(
                    "family {} has {} members; there is no member {index}",
                    self.0.name(),
                    len
                ))
            })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let members = slf.members();
        Ok(pyo3::types::PyList::new(py, members)?
            .call_method0("__iter__")?
            .unbind())
    }

    fn __repr__(&self) -> String {
        format!("Family({:?}, {})", self.0.name(), self.0.len())
    }
}

/// A role argument.
pub(crate) fn role_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Role> {
    obj.extract::<PyRole>().map(|r| r.0).map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a Role (or a member of a Family), not {}",
            type_name(obj)
        ))
    })
}

/// A family argument: a Family, or a list of roles.
pub(crate) fn family_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Family<Role>> {
    if let Ok(family) = obj.extract::<PyRef<'_, PyFamily>>() {
        return Ok(family.0.clone());
    }
    let roles: Vec<Role> = roles_arg(obj, what)?;
    Ok(Family::new("group", roles))
}

/// A list of roles (a Family counts as its members).
pub(crate) fn roles_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Role>> {
    if let Ok(family) = obj.extract::<PyRef<'_, PyFamily>>() {
        return Ok(family.0.members().to_vec());
    }
    if let Ok(role) = obj.extract::<PyRole>() {
        return Ok(vec![role.0]);
    }
    let iter = obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a Family, a Role or a list of roles, not {}",
            type_name(obj)
        ))
    })?;
    let mut roles = Vec::new();
    for item in iter {
        roles.push(role_arg(&item?, what)?);
    }
    Ok(roles)
}

/// The Python type name of `obj`, for errors.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}
