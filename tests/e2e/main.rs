//! End-to-end tests: the real router and plugins against the local dataspace stand-in,
//! through HTTP on 127.0.0.1 with ports chosen by the OS.

mod ccm;
mod dataplane;
mod management;
mod sandbox;
