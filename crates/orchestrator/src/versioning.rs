//! API versioning through nilecare-versioning: URL `/api/vN/...` first, then `X-API-Version`,
//! then `Accept: application/vnd.nilecare.vN+json`, then v1. Handlers answer in the newest (v2)
//! shape; v1 clients get the flat patient fields through the transforms registered here.

use nilecare::versioning::VersioningLayer;
use serde_json::Value;

/// v2 → v1 of one patient: `name.given`/`name.family` become `given_name`/`family_name`,
/// `birthDate` becomes `birth_date`.
pub fn patient_v2_to_v1(mut v2: Value) -> Value {
    let Some(object) = v2.as_object_mut() else {
        return v2;
    };
    if let Some(name) = object.remove("name") {
        object.insert("given_name".into(), name["given"].clone());
        object.insert("family_name".into(), name["family"].clone());
    }
    if let Some(birth) = object.remove("birthDate") {
        object.insert("birth_date".into(), birth);
    }
    v2
}

/// The layer of the orchestrator: versions 1 and 2, default 1, patient transforms.
///
/// # Errors
/// Never with these literals; the builder's error otherwise.
pub fn layer() -> nilecare::versioning::Result<VersioningLayer> {
    VersioningLayer::builder()
        .supported([1, 2])
        .default_version(1)
        .response_transform(2, "/patients/{id}", patient_v2_to_v1)
        .response_transform(2, "/patients", |list| match list {
            Value::Array(items) => Value::Array(items.into_iter().map(patient_v2_to_v1).collect()),
            other => other,
        })
        .build()
}
