#!/usr/bin/env python3
"""Write the small real fixtures the WeightFormat/Converter tests read (Tests/Fixtures/weightformat/).

Usage:  /path/to/python tools/make_weightformat_fixtures.py [OUT_DIR]

Needs PyTorch and the reference glide_text2im (pip install -e glide-text2im). Seeded: re-running gives
the same tensor values (zip files differ only in torch's random serialization id).

  tiny_unet.pt            a real GLIDE Text2ImUNet built by the reference's create_model() with small
                          options (tiny_unet_options.json), every parameter set to random normal values
  tiny_unet_f16.pt        the same state dict in float16 (zip)
  tiny_clip_text.pt       a reference clip TextEncoder with tiny_clip_text_config.json (config.yaml keys)
  tiny_clip_image_bf16.pt a reference clip ImageEncoder, bfloat16, tiny_clip_image_config.json
  bad_values.pt           plain tensors: a matrix with a NaN, a matrix with 1e6 (not storable as int8 / f16)
  released_shapes.json    name -> shape of the state_dict() of the six released models, built on the
                          meta device by the reference code (no weights), for recognition tests
"""
import json
import os
import sys

import torch

from glide_text2im.clip.encoders import ImageEncoder, TextEncoder
from glide_text2im.model_creation import (create_model_and_diffusion, model_and_diffusion_defaults,
                                          model_and_diffusion_defaults_upsampler)

out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/weightformat"
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)


def perturb(module):
    with torch.no_grad():
        for p in module.state_dict().values():
            if p.is_floating_point():
                p.copy_(torch.randn_like(p) * 0.05)
    return module.state_dict()


unet_options = model_and_diffusion_defaults()
unet_options.update(dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,1",
                         attention_resolutions="8", num_head_channels=16, xf_width=4, xf_layers=1,
                         xf_heads=1, text_ctx=4, use_fp16=False))
model, _ = create_model_and_diffusion(**unet_options)
sd = perturb(model)
torch.save(sd, os.path.join(out, "tiny_unet.pt"))
torch.save({k: v.half() for k, v in sd.items()}, os.path.join(out, "tiny_unet_f16.pt"))
with open(os.path.join(out, "tiny_unet_options.json"), "w") as f:
    json.dump(unet_options, f, indent=1, sort_keys=True)

clip_config = dict(logit_scale=100.0, beta_schedule="squaredcos_cap_v2", n_timesteps=10, image_size=8,
                   patch_size=4, n_vocab=100, max_text_len=6, n_embd=16, n_head_state_text=8, n_head_text=2,
                   n_xf_blocks_text=1, n_head_state_image=8, n_head_image=2, n_xf_blocks_image=1)
cpu = torch.device("cpu")
text = TextEncoder(n_bpe_vocab=100, max_text_len=6, n_embd=16, n_head=2, n_xf_blocks=1, n_head_state=8, device=cpu)
torch.save(perturb(text), os.path.join(out, "tiny_clip_text.pt"))
image = ImageEncoder(image_size=8, patch_size=4, n_embd=16, n_head=2, n_xf_blocks=1, n_head_state=8,
                     n_timestep=10, device=cpu)
torch.save({k: v.bfloat16() for k, v in perturb(image).items()}, os.path.join(out, "tiny_clip_image_bf16.pt"))
for name in ["text", "image"]:
    with open(os.path.join(out, f"tiny_clip_{name}_config.json"), "w") as f:
        json.dump(clip_config, f, indent=1, sort_keys=True)

# Values that cannot be stored in a narrower type: NaN (int8 refuses it), 1e6 (beyond f16's 65504).
bad = {"nan_matrix": torch.randn(128, 128), "huge_matrix": torch.randn(128, 128)}
bad["nan_matrix"][5, 7] = float("nan")
bad["huge_matrix"][100, 3] = 1e6
torch.save(bad, os.path.join(out, "bad_values.pt"))

# Shapes of the released models (meta device: no memory, no weights).
shapes = {}
with torch.device("meta"):
    for name, defaults, extra in [("base", model_and_diffusion_defaults, {}),
                                  ("upsample", model_and_diffusion_defaults_upsampler, {}),
                                  ("base-inpaint", model_and_diffusion_defaults, {"inpaint": True}),
                                  ("upsample-inpaint", model_and_diffusion_defaults_upsampler, {"inpaint": True})]:
        o = defaults()
        o.update(extra)
        o["use_fp16"] = False
        m, _ = create_model_and_diffusion(**o)
        shapes[name] = [[k, list(v.shape)] for k, v in m.state_dict().items()]
    meta = torch.device("meta")
    ie = ImageEncoder(image_size=64, patch_size=4, n_embd=512, n_head=12, n_xf_blocks=12, n_head_state=64,
                      n_timestep=1000, device=meta)
    te = TextEncoder(n_bpe_vocab=65536, max_text_len=77, n_embd=512, n_head=8, n_xf_blocks=12, n_head_state=64,
                     device=meta)
    shapes["clip/image-enc"] = [[k, list(v.shape)] for k, v in ie.state_dict().items()]
    shapes["clip/text-enc"] = [[k, list(v.shape)] for k, v in te.state_dict().items()]
with open(os.path.join(out, "released_shapes.json"), "w") as f:
    json.dump(shapes, f, separators=(",", ":"))
print("wrote", sorted(os.listdir(out)))
