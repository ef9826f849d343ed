//! drover's load balancing, shared by `drover lb` (the edge) and every agent (VIPs).
//!
//! - [`routes`]: the route model read from the masters' apps and tasks (VIP labels,
//!   marathon-lb's `HAPROXY_*` labels, drover's `DROVER_LB_*`).
//! - [`choice`]: which backend a new connection goes to, preferring the caller's zone.

#![warn(missing_docs)]

pub mod choice;
pub mod routes;

pub use choice::{Caller, Choice, Locality, choose};
pub use routes::{Backend, EdgeRoute, Mode, Problem, Service, View, Vip, VipName};
