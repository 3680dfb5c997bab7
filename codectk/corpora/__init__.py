"""Corpus preparation: lhotse's recipes wrapped into validated Kaldi data dirs, one module
per corpus (``librispeech``, ``libritts``, ``vctk``; shared parts in ``common``). The
command line is ``python -m codectk.bin.prepare_corpus <corpus> ...``."""
