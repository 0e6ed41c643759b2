//! The endpoint table: one row per operation (webhooks aside), with the security
//! schemes and servers the rows name.

use serde_norway::Value;

use super::{Endpoint, Named, Reader};
use crate::codegen::names::pascal_case;
use crate::openapi::{str_of, Operation};
use crate::Result;

/// The endpoint part of a model.
pub(super) struct Routes {
    /// See [`super::Model::endpoints`].
    pub(super) endpoints: Vec<Endpoint>,
    /// See [`super::Model::schemes`].
    pub(super) schemes: Vec<Named>,
    /// See [`super::Model::hosts`].
    pub(super) hosts: Vec<Named>,
}

impl Reader<'_> {
    /// Reads the endpoint table.
    pub(super) fn routes(self) -> Result<Routes> {
        let ops: Vec<Operation<'_>> = self
            .doc
            .operations()
            .into_iter()
            .filter(|o| !o.webhook)
            .collect();
        let default_security = self.doc.root.get("security");
        let default_host = first_server(self.doc.root.get("servers"));
        let mut endpoints = Vec::new();
        for op in &ops {
            let id = op.id()?.to_owned();
            let security = op.op.get("security").or(default_security);
            let auth = match security
                .and_then(Value::as_sequence)
                .and_then(|s| s.first())
            {
                Some(req) => {
                    let key = req
                        .as_mapping()
                        .and_then(|m| m.keys().next())
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            self.error(format_args!("{id}: bad security requirement"))
                        })?;
                    Some(self.scheme(key)?.name)
                }
                None => None,
            };
            let rate = op
                .op
                .get("x-rate-limit")
                .ok_or_else(|| self.error(format_args!("{id} has no x-rate-limit")))?;
            let host = match op.op.get("servers").filter(|s| s.is_sequence()) {
                Some(servers) => Some(first_server(Some(servers)).ok_or_else(|| {
                    self.error(format_args!("{id}: servers need an x-rust-name"))
                })?),
                None => default_host.clone(),
            };
            endpoints.push(Endpoint {
                variant: str_of(op.op, "x-rust-name")
                    .map_or_else(|| pascal_case(&id), str::to_owned),
                summary: str_of(op.op, "summary")
                    .ok_or_else(|| self.error(format_args!("{id} has no summary")))?
                    .trim()
                    .to_owned(),
                method: op.method.to_uppercase(),
                path: op.path.clone(),
                auth,
                creates: op.op.get("x-creates").and_then(Value::as_bool) == Some(true),
                rate: rate
                    .get("per-second")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| {
                        self.error(format_args!("{id}: x-rate-limit needs per-second"))
                    })?,
                rate_note: str_of(rate, "description").unwrap_or("").trim().to_owned(),
                host,
                id,
            });
        }
        let schemes = self
            .doc
            .components("securitySchemes")
            .into_iter()
            .flatten()
            .map(|(key, _)| self.scheme(key.as_str().unwrap_or_default()))
            .collect::<Result<_>>()?;
        Ok(Routes {
            hosts: self.hosts(&ops, &endpoints)?,
            endpoints,
            schemes,
        })
    }

    /// The `AuthScheme` variant for security scheme `key`, with its docs.
    fn scheme(self, key: &str) -> Result<Named> {
        let scheme = self
            .doc
            .components("securitySchemes")
            .and_then(|schemes| schemes.get(key))
            .ok_or_else(|| self.error(format_args!("unknown security scheme {key}")))?;
        let doc = str_of(scheme, "description")
            .ok_or_else(|| self.error(format_args!("security scheme {key} has no description")))?;
        Ok(Named {
            name: str_of(scheme, "x-rust-name").map_or_else(|| pascal_case(key), str::to_owned),
            doc: doc.to_owned(),
            value: (),
        })
    }

    /// The servers the endpoints go to, in order of first use, when there are several
    /// (each needs a description then); none when they all go to one.
    fn hosts(self, ops: &[Operation<'_>], endpoints: &[Endpoint]) -> Result<Vec<Named>> {
        let mut used: Vec<&str> = Vec::new();
        for host in endpoints.iter().filter_map(|e| e.host.as_deref()) {
            if !used.contains(&host) {
                used.push(host);
            }
        }
        if used.len() < 2 {
            return Ok(Vec::new());
        }
        let declared: Vec<&Value> = std::iter::once(self.doc.root.get("servers"))
            .chain(ops.iter().map(|op| op.op.get("servers")))
            .flat_map(|servers| servers.and_then(Value::as_sequence).into_iter().flatten())
            .collect();
        used.into_iter()
            .map(|host| {
                let doc = declared
                    .iter()
                    .filter(|s| str_of(s, "x-rust-name") == Some(host))
                    .find_map(|s| str_of(s, "description"))
                    .ok_or_else(|| self.error(format_args!("server {host} has no description")))?;
                Ok(Named {
                    name: host.to_owned(),
                    doc: doc.to_owned(),
                    value: (),
                })
            })
            .collect()
    }
}

/// The `x-rust-name` of the first of `servers`.
fn first_server(servers: Option<&Value>) -> Option<String> {
    servers
        .and_then(Value::as_sequence)
        .and_then(|s| s.first())
        .and_then(|s| str_of(s, "x-rust-name"))
        .map(str::to_owned)
}
