//! drover's load balancing, shared by `drover lb` (the edge) and every agent (VIPs).
//!
//! - [`routes`]: the route model read from the masters' apps and tasks (VIP labels,
//!   marathon-lb's `HAPROXY_*` labels, drover's `DROVER_LB_*`).
//! - [`choice`]: which backend a new connection goes to, preferring the caller's zone.
//! - [`follow`]: the view, kept current from the masters' event stream and reads.
//! - [`balancer`]: connect with retry; [`metrics`]: the per-backend counters of `/metrics`.
//! - [`tcp`] and [`http`]: the proxies ([`pool`]: the HTTP backend connections);
//!   [`listen`]: listeners that follow the view.
//! - [`edge`]: `drover lb`; [`vip`]: the VIPs an agent serves; [`admin`]: `/metrics`.

#![warn(missing_docs)]

pub mod admin;
pub mod balancer;
pub mod choice;
pub mod edge;
pub mod follow;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod pool;
pub mod routes;
pub mod tcp;
pub mod vip;

pub use balancer::Balancer;
pub use choice::{Caller, Choice, Locality, choose};
pub use routes::{Backend, EdgeRoute, Mode, Problem, Service, View, Vip, VipName};
