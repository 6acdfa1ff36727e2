"""DF imitation learning: tokens bundle camera images, proprioception and an action chunk; the latent is memory.

Importing this package registers the checkpoint model type ``df_imitation``.
"""

from df_agent.imitation.config import ImitationConfig
from df_agent.imitation.model import MODEL_TYPE, ImitationDFModel

__all__ = ["MODEL_TYPE", "ImitationConfig", "ImitationDFModel"]
