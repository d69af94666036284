#!/usr/bin/env python3
"""Goldens for our DPM-Solver++ samplers from an independent implementation: the `diffusers` package's
DPMSolverMultistepScheduler, configured with GLIDE's own betas (the genuine glide_text2im
`get_named_beta_schedule`, cosine and linear) through `trained_betas`.

Each case steps the scheduler from a fixed x_T with fixed ε outputs (a toy "model" that pulls x toward a fixed
image plus Gaussian jitter; its outputs are recorded, so the Swift test feeds exactly the same ε and needs no
model) and records every x. The scheduler is set up as our solver: solver_order=2, data prediction
("dpmsolver++" or "sde-dpmsolver++"), midpoint form, first order at the first step, last step to sigma 0
(final_sigmas_type="zero"), x_0 predictions clipped to [-1, 1] (thresholding with ratio 1 and
sample_max_value 1 is exactly a clip). The SDE cases pass their noise as `variance_noise`, recorded too.
Timesteps are ours (SolverSpacing in Swift, reimplemented below) passed as custom `timesteps`; the time
spacing is also checked against diffusers' own `timestep_spacing="linspace"`.

Regenerate:  /tmp/venv/bin/pip install diffusers && /tmp/venv/bin/python tools/make_dpm_goldens.py
Writes Tests/Fixtures/dpm/dpm_goldens.json (checked by Tests/GlideModelTests/DPMSolverTests.swift).
"""

import json
import os

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler
from glide_text2im.gaussian_diffusion import get_named_beta_schedule

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "Fixtures", "dpm", "dpm_goldens.json")
SHAPE = (2, 1, 4, 4)


def solver_timesteps(count, alphas_cumprod, spacing):
    """Our SolverSpacing (see DPMSolver.swift): count+1 points from T-1 to 0, last dropped, rounded half to
    even, made strictly decreasing."""
    total = len(alphas_cumprod)
    if spacing == "time":
        points = np.linspace(total - 1, 0, count + 1)
    else:
        lam = 0.5 * np.log(alphas_cumprod / (1 - alphas_cumprod))
        grid = np.linspace(lam[-1], lam[0], count + 1)
        # lam is decreasing in t: interpolate t as a function of lam.
        points = np.interp(grid, lam[::-1], np.arange(total)[::-1].astype(np.float64))
    points = points[:-1]
    steps = []
    for k, p in enumerate(points):
        t = int(np.round(p))
        if steps:
            t = min(t, steps[-1] - 1)
        steps.append(max(t, count - 1 - k))
    return steps


def run_case(name, schedule, count, spacing, algorithm, seed):
    betas = get_named_beta_schedule(schedule, 1000)
    sched = DPMSolverMultistepScheduler(
        num_train_timesteps=1000, trained_betas=betas, solver_order=2, prediction_type="epsilon",
        algorithm_type=algorithm, solver_type="midpoint", lower_order_final=True, final_sigmas_type="zero",
        thresholding=True, dynamic_thresholding_ratio=1.0, sample_max_value=1.0, euler_at_final=False)
    alphas_cumprod = np.cumprod(1.0 - betas)
    timesteps = solver_timesteps(count, alphas_cumprod, spacing)
    sched.set_timesteps(timesteps=timesteps)
    assert list(sched.timesteps.numpy()) == timesteps
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(SHAPE, generator=g, dtype=torch.float32) * 2.4 - 1.2     # partly outside [-1, 1]
    x = torch.randn(SHAPE, generator=g, dtype=torch.float32)
    x_start = x.clone()
    eps_list, noise_list, xs = [], [], []
    for t in sched.timesteps:
        abar = float(alphas_cumprod[int(t)])
        eps = ((x - abar ** 0.5 * target) / (1 - abar) ** 0.5 * 0.9
               + 0.3 * torch.randn(SHAPE, generator=g, dtype=torch.float32)).float()
        noise = torch.randn(SHAPE, generator=g, dtype=torch.float32)
        kwargs = {"variance_noise": noise} if algorithm.startswith("sde") else {}
        x = sched.step(eps, t, x, **kwargs).prev_sample
        eps_list.append(eps.flatten().tolist())
        noise_list.append(noise.flatten().tolist() if kwargs else [])
        xs.append(x.flatten().tolist())
    return dict(name=name, schedule=schedule, steps=count, spacing=spacing,
                sampler="dpm++2m" if algorithm == "dpmsolver++" else "dpm++2m-sde",
                shape=list(SHAPE), timesteps=timesteps, x_start=x_start.flatten().tolist(),
                eps=eps_list, noise=noise_list, xs=xs)


def main():
    cases = [
        run_case("cosine_time_10", "squaredcos_cap_v2", 10, "time", "dpmsolver++", 1),
        run_case("cosine_logsnr_12", "squaredcos_cap_v2", 12, "logsnr", "dpmsolver++", 2),
        run_case("linear_time_16", "linear", 16, "time", "dpmsolver++", 3),
        run_case("linear_logsnr_8", "linear", 8, "logsnr", "dpmsolver++", 4),
        run_case("cosine_time_8_sde", "squaredcos_cap_v2", 8, "time", "sde-dpmsolver++", 5),
        run_case("linear_logsnr_10_sde", "linear", 10, "logsnr", "sde-dpmsolver++", 6),
    ]
    # Our time spacing is diffusers' own "linspace" spacing.
    linspace = {}
    for schedule in ["squaredcos_cap_v2", "linear"]:
        for n in [5, 10, 20, 25, 50]:
            s = DPMSolverMultistepScheduler(num_train_timesteps=1000,
                                            trained_betas=get_named_beta_schedule(schedule, 1000),
                                            timestep_spacing="linspace", final_sigmas_type="zero")
            s.set_timesteps(n)
            linspace[f"{schedule}|{n}"] = [int(v) for v in s.timesteps]
    # Both spacings for a few counts (the Swift test checks its SolverSpacing against these).
    spacings = {}
    for schedule in ["squaredcos_cap_v2", "linear"]:
        ac = np.cumprod(1.0 - get_named_beta_schedule(schedule, 1000))
        for spacing in ["time", "logsnr"]:
            for n in [2, 10, 15, 20, 25, 100]:
                spacings[f"{schedule}|{spacing}|{n}"] = solver_timesteps(n, ac, spacing)
    for key, ref in linspace.items():
        schedule, n = key.split("|")
        assert spacings.get(f"{schedule}|time|{n}", ref) == ref, key
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(dict(generator="tools/make_dpm_goldens.py", diffusers_linspace=linspace, spacings=spacings,
                       cases=cases), f, separators=(",", ":"))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
