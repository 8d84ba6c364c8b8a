"""Denoising diffusion probabilistic models (Ho et al. 2020): schedules, losses, samplers, denoisers."""

from jgen.diffusion import ddpm, denoisers
from jgen.diffusion.ddpm import (Schedule, ancestral_sample, cosine_beta_schedule, linear_beta_schedule, make_schedule,
                                 noise_prediction_loss, q_sample)
from jgen.diffusion.denoisers import DenoisingMLP

__all__ = ["ddpm", "denoisers", "Schedule", "linear_beta_schedule", "cosine_beta_schedule", "make_schedule",
           "q_sample", "noise_prediction_loss", "ancestral_sample", "DenoisingMLP"]
