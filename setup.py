"""codectk: train, decode and score neural speech codecs with Kaldi/ESPnet-style recipes."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = (here / "codectk" / "VERSION").read_text().strip()
requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="codectk",
    version=version,
    description="Neural speech codec toolkit: recipes, models, trainer, scoring",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["codectk", "codectk.*"]),
    package_data={"codectk": ["VERSION"], "codectk.report": ["*.html"]},
    install_requires=requirements,
    extras_require={"test": ["pytest==9.2.0", "ruff==0.17.5", "hypothesis==6.170.15", "websocket-client==1.9.2"]},
    entry_points={
        "console_scripts": [
            "codectk=codectk.bin.cli:console_main",
        ]
    },
)
