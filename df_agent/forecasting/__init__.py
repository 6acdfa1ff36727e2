"""Time-series forecasting head: the paper's GRU Diffusion Forcing model, TimeGrad covariates, CRPS-sum.

Importing this package registers the checkpoint model type `forecast_df_gru`.
"""

from df_agent.checkpoint import register_model_type

register_model_type("forecast_df_gru", "df_agent.forecasting.model:ForecastDF")
