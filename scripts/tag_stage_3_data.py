"""Tag stage-3 data (docs/data_formats.md §5): quality tags on every variant and intervention, plus
`id_string` and `id_numeric` on every intervention.

Reads `<input>/<topic>/*.json` (default data/stage_3) in sorted order and writes the tagged
files under the same relative paths in `<output>` (default data/stage_3_tagged), or over the
input with `--in_place`. Every output first goes to a temporary file beside its target; only
when all files were tagged are the temporaries renamed into place, so a bad file (exit 2)
leaves every existing file untouched. Re-running on tagged data gives byte-identical output:
old tags and ids are stripped before they are recomputed.

The same program as `spt tag`; its flags: `--help`; its code: spt/commands/tag.py.
"""

import sys

from spt.commands.tag import main

if __name__ == "__main__":
    sys.exit(main())
