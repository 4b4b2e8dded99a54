//! Typed values between roles: a [`Slot`] names a value and fixes its type; a message
//! [`Carry`]s the value of a slot from its sender to its receiver.
//!
//! A role holds a slot's value once one of its effects produced it
//! ([`Produce`], written `effect.into_slot(SLOT)`) or once it received it. Sender
//! and receiver name the same `Slot<T>` constant, so a receiver cannot read a value
//! of another type than the one sent: that is a compile error. A message whose slot
//! has no value at the sender is refused by the receiver with an error naming both.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::marker::PhantomData;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a slot can hold: a value that can travel between processes.
///
/// # Example
/// ```
/// use serde::{Deserialize, Serialize};
/// use stormchor_kit::{Slot, Values};
///
/// // Any serde type that is Clone + Debug + Send + Sync is a value (a blanket impl).
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// struct Position { timeline: u32, lsn: u64 }
///
/// const WHERE: Slot<Position> = Slot::new("position");
/// let values = Values::new("Replica");
/// values.put(WHERE, &Position { timeline: 2, lsn: 42 }).expect("encodes");
/// assert_eq!(values.get(WHERE).expect("held").timeline, 2);
/// ```
pub trait Value: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {}

impl<T> Value for T where T: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {}

/// The name and type of a value that roles produce and pass on.
///
/// # Example
/// ```
/// use stormchor_kit::{Carry, Slot};
///
/// const ROWS: Slot<u64> = Slot::new("rows");
/// let template: Carry = ROWS.carry();
/// assert_eq!(template.slot(), "rows");
/// assert!(template.payload().is_none());
/// ```
///
/// A value of one type cannot be read as another: an effect that reads a recorded
/// point cannot be given a server's address,
/// ```compile_fail,E0308
/// use stormchor_kit::effects::CompareChecksums;
/// use stormchor_kit::slots::{CHECKSUMS, PRIMARY};
///
/// let _ = CompareChecksums { expected: PRIMARY, found: CHECKSUMS, in_order: false };
/// ```
/// and an effect's output goes only into a slot of its own output type:
/// ```compile_fail,E0308
/// use stormchor_kit::DbEffect;
/// use stormchor_kit::effects::RecordPoint;
/// use stormchor_kit::slots::{CHECKSUMS, PRIMARY};
///
/// let _ = RecordPoint { on: PRIMARY }.into_slot(CHECKSUMS); // a Point is no Checksums
/// ```
/// while the right slots compile:
/// ```
/// use stormchor_kit::DbEffect;
/// use stormchor_kit::effects::{CompareChecksums, RecordPoint};
/// use stormchor_kit::slots::{CHECKSUMS, POINT, PRIMARY};
///
/// let _ = CompareChecksums { expected: POINT, found: CHECKSUMS, in_order: false };
/// let _ = RecordPoint { on: PRIMARY }.into_slot(POINT);
/// ```
pub struct Slot<T> {
    name: &'static str,
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Slot<T> {}

impl<T> PartialEq for Slot<T> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl<T> Debug for Slot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

impl<T> Slot<T> {
    /// A slot called `name`. Two slots of one program with the same name are the
    /// same slot; give each value its own name.
    pub const fn new(name: &'static str) -> Self {
        Slot {
            name,
            kind: PhantomData,
        }
    }

    /// The slot's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The message template that carries this slot's value from its sender.
    pub fn carry(self) -> Carry {
        Carry {
            slot: Cow::Borrowed(self.name),
            payload: None,
            signal: false,
        }
    }
}

/// The message of kit programs: the value of one slot, encoded.
///
/// In a program it is a template (no payload); the sender fills the payload from
/// the value it holds. Two carries are the same message when they name the same slot.
///
/// # Example
/// ```
/// use stormchor_kit::slots::PRIMARY;
/// use stormchor_kit::Carry;
///
/// // In a program a carry is a template: the sender fills in the value it holds.
/// let template = PRIMARY.carry();
/// assert_eq!(template.slot(), "primary");
/// assert!(template.payload().is_none() && !template.is_signal());
/// assert_eq!(template, Carry::from(PRIMARY));
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct Carry {
    slot: Cow<'static, str>,
    payload: Option<Vec<u8>>,
    signal: bool,
}

impl Carry {
    /// A message that carries no value, only the fact that it was sent ("go", "done").
    ///
    /// # Example
    /// ```
    /// use stormchor_kit::Carry;
    ///
    /// assert!(Carry::signal("go").is_signal());
    /// assert_eq!(Carry::signal("go"), Carry::signal("go"));
    /// ```
    pub fn signal(name: &'static str) -> Carry {
        Carry {
            slot: Cow::Borrowed(name),
            payload: None,
            signal: true,
        }
    }

    /// Whether this message carries no value.
    pub fn is_signal(&self) -> bool {
        self.signal
    }

