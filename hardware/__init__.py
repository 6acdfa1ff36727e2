"""df-agent: the ROS 2 bridge to a Franka robot (see docs/ros2.md); it runs any `policies` policy
(`policies.loading.load_policy` builds one from a checkpoint).

Pure Python (no ROS needed): `config` (YAML config), `safety` (the safety layer), `observation` (timestamped
caches, policy observations with noise flags), `control_loop` (one tick), `transforms`, `timing`, `netns`.
With rclpy: `policy_node` (the `df_agent_policy` lifecycle node), `sim_node` (simulated Franka), `gripper`,
`messages`, `bag_recorder`, `spin`.
"""
