"""Diffuse Studio: make images with latent diffusion models on your own machine."""

__version__ = "0.1.0"
