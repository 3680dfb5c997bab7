"""Write model files with codectk main's module names (before issue 20's streaming path)."""

import sys

import numpy as np
import torch

from codectk.config import build_train_config
from codectk.io.modelfile import model_file, save_atomic
from codectk.models import CODECS

out = sys.argv[1]
confs = {
    "symad": {
        "codec": "symad",
        "codec_conf": {
            "sample_rate": 16000,
            "encode_channels": 2,
            "decode_channels": 2,
            "code_dim": 8,
            "enc_ratios": [1, 2, 2, 4],
            "dec_ratios": [4, 2, 2, 1],
            "codebook_num": 3,
            "codebook_size": 16,
            "enc_strides": [2, 3, 2, 2],
            "dec_strides": [2, 2, 3, 2],
        },
    },
    "audiodec": {
        "codec": "audiodec",
        "codec_conf": {
            "sample_rate": 16000,
            "encode_channels": 2,
            "code_dim": 8,
            "codebook_num": 3,
            "enc_ratios": [1, 2, 2, 4],
            "codebook_size": 16,
            "enc_strides": [2, 3, 2, 2],
            "vocoder_channels": 16,
            "upsample_scales": [2, 2, 3, 2],
            "resblock_kernel_sizes": [5],
            "resblock_dilations": [[1, 3]],
            "groups": 3,
        },
    },
}
for name, conf in confs.items():
    torch.manual_seed(0)
    codec = CODECS.build(conf["codec"], conf["codec_conf"])
    if name == "audiodec":
        codec.set_code_stats_(np.full(8, 0.1, np.float32), np.full(8, 2.0, np.float32))
    wav = 0.3 * torch.randn(1, 1, 720)
    codec.train()
    with torch.no_grad():
        codec(wav)
    codec.eval()
    with torch.inference_mode():
        codes = codec.encode(wav)
        y = codec.decode(codes)
    cfg = build_train_config(conf).to_dict()
    save_atomic(model_file(cfg, codec.state_dict(), 1, {}), f"{out}/{name}_tiny.pt")
    torch.save({"wav": wav, "codes": codes, "decoded": y}, f"{out}/{name}_tiny.io.pt")
    print(name, sorted(k for k in codec.state_dict() if "deconv" in k)[:4])
