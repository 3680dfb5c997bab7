"""codectk's version (the ``codectk/VERSION`` file), for the modules that write it into
files and reports; ``codectk.__version__`` is the same string."""

from pathlib import Path

__version__ = (Path(__file__).parent / "VERSION").read_text().strip()
