//! Python values ↔ the TOML of a scenario and the JSON of episode metrics.

use crate::ScenarioError;
use lepton_env::EpisodeMetrics;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::path::Path;

/// `text` with `overrides` merged in: a dict value merges into the table of that name, any
/// other value replaces the key; a dotted key (`"queue.num_slots"`) walks the tables. The
/// result is resolved like any scenario file, so a misspelt key is refused by name.
pub fn merge_overrides(text: &str, path: &Path, overrides: &Bound<'_, PyDict>) -> PyResult<String> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| ScenarioError::new_err(format!("{}: {e}", path.display())))?;
    for (key, value) in overrides.iter() {
        let key: String = key.extract()?;
        let value = to_toml(&value).map_err(|reason| {
            ScenarioError::new_err(format!("{}: override `{key}`: {reason}", path.display()))
        })?;
        let parts: Vec<&str> = key.split('.').collect();
        set_path(&mut table, &parts, value).map_err(|reason| {
            ScenarioError::new_err(format!("{}: override `{key}`: {reason}", path.display()))
        })?;
    }
    Ok(toml::to_string(&table).expect("a TOML table always serializes"))
}

fn set_path(table: &mut toml::Table, parts: &[&str], value: toml::Value) -> Result<(), String> {
    let (last, walk) = parts.split_last().expect("split never yields nothing");
    let mut here = table;
    for part in walk {
        here = match here
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            toml::Value::Table(t) => t,
            _ => return Err(format!("`{part}` is not a table")),
        };
    }
    match (here.get_mut(*last), value) {
        (Some(toml::Value::Table(old)), toml::Value::Table(new)) => {
            for (k, v) in new {
                set_path(old, &[k.as_str()], v)?;
            }
        }
        (_, value) => {
            here.insert(last.to_string(), value);
        }
    }
    Ok(())
}

fn to_toml(value: &Bound<'_, PyAny>) -> Result<toml::Value, String> {
    // bool before int: Python's True is an int.
    if value.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(
            value.extract().map_err(|e: PyErr| e.to_string())?,
        ));
    }
    if value.is_instance_of::<PyInt>() {
        let n: i64 = value
            .extract()
            .map_err(|_| "integer out of TOML's range".to_owned())?;
        return Ok(toml::Value::Integer(n));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(
            value.extract().map_err(|e: PyErr| e.to_string())?,
        ));
    }
    if value.is_instance_of::<PyString>() {
        return Ok(toml::Value::String(
            value.extract().map_err(|e: PyErr| e.to_string())?,
        ));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut table = toml::Table::new();
        for (k, v) in dict.iter() {
            let k: String = k
                .extract()
                .map_err(|_| "dict keys must be strings".to_owned())?;
            table.insert(k, to_toml(&v)?);
        }
        return Ok(toml::Value::Table(table));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let items = value
            .try_iter()
            .map_err(|e| e.to_string())?
            .map(|item| to_toml(&item.map_err(|e| e.to_string())?))
            .collect::<Result<_, _>>()?;
        return Ok(toml::Value::Array(items));
    }
    // numpy scalars and other numbers: through float or int.
    if let Ok(n) = value.extract::<i64>() {
        return Ok(toml::Value::Integer(n));
    }
    if let Ok(x) = value.extract::<f64>() {
        return Ok(toml::Value::Float(x));
    }
    Err(format!(
        "a {} cannot be a TOML value (use bool, int, float, str, list or dict)",
        value
            .get_type()
            .name()
            .map_or_else(|_| "?".into(), |n| n.to_string())
    ))
}

/// An episode's metrics as a Python dict (the same keys as report.json's).
pub fn metrics_dict<'py>(
    py: Python<'py>,
    metrics: &EpisodeMetrics,
) -> PyResult<Bound<'py, PyDict>> {
    let value = serde_json::to_value(metrics).expect("metrics always serialize");
    let dict = PyDict::new(py);
    if let serde_json::Value::Object(map) = value {
        for (key, value) in map {
            dict.set_item(key, json_to_py(py, &value)?)?;
        }
    }
    Ok(dict)
}

fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    match value {
        serde_json::Value::Null => Ok(py.None().into_bound(py)),
        serde_json::Value::Bool(b) => b.into_bound_py_any(py),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_bound_py_any(py),
            (_, Some(i)) => i.into_bound_py_any(py),
            _ => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py),
        },
        serde_json::Value::String(s) => s.into_bound_py_any(py),
        serde_json::Value::Array(items) => {
            let items = items
                .iter()
                .map(|item| json_to_py(py, item))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_bound_py_any(py)
        }
        serde_json::Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, value) in map {
                dict.set_item(key, json_to_py(py, value)?)?;
            }
            dict.into_bound_py_any(py)
        }
    }
}
