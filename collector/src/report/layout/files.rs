//! The file-hash widget: the ten files most often alerted on.

use super::super::stats::FileHashRow;
use super::super::table::{Align, Cell};
use super::{Ctx, col};

/// Hex digits per group: a 64-digit SHA-256 reads as eight groups, two lines in its column,
/// and a line break never falls inside a group.
const GROUP: usize = 8;

/// `hex` in groups of [`GROUP`] digits separated by spaces.
fn grouped(hex: &str) -> String {
    let chars: Vec<char> = hex.chars().collect();
    chars.chunks(GROUP).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

pub(super) fn section(cx: &mut Ctx<'_>, rows: &[FileHashRow]) {
    let s = cx.s;
    let f = &s.files;
    cx.h1(f.heading);
    if rows.is_empty() {
        cx.line(f.empty.to_owned());
        return;
    }
    cx.muted(f.intro.to_owned());
    let cells = rows
        .iter()
        .map(|r| {
            let (hash, kind) = match &r.hash {
                Some((kind, hex)) => (cx.clean(&grouped(hex)), kind.label().to_owned()),
                None => (f.no_hash.to_owned(), s.none.to_owned()),
            };
            let name = r.name.as_deref().map_or_else(|| s.none.to_owned(), |n| cx.clean(n));
            let verdict = r.verdict.as_deref().map_or_else(|| f.not_flagged.to_owned(), |v| cx.clean(v));
            let devices = cx.clean(&r.devices.join(", "));
            vec![Cell::Text(hash), Cell::Text(kind), Cell::Text(name), Cell::Text(verdict), Cell::Text(s.int(r.count)), Cell::Text(devices)]
        })
        .collect();
    cx.table(
        "",
        vec![
            col(f.col_hash, 4.3, Align::Left, 4),
            col("", 1.1, Align::Left, 1),
            col(f.col_file, 2.2, Align::Left, 3),
            col(f.col_verdict, 2.2, Align::Left, 3),
            col(s.col_count, 0.9, Align::Right, 1),
            col(f.col_devices, 1.2, Align::Left, 3),
        ],
        cells,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_are_grouped_in_eights() {
        assert_eq!(super::grouped(&"ab".repeat(8)), "abababab abababab");
        assert_eq!(super::grouped("abc"), "abc");
        assert_eq!(super::grouped(""), "");
    }
}
