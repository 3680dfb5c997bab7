"""A scratch copy of the bundled recipe (egs/mini_librispeech/codec1) for recipe tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from test.conftest import REPO

RECIPE = REPO / "egs" / "mini_librispeech" / "codec1"
TEMPLATE = REPO / "egs" / "TEMPLATE" / "codec1"


def copy_recipe(d: Path, scripts=(), drivers=(), conf: bool = True) -> Path:
    """Make ``d`` a copy of the recipe and return it.

    Copies run.sh, cmd.sh, path.sh, db.sh, ``scripts`` (e.g. "run_audiodec.sh") and
    local/; conf/ is copied (``conf``) or created empty; codec.sh and ``drivers`` (e.g.
    "audiodec.sh") link to egs/TEMPLATE/codec1, utils to the repository's utils/.
    """
    d.mkdir(parents=True)
    for name in ("run.sh", "cmd.sh", "path.sh", "db.sh", *scripts):
        shutil.copy(RECIPE / name, d / name)
    shutil.copytree(RECIPE / "local", d / "local")
    if conf:
        shutil.copytree(RECIPE / "conf", d / "conf")
    else:
        (d / "conf").mkdir()
    for name in ("codec.sh", *drivers):
        (d / name).symlink_to(TEMPLATE / name)
    (d / "utils").symlink_to(REPO / "utils")
    return d
