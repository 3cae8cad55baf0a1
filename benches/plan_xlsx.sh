#!/usr/bin/env bash
# Benchmark: `intune-reset plan` over a generated .xlsx workbook of N rows (default
# 100,000): an admin-center-style export saved as a workbook, with a title row above
# the header, text in shared strings (as Excel writes them) and numbers as numbers.
# Prints wall time and peak memory (maximum resident set size) from /usr/bin/time -v.
# Usage: bash benches/plan_xlsx.sh [ROWS]
set -euo pipefail
rows=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/intune-reset"

# The workbook is written with Python's zipfile and the SpreadsheetML parts Excel
# itself writes (no library needed).
python3 - "$rows" "$work/devices.xlsx" <<'PY'
import sys, random, uuid, zipfile
from xml.sax.saxutils import escape
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(7)
kinds = [("iOS", "17.5"), ("iOS", 18.1), ("Android", 14), ("Android", "6.0.1"), ("Windows", "10.0.22631.4460"),
         ("macOS", 15.1)]
strings, index = [], {}
def s(text):
    if text not in index:
        index[text] = len(strings); strings.append(text)
    return index[text]
def col(c): return "ABCDEFGHIJ"[c]
rows_xml = []
def row(r, cells):
    out = [f'<row r="{r}">']
    for c, v in enumerate(cells):
        ref = f"{col(c)}{r}"
        if isinstance(v, str):
            out.append(f'<c r="{ref}" t="s"><v>{s(v)}</v></c>')
        elif v is not None:
            out.append(f'<c r="{ref}"><v>{v}</v></c>')
    out.append("</row>")
    rows_xml.append("".join(out))
row(1, ["Intune devices, exported 2026-11-30"])
row(3, ["Device ID", "Device name", "Serial number", "OS", "OS version", "IMEI", "Managed by", "Ownership",
        "Primary user UPN"])
for i in range(n):
    os_, ver = rnd.choice(kinds)
    gid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    imei = 357000000000000 + i if os_ in ("iOS", "Android") else None
    row(4 + i, [gid, f"DEVICE-{i:07d}", f"SN{i:010d}", os_, ver, imei, "Intune", "Corporate",
                f"user{i % 5000}@contoso.com"])
sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
         '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
         + "".join(rows_xml) + "</sheetData></worksheet>")
shared = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
          f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" uniqueCount="{len(strings)}">'
          + "".join(f"<si><t>{escape(t)}</t></si>" for t in strings) + "</sst>")
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("[Content_Types].xml",
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '</Types>')
    z.writestr("_rels/.rels",
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>')
    z.writestr("xl/workbook.xml",
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Devices" sheetId="1" r:id="rId1"/></sheets></workbook>')
    z.writestr("xl/_rels/workbook.xml.rels",
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        '</Relationships>')
    z.writestr("xl/worksheets/sheet1.xml", sheet)
    z.writestr("xl/sharedStrings.xml", shared)
PY
size=$(du -h "$work/devices.xlsx" | cut -f1)
echo "workbook: $rows rows, $size"
/usr/bin/time -v "$bin" plan "$work/devices.xlsx" --report "$work/report.csv" 2> "$work/time.txt" >/dev/null || true
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$work/time.txt"
echo "report rows: $(($(wc -l < "$work/report.csv") - 1))"
grep -E "rows \(Excel" "$work/time.txt" || true
