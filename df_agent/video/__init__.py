"""Video head: the paper's recurrent U-Net + ConvGRU Diffusion Forcing model for first-person video (B.2).

`config` holds the sizes, `unet`/`convgru` the building blocks, `model` the DF unit (`init_latent`, `step`,
`loss`), `frames` the pixel <-> token conversion with frame stacking, `rollout` the stabilised autoregressive
and sliding-window samplers, `metrics` PSNR / SSIM / stability measures, `training` the training loop.
"""
