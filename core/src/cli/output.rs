//! Output of the admin CLI: aligned tables and `key  value` lines for people, JSON for scripts.

use serde_json::Value;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

/// A value as table text: strings bare, null and empty as `-`, arrays joined with commas.
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(",")
        }
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

    /// Prints a list: JSON as is, or a table of `columns` (header, field); a page of a paged
    /// list gets a footer saying where it is.
    pub(crate) fn list(&self, value: &Value, columns: &[(&str, &str)]) {
        if self.json {
            return self.json(value);
        }
        let empty = Vec::new();
        let (items, footer) = match value {
            Value::Array(items) => (items, None),
            other => (
                other
                    .get("items")
                    .and_then(Value::as_array)
                    .unwrap_or(&empty),
                Some(page_footer(other)),
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
        match footer {
            Some(footer) => println!("({footer})"),
            None if rows.is_empty() => println!("(none)"),
            None => {}
        }
    }

    /// Prints one object: JSON as is, or aligned `key  value` lines.
    pub(crate) fn object(&self, value: &Value) {
        if self.json {
            return self.json(value);
        }
        match value {
            Value::Object(map) => {
                // Warnings go to stderr as lines of their own (see `warnings`).
                let fields = || map.iter().filter(|(key, _)| key.as_str() != "warnings");
                let width = fields().map(|(key, _)| key.len()).max().unwrap_or(0);
                for (key, v) in fields() {
                    println!("{key:<width$}  {}", cell(v));
                }
            }
            other => println!("{}", cell(other)),
        }
    }

    /// Prints the answer's `warnings` (what is left to fix, each naming the fix) to stderr as
    /// `warning: ...` lines, in both output modes.
    pub(crate) fn warnings(&self, value: &Value) {
        for warning in value["warnings"].as_array().into_iter().flatten() {
            if let Some(text) = warning.as_str() {
                eprintln!("warning: {text}");
            }
        }
    }

    /// An object and then its warnings.
    pub(crate) fn object_with_warnings(&self, value: &Value) {
        self.object(value);
        self.warnings(value);
    }

    /// Prints a one-line confirmation (`{"ok": true, "message": ...}` for scripts).
    pub(crate) fn done(&self, message: &str) {
        if self.json {
            println!("{}", serde_json::json!({ "ok": true, "message": message }));
        } else {
            println!("{message}");
        }
    }
}

/// "page 2 of 3, 120 item(s) in all; next: --page 3".
fn page_footer(page: &Value) -> String {
    let number = page["page"].as_u64().unwrap_or(1);
    let size = page["page_size"].as_u64().unwrap_or(50).max(1);
    let total = page["total"].as_u64().unwrap_or(0);
    let pages = total.div_ceil(size).max(1);
    let mut footer = format!("page {number} of {pages}, {total} item(s) in all");
    if number < pages {
        footer.push_str(&format!("; next: --page {}", number + 1));
    }
    footer
}

/// Prints rows under a header, columns padded to their widest cell.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells() {
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&json!(true)), "yes");
        assert_eq!(cell(&json!([1, 2])), "1,2");
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(cell(&json!([{"id": 2}])), r#"[{"id":2}]"#);
    }

    #[test]
    fn footers() {
        let page = json!({"page": 1, "page_size": 50, "total": 2});
        assert_eq!(page_footer(&page), "page 1 of 1, 2 item(s) in all");
        let page = json!({"page": 2, "page_size": 50, "total": 120});
        assert_eq!(
            page_footer(&page),
            "page 2 of 3, 120 item(s) in all; next: --page 3"
        );
        let empty = json!({"page": 1, "page_size": 50, "total": 0});
        assert_eq!(page_footer(&empty), "page 1 of 1, 0 item(s) in all");
    }
}
