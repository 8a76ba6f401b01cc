//! The execution plan: per phase, which scripts run, in what order, from which element.

pub mod calls;
pub mod dib_env;
pub mod plan;
pub mod render;
pub mod simulate;
pub mod sort;
pub mod tree;
