"""Entry points: ``python -m codectk.bin.<step>``, one module per recipe step."""

import os

# Large CPU tensors on transparent huge pages (PyTorch's allocator reads this once, when
# torch first allocates): far fewer page faults for the long (C, T) activations of
# waveform codecs (docs/benchmarks.md). THP_MEM_ALLOC_ENABLE=0 turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
