//! Environment overrides for the config file: `WEFT__SECTION__KEY=value` sets
//! `[section] key = value` before the strict parse, so a typo'd variable is refused like
//! a typo'd key. Values parse as TOML scalars (numbers, booleans, arrays) or else strings.

use anyhow::{Context, bail};
use toml::Value;

/// Prefix of override variables; `__` separates path segments.
pub const ENV_PREFIX: &str = "WEFT__";

/// Applies every `WEFT__…` variable of `vars` to `doc`.
pub fn apply(
    doc: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|seg| seg.to_ascii_lowercase().replace('_', "-"))
            .collect();
        if path.iter().any(String::is_empty) {
            bail!("environment variable {name}: empty path segment");
        }
        set(doc, &path, parse_scalar(&raw))
            .with_context(|| format!("environment variable {name}"))?;
    }
    Ok(())
}

fn parse_scalar(raw: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

fn set(doc: &mut Value, path: &[String], value: Value) -> anyhow::Result<()> {
    let (last, parents) = path.split_last().context("empty path")?;
    let mut node = doc;
    for seg in parents {
        let table = node.as_table_mut().context("not a table")?;
        node = table
            .entry(seg.clone())
            .or_insert_with(|| Value::Table(Default::default()));
    }
    node.as_table_mut()
        .with_context(|| format!("{} is not a table", parents.join(".")))?
        .insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_nest_and_parse() {
        let mut doc: Value = toml::from_str("[server]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        apply(
            &mut doc,
            [
                (
                    "WEFT__SERVER__LISTEN".to_string(),
                    "0.0.0.0:8080".to_string(),
                ),
                (
                    "WEFT__RUNTIME__POOL__INSTANCES".to_string(),
                    "32".to_string(),
                ),
                (
                    "WEFT__AUTH__ALGORITHMS".to_string(),
                    "[\"ES256\"]".to_string(),
                ),
                ("OTHER".to_string(), "x".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(doc["server"]["listen"].as_str(), Some("0.0.0.0:8080"));
        assert_eq!(doc["runtime"]["pool"]["instances"].as_integer(), Some(32));
        assert_eq!(doc["auth"]["algorithms"][0].as_str(), Some("ES256"));
        assert!(
            apply(
                &mut doc,
                [("WEFT__SERVER____X".to_string(), "1".to_string())]
            )
            .is_err()
        );
    }
}
