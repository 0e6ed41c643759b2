//! The 6pan API (v1/v2 generation).

pub mod api;
pub mod auth;
pub mod identity;
pub mod storage;
pub mod tasks;
pub mod upload;
pub mod upload_token;

mod endpoints;
mod wire;

pub use endpoints::{AuthScheme, EndpointId, Host};
pub use wire::*;
