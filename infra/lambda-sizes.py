#!/usr/bin/env python3
"""Print the size of each function's release bootstrap, zipped (what Lambda stores) and unzipped.

Usage: infra/lambda-sizes.py FUNCTION...   (after `cargo lambda build --release --arm64
--output-format zip`, which writes <target>/lambda/<function>/bootstrap.zip)
"""
import os
import sys
import zipfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
if not os.path.isabs(target):
    target = os.path.join(root, target)

missing = False
print(f"{'function':<20} {'zipped':>10} {'bootstrap':>10}")
for fn in sys.argv[1:]:
    path = os.path.join(target, "lambda", fn, "bootstrap.zip")
    if not os.path.exists(path):
        print(f"{fn:<20} {'missing':>10}   ({path})")
        missing = True
        continue
    with zipfile.ZipFile(path) as z:
        raw = sum(i.file_size for i in z.infolist())
    zipped = os.path.getsize(path)
    print(f"{fn:<20} {zipped / 1e6:>8.2f} MB {raw / 1e6:>8.2f} MB")
sys.exit(1 if missing else 0)