    /// The slot this message carries.
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// The encoded value, when it carries one.
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    pub(crate) fn filled(&self, payload: Option<Vec<u8>>) -> Carry {
        Carry {
            slot: self.slot.clone(),
            payload,
            signal: self.signal,
        }
    }
}

impl PartialEq for Carry {
    fn eq(&self, other: &Self) -> bool {
        self.slot == other.slot && self.signal == other.signal
    }
}

impl Debug for Carry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.payload {
            None => write!(f, "{}", self.slot),
            Some(bytes) => write!(f, "{} ({} bytes)", self.slot, bytes.len()),
        }
    }
}

impl<T> From<Slot<T>> for Carry {
    fn from(slot: Slot<T>) -> Carry {
        slot.carry()
    }
}

/// Why a slot's value cannot be read.
///
/// # Example
/// ```
/// use stormchor_kit::{Slot, ValueError, Values};
///
/// const POINT: Slot<u64> = Slot::new("point");
/// let values = Values::new("Backup");
/// let missing = values.get(POINT).unwrap_err();
/// assert!(matches!(missing, ValueError::Missing { .. }));
/// assert!(missing.to_string().contains("role Backup holds no value `point`"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The role holds no value of the slot.
    #[error(
        "role {role} holds no value `{slot}`: no effect of it produced one and no message brought one"
    )]
    Missing {
        /// The role.
        role: String,
        /// The slot.
        slot: String,
    },
    /// The value does not decode as the slot's type.
    #[error("the value `{slot}` held by role {role} does not decode as {expected}: {reason}")]
    Decode {
        /// The role.
        role: String,
        /// The slot.
        slot: String,
        /// The slot's type.
        expected: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The value does not encode.
    #[error("the value `{slot}` cannot be encoded: {reason}")]
    Encode {
        /// The slot.
        slot: String,
        /// What the encoder said.
        reason: String,
    },
}

/// A value as it is kept and travels: its type's name, then the value.
///
/// # Example
/// ```
/// use stormchor_kit::{Slot, Values, encode};
///
/// const ROWS: Slot<u64> = Slot::new("rows");
/// const NAME: Slot<String> = Slot::new("rows");
/// let bytes = encode(ROWS, &7).expect("encodes");
/// let values = Values::new("Coordinator");
/// values.receive("rows", "Worker(0)", bytes);
/// assert_eq!(values.get(ROWS).expect("a u64"), 7);
/// // The type travels with the value: read as another type, it is an error.
/// assert!(values.get(NAME).is_err());
/// ```
pub fn encode<T: Value>(slot: Slot<T>, value: &T) -> Result<Vec<u8>, ValueError> {
    bincode::serialize(&(std::any::type_name::<T>(), value)).map_err(|e| ValueError::Encode {
        slot: slot.name.to_owned(),
        reason: e.to_string(),
    })
}

/// One value a role holds, and where it came from.
#[derive(Clone, Debug)]
struct Held {
    /// `None` when this role produced it.
    from: Option<String>,
    bytes: Vec<u8>,
}

/// The values one role holds, by slot: its own and those it received, in the order
/// they arrived.
///
/// # Example
/// ```
/// use stormchor_kit::{Slot, Values};
///
/// const LSN: Slot<u64> = Slot::new("lsn");
/// let values = Values::new("Coordinator");
/// values.put(LSN, &42).expect("encodes");
/// assert_eq!(values.get(LSN).expect("held"), 42);
/// values.receive("lsn", "Primary", stormchor_kit::encode(LSN, &7).expect("encodes"));
/// assert_eq!(values.get(LSN).expect("held"), 7);
/// assert_eq!(values.from_each(LSN).expect("decodes"), vec![("Primary".to_owned(), 7)]);
/// ```
#[derive(Debug)]
pub struct Values {
    role: String,
    held: Mutex<BTreeMap<String, Vec<Held>>>,
    cursors: Mutex<BTreeMap<(String, String), usize>>,
}

