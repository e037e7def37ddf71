//! Printing answers: aligned tables and `key: value` records for people,
//! or JSON for scripts (`--json`).
//!
//! | output      | human                          | JSON                                   |
//! |-------------|--------------------------------|----------------------------------------|
//! | `Table`     | header row, aligned columns    | array of objects keyed by column       |
//! | `Record`    | `key: value` lines             | object                                 |
//! | `Done`      | the sentence                   | `{"ok":true,"message":…}`              |
//! | `Json`      | the document as is             | the document as is                     |
//! | error       | `confabctl: message` on stderr | `{"ok":false,"code":…,"message":…}`    |
//!
//! Cells: `Null` is `-` (JSON `null`), `Bool` is yes/no (JSON `true`/`false`),
//! `Time` is UTC `YYYY-MM-DD HH:MM:SS` (JSON: the milliseconds since the
//! epoch). Text from the node may hold what users typed, so control
//! characters are escaped in human output rather than sent to the terminal.
//! JSON keeps the column order (objects are written here, not through a
//! map that would sort them).

use std::fmt::Write as _;

use confab_wire::admin::{AdminOutput, Cell};

use crate::error::Failure;

/// Gap between table columns.
const COLUMN_GAP: &str = "  ";

/// The output as people read it (without a final newline).
pub(crate) fn human(out: &AdminOutput) -> String {
    match out {
        AdminOutput::Done(sentence) => clean(sentence, true),
        AdminOutput::Table { columns, rows } => table(columns, rows),
        AdminOutput::Record(fields) => record(fields),
        AdminOutput::Json(doc) => doc.trim_end().to_string(),
        AdminOutput::BackupChunk(bytes) => format!("({} bytes of backup data)", bytes.len()),
    }
}

/// The output as one JSON document (without a final newline).
pub(crate) fn json(out: &AdminOutput) -> String {
    match out {
        AdminOutput::Done(sentence) => {
            object([("ok", "true".to_string()), ("message", json_str(sentence))])
        }
        AdminOutput::Table { columns, rows } => {
            let mut s = String::from("[");
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                // A short row gets nulls; cells beyond the columns have no
                // key and are left out.
                s.push_str(&object(columns.iter().enumerate().map(|(c, name)| {
                    (name.as_str(), row.get(c).map_or("null".into(), json_cell))
                })));
            }
            s.push(']');
            s
        }
        AdminOutput::Record(fields) => {
            object(fields.iter().map(|(k, v)| (k.as_str(), json_cell(v))))
        }
        AdminOutput::Json(doc) => doc.trim_end().to_string(),
        AdminOutput::BackupChunk(bytes) => object([("backup_bytes", bytes.len().to_string())]),
    }
}

/// A failure as a JSON document.
pub(crate) fn json_error(f: &Failure) -> String {
    object([
        ("ok", "false".to_string()),
        ("code", json_str(f.kind.json_code())),
        ("message", json_str(&f.message)),
    ])
}

/// Adds fields to a JSON object (a `Done` or a `Record` rendered by
/// [`json`]); other documents are returned unchanged.
pub(crate) fn json_with(doc: String, extra: &[(String, Cell)]) -> String {
    if extra.is_empty() || !doc.starts_with('{') || !doc.ends_with('}') {
        return doc;
    }
    let mut s = doc;
    s.pop();
    for (k, v) in extra {
        if !s.ends_with('{') {
            s.push(',');
        }
        let _ = write!(s, "{}:{}", json_str(k), json_cell(v));
    }
    s.push('}');
    s
}

/// A cell as people read it, on one line.
pub(crate) fn human_cell(cell: &Cell) -> String {
    match cell {
        Cell::Null => "-".into(),
        Cell::Bool(true) => "yes".into(),
        Cell::Bool(false) => "no".into(),
        Cell::Int(n) => n.to_string(),
        Cell::Text(t) => clean(t, false),
        Cell::Time(ms) => format_time(*ms),
    }
}

fn json_cell(cell: &Cell) -> String {
    match cell {
        Cell::Null => "null".into(),
        Cell::Bool(b) => b.to_string(),
        Cell::Int(n) => n.to_string(),
        Cell::Text(t) => json_str(t),
        Cell::Time(ms) => ms.to_string(),
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn object<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in fields.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&json_str(k));
        s.push(':');
        s.push_str(&v);
    }
    s.push('}');
    s
}

