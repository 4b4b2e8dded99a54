//! Result sets, printed as isolationtester prints them.
//!
//! - Since PostgreSQL 14 (and in the back branches' testers since 2021) with libpq's
//!   `PQprint` (options: header, align, field separator `|`). That is not psql's
//!   printer: a column is right-aligned when every non-empty value in it *looks*
//!   numeric (only `0-9 . E e - space`, not starting with `E`/`e`, ending with a digit;
//!   the column's type plays no part), left-aligned otherwise; the header is aligned
//!   like its column (not centred); widths are in bytes; every value, the last column's
//!   too, is padded to its width; NULL prints as an empty value; then `(N rows)` (or
//!   `(1 row)`) and an empty line. A result with no columns prints nothing.
//! - Before: every column name and every value left-justified in 15 bytes (longer ones
//!   are not cut), an empty line after the names, no row count.

/// The rows a statement returned: column names and values as text (`None` for NULL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// The column names, in order.
    pub columns: Vec<String>,
    /// The rows; each has one value per column, `None` for NULL.
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    /// A result set from column names and rows of text values.
    pub fn new<C, R, V>(columns: C, rows: R) -> Self
    where
        C: IntoIterator,
        C::Item: Into<String>,
        R: IntoIterator<Item = V>,
        V: IntoIterator<Item = Option<String>>,
    {
        ResultSet {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: rows
                .into_iter()
                .map(|row| row.into_iter().collect())
                .collect(),
        }
    }

    fn value(&self, row: usize, column: usize) -> &str {
        self.rows[row]
            .get(column)
            .and_then(|v| v.as_deref())
            .unwrap_or("")
    }
}

/// Whether `PQprint` would take this (non-empty) value for a number.
fn looks_numeric(value: &str) -> bool {
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, '.' | 'E' | 'e' | ' ' | '-');
    value.chars().all(allowed)
        && !value.starts_with(['E', 'e'])
        && value.chars().last().is_some_and(|c| c.is_ascii_digit())
}

/// Appends `text` padded with spaces to `width` bytes, on the left or the right.
fn pad(out: &mut String, text: &str, width: usize, right_align: bool) {
    let fill = width.saturating_sub(text.len());
    if right_align {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(text);
    } else {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', fill));
    }
}

/// The result set as `PQprint` prints it (the current format).
pub fn aligned(result: &ResultSet) -> String {
    let n = result.columns.len();
    let mut out = String::new();
    if n == 0 {
        return out;
    }
    let mut widths: Vec<usize> = result.columns.iter().map(String::len).collect();
    let mut numeric = vec![true; n];
    for row in 0..result.rows.len() {
        for (j, width) in widths.iter_mut().enumerate() {
            let value = result.value(row, j);
            if value.is_empty() {
                continue;
            }
            if numeric[j] && !looks_numeric(value) {
                numeric[j] = false;
            }
            *width = (*width).max(value.len());
        }
    }
    for (j, name) in result.columns.iter().enumerate() {
        if j > 0 {
            out.push('|');
        }
        pad(&mut out, name, widths[j], numeric[j]);
    }
    out.push('\n');
    let border: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&border.join("+"));
    out.push('\n');
    for row in 0..result.rows.len() {
        for j in 0..n {
            if j > 0 {
                out.push('|');
            }
            pad(&mut out, result.value(row, j), widths[j], numeric[j]);
        }
        out.push('\n');
    }
    let count = result.rows.len();
    out.push_str(&format!(
        "({count} row{})\n\n",
        if count == 1 { "" } else { "s" }
    ));
    out
}

/// The result set as isolationtester printed it before PostgreSQL 14.
pub fn padded(result: &ResultSet) -> String {
    let mut out = String::new();
    for name in &result.columns {
        pad(&mut out, name, 15, false);
    }
    out.push_str("\n\n");
    for row in 0..result.rows.len() {
        for j in 0..result.columns.len() {
            pad(&mut out, result.value(row, j), 15, false);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn numbers_right_text_left_header_follows_its_column() {
        let rs = ResultSet::new(
            ["id", "balance"],
            [vec![text("X"), text("0")], vec![text("Y"), text("20")]],
        );
        assert_eq!(
            aligned(&rs),
            "id|balance\n--+-------\nX |      0\nY |     20\n(2 rows)\n\n"
        );
    }

    #[test]
    fn a_short_header_over_numbers_is_right_aligned() {
        let rs = ResultSet::new(["a"], [vec![text("2")], vec![text("11")]]);
        assert_eq!(aligned(&rs), " a\n--\n 2\n11\n(2 rows)\n\n");
    }

    #[test]
    fn nulls_and_empty_values_do_not_decide_alignment() {
        let rs = ResultSet::new(["n", "t"], [vec![None, text("")], vec![text("10"), None]]);
        // `n` stays numeric (right), `t` has only empty values: numeric too.
        assert_eq!(aligned(&rs), " n|t\n--+-\n  | \n10| \n(2 rows)\n\n");
    }

    #[test]
    fn numeric_look_is_by_characters_not_type() {
        assert!(looks_numeric("-1.5e10"));
        assert!(looks_numeric(" 42"));
        assert!(!looks_numeric("e1"));
        assert!(!looks_numeric("1-"));
        assert!(!looks_numeric("t"));
        assert!(!looks_numeric("(1,2)"));
        assert!(!looks_numeric("1é"));
    }

    #[test]
    fn widths_are_bytes_and_the_footer_is_singular_for_one_row() {
        let rs = ResultSet::new(["v"], [vec![text("é")]]);
        // "é" is two bytes: the column is two wide, so "v" gets one space of padding.
        assert_eq!(aligned(&rs), "v \n--\né\n(1 row)\n\n");
        assert_eq!(
            aligned(&ResultSet::new(["x"], Vec::<Vec<Option<String>>>::new())),
            "x\n-\n(0 rows)\n\n"
        );
        assert_eq!(aligned(&ResultSet::default()), "");
    }

    #[test]
    fn the_old_format_pads_to_fifteen_without_cutting() {
        let rs = ResultSet::new(
            ["accountid", "balance"],
            [
                vec![text("checking"), text("600")],
                vec![None, text("a_value_longer_than_15")],
            ],
        );
        assert_eq!(
            padded(&rs),
            "accountid      balance        \n\nchecking       600            \n               a_value_longer_than_15\n"
        );
    }
}
