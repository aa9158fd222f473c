"""`python tests/fake_provider --port 0 ...` (or `python -m fake_provider` with tests/ on the path):
serve the fake APIs until killed (server.main)."""

import sys
from pathlib import Path

if not __package__:  # run as a folder: import the package from tests/, not its parts as top-level modules
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from fake_provider.server import main  # noqa: E402

main()
