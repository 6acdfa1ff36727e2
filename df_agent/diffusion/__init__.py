"""Diffusion math shared by every head: noise schedules, parameterisations, DDIM steps, loss weights.

Convention: noise level k is an integer in 0..K; k = 0 is the clean token (alpha_bar = 1) and k = K the
noisiest. x_k = sqrt(alpha_bar_k) x_0 + sqrt(1 - alpha_bar_k) eps.
"""

from df_agent.diffusion.ddim import ddim_step, renoise
from df_agent.diffusion.parameterization import Parameterization, to_eps, to_x0, training_target
from df_agent.diffusion.schedule import NoiseSchedule

__all__ = ["NoiseSchedule", "Parameterization", "ddim_step", "renoise", "to_eps", "to_x0", "training_target"]
