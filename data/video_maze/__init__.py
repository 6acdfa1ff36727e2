"""Procedural first-person maze videos: a DMLab-like substitute for the TECO video data used by the paper.

`maze` carves layouts, `agent` walks them, `renderer` draws the first-person view with MuJoCo, `store` writes
and reads the zarr episodes, `teco` reads TECO's npz files, `generate` ties them together and `windows` serves
training windows to `df_agent.training`.
Heavy imports (mujoco, zarr) live in the submodules that need them.
"""