fn table(columns: &[String], rows: &[Vec<Cell>]) -> String {
    let header: Vec<String> = columns.iter().map(|c| clean(c, false)).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|c| row.get(c).map_or("-".into(), human_cell))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|c| {
            body.iter()
                .map(|r| width(&r[c]))
                .chain([width(&header[c])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Numbers line up on the right when every value of a column is one.
    let numeric: Vec<bool> = (0..columns.len())
        .map(|c| {
            let mut cells = rows.iter().filter_map(|r| r.get(c));
            cells.clone().any(|v| matches!(v, Cell::Int(_)))
                && cells.all(|v| matches!(v, Cell::Int(_) | Cell::Null))
        })
        .collect();
    let mut out = String::new();
    for (i, line) in std::iter::once(&header).chain(&body).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut text = String::new();
        for (c, value) in line.iter().enumerate() {
            if c > 0 {
                text.push_str(COLUMN_GAP);
            }
            let pad = widths[c].saturating_sub(width(value));
            if numeric[c] {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(value);
            } else {
                text.push_str(value);
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
    }
    out
}

fn record(fields: &[(String, Cell)]) -> String {
    let keys: Vec<String> = fields.iter().map(|(k, _)| clean(k, false)).collect();
    let key_width = keys.iter().map(|k| width(k)).max().unwrap_or(0);
    let mut out = String::new();
    for (i, ((_, value), key)) in fields.iter().zip(&keys).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let value = match value {
            // Long texts (a reported message) keep their lines, indented
            // under the first.
            Cell::Text(t) => {
                clean(t, true).replace('\n', &format!("\n{}", " ".repeat(key_width + 2)))
            }
            other => human_cell(other),
        };
        let pad = key_width - width(key);
        let _ = write!(out, "{key}:{} {value}", " ".repeat(pad));
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
    }
    out
}

/// Characters on screen (near enough: wide characters count as one).
fn width(s: &str) -> usize {
    s.chars().count()
}

/// Escapes control and bidirectional-override characters, which would move
/// the cursor, recolour the terminal or reorder what is shown. Newlines
/// stay when `keep_newlines`.
fn clean(s: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c == '\n' && keep_newlines) || !(c.is_control() || bidi) {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
    }
    out
}

/// A byte count for people: `512 bytes`, `1.5 KiB`, `12.3 MiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Milliseconds since the epoch as UTC `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn format_time(ms: u64) -> String {
    confab_wire::admin::format_utc(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn sample_table() -> AdminOutput {
        AdminOutput::Table {
            columns: vec![
                "name".into(),
                "joined".into(),
                "admin".into(),
                "events".into(),
                "note".into(),
            ],
            rows: vec![
                vec![
                    Cell::text("alice"),
                    Cell::Time(1_709_210_096_000),
                    Cell::Bool(true),
                    Cell::Int(12),
                    Cell::Null,
                ],
                vec![
                    Cell::text("bob"),
                    Cell::Time(0),
                    Cell::Bool(false),
                    Cell::Int(-3),
                    Cell::text("says \"hi\""),
                ],
            ],
        }
    }

    #[test]
    fn tables_align_under_a_header() {
        assert_eq!(
            human(&sample_table()),
            "name   joined               admin  events  note\n\
             alice  2024-02-29 12:34:56  yes        12  -\n\
             bob    1970-01-01 00:00:00  no         -3  says \"hi\""
        );
        let empty = AdminOutput::Table {
            columns: vec!["id".into()],
            rows: vec![],
        };
        assert_eq!(human(&empty), "id");
        assert_eq!(json(&empty), "[]");
    }

    #[test]
    fn tables_are_json_arrays_keyed_by_column_in_order() {
        assert_eq!(
            json(&sample_table()),
            r#"[{"name":"alice","joined":1709210096000,"admin":true,"events":12,"note":null},{"name":"bob","joined":0,"admin":false,"events":-3,"note":"says \"hi\""}]"#
        );
        let ragged = AdminOutput::Table {
            columns: vec!["a".into(), "b".into()],
            rows: vec![
                vec![Cell::Int(1)],
                vec![Cell::Int(1), Cell::Int(2), Cell::Int(3)],
            ],
        };
        assert_eq!(json(&ragged), r#"[{"a":1,"b":null},{"a":1,"b":2}]"#);
        assert_eq!(human(&ragged), "a  b\n1  -\n1  2");
        let v: serde_json::Value = serde_json::from_str(&json(&sample_table())).unwrap();
        assert_eq!(v[1]["name"], "bob");
    }

    #[test]
    fn records_are_key_value_lines_or_an_object() {
        let r = AdminOutput::Record(vec![
            ("id".into(), Cell::Int(7)),
            ("reported_at".into(), Cell::Time(951_782_400_000)),
            ("open".into(), Cell::Bool(true)),
            ("resolved_at".into(), Cell::Null),
            ("text".into(), Cell::text("line one\nline two")),
        ]);
        assert_eq!(
            human(&r),
            "id:          7\n\
             reported_at: 2000-02-29 00:00:00\n\
             open:        yes\n\
             resolved_at: -\n\
             text:        line one\n             line two"
        );
        assert_eq!(
            json(&r),
            r#"{"id":7,"reported_at":951782400000,"open":true,"resolved_at":null,"text":"line one\nline two"}"#
        );
    }

    #[test]
    fn done_and_json_documents() {
        let d = AdminOutput::Done("Muted @bob until 2024-01-01.".into());
        assert_eq!(human(&d), "Muted @bob until 2024-01-01.");
        assert_eq!(
            json(&d),
            r#"{"ok":true,"message":"Muted @bob until 2024-01-01."}"#
        );
        let doc = AdminOutput::Json("{\"user\":\"bob\",\"rooms\":[]}\n".into());
        assert_eq!(human(&doc), r#"{"user":"bob","rooms":[]}"#);
        assert_eq!(json(&doc), r#"{"user":"bob","rooms":[]}"#);
    }

    #[test]
    fn extra_fields_join_an_object() {
        let d = json(&AdminOutput::Done("Made @bob.".into()));
        assert_eq!(
            json_with(d, &[("password".into(), Cell::text("pw"))]),
            r#"{"ok":true,"message":"Made @bob.","password":"pw"}"#
        );
        assert_eq!(
            json_with("{}".into(), &[("a".into(), Cell::Int(1))]),
            r#"{"a":1}"#
        );
        assert_eq!(json_with("[]".into(), &[("a".into(), Cell::Int(1))]), "[]");
    }

    #[test]
    fn errors_as_json() {
        let f = Failure::new(Kind::NotFound, "no user \"bob\"");
        assert_eq!(
            json_error(&f),
            r#"{"ok":false,"code":"not_found","message":"no user \"bob\""}"#
        );
    }

    #[test]
    fn terminal_controls_are_escaped() {
        let t = AdminOutput::Table {
            columns: vec!["reason".into()],
            rows: vec![vec![Cell::text("\u{1b}[31mred\ttab\nnew\u{202e}txt")]],
        };
        assert_eq!(human(&t), "reason\n\\u{1b}[31mred\\ttab\\nnew\\u{202e}txt");
        // JSON escapes what it must and keeps the rest for the script.
        assert!(json(&t).contains(r"\u001b[31mred\ttab\nnew"));
        assert_eq!(human(&AdminOutput::Done("a\u{7}b".into())), "a\\u{7}b");
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(size(0), "0 bytes");
        assert_eq!(size(1023), "1023 bytes");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(12_900_000), "12.3 MiB");
        assert_eq!(size(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(999), "1970-01-01 00:00:00");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_time(1_709_210_096_789), "2024-02-29 12:34:56");
        assert_eq!(format_time(4_107_542_399_000), "2100-02-28 23:59:59");
        assert_eq!(format_time(4_107_542_400_000), "2100-03-01 00:00:00");
        assert_eq!(format_time(253_402_300_799_000), "9999-12-31 23:59:59");
        // Far future: no overflow, no panic.
        assert!(format_time(u64::MAX).len() > "9999-12-31 23:59:59".len());
        // Every day of four centuries round-trips through a day counter.
        let mut expect = (1970, 1, 1);
        for day in 0..146_097 {
            assert_eq!(
                confab_wire::admin::civil_from_days(day),
                expect,
                "day {day}"
            );
            let (y, m, d) = expect;
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            expect = if d < len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }
}
