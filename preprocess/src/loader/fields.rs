//! kperf's `ReplayProfileSpec` and `ReplayRequest` as decode targets: their YAML keys and the
//! Go types yaml.v2 names in type errors.

use super::decode::{Decoder, FieldPath, StructTarget};
use super::LoadError;
use crate::validate::{RawRequest, RawSpec};
use crate::yaml::Node;

impl StructTarget for RawSpec {
    const GO_TYPE: &'static str = "types.ReplayProfileSpec";
    const KEYS: &'static [&'static str] = &[
        "runnerCount",
        "connsPerRunner",
        "clientsPerRunner",
        "contentType",
        "disableHTTP2",
    ];

    fn reset(&mut self) {
        *self = RawSpec::default();
    }

    fn field(
        &mut self,
        dec: &mut Decoder,
        key: &str,
        value: &Node,
        path: FieldPath<'_>,
    ) -> Result<bool, LoadError> {
        match key {
            "runnerCount" => dec.int(value, path, "int", &mut self.runner_count)?,
            "connsPerRunner" => dec.int(value, path, "int", &mut self.conns_per_runner)?,
            "clientsPerRunner" => dec.int(value, path, "int", &mut self.clients_per_runner)?,
            "contentType" => {
                dec.string(value, path, "types.ContentType", &mut self.content_type)?
            }
            "disableHTTP2" => dec.boolean(value, path, &mut self.disable_http2)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl StructTarget for RawRequest {
    const GO_TYPE: &'static str = "types.ReplayRequest";
    const KEYS: &'static [&'static str] = &[
        "timestamp",
        "verb",
        "namespace",
        "resourceKind",
        "name",
        "apiPath",
        "body",
        "labelSelector",
    ];

    fn reset(&mut self) {
        *self = RawRequest::default();
    }

    fn field(
        &mut self,
        dec: &mut Decoder,
        key: &str,
        value: &Node,
        path: FieldPath<'_>,
    ) -> Result<bool, LoadError> {
        let text = match key {
            "timestamp" => {
                dec.int(value, path, "int64", &mut self.timestamp)?;
                return Ok(true);
            }
            "verb" => &mut self.verb,
            "namespace" => &mut self.namespace,
            "resourceKind" => &mut self.resource_kind,
            "name" => &mut self.name,
            "apiPath" => &mut self.api_path,
            "body" => &mut self.body,
            "labelSelector" => &mut self.label_selector,
            _ => return Ok(false),
        };
        dec.string(value, path, "string", text)?;
        Ok(true)
    }
}
