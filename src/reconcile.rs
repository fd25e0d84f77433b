//! The pure core: desired state × snapshot × policy → plan. No I/O, no clock, no randomness:
//! the same inputs give the same plan, byte for byte.

pub mod desired;
pub mod plan;
pub mod planner;
pub mod policy;
pub mod render;
pub mod snapshot;

pub use plan::{Change, Op, Plan, Summary};
pub use planner::plan;
pub use policy::Policy;
pub use snapshot::{ManagedGroup, ManagedUser, Snapshot};
