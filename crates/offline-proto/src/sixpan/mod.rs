//! The 6pan API (v1/v2 generation).

pub mod identity;
pub mod upload_token;
