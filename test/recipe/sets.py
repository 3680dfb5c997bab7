"""Recipe copies whose sets are not called train/valid/test, so that a script reading
``dump/raw/train`` instead of the recipe's set names fails."""

from __future__ import annotations

import re
from pathlib import Path

RENAMED = {"train": "tr_clean", "valid": "dev_clean", "test": "eval_clean"}


def rename_sets(recipe: Path) -> dict[str, str]:
    """Rename the mini_librispeech sets in the copy ``recipe`` (run.sh, local/data.sh) and
    drop ``--test_set`` from its run_*.sh (the phase drivers then take the recipe's first
    test set). Returns the old -> new names."""
    run = recipe / "run.sh"
    text = run.read_text()
    for var, old in (("train_set", "train"), ("valid_set", "valid"), ("test_sets", '"test"')):
        new = f'"{RENAMED[old.strip(chr(34))]}"' if old.startswith('"') else RENAMED[old]
        text, n = re.subn(rf"^{var}={re.escape(old)}$", f"{var}={new}", text, flags=re.M)
        assert n == 1, f"{run}: no line {var}={old}"
    run.write_text(text)
    data = recipe / "local" / "data.sh"
    text = data.read_text()
    for old, new in RENAMED.items():
        text = text.replace(f'"data/{old}:', f'"data/{new}:').replace(
            f"data/{old}:rest", f"data/{new}:rest"
        )
    assert all(f"data/{new}:" in text for new in RENAMED.values()), data
    data.write_text(text)
    for driver in recipe.glob("run_*.sh"):
        driver.write_text(re.sub(r"^\s*--test_set test \\\n", "", driver.read_text(), flags=re.M))
    return dict(RENAMED)
