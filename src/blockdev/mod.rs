//! dib's block-device layer, natively: the YAML configuration (tree and graph notation),
//! its validation with dib's errors, size specs and partition layout arithmetic. Pure: the
//! build engine turns the validated graph into loop devices, tables and filesystems.

pub mod config;
pub mod layout;
pub mod size;
