//! wrong-world