impl Values {
    /// The values of `role`: none yet.
    pub fn new(role: impl Into<String>) -> Self {
        Values {
            role: role.into(),
            held: Mutex::new(BTreeMap::new()),
            cursors: Mutex::new(BTreeMap::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Held>>> {
        stormchor_postgres::lock(&self.held)
    }

    /// Keeps `value` as this role's own latest value of `slot`.
    pub fn put<T: Value>(&self, slot: Slot<T>, value: &T) -> Result<(), ValueError> {
        let bytes = encode(slot, value)?;
        self.held()
            .entry(slot.name.to_owned())
            .or_default()
            .push(Held { from: None, bytes });
        Ok(())
    }

    /// Keeps an encoded value of `slot` received from `from`.
    pub fn receive(&self, slot: &str, from: impl Into<String>, bytes: Vec<u8>) {
        self.held().entry(slot.to_owned()).or_default().push(Held {
            from: Some(from.into()),
            bytes,
        });
    }

    /// The encoded latest value of `slot`, to send on.
    pub fn encoded(&self, slot: &str) -> Option<Vec<u8>> {
        self.held().get(slot)?.last().map(|h| h.bytes.clone())
    }

    /// Whether the role holds a value of `slot`.
    pub fn holds(&self, slot: &str) -> bool {
        self.held().get(slot).is_some_and(|v| !v.is_empty())
    }

    fn decode<T: Value>(&self, slot: Slot<T>, bytes: &[u8]) -> Result<T, ValueError> {
        let failed = |reason: String| ValueError::Decode {
            role: self.role.clone(),
            slot: slot.name.to_owned(),
            expected: std::any::type_name::<T>(),
            reason,
        };
        // A value travels with the name of its type: two slots of one name but of
        // different types are told apart instead of read as one another.
        let mut rest = bytes;
        let kind: String =
            bincode::deserialize_from(&mut rest).map_err(|e| failed(e.to_string()))?;
        if kind != std::any::type_name::<T>() {
            return Err(failed(format!("it holds a {kind}")));
        }
        let value = bincode::deserialize_from(&mut rest).map_err(|e| failed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(failed(format!("{} bytes are left over", rest.len())));
        }
        Ok(value)
    }

    /// The latest value of `slot` this role holds, produced here or received.
    pub fn get<T: Value>(&self, slot: Slot<T>) -> Result<T, ValueError> {
        let bytes = self.encoded(slot.name).ok_or_else(|| ValueError::Missing {
            role: self.role.clone(),
            slot: slot.name.to_owned(),
        })?;
        self.decode(slot, &bytes)
    }

    /// The oldest value of `slot` (produced here or received) that no earlier call of
    /// `next` for `slot` returned: values taken one by one, in the order they came.
    ///
    /// # Example
    /// ```
    /// use stormchor_kit::{Slot, Values};
    ///
    /// const POINT: Slot<u32> = Slot::new("point");
    /// let values = Values::new("Backup");
    /// for n in [10, 20] {
    ///     values.receive("point", "Coordinator", stormchor_kit::encode(POINT, &n).expect("encodes"));
    /// }
    /// assert_eq!(values.next(POINT).expect("first"), 10);
    /// assert_eq!(values.next(POINT).expect("second"), 20);
    /// assert!(values.next(POINT).is_err());
    /// ```
    pub fn next<T: Value>(&self, slot: Slot<T>) -> Result<T, ValueError> {
        self.next_for(slot, "")
    }

    /// [`next`](Values::next) with a cursor of `reader`'s own: two effects of one role
    /// that take the values of one slot in order do not take each other's.
    pub fn next_for<T: Value>(&self, slot: Slot<T>, reader: &str) -> Result<T, ValueError> {
        let mut cursors = stormchor_postgres::lock(&self.cursors);
        let cursor = cursors
            .entry((slot.name.to_owned(), reader.to_owned()))
            .or_insert(0);
        let bytes = self
            .held()
            .get(slot.name)
            .and_then(|held| held.get(*cursor))
            .map(|h| h.bytes.clone())
            .ok_or_else(|| ValueError::Missing {
                role: self.role.clone(),
                slot: format!("{} (number {})", slot.name, *cursor + 1),
            })?;
        *cursor += 1;
        self.decode(slot, &bytes)
    }

    /// The latest value of `slot` from each role that sent one, in role-name order
    /// (this role's own values are not among them). A role that sent one in an
    /// earlier round and none since is listed with that value: read values that add
    /// up over rounds (a ledger's rounds) with [`all_from_each`](Values::all_from_each),
    /// or in order with [`next`](Values::next).
    pub fn from_each<T: Value>(&self, slot: Slot<T>) -> Result<Vec<(String, T)>, ValueError> {
        let latest: BTreeMap<String, Vec<u8>> = self
            .held()
            .get(slot.name)
            .into_iter()
            .flatten()
            .filter_map(|h| Some((h.from.clone()?, h.bytes.clone())))
            .collect();
        latest
            .into_iter()
            .map(|(from, bytes)| Ok((from, self.decode(slot, &bytes)?)))
            .collect()
    }

    /// Every value of `slot` from each role that sent one, in role-name order and,
    /// per role, in the order they arrived (this role's own values are not among
    /// them): for values each of which is a part of a whole, such as one round of a
    /// ledger.
    ///
    /// # Example
    /// ```
    /// use stormchor_kit::{Slot, Values};
    ///
    /// const ROWS: Slot<u32> = Slot::new("rows");
    /// let values = Values::new("Coordinator");
    /// for (from, n) in [("Worker(1)", 5u32), ("Worker(0)", 1), ("Worker(1)", 7)] {
    ///     values.receive("rows", from, stormchor_kit::encode(ROWS, &n).expect("encodes"));
    /// }
    /// let each = values.all_from_each(ROWS).expect("decodes");
    /// assert_eq!(each, vec![("Worker(0)".to_owned(), vec![1]), ("Worker(1)".to_owned(), vec![5, 7])]);
    /// ```
    pub fn all_from_each<T: Value>(
        &self,
        slot: Slot<T>,
    ) -> Result<Vec<(String, Vec<T>)>, ValueError> {
        let mut each: BTreeMap<String, Vec<T>> = BTreeMap::new();
        for held in self.held().get(slot.name).into_iter().flatten() {
            let Some(from) = held.from.clone() else {
                continue;
            };
            let value = self.decode(slot, &held.bytes)?;
            each.entry(from).or_default().push(value);
        }
        Ok(each.into_iter().collect())
    }
}
