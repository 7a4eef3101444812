//! Typed access to a JSON request body that yields vendor-neutral field errors.

use crate::error::ApiError;
use serde_json::{Map, Value};

/// Parses a request body as a JSON object.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::param(
            "body",
            "request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::param(
            "body",
            format!("request body is not valid JSON: {e}"),
        )),
    }
}

/// A JSON object whose fields are reported as `<prefix><name>`.
pub(crate) struct Fields<'a> {
    pub map: &'a Map<String, Value>,
    pub prefix: &'a str,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>, prefix: &'a str) -> Fields<'a> {
        Fields { map, prefix }
    }

    fn name(&self, field: &str) -> String {
        format!("{}{}", self.prefix, field)
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        // Explicit null counts as absent, as in the vendors' own (JSON-schema) validators.
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::param(
                &self.name(field),
                format!("'{}' must be a string", self.name(field)),
            )),
        }
    }

    pub fn req_str(&self, field: &str) -> Result<&'a str, ApiError> {
        match self.opt_str(field)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(ApiError::param(
                &self.name(field),
                format!("'{}' must not be empty", self.name(field)),
            )),
            None => Err(ApiError::param(
                &self.name(field),
                format!("'{}' is required.", self.name(field)),
            )),
        }
    }

    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::param(
                &self.name(field),
                format!("'{}' must be a boolean", self.name(field)),
            )),
        }
    }

    pub fn opt_f64(&self, field: &str) -> Result<Option<f64>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(ApiError::param(
                &self.name(field),
                format!("'{}' must be a number", self.name(field)),
            )),
        }
    }

    pub fn opt_obj(&self, field: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(ApiError::param(
                &self.name(field),
                format!("'{}' must be an object", self.name(field)),
            )),
        }
    }

    pub fn req_obj(&self, field: &str) -> Result<&'a Map<String, Value>, ApiError> {
        self.opt_obj(field)?.ok_or_else(|| {
            ApiError::param(
                &self.name(field),
                format!("'{}' is required.", self.name(field)),
            )
        })
    }

    pub fn opt_array(&self, field: &str) -> Result<Option<&'a Vec<Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(ApiError::param(
                &self.name(field),
                format!("'{}' must be an array", self.name(field)),
            )),
        }
    }

    /// An array of URL strings with between `min` and `max` items; returns the first.
    pub fn url_array(&self, field: &str, min: usize, max: usize) -> Result<&'a str, ApiError> {
        let name = self.name(field);
        let arr = self
            .opt_array(field)?
            .ok_or_else(|| ApiError::param(&name, format!("'{name}' is required.")))?;
        if arr.len() < min || arr.len() > max {
            let want = if min == max {
                format!("exactly {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(ApiError::value(
                &name,
                format!("'{name}' must contain {want} item(s), got {}", arr.len()),
            ));
        }
        match &arr[0] {
            Value::String(s) if !s.is_empty() => Ok(s.as_str()),
            _ => Err(ApiError::param(
                &name,
                format!("'{name}' items must be non-empty strings"),
            )),
        }
    }

    /// A string from a fixed set.
    pub fn opt_enum(&self, field: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
        match self.opt_str(field)? {
            None => Ok(None),
            Some(s) if allowed.contains(&s) => Ok(Some(s)),
            Some(s) => Err(ApiError::value(
                &self.name(field),
                format!(
                    "'{}' must be one of {}, got '{s}'",
                    self.name(field),
                    allowed.join(", ")
                ),
            )),
        }
    }

    pub fn req_enum(&self, field: &str, allowed: &[&str]) -> Result<&'a str, ApiError> {
        self.opt_enum(field, allowed)?.ok_or_else(|| {
            ApiError::param(
                &self.name(field),
                format!("'{}' is required.", self.name(field)),
            )
        })
    }

    /// A prompt-like string of at most `max` Unicode characters.
    pub fn opt_text(&self, field: &str, max: usize) -> Result<Option<&'a str>, ApiError> {
        let s = self.opt_str(field)?;
        if let Some(s) = s {
            let n = s.chars().count();
            if n > max {
                return Err(ApiError::value(
                    &self.name(field),
                    format!(
                        "'{}' must be at most {max} characters, got {n}",
                        self.name(field)
                    ),
                ));
            }
        }
        Ok(s)
    }

    /// `element_list`: at most one `{element_id: string}`; returns whether one is present.
    pub fn element_list(&self, field: &str) -> Result<bool, ApiError> {
        let name = self.name(field);
        let Some(list) = self.opt_array(field)? else {
            return Ok(false);
        };
        if list.len() > 1 {
            return Err(ApiError::value(
                &name,
                format!("'{name}' supports at most 1 element"),
            ));
        }
        for item in list {
            let ok = item
                .get("element_id")
                .map(|v| v.is_string() || v.is_number())
                .unwrap_or(false);
            if !ok {
                return Err(ApiError::param(
                    &name,
                    format!("'{name}' items need an 'element_id'"),
                ));
            }
        }
        Ok(!list.is_empty())
    }
}
