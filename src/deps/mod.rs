//! Dependency expansion over `element-deps` and `element-provides`.

pub mod expand;
pub mod explain;
