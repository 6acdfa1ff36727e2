"""df-agent: Diffusion Forcing as a model-predictive-control agent.

`import df_agent` stays light: submodules (torch models, samplers, training) are imported where used.
"""

__version__ = "0.1.0"
