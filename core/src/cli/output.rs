//! Output of the admin CLI: aligned tables and `key: value` lines for people, JSON for scripts.

use serde_json::Value;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

/// A value as table text: strings bare, null as `-`, arrays joined with commas.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

impl Output {
    /// Prints `value` as pretty JSON.
    pub(crate) fn json(&self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }

    /// Prints a list: JSON as is, or a table of `columns` (header, field) with a footer for pages.
    pub(crate) fn list(&self, value: &Value, columns: &[(&str, &str)]) {
        if self.json {
            return self.json(value);
        }
        let (items, footer) = match value {
            Value::Array(items) => (items.clone(), None),
            other => (
                other
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                Some(format!(
                    "page {} of {} item(s), {} per page",
                    cell(&other["page"]),
                    cell(&other["total"]),
                    cell(&other["page_size"])
                )),
            ),
        };
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| {
                columns
                    .iter()
                    .map(|(_, field)| cell(&item[*field]))
                    .collect()
            })
            .collect();
        print_table(&columns.iter().map(|(h, _)| *h).collect::<Vec<_>>(), &rows);
        if let Some(footer) = footer {
            println!("({footer})");
        }
    }

    /// Prints one object: JSON as is, or `key: value` lines.
    pub(crate) fn object(&self, value: &Value) {
        if self.json {
            return self.json(value);
        }
        if let Value::Object(map) = value {
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (key, v) in map {
                let text = match v {
                    Value::Object(_) | Value::Array(_)
                        if !v
                            .as_array()
                            .is_some_and(|a| a.iter().all(|x| !x.is_object())) =>
                    {
                        serde_json::to_string(v).unwrap_or_default()
                    }
                    _ => cell(v),
                };
                println!("{key:<width$}  {text}");
            }
        } else {
            println!("{}", cell(value));
        }
    }

    /// Prints a confirmation (or `{"ok": true, ...}` for scripts).
    pub(crate) fn done(&self, message: &str) {
        if self.json {
            println!("{}", serde_json::json!({ "ok": true, "message": message }));
        } else {
            println!("{message}");
        }
    }
}

/// Prints rows under a header, columns padded to their widest cell.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&serde_json::json!(true)), "yes");
        assert_eq!(cell(&serde_json::json!([1, 2])), "1,2");
        assert_eq!(cell(&serde_json::json!("x")), "x");
    }
}
