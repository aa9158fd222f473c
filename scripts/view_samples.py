"""Write the sample viewer: stage-3 data or a training export as self-contained HTML pages (docs/viewer.md).

Reads PATH, a folder of stage-3 data (tagged or not) or an export folder (then also the tagged data it
was made from); writes `--output` (the index) and beside it one page per topic, `<stem>.<topic>.html`.

The same program as `spt view`; its flags: `--help`; its code: spt/commands/view.py.
"""

import sys

from spt.commands.view import main

if __name__ == "__main__":
    sys.exit(main())
