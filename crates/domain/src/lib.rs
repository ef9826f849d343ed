//! drover's domain: the pure model and the decisions made on it.
//!
//! No I/O and no async here: fault domains, resources and attributes, app definitions and
//! their validation, Marathon's constraints, placement and kill selection. Everything is a
//! function of its input, so it is tested exhaustively and benchmarked alone.

pub mod agent;
pub mod app;
pub mod attributes;
pub mod constraint;
pub mod fault_domain;
pub mod group;
pub mod inventory;
pub mod kill;
pub mod limits;
pub mod placement;
pub mod ranges;
pub mod resources;

pub use agent::{Agent, AgentId};
pub use app::{AppDefinition, AppId, ValidationErrors};
pub use attributes::{AttributeValue, Attributes};
pub use constraint::{Constraint, Field, Operator};
pub use fault_domain::FaultDomain;
pub use group::GroupId;
pub use placement::{ExistingInstance, Placement, PlacementResult, Snapshot, place};
pub use ranges::Ranges;
pub use resources::Resources;
