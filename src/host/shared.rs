//! State a root context shares with its HTTP contexts (one VM = one thread: `Rc` and `Cell`).

use std::cell::Cell;
use std::rc::Rc;

use crate::core::policy::Policy;
use crate::core::redis::index::IndexHealth;

pub struct Shared {
    pub policy: Result<Rc<Policy>, String>,
    /// The store queue was registered (stores are enqueued to the root context).
    pub store_queue: bool,
    /// Last index check of this VM's root context.
    pub index: Cell<IndexHealth>,
}

impl Shared {
    pub fn unconfigured() -> Self {
        Shared { policy: Err("not configured".into()), store_queue: false, index: Cell::new(IndexHealth::Unknown) }
    }
}
