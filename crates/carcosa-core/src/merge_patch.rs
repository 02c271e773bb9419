//! JSON merge patch (RFC 7396), the semantics of `metadata` in `PATCH /v1/tenants/{id}`.
//!
//! An object in the patch merges key by key into the target; `null` removes a key; anything else
//! (a string, a number, an array) replaces the value wholesale.

use serde_json::Value;

/// Applies `patch` to `target` in place, as RFC 7396 §2 describes.
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target_map) = target else {
        unreachable!("target was just made an object");
    };
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            apply(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// A null value in the wanted document: a merge patch cannot set one (null means "remove").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is null; a merge patch cannot store a null value (remove the key instead)")]
pub struct NullValue(pub String);

/// The merge patch that turns `from` into `to` (both objects): keys only in `from` become
/// `null`, objects on both sides are diffed key by key, other changed values are replaced.
/// `Ok(None)` when they are equal. A `null` anywhere in `to` cannot be expressed and is refused.
pub fn diff(from: &Value, to: &Value) -> Result<Option<Value>, NullValue> {
    diff_at(from, to, "")
}

fn diff_at(from: &Value, to: &Value, path: &str) -> Result<Option<Value>, NullValue> {
    match (from, to) {
        (_, Value::Null) => Err(NullValue(path.trim_start_matches('.').to_owned())),
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, value) in new {
                let here = format!("{path}.{key}");
                match old.get(key) {
                    Some(previous) => {
                        if let Some(change) = diff_at(previous, value, &here)? {
                            patch.insert(key.clone(), change);
                        }
                    }
                    None => {
                        check_no_null(value, &here)?;
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            Ok((!patch.is_empty()).then_some(Value::Object(patch)))
        }
        (old, new) if old == new => Ok(None),
        (_, new) => {
            check_no_null(new, path)?;
            // An object replacing a non-object merges into an empty object: the same result.
            Ok(Some(new.clone()))
        }
    }
}

fn check_no_null(value: &Value, path: &str) -> Result<(), NullValue> {
    match value {
        Value::Null => Err(NullValue(path.trim_start_matches('.').to_owned())),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| check_no_null(v, &format!("{path}.{k}"))),
        // Nulls inside arrays are values like any other: arrays are replaced wholesale.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{apply, diff};
    use serde_json::{Value, json};

    #[test]
    fn a_diff_applied_gives_the_wanted_document() {
        let cases = [
            (json!({}), json!({})),
            (json!({"a": 1}), json!({"a": 1})),
            (json!({"a": 1, "b": {"x": 1, "y": 2}}), json!({"b": {"y": 3, "z": [1, null]}, "c": "new"})),
            (json!({"a": {"x": 1}}), json!({"a": [1, 2]})),
            (json!({"a": [1, 2]}), json!({"a": {"x": {"deep": true}}})),
            (json!({"a": {"x": 1}}), json!({"a": {}})),
        ];
        for (from, to) in cases {
            let patch = diff(&from, &to).unwrap();
            assert_eq!(patch.is_none(), from == to, "{from} -> {to}");
            let result = patch.map_or_else(|| from.clone(), |p| merged(from.clone(), p));
            assert_eq!(result, to, "{from} -> {to}");
        }
    }

    #[test]
    fn a_diff_refuses_nulls_it_cannot_express() {
        let err = diff(&json!({}), &json!({"a": {"b": null}})).unwrap_err();
        assert_eq!(err.0, "a.b");
        assert!(diff(&json!({"a": 1}), &json!({"a": null})).is_err());
    }

    fn merged(target: Value, patch: Value) -> Value {
        let mut target = target;
        apply(&mut target, &patch);
        target
    }

    /// The examples of RFC 7396, appendix A.
    #[test]
    fn rfc_7396_appendix_a() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (json!({"a":"b","b":"c"}), json!({"a":null}), json!({"b":"c"})),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (json!({"a":{"b":"c"}}), json!({"a":{"b":"d","c":null}}), json!({"a":{"b":"d"}})),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (json!({}), json!({"a":{"bb":{"ccc":null}}}), json!({"a":{"bb":{}}})),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(merged(target.clone(), patch.clone()), expected, "{target} + {patch}");
        }
    }

    #[test]
    fn an_empty_patch_changes_nothing() {
        let doc = json!({"a": {"b": [1, 2]}, "c": true});
        assert_eq!(merged(doc.clone(), json!({})), doc);
    }
}
