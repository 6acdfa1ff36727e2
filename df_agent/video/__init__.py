"""Video head: the paper's recurrent U-Net + ConvGRU Diffusion Forcing model for first-person video (B.2).

`config` holds the sizes, `unet`/`convgru` the building blocks, `model` the DF unit (`init_latent`, `step`,
`loss`), `frames` the pixel <-> token conversion with frame stacking, `rollout` the stabilised autoregressive
and sliding-window samplers, `metrics` PSNR / SSIM / stability measures, `encoder` the feature encoder of the
Fréchet distance, `evaluate` the evaluation protocol, `visualize` rollout strips and animations, `training` the
training job and `comparison` the long-rollout comparison of DF and its baselines.
"""
